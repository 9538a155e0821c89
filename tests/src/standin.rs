//! The DSQL stand-in in front of the test binary's PostgreSQL ([`crate::pg`]), started in-process.
//!
//! ```ignore
//! let standin = snap2dsql_tests::standin::start().await;          // DSQL's defaults
//! let url = standin.db("mytest");                                 // a fresh database, via the stand-in
//! standin.set_conflict_fraction(0.2);                             // knobs change while it runs
//! // ... run the loader against `url` ...
//! assert_eq!(standin.counters().conflicts, 0);
//! ```
//!
//! [`start`] and [`start_with`] run the stand-in on the test's own tokio runtime (use them from
//! `#[tokio::test]`); [`Thread::start_with`] runs it on a runtime of its own, for synchronous tests
//! that drive the CLI as a subprocess. Each test gets its own stand-in: knobs and counters are
//! never shared between tests.

pub use snap2dsql_standin::{
    BinaryCopy, Config, CounterSnapshot, FailedJobStatus, Rate, StandIn, StandInHandle, TlsFiles,
    Unknowns, WaitForJobResult,
};
use std::ops::Deref;

use crate::{db_name, pg};

/// A stand-in for one test, with helpers for its databases.
pub struct Standin {
    pub handle: StandInHandle,
}

impl Deref for Standin {
    type Target = StandInHandle;
    fn deref(&self) -> &StandInHandle {
        &self.handle
    }
}

impl Standin {
    /// A fresh upstream database (named after `prefix`) and its URL through the stand-in.
    pub fn db(&self, prefix: &str) -> String {
        let direct = pg().create_db(prefix);
        self.handle.url(db_name(&direct))
    }

    /// The direct (upstream) URL of a database reached through this stand-in's `url`.
    pub fn direct_url(&self, url: &str) -> String {
        pg().url(db_name(url))
    }
}

/// The configuration [`start`] uses: the test server as upstream, DSQL's defaults.
pub fn config() -> Config {
    Config::new(pg().url("postgres"))
}

/// A stand-in with DSQL's defaults, on the current runtime.
pub async fn start() -> Standin {
    start_with(|_| {}).await
}

/// A stand-in whose configuration `f` adjusts first, on the current runtime.
pub async fn start_with(f: impl FnOnce(&mut Config)) -> Standin {
    let mut c = config();
    f(&mut c);
    let handle = StandIn::start(c).await.expect("start the DSQL stand-in");
    Standin { handle }
}

/// A self-signed certificate for 127.0.0.1 and its key, for a stand-in that speaks TLS; the
/// certificate's PEM file is also what a client trusts. The files live as long as the value.
pub struct TestCertificate {
    pub files: TlsFiles,
    _dir: tempfile::TempDir,
}

impl TestCertificate {
    pub fn new() -> TestCertificate {
        let dir = tempfile::tempdir().expect("a temp dir for the certificate");
        let (cert, key) = (
            dir.path().join("standin.crt"),
            dir.path().join("standin.key"),
        );
        crate::self_signed_certificate(&cert, &key, "snap2dsql-standin-test")
            .expect("a certificate for the stand-in");
        TestCertificate {
            files: TlsFiles { cert, key },
            _dir: dir,
        }
    }
}

impl Default for TestCertificate {
    fn default() -> Self {
        TestCertificate::new()
    }
}

/// A stand-in on a runtime of its own (for tests without one).
pub struct Thread {
    standin: Option<Standin>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Thread {
    pub fn start_with(f: impl FnOnce(&mut Config)) -> Thread {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the stand-in");
        let standin = runtime.block_on(start_with(f));
        Thread {
            standin: Some(standin),
            runtime: Some(runtime),
        }
    }
}

impl Deref for Thread {
    type Target = Standin;
    fn deref(&self) -> &Standin {
        self.standin
            .as_ref()
            .expect("the stand-in runs until dropped")
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // The handle's drop aborts tasks of this runtime: drop it inside.
            let standin = self.standin.take();
            rt.block_on(async move { drop(standin) });
            rt.shutdown_background();
        }
    }
}
