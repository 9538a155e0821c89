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

/// A DSQL target's IAM token (a presigned URL: a password) and the AWS secret it is signed with
/// appear in no log line and no error, even at debug level, when the connection fails.
#[tokio::test]
async fn dsql_tokens_and_credentials_never_reach_logs_or_errors() {
    let src = pg().create_db("tls_token");
    pg().psql(
        snap2dsql_tests::db_name(&src),
        "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) VALUES ('a');",
    );
    let dir = tempfile::tempdir().unwrap();
    let client = snap2dsql_tests::connect(&src).await;
    snap2dsql::local_export::local_export(
        &client,
        dir.path(),
        &snap2dsql::local_export::LocalExportOptions::new("token-test"),
        &|_, _| {},
    )
    .await
    .unwrap();
    let (key_id, secret) = (
        "AKIACANARY7KEYID0000",
        "canary/Secret+Key/0123456789abcdefghijklmn",
    );
    let out = Command::new(super::load::cli())
        .args(["load", "--export"])
        .arg(dir.path())
        .args([
            "--target",
            "postgres://admin@canarycluster0000000000000.dsql.us-east-1.on.aws/postgres",
            "--create-tables",
            "--max-attempts",
            "2",
        ])
        .env("SNAP2DSQL_LOG", "trace")
        .env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run the CLI");
    assert!(
        !out.status.success(),
        "no DSQL endpoint is reachable from here"
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("canarycluster"),
        "the error names the target: {text}"
    );
    // At trace level the SDK logs the request it signs (its query names the access key id, which
    // is not a secret); the token is that request plus its signature.
    for secret_part in [secret, "X-Amz-Signature", "X-Amz-Security-Token"] {
        assert!(
            !text.contains(secret_part),
            "{secret_part:?} leaked:\n{text}"
        );
    }
}
