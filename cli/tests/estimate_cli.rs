//! `snap2dsql plan --estimate` end to end: a stated size printed with its figures, knobs past
//! DSQL's connection limits refused with exit 2, and an export's own footers sized exactly.

use snap2dsql_tests::{db_name, pg, standin};
use std::process::Command;

const STOREFRONT: &str = include_str!("../../scripts/storefront.sql");

fn snap2dsql(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_snap2dsql"))
        .args(args)
        .output()
        .expect("run snap2dsql");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const TB: [&str; 7] = [
    "plan",
    "--estimate",
    "--rows",
    "10000000000",
    "--bytes",
    "1TB",
    "--tables",
];

#[test]
fn a_stated_size_is_estimated_and_knobs_past_dsqls_limits_are_refused() {
    let (code, out, err) = snap2dsql(&[TB.as_slice(), &["20"]].concat());
    assert_eq!(code, 0, "{out}{err}");
    // 1e12 bytes over 20 tables in 10 MiB files: 20 x ceil(5e10 / 10,485,760) = 95,380.
    assert!(
        out.contains("chunks (load-chunk items)           95,380"),
        "{out}"
    );
    // 1e10 rows / 1,000,000 a verify part, on each side.
    assert!(
        out.contains("verify items                        20,000"),
        "{out}"
    );
    assert!(
        out.contains("open at the peak                        32"),
        "{out}"
    );
    for price in [
        "$0.0000133334 per GB-s",
        "$0.025 per 1,000",
        "$8.00 per 1M DPU",
    ] {
        assert!(out.contains(price), "{price} not in {out}");
    }
    assert!(out.contains("read 2026-12-07"), "{out}");

    let (code, out, err) =
        snap2dsql(&[TB.as_slice(), &["20", "--parallel-chunks", "201"]].concat());
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("1005 new DSQL connections when the load starts"),
        "{err}"
    );
    let (code, _, err) = snap2dsql(
        &[
            TB.as_slice(),
            &["20", "--connections", "101", "--parallel-chunks", "100"],
        ]
        .concat(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("10100 open DSQL connections"), "{err}");
    // A size needs both rows and bytes; --rows without --estimate is refused by clap.
    let (code, _, err) = snap2dsql(&["plan", "--estimate", "--rows", "10"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = snap2dsql(&["plan", "--rows", "10", "--bytes", "1GB"]);
    assert_eq!(code, 2);
}

#[test]
fn an_exports_footers_give_the_exact_chunks() {
    let src = pg().create_db("estsrc");
    let sql = STOREFRONT
        .replace(":customers", "50")
        .replace(":orders", "300");
    pg().psql(db_name(&src), &sql);
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    let export = export.to_str().unwrap();
    let (code, out, err) = snap2dsql(&[
        "local-export",
        "--source",
        &src,
        "--out",
        export,
        "--rows-per-file",
        "100",
        "--rows-per-row-group",
        "50",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = snap2dsql(&["plan", "--estimate", "--export", export, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    // 50 customers in 1 file, 300 orders in 3: one chunk a file (far below the bounds).
    assert_eq!(e["size"]["rows"], 350);
    assert_eq!(e["size"]["files"], 4);
    assert_eq!(e["size"]["row_groups"], 7);
    assert_eq!(e["chunks"], 4);
    // Each table is one export part and one target part.
    assert_eq!(e["verify_items"], 4);
    assert_eq!(e["size"]["tables"], 2);

    // `run` refuses the same knobs before it loads a row.
    let standin = standin::Thread::start_with(|_| {});
    let dst = standin.db("estdst");
    let (code, out, err) = snap2dsql(&[
        "run",
        "--export",
        export,
        "--target",
        &dst,
        "--create-tables",
        "--parallel-chunks",
        "300",
        "--concurrency",
        "4",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(
            "300 chunks at once x (4 writers + 1 ledger read) = 1500 new DSQL connections"
        ),
        "{err}"
    );
    // The tables were prepared (that comes first), and no batch was committed.
    let rows = pg().psql(db_name(&dst), "SELECT count(*) FROM snap2dsql.ledger");
    assert_eq!(rows.trim(), "0");
}
