//! The `snap2dsql` binary end to end on a real PostgreSQL: local-export, plan, run (which
//! verifies every row), then `verify` on a clean and on a damaged target, by exit code and
//! report.

use snap2dsql_tests::{db_name, pg};
use std::process::Command;

const STOREFRONT: &str = include_str!("../../scripts/storefront.sql");

fn snap2dsql(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_snap2dsql"))
        .args(args)
        .output()
        .expect("run snap2dsql");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn run_verifies_and_verify_exits_1_on_a_damaged_row() {
    let src = pg().create_db("clisrc");
    let sql = STOREFRONT
        .replace(":customers", "50")
        .replace(":orders", "300");
    pg().psql(db_name(&src), &sql);
    let dst = pg().create_db("clidst");
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    let plan = dir.path().join("plan");
    let (code, out) = snap2dsql(&[
        "local-export",
        "--source",
        &src,
        "--out",
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = snap2dsql(&[
        "plan",
        "--export",
        export.to_str().unwrap(),
        "--out",
        plan.to_str().unwrap(),
        "--dialect",
        "postgres",
    ]);
    assert_eq!(code, 0, "{out}");
    let mapping = plan.join("mapping.toml");
    let (code, out) = snap2dsql(&[
        "run",
        "--export",
        export.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--target",
        &dst,
        "--create-tables",
        // A plain PostgreSQL, not the DSQL stand-in: its own dialect.
        "--target-dialect",
        "postgres",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("every table matches"), "{out}");

    let report = dir.path().join("verify.json");
    let verify = |report: &std::path::Path| {
        snap2dsql(&[
            "verify",
            "--export",
            export.to_str().unwrap(),
            "--mapping",
            mapping.to_str().unwrap(),
            "--target",
            &dst,
            "--tables",
            "sales.orders,sales.customers",
            "--report",
            report.to_str().unwrap(),
            "--max-listed",
            "3",
        ])
    };
    let (code, out) = verify(&report);
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["tables"].as_array().unwrap().len(), 2);

    pg().psql(
        db_name(&dst),
        "UPDATE sales.orders SET unit_cost = unit_cost + 0.01 WHERE old_id = 3",
    );
    let (code, out) = verify(&report);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("(old key 3): differs"), "{out}");
    assert!(out.contains("unit_cost: export"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["ok"], false);

    let (code, out) = snap2dsql(&[
        "verify",
        "--export",
        export.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--target",
        &dst,
        "--tables",
        "sales.nope",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("sales.nope"), "{out}");
}
