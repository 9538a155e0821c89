//! The command refuses batch bounds past DSQL's per-transaction limits before it touches
//! anything. (Also makes `cargo test --workspace` build `target/debug/snap2dsql`, which the
//! integration tests in `tests/` run.)

use std::process::Command;

fn run_with(extra: &[&str]) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join("snap2dsql-no-such-export");
    let out = Command::new(env!("CARGO_BIN_EXE_snap2dsql"))
        .args(["run", "--export"])
        .arg(&dir)
        // Nothing listens there: the command must stop before connecting.
        .args(["--target", "postgres://nobody@127.0.0.1:1/none"])
        .args(extra)
        .output()
        .expect("run snap2dsql");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn batch_rows_of_3000_are_refused_as_a_usage_error() {
    let (code, stderr) = run_with(&["--batch-rows", "3000"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("batch rows 3000 must be 1 to 2999"),
        "{stderr}"
    );
}

#[test]
fn batch_bytes_over_8_mib_are_refused_as_a_usage_error() {
    let (code, stderr) = run_with(&["--batch-bytes", "8388609"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("batch bytes 8388609"), "{stderr}");
}
