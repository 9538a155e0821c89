//! Runtime knobs and counters: what tests change and read while a stand-in runs.
//!
//! Every knob is an atomic read on the path that uses it, so changing one takes effect at the
//! next statement, connection or COMMIT of every session, without a restart. Counters only grow.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

use crate::config::{BinaryCopy, Config, Rate};

/// The knobs of a running stand-in (see [`crate::StandInHandle`] for the setters).
pub struct Knobs {
    max_rows: AtomicU64,
    max_bytes: AtomicU64,
    max_txn_age_ms: AtomicU64,
    max_connections: AtomicUsize,
    /// Connection rate: per second and burst; 0/0 is unlimited.
    rate_per_second: AtomicU32,
    rate_burst: AtomicU32,
    bucket: Mutex<Bucket>,
    max_connection_age_ms: AtomicU64,
    conflict_fraction_bits: AtomicU64,
    commit_latency_ms: AtomicU64,
    binary_copy: AtomicU8,
    silent: AtomicBool,
    silence: watch::Sender<bool>,
    /// Client connections still to be silenced for good ([`Knobs::silence_connections`]).
    to_silence: AtomicU64,
    pub counters: Counters,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Knobs {
    pub fn new(config: &Config) -> Knobs {
        let rate = config.limits.connection_rate;
        let k = Knobs {
            max_rows: AtomicU64::new(config.limits.max_rows),
            max_bytes: AtomicU64::new(config.limits.max_bytes),
            max_txn_age_ms: AtomicU64::new(millis(config.limits.max_transaction_age)),
            max_connections: AtomicUsize::new(config.limits.max_connections),
            rate_per_second: AtomicU32::new(0),
            rate_burst: AtomicU32::new(0),
            bucket: Mutex::new(Bucket {
                tokens: 0.0,
                at: Instant::now(),
            }),
            max_connection_age_ms: AtomicU64::new(millis(config.limits.max_connection_age)),
            conflict_fraction_bits: AtomicU64::new(0),
            commit_latency_ms: AtomicU64::new(millis(config.faults.commit_latency)),
            binary_copy: AtomicU8::new(0),
            silent: AtomicBool::new(false),
            silence: watch::channel(false).0,
            to_silence: AtomicU64::new(0),
            counters: Counters::default(),
        };
        k.set_connection_rate(rate);
        k.set_conflict_fraction(config.faults.inject_conflicts);
        k.set_binary_copy(config.unknowns.binary_copy);
        k
    }

    pub fn max_rows(&self) -> u64 {
        self.max_rows.load(Ordering::Relaxed)
    }
    pub fn set_max_rows(&self, n: u64) {
        self.max_rows.store(n, Ordering::Relaxed)
    }
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes.load(Ordering::Relaxed)
    }
    pub fn set_max_bytes(&self, n: u64) {
        self.max_bytes.store(n, Ordering::Relaxed)
    }
    pub fn max_transaction_age(&self) -> Duration {
        Duration::from_millis(self.max_txn_age_ms.load(Ordering::Relaxed))
    }
    pub fn set_max_transaction_age(&self, d: Duration) {
        self.max_txn_age_ms.store(millis(d), Ordering::Relaxed)
    }
    pub fn max_connections(&self) -> usize {
        self.max_connections.load(Ordering::Relaxed)
    }
    pub fn set_max_connections(&self, n: usize) {
        self.max_connections.store(n, Ordering::Relaxed)
    }
    pub fn max_connection_age(&self) -> Duration {
        Duration::from_millis(self.max_connection_age_ms.load(Ordering::Relaxed))
    }
    pub fn set_max_connection_age(&self, d: Duration) {
        self.max_connection_age_ms
            .store(millis(d), Ordering::Relaxed)
    }
    pub fn conflict_fraction(&self) -> f64 {
        f64::from_bits(self.conflict_fraction_bits.load(Ordering::Relaxed))
    }
    pub fn set_conflict_fraction(&self, f: f64) {
        let f = if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.conflict_fraction_bits
            .store(f.to_bits(), Ordering::Relaxed)
    }
    pub fn commit_latency(&self) -> Duration {
        Duration::from_millis(self.commit_latency_ms.load(Ordering::Relaxed))
    }
    pub fn set_commit_latency(&self, d: Duration) {
        self.commit_latency_ms.store(millis(d), Ordering::Relaxed)
    }
    pub fn binary_copy(&self) -> BinaryCopy {
        match self.binary_copy.load(Ordering::Relaxed) {
            1 => BinaryCopy::Refuse,
            2 => BinaryCopy::RefuseInTransaction,
            _ => BinaryCopy::Accept,
        }
    }
    pub fn set_binary_copy(&self, b: BinaryCopy) {
        let v = match b {
            BinaryCopy::Accept => 0,
            BinaryCopy::Refuse => 1,
            BinaryCopy::RefuseInTransaction => 2,
        };
        self.binary_copy.store(v, Ordering::Relaxed)
    }

    /// Sets the connection rate (None: unlimited); the bucket starts full.
    pub fn set_connection_rate(&self, rate: Option<Rate>) {
        let (p, b) = rate
            .map(|r| (r.per_second, r.burst.max(1)))
            .unwrap_or((0, 0));
        self.rate_per_second.store(p, Ordering::Relaxed);
        self.rate_burst.store(b, Ordering::Relaxed);
        if let Ok(mut bucket) = self.bucket.lock() {
            bucket.tokens = b as f64;
            bucket.at = Instant::now();
        }
    }

    /// New connections a second allowed now (0: unlimited).
    pub fn connection_rate(&self) -> u32 {
        self.rate_per_second.load(Ordering::Relaxed)
    }

    /// Takes a token for a new connection; false when the rate is exceeded.
    pub fn take_connection_token(&self) -> bool {
        let per_second = self.rate_per_second.load(Ordering::Relaxed);
        let burst = self.rate_burst.load(Ordering::Relaxed);
        if burst == 0 {
            return true;
        }
        let Ok(mut bucket) = self.bucket.lock() else {
            return true;
        };
        let now = Instant::now();
        let refill = now.duration_since(bucket.at).as_secs_f64() * per_second as f64;
        bucket.tokens = (bucket.tokens + refill).min(burst as f64);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Makes every client connection stop answering (no bytes read or written, sockets kept
    /// open), or answer again.
    pub fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::SeqCst);
        self.silence.send_replace(silent);
    }

    /// Makes the next `n` client connections that read or write go silent for good: from then
    /// on they answer nothing and never close their socket (what they are sent is read and
    /// dropped), as a connection behind a dead network path or a hung server does. A request
    /// already read still runs upstream (a COMMIT among them commits: its answer is what is
    /// lost). The other connections keep answering. When the client gives up and closes, the
    /// session ends and its open upstream transaction is rolled back.
    pub fn silence_connections(&self, n: u64) {
        self.to_silence.fetch_add(n, Ordering::SeqCst);
    }

    /// Takes one of the connections [`Knobs::silence_connections`] asked for; true when the
    /// calling connection must go silent now.
    pub fn take_silenced(&self) -> bool {
        let taken = self
            .to_silence
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if taken {
            Counters::add(&self.counters.connections_silenced, 1);
        }
        taken
    }

    /// Waits while the stand-in is silent.
    pub async fn wait_unsilenced(&self) {
        if !self.silent.load(Ordering::Relaxed) {
            return;
        }
        let mut rx = self.silence.subscribe();
        while *rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// What happened so far; read with [`Counters::snapshot`].
#[derive(Default)]
pub struct Counters {
    pub connections_accepted: AtomicU64,
    pub connections_refused_max: AtomicU64,
    pub connections_refused_rate: AtomicU64,
    pub connections_closed_age: AtomicU64,
    pub connections_dropped: AtomicU64,
    pub connections_silenced: AtomicU64,
    pub open_connections: AtomicU64,
    pub commits: AtomicU64,
    pub rollbacks: AtomicU64,
    pub conflicts: AtomicU64,
    pub injected_conflicts: AtomicU64,
    pub refused_statements: AtomicU64,
    pub limit_errors: AtomicU64,
    pub rows_per_transaction_max: AtomicU64,
    pub bytes_per_transaction_max: AtomicU64,
    pub rows_written: AtomicU64,
    pub copy_rows: AtomicU64,
    pub jobs_submitted: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Client connections that reached a session (startup done, rules passed).
    pub connections_accepted: u64,
    /// Refused with 53300 (too many connections).
    pub connections_refused_max: u64,
    /// Refused with 53400 (connection rate).
    pub connections_refused_rate: u64,
    /// Closed because they reached the maximum connection age.
    pub connections_closed_age: u64,
    /// Closed by [`crate::StandInHandle::drop_all_connections`].
    pub connections_dropped: u64,
    /// Gone silent for good by [`crate::StandInHandle::silence_connections`].
    pub connections_silenced: u64,
    /// Sessions open now.
    pub open_connections: u64,
    /// COMMITs that committed a transaction.
    pub commits: u64,
    /// Transactions that ended without committing (ROLLBACK, a COMMIT answered ROLLBACK, a
    /// failed COMMIT).
    pub rollbacks: u64,
    /// COMMITs failed with 40001 OC000 because of a real conflict.
    pub conflicts: u64,
    /// COMMITs failed with 40001 OC000 by `inject_conflicts`.
    pub injected_conflicts: u64,
    /// Statements refused by a DSQL rule (0A000 and the like).
    pub refused_statements: u64,
    /// Statements failed with 54000 (rows, size or age).
    pub limit_errors: u64,
    /// The most rows any transaction wrote.
    pub rows_per_transaction_max: u64,
    /// The most bytes any transaction wrote (as counted for the size limit).
    pub bytes_per_transaction_max: u64,
    /// Rows written by committed and uncommitted statements.
    pub rows_written: u64,
    /// Rows received by COPY FROM STDIN.
    pub copy_rows: u64,
    /// Async jobs submitted (CREATE INDEX ASYNC, ALTER TABLE ASYNC).
    pub jobs_submitted: u64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn max(c: &AtomicU64, n: u64) {
        c.fetch_max(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            connections_accepted: g(&self.connections_accepted),
            connections_refused_max: g(&self.connections_refused_max),
            connections_refused_rate: g(&self.connections_refused_rate),
            connections_closed_age: g(&self.connections_closed_age),
            connections_dropped: g(&self.connections_dropped),
            connections_silenced: g(&self.connections_silenced),
            open_connections: g(&self.open_connections),
            commits: g(&self.commits),
            rollbacks: g(&self.rollbacks),
            conflicts: g(&self.conflicts),
            injected_conflicts: g(&self.injected_conflicts),
            refused_statements: g(&self.refused_statements),
            limit_errors: g(&self.limit_errors),
            rows_per_transaction_max: g(&self.rows_per_transaction_max),
            bytes_per_transaction_max: g(&self.bytes_per_transaction_max),
            rows_written: g(&self.rows_written),
            copy_rows: g(&self.copy_rows),
            jobs_submitted: g(&self.jobs_submitted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_its_burst_then_refuses() {
        let k = Knobs::new(&Config::new("postgres://x@127.0.0.1/y"));
        k.set_connection_rate(Some(Rate {
            per_second: 0,
            burst: 3,
        }));
        assert!(k.take_connection_token());
        assert!(k.take_connection_token());
        assert!(k.take_connection_token());
        assert!(!k.take_connection_token());
        k.set_connection_rate(None);
        assert!(k.take_connection_token());
    }

    #[test]
    fn exactly_the_asked_number_of_connections_go_silent() {
        let k = Knobs::new(&Config::new("postgres://x@127.0.0.1/y"));
        assert!(!k.take_silenced());
        k.silence_connections(2);
        assert!(k.take_silenced());
        assert!(k.take_silenced());
        assert!(!k.take_silenced());
        assert_eq!(k.counters.snapshot().connections_silenced, 2);
    }

    #[test]
    fn conflict_fraction_is_clamped() {
        let k = Knobs::new(&Config::new("postgres://x@127.0.0.1/y"));
        k.set_conflict_fraction(2.0);
        assert_eq!(k.conflict_fraction(), 1.0);
        k.set_conflict_fraction(f64::NAN);
        assert_eq!(k.conflict_fraction(), 0.0);
    }
}
