//! TLS toward a target is verify-full: a server whose certificate no system root vouches for is
//! refused before any password or token is sent.

use snap2dsql_tests::pg;
use std::process::Command;

#[tokio::test]
async fn untrusted_server_certificate_is_refused() {
    let url = pg().create_db("tls");
    let db = snap2dsql_tests::db_name(&url).to_string();
    // The server does speak TLS: psql with sslmode=require (no verification) gets a TLS session.
    let out = Command::new(pg().bin_dir.join("psql"))
        .arg(format!(
            "host=127.0.0.1 port={} user=postgres dbname={db} sslmode=require",
            pg().port
        ))
        .args([
            "-X",
            "-At",
            "-c",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t");

    // The connector every DSQL connection uses refuses its self-signed certificate.
    let tls = snap2dsql::target::verify_full_tls().expect("system roots");
    let config: tokio_postgres::Config = format!("{url}?sslmode=require").parse().unwrap();
    let err = match config.connect(tls).await {
        Ok(_) => panic!("a connection to a server with an untrusted certificate was accepted"),
        Err(e) => e,
    };
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(
        chain.contains("certificate") && chain.contains("UnknownIssuer"),
        "expected a certificate verification failure, got: {chain}"
    );
}
