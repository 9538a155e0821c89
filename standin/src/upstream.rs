//! The upstream PostgreSQL: a session's own connection (raw protocol, so every message can be
//! forwarded as it is), cancel requests, and admin connections (tokio-postgres) for installs,
//! catalog checks and async jobs.
//!
//! A session's upstream connection starts with the settings that make PostgreSQL answer like
//! DSQL: `TimeZone=UTC` [REC §10] unless the client chose one, `default_transaction_isolation=
//! repeatable read` [REC §2, §10], and a short `lock_timeout` (see [`crate::config::LOCK_WAIT`]),
//! which turns a row-lock wait into the evidence of a conflict.

use bytes::BytesMut;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::wire::msg::{self, btag};
use crate::wire::{Conn, Frame};

/// Where the upstream is and who to connect as.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Vec<u8>>,
}

impl Target {
    /// Reads a `postgres://` URL (or a key=value string).
    pub fn parse(url: &str) -> Result<Target> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::Config(format!("upstream url: {e}")))?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => {
                return Err(Error::Config(
                    "upstream url: a TCP host is needed (host=...)".into(),
                ));
            }
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config
            .get_user()
            .ok_or_else(|| Error::Config("upstream url: no user".into()))?
            .to_owned();
        Ok(Target {
            host,
            port,
            user,
            password: config.get_password().map(<[u8]>::to_vec),
        })
    }

    /// An admin connection to database `db` (autocommit, READ COMMITTED).
    pub async fn admin(&self, db: &str) -> Result<tokio_postgres::Client> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(db)
            .application_name("snap2dsql-standin")
            .connect_timeout(Duration::from_secs(10));
        if let Some(p) = &self.password {
            config.password(p);
        }
        let (client, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| Error::upstream(format!("admin connection to database {db:?}"), e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("standin admin connection ended: {e}");
            }
        });
        Ok(client)
    }

    /// Asks the upstream to cancel what backend `pid` is running.
    pub async fn cancel(&self, pid: i32, secret: i32) {
        let Ok(mut s) = TcpStream::connect((self.host.as_str(), self.port)).await else {
            return;
        };
        let mut buf = Vec::with_capacity(16);
        buf.extend_from_slice(&16i32.to_be_bytes());
        buf.extend_from_slice(&80877102i32.to_be_bytes());
        buf.extend_from_slice(&pid.to_be_bytes());
        buf.extend_from_slice(&secret.to_be_bytes());
        let _ = s.write_all(&buf).await;
        let _ = s.shutdown().await;
    }
}

/// A session's upstream connection, ready for queries.
pub struct Session {
    pub conn: Conn<TcpStream>,
    /// ParameterStatus messages the upstream sent at startup (name, value).
    pub parameters: Vec<(String, String)>,
    /// The upstream backend's cancel key.
    pub pid: i32,
    pub secret: i32,
}

/// Opens a session on database `db` with the client's startup parameters.
pub async fn connect(
    target: &Target,
    db: &str,
    client_params: &[(String, String)],
    lock_wait: Duration,
) -> Result<Session> {
    let stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
    stream.set_nodelay(true)?;
    let mut conn = Conn::new(stream, "upstream", None);

    let mut params: Vec<(String, String)> = vec![
        ("user".into(), target.user.clone()),
        ("database".into(), db.to_owned()),
    ];
    let mut has_timezone = false;
    for (k, v) in client_params {
        let lower = k.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "user" | "database" | "options" | "replication" | "lock_timeout"
        ) || lower == "default_transaction_isolation"
            || lower.starts_with("_pq_.")
        {
            continue;
        }
        has_timezone |= lower == "timezone";
        params.push((k.clone(), v.clone()));
    }
    if !has_timezone {
        params.push(("TimeZone".into(), "UTC".into()));
    }
    params.push((
        "default_transaction_isolation".into(),
        "repeatable read".into(),
    ));
    params.push((
        "lock_timeout".into(),
        format!("{}ms", lock_wait.as_millis().max(1)),
    ));

    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&196608i32.to_be_bytes());
    for (k, v) in &params {
        buf.extend_from_slice(k.as_bytes());
        buf.extend_from_slice(&[0]);
        buf.extend_from_slice(v.as_bytes());
        buf.extend_from_slice(&[0]);
    }
    buf.extend_from_slice(&[0]);
    let len = buf.len() as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    conn.queue(&buf);
    conn.flush().await?;

    let mut parameters = Vec::new();
    let (mut pid, mut secret) = (0, 0);
    let mut scram: Option<postgres_protocol::authentication::sasl::ScramSha256> = None;
    loop {
        let f = conn.read_frame().await?;
        match f.tag {
            btag::AUTH => authenticate(&mut conn, target, &f, &mut scram).await?,
            btag::PARAMETER_STATUS => {
                let mut r = msg::Reader::new(f.body());
                parameters.push((r.cstr()?.to_owned(), r.cstr()?.to_owned()));
            }
            btag::BACKEND_KEY => {
                let mut r = msg::Reader::new(f.body());
                pid = r.i32()?;
                secret = r.i32()?;
            }
            btag::READY => break,
            btag::ERROR => {
                let fields = msg::parse_error(f.body())?;
                return Err(Error::Refused {
                    message: fields.message,
                    raw: f.raw,
                });
            }
            btag::NOTICE | btag::NEGOTIATE_VERSION => {}
            other => {
                return Err(Error::Protocol(format!(
                    "upstream sent {:?} during startup",
                    other as char
                )));
            }
        }
    }
    Ok(Session {
        conn,
        parameters,
        pid,
        secret,
    })
}

/// Answers one authentication request (trust, cleartext, md5 or SCRAM-SHA-256).
async fn authenticate(
    conn: &mut Conn<TcpStream>,
    target: &Target,
    f: &Frame,
    scram: &mut Option<postgres_protocol::authentication::sasl::ScramSha256>,
) -> Result<()> {
    use postgres_protocol::authentication::{md5_hash, sasl};
    let mut r = msg::Reader::new(f.body());
    let code = r.i32()?;
    let password = || {
        target
            .password
            .clone()
            .ok_or_else(|| Error::Config("upstream asks for a password; put one in the URL".into()))
    };
    let mut out = BytesMut::new();
    match code {
        0 => return Ok(()),
        3 => {
            let p = password()?;
            password_message(&mut out, &[&p[..], &[0]].concat());
        }
        5 => {
            let salt: [u8; 4] = r
                .take(4)?
                .try_into()
                .map_err(|_| Error::Protocol("md5 salt".into()))?;
            let hash = md5_hash(target.user.as_bytes(), &password()?, salt);
            password_message(&mut out, format!("{hash}\0").as_bytes());
        }
        10 => {
            let s = sasl::ScramSha256::new(&password()?, sasl::ChannelBinding::unsupported());
            let mut body = Vec::new();
            body.extend_from_slice(b"SCRAM-SHA-256\0");
            body.extend_from_slice(&(s.message().len() as i32).to_be_bytes());
            body.extend_from_slice(s.message());
            password_message(&mut out, &body);
            *scram = Some(s);
        }
        11 => {
            let s = scram
                .as_mut()
                .ok_or_else(|| Error::Protocol("SASL continue before SASL start".into()))?;
            s.update(r.rest())?;
            password_message(&mut out, s.message());
        }
        12 => {
            if let Some(s) = scram.as_mut() {
                s.finish(r.rest())?;
            }
            return Ok(());
        }
        other => {
            return Err(Error::Config(format!(
                "upstream asks for authentication method {other}, which the stand-in does not speak"
            )));
        }
    }
    conn.queue(&out);
    conn.flush().await
}

fn password_message(out: &mut BytesMut, body: &[u8]) {
    out.extend_from_slice(b"p");
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
}
