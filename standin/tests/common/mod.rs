//! A raw protocol client for the stand-in's tests: it observes what the recorder of
//! dsql-recorded.md observed (command tags, column names, rows as text, SQLSTATE and message),
//! which drivers such as tokio-postgres do not expose (a COMMIT's tag, `CREATE INDEX`).
#![allow(dead_code)]

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one statement answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obs {
    Ok {
        tag: String,
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
    },
    Error {
        code: String,
        message: String,
    },
}

impl Obs {
    pub fn tag(&self) -> Option<&str> {
        match self {
            Obs::Ok { tag, .. } => Some(tag),
            Obs::Error { .. } => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            Obs::Error { code, .. } => Some(code),
            Obs::Ok { .. } => None,
        }
    }

    /// The first column of the first row.
    pub fn value(&self) -> Option<&str> {
        match self {
            Obs::Ok { rows, .. } => rows.first()?.first()?.as_deref(),
            Obs::Error { .. } => None,
        }
    }
}

/// A connection speaking the protocol by hand.
pub struct Probe {
    stream: TcpStream,
    buf: Vec<u8>,
    pub notices: Vec<String>,
}

fn put_cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cstr(b: &[u8]) -> (String, &[u8]) {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    (
        String::from_utf8_lossy(&b[..end]).into_owned(),
        &b[(end + 1).min(b.len())..],
    )
}

fn error_fields(mut b: &[u8]) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    while let Some((&t, rest)) = b.split_first() {
        if t == 0 {
            break;
        }
        let (v, rest) = cstr(rest);
        match t {
            b'C' => code = v,
            b'M' => message = v,
            _ => {}
        }
        b = rest;
    }
    (code, message)
}

fn columns(b: &[u8]) -> Vec<String> {
    let n = i16::from_be_bytes([b[0], b[1]]) as usize;
    let mut rest = &b[2..];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (name, r) = cstr(rest);
        out.push(name);
        rest = &r[18..];
    }
    out
}

fn row(b: &[u8]) -> Vec<Option<String>> {
    let n = i16::from_be_bytes([b[0], b[1]]) as usize;
    let mut rest = &b[2..];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        rest = &rest[4..];
        if len < 0 {
            out.push(None);
        } else {
            out.push(Some(
                String::from_utf8_lossy(&rest[..len as usize]).into_owned(),
            ));
            rest = &rest[len as usize..];
        }
    }
    out
}

impl Probe {
    /// Connects as DSQL's `admin` to database `db` through `port`.
    pub async fn connect(port: u16, db: &str) -> Probe {
        match Probe::try_connect(port, db).await {
            Ok(p) => p,
            Err(e) => panic!("startup refused: {e:?}"),
        }
    }

    /// Connects; a FATAL at startup is its (SQLSTATE, message).
    pub async fn try_connect(port: u16, db: &str) -> Result<Probe, (String, String)> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the stand-in");
        let mut p = Probe {
            stream,
            buf: Vec::new(),
            notices: Vec::new(),
        };
        let mut body = Vec::new();
        body.extend_from_slice(&196608i32.to_be_bytes());
        for (k, v) in [("user", "admin"), ("database", db)] {
            put_cstr(&mut body, k);
            put_cstr(&mut body, v);
        }
        body.push(0);
        let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        packet.extend_from_slice(&body);
        p.stream.write_all(&packet).await.unwrap();
        loop {
            let (t, b) = p.read().await;
            match t {
                b'Z' => break,
                b'E' => return Err(error_fields(&b)),
                _ => {}
            }
        }
        Ok(p)
    }

    /// The next message (tag, body); panics on a closed connection.
    pub async fn read(&mut self) -> (u8, Vec<u8>) {
        self.try_read()
            .await
            .expect("the stand-in closed the connection")
    }

    /// The next message, or None when the connection closed.
    pub async fn try_read(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 5 {
                let len = i32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if self.buf.len() > len {
                    let t = self.buf[0];
                    let body = self.buf[5..len + 1].to_vec();
                    self.buf.drain(..len + 1);
                    return Some((t, body));
                }
            }
            self.buf.reserve(64 * 1024);
            let n = self.stream.read_buf(&mut self.buf).await.ok()?;
            if n == 0 {
                return None;
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// One simple Query: one observation per statement that answered.
    pub async fn simple(&mut self, sql: &str) -> Vec<Obs> {
        let mut body = Vec::new();
        put_cstr(&mut body, sql);
        self.send(&message(b'Q', &body)).await;
        self.collect(true).await
    }

    /// One statement through the extended protocol (Parse, Bind, Describe, Execute, Sync).
    pub async fn extended(&mut self, sql: &str) -> Obs {
        self.extended_with(sql, &[]).await
    }

    /// Like [`Probe::extended`], with text parameters.
    pub async fn extended_with(&mut self, sql: &str, params: &[Option<&str>]) -> Obs {
        let mut out = Vec::new();
        let mut p = Vec::new();
        put_cstr(&mut p, "");
        put_cstr(&mut p, sql);
        p.extend_from_slice(&0i16.to_be_bytes());
        out.extend(message(b'P', &p));
        let mut b = Vec::new();
        put_cstr(&mut b, "");
        put_cstr(&mut b, "");
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(params.len() as i16).to_be_bytes());
        for v in params {
            match v {
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v.as_bytes());
                }
            }
        }
        b.extend_from_slice(&0i16.to_be_bytes());
        out.extend(message(b'B', &b));
        out.extend(message(b'D', b"P\0"));
        out.extend(message(b'E', b"\0\0\0\0\0"));
        out.extend(message(b'S', b""));
        self.send(&out).await;
        let mut obs = self.collect(false).await;
        obs.pop().expect("an answer to the statement")
    }

    /// Reads until ReadyForQuery; in simple mode each statement is one observation.
    async fn collect(&mut self, simple: bool) -> Vec<Obs> {
        let mut out = Vec::new();
        let mut cols = Vec::new();
        let mut rows = Vec::new();
        loop {
            let (t, b) = self.read().await;
            match t {
                b'T' => cols = columns(&b),
                b'D' => rows.push(row(&b)),
                b'C' => out.push(Obs::Ok {
                    tag: cstr(&b).0,
                    columns: std::mem::take(&mut cols),
                    rows: std::mem::take(&mut rows),
                }),
                b'I' => out.push(Obs::Ok {
                    tag: String::new(),
                    columns: Vec::new(),
                    rows: Vec::new(),
                }),
                b'E' => {
                    let (code, message) = error_fields(&b);
                    cols.clear();
                    rows.clear();
                    out.push(Obs::Error { code, message });
                }
                b'N' => self.notices.push(error_fields(&b).1),
                b'Z' => break,
                _ => {}
            }
        }
        if !simple && out.is_empty() {
            out.push(Obs::Ok {
                tag: String::new(),
                columns: Vec::new(),
                rows: Vec::new(),
            });
        }
        out
    }

    /// Submits an async job (CREATE INDEX ASYNC, ALTER TABLE ASYNC): its job id.
    pub async fn job(&mut self, sql: &str) -> String {
        let got = self.extended(sql).await;
        match got.value() {
            Some(id) if is_job_id(id) => id.to_owned(),
            _ => panic!("{sql}: no job id in {got:?}"),
        }
    }

    /// CALL sys.wait_for_job: the row it answered (`t`, `f`), None for the tag alone.
    pub async fn wait(&mut self, id: &str) -> Option<String> {
        let got = self
            .extended(&format!("CALL sys.wait_for_job('{id}')"))
            .await;
        assert_eq!(got.tag(), Some("CALL"), "{got:?}");
        got.value().map(str::to_owned)
    }
}

/// A fresh database through the stand-in on `port`, `setup` run on it (simple queries, each
/// must succeed): its name and a connection.
pub async fn probe_with(port: u16, prefix: &str, setup: &[&str]) -> (String, Probe) {
    let db = database(prefix);
    let mut p = Probe::connect(port, &db).await;
    for sql in setup {
        let got = p.simple(sql).await;
        assert!(
            got.iter().all(|o| matches!(o, Obs::Ok { .. })),
            "{sql}: {got:?}"
        );
    }
    (db, p)
}

/// A fresh database, created upstream, and its name.
pub fn database(prefix: &str) -> String {
    let url = snap2dsql_tests::pg().create_db(prefix);
    snap2dsql_tests::db_name(&url).to_owned()
}

/// Whether `s` is a DSQL job id: 26 characters of lower-case base32 [REC §3.2].
pub fn is_job_id(s: &str) -> bool {
    s.len() == 26
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// A tokio-postgres client on a fresh database through the stand-in, after `ddl` (each statement
/// in its own transaction: one DDL a transaction); and the database's URL.
pub async fn client_with(
    s: &snap2dsql_tests::standin::Standin,
    prefix: &str,
    ddl: &[&str],
) -> (String, tokio_postgres::Client) {
    let url = s.db(prefix);
    let c = snap2dsql_tests::connect(&url).await;
    for sql in ddl {
        c.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    (url, c)
}

/// The SQLSTATE and message of a database error.
pub fn db_error(e: &tokio_postgres::Error) -> (String, String) {
    let d = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a database error: {e}"));
    (d.code().code().to_owned(), d.message().to_owned())
}

/// Sends COPY data chunk by chunk (`pause` between them) until the stand-in refuses the COPY;
/// its error, from a send or from the finish.
pub async fn copy_until_refused(
    sink: tokio_postgres::CopyInSink<bytes::Bytes>,
    chunks: impl IntoIterator<Item = bytes::Bytes>,
    pause: std::time::Duration,
) -> tokio_postgres::Error {
    use futures::SinkExt;
    futures::pin_mut!(sink);
    for chunk in chunks {
        if let Err(e) = sink.send(chunk).await {
            return e;
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    match sink.finish().await {
        Ok(n) => panic!("the COPY of {n} rows was accepted"),
        Err(e) => e,
    }
}
