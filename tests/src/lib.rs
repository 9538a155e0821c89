//! Test harness: real servers on loopback, started by the tests themselves.
//!
//! [`pg()`] starts one throwaway PostgreSQL cluster per test binary (initdb into a temp dir,
//! `127.0.0.1`, a free port, trust auth) and [`PgServer::create_db`] gives every test its own
//! database, so tests run in parallel without sharing tables. The server is a child of a
//! dedicated thread with a parent-death signal, so it stops when the test binary exits, even
//! when the binary is killed. [`standin`] puts the DSQL stand-in in front of it.

pub mod stack;
pub mod standin;

use snap2dsql::export::Export;
use snap2dsql::load::{LoadContext, LoadOptions};
use snap2dsql::local_export::{LocalExportOptions, local_export};
use snap2dsql::mapping::Mapping;
use snap2dsql::target::Target;
use std::sync::Arc;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running throwaway PostgreSQL cluster.
pub struct PgServer {
    pub port: u16,
    pub data_dir: PathBuf,
    pub bin_dir: PathBuf,
    /// Keeps the temp dir alive for the whole test binary.
    _dir: tempfile::TempDir,
}

static SERVER: OnceLock<PgServer> = OnceLock::new();
static DB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The test binary's PostgreSQL server, started on first use.
pub fn pg() -> &'static PgServer {
    SERVER.get_or_init(|| PgServer::start().expect("start throwaway PostgreSQL"))
}

/// Where PostgreSQL's server binaries are: `$PG_BIN_DIR`, `pg_config --bindir`, then Debian's
/// `/usr/lib/postgresql/<newest>/bin`.
pub fn pg_bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("PG_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| {
            format!("no PostgreSQL server found (/usr/lib/postgresql: {e}): run `make deps`")
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).ok_or_else(|| {
        "no PostgreSQL server binaries under /usr/lib/postgresql: run `make deps`".into()
    })
}

/// PostgreSQL refuses to run as root: as root, servers run as the `postgres` user.
fn unprivileged_ids() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let out = Command::new("id").args(["-u", "postgres"]).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").args(["-g", "postgres"]).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

fn as_server_user(cmd: &mut Command, ids: Option<(u32, u32)>, die_with_parent: bool) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = ids {
                if libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if die_with_parent {
                // SIGQUIT: PostgreSQL's immediate shutdown, which also stops its backends.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
            }
            Ok(())
        });
    }
}

/// Starts a server that lives as long as the test process: its parent is a thread that never
/// ends, so the parent-death signal fires only when the whole process goes away.
fn spawn_for_process_lifetime(mut cmd: Command, ids: Option<(u32, u32)>) -> Result<(), String> {
    as_server_user(&mut cmd, ids, true);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = cmd.spawn().map(|_| ()).map_err(|e| e.to_string());
        let ok = started.is_ok();
        tx.send(started).ok();
        if ok {
            loop {
                std::thread::park();
            }
        }
    });
    rx.recv().map_err(|e| e.to_string())?
}

/// Removes the data directories of earlier test processes that have exited (a cluster of
/// ~40 MB to 1 GB each would otherwise pile up in the temp dir run after run).
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let is_ours = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("snap2dsql-pg-"));
        let Ok(owner) = std::fs::read_to_string(path.join("owner.pid")) else {
            continue;
        };
        let Ok(pid) = owner.trim().parse::<i32>() else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if is_ours && !alive {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Writes a self-signed certificate for 127.0.0.1 (a well-formed server certificate: only its
/// issuer is untrusted) and its private key, PEM.
pub fn self_signed_certificate(cert: &Path, key: &Path, name: &str) -> Result<(), String> {
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .map_err(|e| format!("run openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port on 127.0.0.1")
}

impl PgServer {
    /// initdb + start on a free port; waits until the server accepts connections.
    pub fn start() -> Result<PgServer, String> {
        let bin_dir = pg_bin_dir()?;
        remove_stale_clusters();
        let dir = tempfile::Builder::new()
            .prefix("snap2dsql-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        // The cluster lives as long as this process, whose statics are never dropped: record
        // the owner so the next test run removes the directory (see remove_stale_clusters).
        std::fs::write(dir.path().join("owner.pid"), std::process::id().to_string())
            .map_err(|e| e.to_string())?;
        let ids = unprivileged_ids();
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| e.to_string())?;
        }
        let data_dir = dir.path().join("data");
        let mut initdb = Command::new(bin_dir.join("initdb"));
        initdb
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ])
            .arg(&data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_server_user(&mut initdb, ids, false);
        let out = initdb.output().map_err(|e| format!("run initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // A self-signed certificate, so TLS clients can be tested: plain clients are unaffected.
        let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
        self_signed_certificate(&cert, &key, "snap2dsql-untrusted-test")?;
        if let Some((uid, gid)) = ids {
            for f in [&cert, &key] {
                std::os::unix::fs::chown(f, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
            }
        }
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        let server = PgServer {
            port: free_port(),
            data_dir,
            bin_dir,
            _dir: dir,
        };
        server.spawn()?;
        server.wait_ready(Duration::from_secs(30))?;
        Ok(server)
    }

    /// Starts the postmaster on the cluster's data directory and port.
    fn spawn(&self) -> Result<(), String> {
        let dir = self._dir.path();
        let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
        // Appending: a restarted server keeps the earlier log.
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .map_err(|e| format!("server log: {e}"))?;
        let mut cmd = Command::new(self.bin_dir.join("postgres"));
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-k",
            ])
            .arg(dir)
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .args(["-c", "max_connections=200", "-c", "shared_buffers=256MB"])
            .args(["-c", "ssl=on", "-c"])
            .arg(format!("ssl_cert_file={}", cert.display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", key.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        // The server's parent is a thread that never ends: the parent-death signal then fires
        // only when the whole test process goes away.
        spawn_for_process_lifetime(cmd, unprivileged_ids())
    }

    /// Restarts the server the way an operator or a failover would: a fast shutdown (every
    /// session is terminated, 57P01), then a start on the same port. Only for a private server
    /// ([`PgServer::start`]): the shared one serves tests running in parallel.
    pub fn restart(&self) -> Result<(), String> {
        let pid_file = self.data_dir.join("postmaster.pid");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .map_err(|e| format!("{}: {e}", pid_file.display()))?
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or("postmaster.pid has no pid")?;
        // SAFETY: signalling the postmaster this harness started.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        // The postmaster removes its pid file last (its process stays a zombie: its parent
        // thread never reaps it, so kill(pid, 0) cannot tell).
        while pid_file.exists() {
            if Instant::now() > deadline {
                return Err(format!("postmaster {pid} did not stop in 30 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spawn()?;
        self.wait_ready(Duration::from_secs(30))
    }

    fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let ok = Command::new(self.bin_dir.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if start.elapsed() > timeout {
                let log = std::fs::read_to_string(
                    self.data_dir
                        .parent()
                        .unwrap_or(Path::new("/"))
                        .join("server.log"),
                )
                .unwrap_or_default();
                return Err(format!("PostgreSQL did not start in {timeout:?}: {log}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a fresh, uniquely named database and returns its URL.
    pub fn create_db(&self, prefix: &str) -> String {
        let n = DB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}_{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(&name)
    }

    /// A fresh database holding the seed's storefront (`scripts/storefront.sql`) with the given
    /// numbers of customers and orders; returns its URL.
    pub fn storefront_db(&self, prefix: &str, customers: u32, orders: u32) -> String {
        let url = self.create_db(prefix);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/storefront.sql");
        let out = Command::new(self.bin_dir.join("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", db_name(&url)])
            .args([
                "-v",
                &format!("customers={customers}"),
                "-v",
                &format!("orders={orders}"),
            ])
            .arg("-f")
            .arg(&script)
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "storefront.sql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        url
    }

    /// The text of `pg_dump --schema-only` of `url`'s database.
    pub fn schema_dump(&self, url: &str) -> String {
        String::from_utf8(self.pg_dump(url, &["--schema-only"])).expect("pg_dump output is UTF-8")
    }

    /// `pg_dump` of `url`'s database with `args` (its output, unless `args` has `-f`).
    pub fn pg_dump(&self, url: &str, args: &[&str]) -> Vec<u8> {
        let out = Command::new(self.bin_dir.join("pg_dump"))
            .args(args)
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .arg(db_name(url))
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Runs SQL through `psql` (for fixtures), panicking with psql's message on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin_dir.join("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}\nSQL: {sql}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Connects with tokio-postgres (no TLS) and drives the connection in the background.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Database name from a URL made by [`PgServer::create_db`].
pub fn db_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// A running AWS API emulator (moto) on 127.0.0.1, from the repo's `.venv` (`make deps`).
pub struct Moto {
    pub port: u16,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The test binary's AWS emulator, started on first use.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(|| Moto::start().expect("start the AWS emulator (moto)"))
}

impl Moto {
    fn start() -> Result<Moto, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let bin = root.join(".venv/bin/moto_server");
        if !bin.exists() {
            return Err(format!("{} is missing: run `make deps`", bin.display()));
        }
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        spawn_for_process_lifetime(cmd, None)?;
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                return Err("moto_server did not start in 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Moto { port })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An RDS client for the emulator (test credentials).
    pub fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&emulator_config(&self.endpoint()))
    }

    /// An S3 client for the emulator: test credentials, path-style addressing.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        emulator_s3(&self.endpoint())
    }
}

/// Uploads every file under `dir` to `bucket` under `prefix/`; returns how many.
pub async fn upload_dir(
    client: &aws_sdk_s3::Client,
    dir: &Path,
    bucket: &str,
    prefix: &str,
) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            client
                .put_object()
                .bucket(bucket)
                .key(format!("{prefix}/{rel}"))
                .body(std::fs::read(&p).unwrap().into())
                .send()
                .await
                .unwrap();
            n += 1;
        }
    }
    n
}

/// Every `.parquet` file under `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The SDK configuration for an AWS emulator at `endpoint`: test credentials, us-east-1.
pub fn emulator_config(endpoint: &str) -> aws_config::SdkConfig {
    let creds = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "snap2dsql-tests");
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(creds))
        .endpoint_url(endpoint)
        .build()
}

/// An S3 client for an AWS emulator at `endpoint` (path-style addressing, which an IP endpoint
/// needs).
pub fn emulator_s3(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&emulator_config(endpoint))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// An export of `src` (250 rows a file, 100 a row group), planned without a source schema:
/// (export, mapping, directory kept alive).
pub async fn export_and_plan(
    src: &str,
    id: &str,
) -> (Arc<Export>, Arc<Mapping>, tempfile::TempDir) {
    export_and_plan_with(src, id, None).await
}

/// [`export_and_plan`] with a source schema (a URL or a dump file) for keys.
pub async fn export_and_plan_with(
    src: &str,
    id: &str,
    source_schema: Option<&str>,
) -> (Arc<Export>, Arc<Mapping>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let client = connect(src).await;
    let mut opts = LocalExportOptions::new(id);
    opts.rows_per_file = 250;
    opts.rows_per_row_group = 100;
    local_export(&client, dir.path(), &opts, &|_, _| {})
        .await
        .unwrap();
    let export = Export::open(dir.path().to_str().unwrap(), None)
        .await
        .unwrap();
    let schema = match source_schema {
        Some(s) => Some(snap2dsql::schema::SourceSchema::load(s).await.unwrap()),
        None => None,
    };
    let plan = snap2dsql::plan::plan(&export, schema.as_ref())
        .await
        .unwrap();
    plan.mapping.validate("test").unwrap();
    (Arc::new(export), Arc::new(plan.mapping), dir)
}

/// A fresh target database with the export loaded through a DSQL stand-in (DSQL's defaults,
/// on the current runtime); returns (the database's direct upstream URL, for checks and damage;
/// the target through the stand-in; the stand-in, which serves the target while it lives).
pub async fn load_fresh(
    export: &Arc<Export>,
    mapping: &Arc<Mapping>,
    prefix: &str,
) -> (String, Target, standin::Standin) {
    let standin = standin::start().await;
    let through = standin.db(prefix);
    let url = standin.direct_url(&through);
    let target = Target::parse(&through).await.unwrap();
    load_into(export, mapping, &target).await;
    (url, target, standin)
}

/// Creates the mapping's tables in `target` and loads every chunk of the export into it (2
/// chunks at a time, default options); no post-load steps.
pub async fn load_into(export: &Arc<Export>, mapping: &Arc<Mapping>, target: &Target) {
    snap2dsql::migrate::prepare_target(target, mapping, true)
        .await
        .unwrap();
    let chunks = snap2dsql::chunk::plan_chunks(export, mapping)
        .await
        .unwrap();
    let (orphans, _) = snap2dsql::load::orphans::scan(export, mapping)
        .await
        .unwrap();
    let ctx = LoadContext::new(
        export.clone(),
        mapping.clone(),
        target.clone(),
        orphans,
        LoadOptions::default(),
    );
    snap2dsql::migrate::load_chunks(&ctx, &chunks, 2, &|_, _| {})
        .await
        .unwrap();
}
