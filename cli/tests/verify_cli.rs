//! The `snap2dsql` binary end to end: local-export from a real PostgreSQL, then plan, run (which
//! verifies every row) into the DSQL stand-in in the DSQL dialect, then `verify` on a clean and
//! on a damaged target, by exit code and report.

use snap2dsql_tests::{db_name, pg, standin};
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
    let standin = standin::Thread::start_with(|_| {});
    let dst = standin.db("clidst");
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

/// The run's mapping remembered in the target: `verify` and `status` without `--mapping` use the
/// mapping `run` used, and refuse, naming the column, a mapping the target does not match.
#[test]
fn verify_and_status_use_the_mapping_run_recorded() {
    let src = pg().create_db("recsrc");
    // No `id` column: without the source schema the key cannot be guessed, so a fresh plan
    // differs from the one run used (account_no stays an integer instead of a uuid).
    pg().psql(
        db_name(&src),
        "CREATE TABLE public.accounts (account_no integer PRIMARY KEY, name text); \
         INSERT INTO public.accounts SELECT g, 'account ' || g FROM generate_series(1, 120) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    let (code, out) = snap2dsql(&[
        "local-export",
        "--source",
        &src,
        "--out",
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let export = export.to_str().unwrap();
    let standin = standin::Thread::start_with(|_| {});
    let target = standin.db("recdst");
    let (code, out) = snap2dsql(&[
        "run",
        "--export",
        export,
        "--source-schema",
        &src,
        "--target",
        &target,
        "--create-tables",
    ]);
    assert_eq!(code, 0, "{out}");

    // What a new user types next: no mapping, no source schema.
    let (code, out) = snap2dsql(&["verify", "--export", export, "--target", &target]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("recorded in the target"), "{out}");
    let (code, out) = snap2dsql(&["status", "--export", export, "--target", &target]);
    assert_eq!(code, 0, "{out}");

    // A mapping planned without the source schema is not the one the load used: refused,
    // naming the column, never a SQL error.
    let planned = dir.path().join("planned");
    let (code, out) = snap2dsql(&[
        "plan",
        "--export",
        export,
        "--out",
        planned.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let mapping = planned.join("mapping.toml");
    for command in ["verify", "status"] {
        let (code, out) = snap2dsql(&[
            command,
            "--export",
            export,
            "--target",
            &target,
            "--mapping",
            mapping.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{command}: {out}");
        assert!(
            out.contains("does not match the mapping"),
            "{command}: {out}"
        );
        assert!(out.contains("account_no"), "{command}: {out}");
        assert!(!out.contains("does not exist"), "{command}: {out}");
    }

    // A target that records two migrations: verify asks which.
    pg().psql(
        db_name(&target),
        "UPDATE snap2dsql.migrations SET migration = 'second'",
    );
    let (code, out) = snap2dsql(&[
        "run",
        "--export",
        export,
        "--source-schema",
        &src,
        "--target",
        &target,
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = snap2dsql(&["verify", "--export", export, "--target", &target]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("migrations") && out.contains("--mapping"),
        "{out}"
    );
}
