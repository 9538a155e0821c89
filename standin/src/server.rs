//! The listener: accepts clients, negotiates TLS, reads the startup packet, applies the
//! connection rules, opens the client's upstream session, and runs it.
//!
//! Connection rules [DOCS quotas; wording CHOSEN, see [`crate::rules`]]: past `max_connections`
//! open sessions a new one gets a FATAL 53300; past the connection rate (a token bucket, `rate`
//! a second, `burst` saved) a FATAL 53400; a session older than `max_connection_age` gets a FATAL
//! 57P01 and is closed once it is out of any transaction (DSQL lets a transaction started in the
//! 60th minute finish \[DOCS\]). Authentication: any user and password are accepted (DSQL's user is
//! `admin`; the upstream session uses the upstream URL's user). The client's database is the
//! upstream database.

use rand::RngCore;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::config::{BinaryCopy, Config, Rate};
use crate::error::{Error, Result};
use crate::install::Installed;
use crate::jobs::Jobs;
use crate::knobs::{CounterSnapshot, Counters, Knobs};
use crate::rules;
use crate::session::Session;
use crate::tls::ClientStream;
use crate::upstream::{self, Target};
use crate::wire::Conn;
use crate::wire::msg;

const SSL_REQUEST: i32 = 80877103;
const GSSENC_REQUEST: i32 = 80877104;
const CANCEL_REQUEST: i32 = 80877102;
const PROTOCOL_3: i32 = 196608;

/// A session's cancel key: the upstream backend to cancel and the session to wake.
struct CancelTarget {
    pid: i32,
    secret: i32,
    wake: Arc<Notify>,
}

/// What every session of one stand-in shares.
pub(crate) struct Shared {
    pub knobs: Arc<Knobs>,
    pub target: Target,
    pub jobs: Arc<Jobs>,
    pub config: Config,
    installed: Installed,
    tls: Option<tokio_rustls::TlsAcceptor>,
    cancels: Mutex<HashMap<(i32, i32), CancelTarget>>,
    sessions: Mutex<HashMap<u64, AbortHandle>>,
    admins: tokio::sync::Mutex<HashMap<String, Arc<tokio_postgres::Client>>>,
}

impl Shared {
    /// A cached admin connection to database `db`.
    pub async fn admin(&self, db: &str) -> Result<Arc<tokio_postgres::Client>> {
        let mut admins = self.admins.lock().await;
        if let Some(c) = admins.get(db)
            && !c.is_closed()
        {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(self.target.admin(db).await?);
        admins.insert(db.to_owned(), Arc::clone(&c));
        Ok(c)
    }
}

/// The stand-in: [`StandIn::start`] serves in the background, [`StandIn::serve`] until killed.
pub struct StandIn;

impl StandIn {
    /// Binds the listener and serves in the background; the handle stops it when dropped.
    pub async fn start(config: Config) -> Result<StandInHandle> {
        let target = Target::parse(&config.upstream)?;
        let tls = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Config(format!("listen on {}: {e}", config.listen)))?;
        let addr = listener.local_addr()?;
        let knobs = Arc::new(Knobs::new(&config));
        let shared = Arc::new(Shared {
            jobs: Arc::new(Jobs::new(target.clone(), config.unknowns.clone())),
            knobs,
            target,
            config,
            installed: Installed::default(),
            tls,
            cancels: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            admins: tokio::sync::Mutex::new(HashMap::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(StandInHandle {
            shared,
            addr,
            accept,
        })
    }

    /// Serves until the process ends.
    pub async fn serve(config: Config) -> Result<()> {
        let handle = StandIn::start(config).await?;
        handle.wait().await;
        Ok(())
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id: u64 = 0;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("stand-in accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        let (go, ready) = tokio::sync::oneshot::channel::<()>();
        let s = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let _ = ready.await;
            if let Err(e) = connection(&s, stream).await {
                tracing::debug!("stand-in connection {id}: {e}");
            }
            if let Ok(mut sessions) = s.sessions.lock() {
                sessions.remove(&id);
            }
        });
        if let Ok(mut sessions) = shared.sessions.lock() {
            sessions.insert(id, task.abort_handle());
        }
        let _ = go.send(());
    }
}

/// Decrements the open-connection count and forgets the cancel key when a session ends (also
/// when its task is aborted).
struct Open {
    shared: Arc<Shared>,
    key: Option<(i32, i32)>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.shared
            .knobs
            .counters
            .open_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(k) = self.key
            && let Ok(mut c) = self.shared.cancels.lock()
        {
            c.remove(&k);
        }
    }
}

/// Reads one startup-phase packet: (code, body).
async fn startup_packet(s: &mut ClientStream) -> Result<(i32, Vec<u8>)> {
    let len = s.read_i32().await?;
    if !(8..=10_000).contains(&len) {
        return Err(Error::Protocol(format!("startup packet of length {len}")));
    }
    let code = s.read_i32().await?;
    let mut body = vec![0u8; len as usize - 8];
    s.read_exact(&mut body).await?;
    Ok((code, body))
}

async fn fatal(s: &mut ClientStream, code: &str, message: &str) -> Result<()> {
    let mut buf = bytes::BytesMut::new();
    msg::error(&mut buf, "FATAL", code, message);
    s.write_all(&buf).await?;
    let _ = s.shutdown().await;
    Ok(())
}

async fn connection(shared: &Arc<Shared>, tcp: TcpStream) -> Result<()> {
    tcp.set_nodelay(true)?;
    let mut stream = ClientStream::Plain(tcp);
    let (code, body) = loop {
        let (code, body) = startup_packet(&mut stream).await?;
        match code {
            SSL_REQUEST => match (&shared.tls, stream) {
                (Some(acceptor), ClientStream::Plain(tcp)) => {
                    let mut tcp = tcp;
                    tcp.write_all(b"S").await?;
                    let tls = acceptor
                        .accept(tcp)
                        .await
                        .map_err(|e| Error::Tls(format!("handshake: {e}")))?;
                    stream = ClientStream::Tls(Box::new(tls));
                }
                (_, mut s) => {
                    s.write_all(b"N").await?;
                    stream = s;
                }
            },
            GSSENC_REQUEST => stream.write_all(b"N").await?,
            CANCEL_REQUEST => {
                let pid = i32::from_be_bytes(
                    body.get(0..4)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or_default(),
                );
                let secret = i32::from_be_bytes(
                    body.get(4..8)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or_default(),
                );
                cancel(shared, pid, secret).await;
                return Ok(());
            }
            c if c >> 16 == 3 => break (c, body),
            other => {
                return fatal(
                    &mut stream,
                    "0A000",
                    &format!(
                        "unsupported frontend protocol {}.{}",
                        other >> 16,
                        other & 0xffff
                    ),
                )
                .await;
            }
        }
    };
    let params = parse_params(&body);
    let knobs = &shared.knobs;
    if !knobs.take_connection_token() {
        Counters::add(&knobs.counters.connections_refused_rate, 1);
        let per_second = shared
            .config
            .limits
            .connection_rate
            .map_or(0, |r| r.per_second);
        return fatal(
            &mut stream,
            rules::RATE_EXCEEDED,
            &rules::rate_exceeded(per_second),
        )
        .await;
    }
    let open = knobs
        .counters
        .open_connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut guard = Open {
        shared: Arc::clone(shared),
        key: None,
    };
    if open as usize >= knobs.max_connections() {
        Counters::add(&knobs.counters.connections_refused_max, 1);
        return fatal(
            &mut stream,
            rules::TOO_MANY_CONNECTIONS,
            rules::TOO_MANY_CONNECTIONS_MESSAGE,
        )
        .await;
    }
    let user = params
        .iter()
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "admin".into());
    let db = params
        .iter()
        .find(|(k, _)| k == "database")
        .map(|(_, v)| v.clone())
        .unwrap_or(user);
    let mut client = Conn::new(stream, "client", Some(Arc::clone(knobs)));
    // Protocol 3.x with x > 0, or protocol options: served as 3.0.
    let options: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k.starts_with("_pq_."))
        .map(|(k, _)| k.as_str())
        .collect();
    if code != PROTOCOL_3 || !options.is_empty() {
        msg::negotiate_version(client.wbuf(), PROTOCOL_3, &options);
    }
    let up = match upstream::connect(&shared.target, &db, &params, shared.config.lock_wait).await {
        Ok(up) => up,
        Err(Error::Refused { raw, .. }) => {
            client.queue(&raw);
            client.shutdown().await;
            return Ok(());
        }
        Err(e) => {
            let mut buf = bytes::BytesMut::new();
            msg::error(
                &mut buf,
                "FATAL",
                "08006",
                &format!("stand-in upstream: {e}"),
            );
            client.queue(&buf);
            client.shutdown().await;
            return Err(e);
        }
    };
    if let Err(e) = shared.installed.ensure(&shared.target, &db).await {
        msg::error(client.wbuf(), "FATAL", "58000", &e.to_string());
        client.shutdown().await;
        return Err(e);
    }
    let (pid, secret) = loop {
        let mut b = [0u8; 8];
        rand::rng().fill_bytes(&mut b);
        let key = (
            i32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x3fff_ffff,
            i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        );
        if let Ok(c) = shared.cancels.lock()
            && !c.contains_key(&key)
        {
            break key;
        }
    };
    let wake = Arc::new(Notify::new());
    if let Ok(mut c) = shared.cancels.lock() {
        c.insert(
            (pid, secret),
            CancelTarget {
                pid: up.pid,
                secret: up.secret,
                wake: Arc::clone(&wake),
            },
        );
    }
    guard.key = Some((pid, secret));
    msg::auth_ok(client.wbuf());
    for (name, value) in &up.parameters {
        let value = if name == "server_version" {
            "16.15"
        } else {
            value
        };
        msg::parameter_status(client.wbuf(), name, value);
    }
    msg::backend_key(client.wbuf(), pid, secret);
    Counters::add(&knobs.counters.connections_accepted, 1);
    let mut session = Session::new(
        Arc::clone(shared),
        client,
        up.conn,
        db,
        (up.pid, up.secret),
        wake,
    );
    session.prepare_internals().await?;
    session.ready_for_query();
    let result = session.run().await;
    drop(guard);
    match result {
        Err(Error::Closed(_)) => Ok(()),
        other => other,
    }
}

fn parse_params(body: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut parts = body.split(|b| *b == 0);
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        if k.is_empty() {
            break;
        }
        out.push((
            String::from_utf8_lossy(k).into_owned(),
            String::from_utf8_lossy(v).into_owned(),
        ));
    }
    out
}

async fn cancel(shared: &Arc<Shared>, pid: i32, secret: i32) {
    let target = shared.cancels.lock().ok().and_then(|c| {
        c.get(&(pid, secret))
            .map(|t| (t.pid, t.secret, Arc::clone(&t.wake)))
    });
    if let Some((up_pid, up_secret, wake)) = target {
        wake.notify_waiters();
        shared.target.cancel(up_pid, up_secret).await;
    }
}

/// A running stand-in: its address, knobs and counters. Dropping it stops the listener and
/// closes every connection.
pub struct StandInHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl StandInHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The URL of database `db` through the stand-in, as DSQL's user `admin`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://admin@{}:{}/{db}",
            self.addr.ip(),
            self.addr.port()
        )
    }

    /// The runtime knobs (every setter takes effect at once).
    pub fn knobs(&self) -> &Knobs {
        &self.shared.knobs
    }

    /// What happened so far.
    pub fn counters(&self) -> CounterSnapshot {
        self.shared.knobs.counters.snapshot()
    }

    /// Closes every client connection now (sockets closed mid-transaction; the upstream rolls
    /// back). Answers how many were closed.
    pub fn drop_all_connections(&self) -> usize {
        let handles: Vec<AbortHandle> = match self.shared.sessions.lock() {
            Ok(mut s) => s.drain().map(|(_, h)| h).collect(),
            Err(_) => Vec::new(),
        };
        for h in &handles {
            h.abort();
        }
        Counters::add(
            &self.shared.knobs.counters.connections_dropped,
            handles.len() as u64,
        );
        handles.len()
    }

    /// Makes every client connection stop answering (no bytes, sockets open), or answer again.
    pub fn set_silent(&self, silent: bool) {
        self.shared.knobs.set_silent(silent)
    }

    /// Makes the next `n` client connections that read or write go silent for good (see
    /// [`Knobs::silence_connections`]); the others keep answering.
    pub fn silence_connections(&self, n: u64) {
        self.shared.knobs.silence_connections(n)
    }

    pub fn set_max_connections(&self, n: usize) {
        self.shared.knobs.set_max_connections(n)
    }

    pub fn set_connection_rate(&self, rate: Option<Rate>) {
        self.shared.knobs.set_connection_rate(rate)
    }

    pub fn set_max_connection_age(&self, d: Duration) {
        self.shared.knobs.set_max_connection_age(d)
    }

    pub fn set_max_transaction_age(&self, d: Duration) {
        self.shared.knobs.set_max_transaction_age(d)
    }

    pub fn set_conflict_fraction(&self, f: f64) {
        self.shared.knobs.set_conflict_fraction(f)
    }

    pub fn set_commit_latency(&self, d: Duration) {
        self.shared.knobs.set_commit_latency(d)
    }

    pub fn set_binary_copy(&self, b: BinaryCopy) {
        self.shared.knobs.set_binary_copy(b)
    }

    pub fn set_max_rows(&self, n: u64) {
        self.shared.knobs.set_max_rows(n)
    }

    pub fn set_max_bytes(&self, n: u64) {
        self.shared.knobs.set_max_bytes(n)
    }

    /// Serves until the listener stops (never, unless the runtime shuts down).
    pub async fn wait(mut self) {
        let _ = (&mut self.accept).await;
    }
}

impl Drop for StandInHandle {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_all_connections();
    }
}
