//! Connection rules and faults through the stand-in: the connection count (53300), the
//! connection rate (53400), the connection age (a FATAL 57P01, after the transaction in
//! flight), dropping every connection mid-transaction, silent connections (every one until
//! lifted, or some for good), cancel requests,
//! TLS (SSLRequest answered `S` with a certificate, `N` without), startup parameters.

mod common;

use common::{Obs, Probe, database};
use snap2dsql_tests::standin::{self, Rate, TestCertificate};
use std::sync::Arc;
use std::time::Duration;

async fn try_connect(port: u16, db: &str) -> Result<Probe, (String, String)> {
    Probe::try_connect(port, db).await
}

#[tokio::test]
async fn past_the_connection_count_a_new_connection_gets_53300() {
    let s = standin::start().await;
    s.set_max_connections(2);
    let db = database("conn_max");
    let a = try_connect(s.port(), &db).await.unwrap();
    let _b = try_connect(s.port(), &db).await.unwrap();
    let refused = try_connect(s.port(), &db).await.err();
    assert_eq!(
        refused,
        Some(("53300".into(), "sorry, too many clients already".into()))
    );
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(try_connect(s.port(), &db).await.is_ok());
    assert_eq!(s.counters().connections_refused_max, 1);
}

#[tokio::test]
async fn past_the_connection_rate_a_new_connection_gets_53400() {
    let s = standin::start().await;
    s.set_connection_rate(Some(Rate {
        per_second: 1,
        burst: 3,
    }));
    let db = database("conn_rate");
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(try_connect(s.port(), &db).await.unwrap());
    }
    let refused = try_connect(s.port(), &db).await.err();
    assert_eq!(refused.map(|r| r.0).as_deref(), Some("53400"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(try_connect(s.port(), &db).await.is_ok());
    s.set_connection_rate(None);
    for _ in 0..10 {
        assert!(try_connect(s.port(), &db).await.is_ok());
    }
    assert_eq!(s.counters().connections_refused_rate, 1);
}

#[tokio::test]
async fn a_connection_past_its_age_is_closed_after_its_transaction() {
    let s = standin::start().await;
    s.set_max_connection_age(Duration::from_secs(1));
    let db = database("conn_age");
    // Idle: a FATAL 57P01, then the socket closes.
    let mut idle = Probe::connect(s.port(), &db).await;
    let (t, body) = idle.read().await;
    assert_eq!(t, b'E');
    assert!(String::from_utf8_lossy(&body).contains("57P01"));
    assert!(idle.try_read().await.is_none());
    // In a transaction when the age passes: it finishes, then the connection is closed.
    let mut busy = Probe::connect(s.port(), &db).await;
    busy.simple("CREATE TABLE t (id int)").await;
    assert_eq!(busy.extended("BEGIN").await.tag(), Some("BEGIN"));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        busy.extended("INSERT INTO t VALUES (1)").await.tag(),
        Some("INSERT 0 1")
    );
    assert_eq!(busy.extended("COMMIT").await.tag(), Some("COMMIT"));
    let (t, _) = busy.read().await;
    assert_eq!(t, b'E');
    assert!(busy.try_read().await.is_none());
    assert_eq!(s.counters().connections_closed_age, 2);
}

#[tokio::test]
async fn dropping_every_connection_closes_sockets_mid_transaction() {
    let s = standin::start().await;
    let db = database("conn_drop");
    let mut p = Probe::connect(s.port(), &db).await;
    p.simple("CREATE TABLE t (id int)").await;
    p.extended("BEGIN").await;
    p.extended("INSERT INTO t VALUES (1)").await;
    assert_eq!(s.drop_all_connections(), 1);
    assert!(p.try_read().await.is_none(), "the socket is closed");
    let mut q = Probe::connect(s.port(), &db).await;
    // The upstream rolled the transaction back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        q.extended("SELECT count(*) FROM t").await.value(),
        Some("0")
    );
    assert_eq!(s.counters().connections_dropped, 1);
}

#[tokio::test]
async fn a_silent_stand_in_keeps_sockets_open_and_answers_nothing() {
    let s = standin::start().await;
    let db = database("conn_silent");
    let mut p = Probe::connect(s.port(), &db).await;
    s.set_silent(true);
    let pending = tokio::time::timeout(Duration::from_millis(700), p.extended("SELECT 1")).await;
    assert!(pending.is_err(), "an answer came while silent");
    s.set_silent(false);
    // The query sent while silent is answered now: the connection was never closed.
    let (t, _) = p.read().await;
    assert!(
        matches!(t, b'1' | b'2' | b'T' | b'D' | b'C' | b'Z'),
        "got {}",
        t as char
    );
}

#[tokio::test]
async fn a_connection_silenced_for_good_answers_nothing_while_the_others_do() {
    let s = standin::start().await;
    let db = database("conn_muted");
    let mut muted = Probe::connect(s.port(), &db).await;
    muted.simple("CREATE TABLE t (id int PRIMARY KEY)").await;
    muted.simple("BEGIN").await;
    muted.extended("INSERT INTO t VALUES (1)").await;
    s.silence_connections(1);
    // The request read next still runs (row 2 is written in the transaction); its answer, and
    // everything after it (the COMMIT), is never answered.
    let insert = tokio::time::timeout(
        Duration::from_millis(700),
        muted.extended("INSERT INTO t VALUES (2)"),
    )
    .await;
    assert!(
        insert.is_err(),
        "the silenced connection answered: {insert:?}"
    );
    let commit = tokio::time::timeout(Duration::from_millis(300), muted.simple("COMMIT")).await;
    assert!(
        commit.is_err(),
        "the silenced connection answered: {commit:?}"
    );
    assert_eq!(s.counters().connections_silenced, 1);
    // Only one connection was asked for: a new one answers, and nothing was committed.
    let mut other = Probe::connect(s.port(), &db).await;
    assert_eq!(
        other.extended("SELECT count(*) FROM t").await.value(),
        Some("0")
    );
    // Once its client gives up, the silent session ends and its transaction is rolled back:
    // the same keys are written without a conflict.
    drop(muted);
    while s.counters().open_connections > 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        other.extended("INSERT INTO t VALUES (1), (2)").await.tag(),
        Some("INSERT 0 2")
    );
    assert_eq!(s.counters().connections_silenced, 1);
}

#[tokio::test]
async fn a_cancel_request_reaches_the_upstream_statement() {
    let s = standin::start().await;
    let url = s.db("conn_cancel");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let token = client.cancel_token();
    let slow = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .expect("the cancel stopped the statement")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("57014"));
}

fn tls_client(cert: &std::path::Path) -> tokio_postgres_rustls::MakeRustlsConnect {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

#[tokio::test]
async fn tls_is_offered_with_a_certificate_and_refused_without() {
    let cert = TestCertificate::new();
    let files = cert.files.clone();
    let s = standin::start_with(|c| c.tls = Some(files)).await;
    let url = s.db("conn_tls");
    let config: tokio_postgres::Config = format!("{url}?sslmode=require").parse().unwrap();
    let (client, conn) = config.connect(tls_client(&cert.files.cert)).await.unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT $1::text || 'k'", &[&"o"])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ok");
    // The same through psql-like plain TCP when the client allows it.
    let plain: tokio_postgres::Config = format!("{url}?sslmode=disable").parse().unwrap();
    assert!(plain.connect(tokio_postgres::NoTls).await.is_ok());

    // Without a certificate, SSLRequest is answered 'N': require fails, prefer falls back.
    let s = standin::start().await;
    let url = s.db("conn_notls");
    let config: tokio_postgres::Config = format!("{url}?sslmode=require").parse().unwrap();
    assert!(config.connect(tls_client(&cert.files.cert)).await.is_err());
    let config: tokio_postgres::Config = format!("{url}?sslmode=prefer").parse().unwrap();
    assert!(config.connect(tls_client(&cert.files.cert)).await.is_ok());
}

#[tokio::test]
async fn startup_parameters_drivers_send_keep_working_and_the_version_is_dsqls() {
    let s = standin::start().await;
    let url = s.db("conn_params");
    let config: tokio_postgres::Config =
        format!("{url}?application_name=loader&options=-c%20search_path%3Dpublic")
            .parse()
            .unwrap();
    let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let rows = client
        .simple_query("SHOW application_name; SHOW TimeZone; SHOW server_version")
        .await
        .unwrap();
    let values: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(values, ["loader", "UTC", "16.15"]);
    // A database that does not exist upstream: PostgreSQL's own FATAL reaches the client.
    let bad = s.url("no_such_database_for_standin");
    let e = tokio_postgres::connect(&bad, tokio_postgres::NoTls)
        .await
        .err()
        .expect("no such database");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("3D000"));
    // A probe as DSQL's recorder connected: the answers are plain.
    let db = database("conn_params_probe");
    let mut p = Probe::connect(s.port(), &db).await;
    assert_eq!(
        p.extended("SELECT 1").await,
        Obs::Ok {
            tag: "SELECT 1".into(),
            columns: vec!["?column?".into()],
            rows: vec![vec![Some("1".into())]],
        }
    );
}
