//! Every long read of the target is split into primary-key pages, each a short transaction.
//!
//! - Tiny pages over single, composite and timestamptz keys: verify, counts and status give what
//!   one-statement SQL gives, and a damaged row on any page is still named.
//! - The proof under DSQL's transaction age limit: the DSQL stand-in's `max_transaction_age` set
//!   to a fraction of the time one statement takes to scan a table whole (DSQL: 300 s); that
//!   statement is refused through the stand-in (54000, the positive control), and verify, the
//!   counts and `status` still finish, each page a transaction well under the limit.

use snap2dsql::pages::PageSizing;
use snap2dsql::verify::{DiffKind, Status, VerifyOptions, verify};
use snap2dsql_tests::{connect, db_name, export_and_plan_with, load_fresh, pg};
use std::time::Duration;

fn tiny() -> PageSizing {
    PageSizing {
        first_rows: 7,
        min_rows: 3,
        max_rows: 13,
        target: Duration::from_secs(10),
    }
}

/// rows, batches, chunks per table by one SQL statement on the ledger.
fn ledger_by_sql(db: &str, migration: &str) -> Vec<(String, u64, u64, u64)> {
    pg().psql(
        db,
        &format!(
            "SELECT table_name, count(DISTINCT chunk), count(*), sum(rows) FROM snap2dsql.ledger \
             WHERE migration = '{migration}' GROUP BY 1 ORDER BY 1"
        ),
    )
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split('|').collect();
        (
            f[0].to_string(),
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
        )
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tiny_pages_give_what_one_statement_gives() {
    let src = pg().create_db("pgsrc");
    pg().psql(
        db_name(&src),
        "CREATE TABLE public.items (id serial PRIMARY KEY, label text, price numeric(8,2)); \
         INSERT INTO public.items (label, price) SELECT 'item ' || g, g * 1.25 FROM generate_series(1, 200) g; \
         CREATE TABLE public.pairs (a int, b text, v double precision, PRIMARY KEY (a, b)); \
         INSERT INTO public.pairs SELECT g % 31, 'b' || g || repeat(' ', g % 3), g / 7.0 FROM generate_series(1, 150) g; \
         CREATE TABLE public.moments (at timestamptz, tag varchar(8), n int, PRIMARY KEY (at, tag)); \
         INSERT INTO public.moments SELECT timestamptz '2020-03-01 12:00:00.5+05:30' + (g % 11) * interval '1 hour 1 microsecond', \
           't' || (g % 13), g FROM generate_series(1, 143) g;",
    );
    let (export, mapping, _dir) = export_and_plan_with(&src, "pages-export", Some(&src)).await;
    assert_eq!(
        mapping.table("public.pairs").unwrap().primary_key,
        vec!["a", "b"]
    );
    let (url, target, _standin) = load_fresh(&export, &mapping, "pgdst").await;
    let db = db_name(&url).to_string();
    let options = VerifyOptions {
        pages: tiny(),
        max_listed: 50,
        ..VerifyOptions::default()
    };
    let report = verify(
        export.clone(),
        mapping.clone(),
        &target,
        &options,
        &|_, _| {},
    )
    .await
    .unwrap();
    assert!(report.ok, "{report:#?}");

    // Counts and the ledger's progress, paged, against one statement each.
    let counts = snap2dsql::migrate::count_target(&target, &mapping)
        .await
        .unwrap();
    for (table, n) in &counts {
        let t = mapping.table(table).unwrap();
        let sql: u64 = pg()
            .psql(&db, &format!("SELECT count(*) FROM {}", t.target()))
            .trim()
            .parse()
            .unwrap();
        assert_eq!(*n, sql, "{table}");
    }
    assert_eq!(counts["public.pairs"], 150);
    let progress = snap2dsql::load::ledger::progress(&target, &mapping.migration.id)
        .await
        .unwrap();
    let by_sql = ledger_by_sql(&db, &mapping.migration.id);
    assert_eq!(progress.len(), by_sql.len());
    for (table, chunks, batches, rows) in by_sql {
        let p = &progress[&table];
        assert_eq!(
            (p.chunks, p.batches, p.rows),
            (chunks, batches, rows),
            "{table}"
        );
    }

    // One change on a late page of each table: each named with its column.
    pg().psql(
        &db,
        "UPDATE public.items SET label = 'changed' WHERE old_id = 190; \
         UPDATE public.pairs SET v = -1 WHERE a = 6 AND b = 'b99'; \
         DELETE FROM public.moments WHERE n = 140;",
    );
    let report = verify(
        export.clone(),
        mapping.clone(),
        &target,
        &options,
        &|_, _| {},
    )
    .await
    .unwrap();
    let one = |table: &str| {
        let t = report.table(table).unwrap();
        assert_eq!(t.status, Status::Mismatch, "{t:#?}");
        assert_eq!(t.differences.len(), 1, "{t:#?}");
        t.differences[0].clone()
    };
    let d = one("public.items");
    assert_eq!(
        (d.kind, d.old_key.as_deref()),
        (DiffKind::Differs, Some("190"))
    );
    assert_eq!(d.columns[0].column, "label");
    let d = one("public.pairs");
    assert_eq!((d.kind, d.key.as_str()), (DiffKind::Differs, "6, b99"));
    assert_eq!(d.columns[0].target.as_deref(), Some("-1"));
    let d = one("public.moments");
    assert_eq!(d.kind, DiffKind::Missing);
    assert!(d.key.ends_with(", t10"), "{d:#?}");
}

/// The statement verify would send to read `public.wide` whole, with its parameters (none).
fn whole_table_read(mapping: &snap2dsql::mapping::Mapping) -> (String, Vec<Option<String>>) {
    let plan =
        snap2dsql::verify::table::TablePlan::new(mapping.table("public.wide").unwrap()).unwrap();
    let whole = plan.pager(PageSizing::default()).page_sql(
        Some(&plan.aggregate_sql()),
        false,
        3,
        1_000_000,
    );
    let stats = plan
        .cols
        .iter()
        .filter(|c| snap2dsql::verify::table::stat_kind(&c.ty).is_some())
        .count();
    (whole, vec![None; 2 * stats])
}

async fn read_whole(
    url: &str,
    sql: &str,
    params: &[Option<String>],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let c = connect(url).await;
    snap2dsql::verify::prepare_session(&c).await.unwrap();
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    c.query(sql, &params).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_reads_finish_under_the_stand_ins_transaction_age_limit() {
    let src = pg().create_db("agesrc");
    pg().psql(
        db_name(&src),
        "CREATE TABLE public.wide (id serial PRIMARY KEY, body text, n bigint); \
         INSERT INTO public.wide (body, n) SELECT repeat(md5(g::text), 24), g FROM generate_series(1, 120000) g;",
    );
    let (export, mapping, dir) = export_and_plan_with(&src, "age-export", None).await;
    let (url, target, standin) = load_fresh(&export, &mapping, "agedst").await;
    let (whole, params) = whole_table_read(&mapping);
    // How long one statement takes to read the table whole, upstream (the fastest of three).
    let mut scan = Duration::MAX;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        read_whole(&url, &whole, &params).await.unwrap();
        scan = scan.min(started.elapsed());
    }
    // DSQL's limit is 300 s; here a third of that scan, so no single statement could do it.
    let limit = scan / 3;
    eprintln!("one-statement scan {scan:?}; stand-in transaction age limit {limit:?}");
    assert!(
        limit >= Duration::from_millis(300),
        "the table scans too fast ({scan:?}) to show anything: make it bigger"
    );
    standin.set_max_transaction_age(limit);
    // The positive control: the whole-table read through the stand-in is ended by the limit.
    let e = read_whole(target_url(&standin, &url).as_str(), &whole, &params)
        .await
        .unwrap_err();
    assert_eq!(
        e.code().map(|c| c.code()),
        Some("54000"),
        "the one-statement read: {e}"
    );
    assert!(
        e.as_db_error()
            .is_some_and(|d| d.message().contains("transaction age limit")),
        "{e}"
    );

    // Paged, each read is a short transaction: verify, counts and status finish.
    let report = verify(
        export.clone(),
        mapping.clone(),
        &target,
        &VerifyOptions {
            pages: PageSizing {
                target: limit / 4,
                ..PageSizing::default()
            },
            ..VerifyOptions::default()
        },
        &|_, _| {},
    )
    .await
    .unwrap();
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.table("public.wide").unwrap().rows_in_target, 120_000);
    let counts = snap2dsql::migrate::count_target(&target, &mapping)
        .await
        .unwrap();
    assert_eq!(counts["public.wide"], 120_000);
    let progress = snap2dsql::load::ledger::progress(&target, &mapping.migration.id)
        .await
        .unwrap();
    assert_eq!(progress["public.wide"].rows, 120_000);
    // `snap2dsql status`, the command, through the same stand-in.
    let mapping_path = dir.path().join("mapping.toml");
    mapping.save(&mapping_path).unwrap();
    // (A blocking wait: the stand-in serves it from the runtime's other workers.)
    let out = std::process::Command::new(crate::load::cli())
        .arg("status")
        .arg("--export")
        .arg(dir.path())
        .arg("--mapping")
        .arg(&mapping_path)
        .args(["--target", &target_url(&standin, &url)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("120000"), "{stdout}");
    // The control's refusal at least; any page the limit ended was read again at half the rows.
    assert!(standin.counters().limit_errors >= 1);
}

/// The URL through `standin` of the upstream database behind `direct`.
fn target_url(standin: &snap2dsql_tests::standin::Standin, direct: &str) -> String {
    standin.url(db_name(direct))
}
