//! `snap2dsql standin`: prints one URL, serves DSQL's answers on it with the flags given, and
//! refuses unusable flags as a usage error.

use snap2dsql_tests::{db_name, pg};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The stand-in process, killed when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(flags: &[&str]) -> (Served, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_snap2dsql"))
        .args(["standin", "--upstream", &pg().url("postgres")])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start snap2dsql standin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the URL line");
    (Served(child), line.trim().to_owned())
}

fn psql(url: &str, sql: &str) -> (bool, String) {
    let out = Command::new(pg().bin_dir.join("psql"))
        .arg(url)
        .args(["-X", "-q", "-At", "-v", "VERBOSITY=verbose", "-c", sql])
        .output()
        .expect("run psql");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_command_prints_its_url_and_answers_like_dsql_with_its_flags() {
    let direct = pg().create_db("cli_standin");
    let db = db_name(&direct);
    let (_served, url) = serve(&["--max-rows", "2", "--binary-copy", "refuse"]);
    assert!(
        url.starts_with("postgres://admin@127.0.0.1:") && url.ends_with("/postgres"),
        "{url}"
    );
    let url = format!("{}/{db}", url.trim_end_matches("/postgres"));
    assert_eq!(
        psql(&url, "SELECT version()"),
        (true, "PostgreSQL 16\n".into())
    );
    let (ok, out) = psql(&url, "TRUNCATE t");
    assert!(
        !ok && out.contains("0A000: unsupported statement: Truncate"),
        "{out}"
    );
    assert!(psql(&url, "CREATE TABLE t (id int)").0);
    let (ok, out) = psql(&url, "INSERT INTO t SELECT generate_series(1, 3)");
    assert!(
        !ok && out.contains("54000: transaction row limit exceeded"),
        "{out}"
    );
    let (ok, out) = psql(&url, "COPY t FROM STDIN (FORMAT binary)");
    assert!(!ok && out.contains("0A000"), "{out}");
}

#[test]
fn unusable_flags_are_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_snap2dsql"))
        .args(["standin", "--upstream", "postgres://x@127.0.0.1:1/y"])
        .args(["--binary-copy", "sometimes"])
        .output()
        .expect("run snap2dsql standin");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("binary copy \"sometimes\""));
}
