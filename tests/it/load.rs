//! Loading an export exactly once inside DSQL's limits, through the DSQL stand-in
//! (`snap2dsql_tests::standin`: 3,000 rows and 10 MiB per transaction refused with SQLSTATE
//! 54000, optional injected `40001 (OC000)` conflicts) in the DSQL dialect.
//!
//! Source and target share one upstream database per test: the storefront lives in schema
//! `sales` and is read directly; the planned mapping is pointed at schema `sales_dsql`, written
//! only through the stand-in, so SQL on the upstream compares every target row with its source
//! row (joined on `old_id`).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use snap2dsql::chunk::{CHUNK_MAX_BYTES, Chunk, plan_chunks_with};
use snap2dsql::error::{Error, ErrorClass};
use snap2dsql::export::Export;
use snap2dsql::keys::new_key;
use snap2dsql::load::orphans::OrphanReport;
use snap2dsql::load::{ChunkOutcome, LoadContext, LoadOptions};
use snap2dsql::local_export::{LocalExportOptions, local_export};
use snap2dsql::mapping::Mapping;
use snap2dsql::migrate;
use snap2dsql::schema::SourceSchema;
use snap2dsql::target::Target;
use snap2dsql_tests::standin::{self, Standin};
use snap2dsql_tests::{connect, db_name, pg};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::Client;
use uuid::Uuid;

/// The target schema every test maps the `sales` tables to.
pub(crate) const TARGET: &str = "sales_dsql";

/// A fresh database holding `scripts/storefront.sql` at the given size.
pub(crate) fn storefront_db(prefix: &str, customers: u32, orders: u32) -> String {
    pg().storefront_db(prefix, customers, orders)
}

/// One test's export, mapping and target: the source database, exported to a temp dir,
/// planned with its schema, every table pointed at [`TARGET`], written through a DSQL stand-in
/// in front of the same upstream database.
pub(crate) struct Fixture {
    /// The upstream database, read directly: the source, and checks of the target's rows.
    pub(crate) url: String,
    /// The stand-in the target is reached through (its knobs: conflicts, limits, faults).
    pub(crate) standin: Arc<Standin>,
    /// The same database through [`Fixture::standin`]: every load and verify goes here.
    pub(crate) target_url: String,
    _dir: tempfile::TempDir,
    pub(crate) export_dir: PathBuf,
    pub(crate) export: Arc<Export>,
    pub(crate) mapping: Mapping,
    pub(crate) mapping_path: PathBuf,
}

impl Fixture {
    /// Exports `url`'s database (`rows_per_file`, `rows_per_group`) and plans it with `schema`
    /// (the live catalog when `None`); the target is reached through a stand-in of its own with
    /// DSQL's defaults.
    pub(crate) async fn new(
        url: &str,
        schema: Option<SourceSchema>,
        rows_per_file: usize,
        rows_per_group: usize,
    ) -> Fixture {
        let standin = Arc::new(standin::start().await);
        Fixture::with_standin(standin, url, schema, rows_per_file, rows_per_group).await
    }

    /// [`Fixture::new`] with the target reached through `standin` (whose upstream serves `url`).
    pub(crate) async fn with_standin(
        standin: Arc<Standin>,
        url: &str,
        schema: Option<SourceSchema>,
        rows_per_file: usize,
        rows_per_group: usize,
    ) -> Fixture {
        let client = connect(url).await;
        let schema = match schema {
            Some(s) => s,
            None => SourceSchema::from_postgres(&client, "source")
                .await
                .unwrap(),
        };
        let dir = tempfile::tempdir().unwrap();
        let opts = LocalExportOptions {
            export_id: "load-test".into(),
            rows_per_file,
            rows_per_row_group: rows_per_group,
        };
        let export_dir = dir.path().join(&opts.export_id);
        local_export(&client, &export_dir, &opts, &|_, _| {})
            .await
            .unwrap();
        let export = Export::open(export_dir.to_str().unwrap(), None)
            .await
            .unwrap();
        let mut mapping = snap2dsql::plan::plan(&export, Some(&schema))
            .await
            .unwrap()
            .mapping;
        // `sales` -> `sales_dsql` (TARGET): source and target side by side in one database.
        for t in &mut mapping.tables {
            t.target_schema = format!("{}_dsql", t.target_schema);
        }
        mapping.validate("test mapping").unwrap();
        let mapping_path = dir.path().join("mapping.toml");
        mapping.save(&mapping_path).unwrap();
        let target_url = standin.url(db_name(url));
        Fixture {
            url: url.to_string(),
            standin,
            target_url,
            _dir: dir,
            export_dir,
            export: Arc::new(export),
            mapping,
            mapping_path,
        }
    }

    /// Saves an edited mapping for the CLI.
    pub(crate) fn save(&self) {
        self.mapping.save(&self.mapping_path).unwrap();
    }

    pub(crate) fn ns(&self) -> Uuid {
        self.mapping.migration.namespace
    }

    /// Ledger and target tables created through the stand-in, which then fails `occ` of the
    /// writing transactions' commits with an injected `40001 (OC000)`.
    pub(crate) async fn target(&self, occ: f64) -> Target {
        let target = Target::parse(&self.target_url).await.unwrap();
        self.standin.set_conflict_fraction(0.0);
        migrate::prepare_target(&target, &self.mapping, true)
            .await
            .unwrap();
        self.standin.set_conflict_fraction(occ);
        target
    }

    pub(crate) async fn chunks(&self, max_rows: u64) -> Vec<Chunk> {
        plan_chunks_with(&self.export, &self.mapping, max_rows, CHUNK_MAX_BYTES)
            .await
            .unwrap()
    }

    /// The load context, orphans scanned first as `run` does.
    pub(crate) async fn ctx(
        &self,
        target: &Target,
        options: LoadOptions,
    ) -> (LoadContext, Vec<OrphanReport>) {
        let (orphans, reports) = snap2dsql::load::orphans::scan(&self.export, &self.mapping)
            .await
            .unwrap();
        let ctx = LoadContext::new(
            self.export.clone(),
            Arc::new(self.mapping.clone()),
            target.clone(),
            orphans,
            options,
        );
        (ctx, reports)
    }

    pub(crate) fn args(&self, command: &str) -> Vec<String> {
        vec![
            command.into(),
            "--export".into(),
            self.export_dir.display().to_string(),
            "--mapping".into(),
            self.mapping_path.display().to_string(),
            "--target".into(),
            self.target_url.clone(),
        ]
    }
}

/// Small batches so even small tables take several transactions.
pub(crate) fn options(batch_rows: usize, connections: usize) -> LoadOptions {
    LoadOptions {
        batch_rows,
        connections,
        ..LoadOptions::default()
    }
}

pub(crate) async fn load(
    ctx: &LoadContext,
    chunks: &[Chunk],
    parallel: usize,
) -> Vec<ChunkOutcome> {
    migrate::load_chunks(ctx, chunks, parallel, &|_, _| {})
        .await
        .unwrap()
}

pub(crate) async fn scalar(db: &Client, sql: &str) -> i64 {
    db.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Rows the ledger records for `table` (0 before the ledger exists).
pub(crate) async fn ledger_rows(db: &Client, table: Option<&str>) -> i64 {
    let exists: bool = db
        .query_one("SELECT to_regclass('snap2dsql.ledger') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    if !exists {
        return 0;
    }
    db.query_one(
        "SELECT coalesce(sum(rows), 0)::bigint FROM snap2dsql.ledger WHERE $1::text IS NULL OR table_name = $1",
        &[&table],
    )
    .await
    .unwrap()
    .get(0)
}

/// The CLI binary: `$SNAP2DSQL_BIN`, or `target/debug/snap2dsql` beside this test binary
/// (`cargo test --workspace` builds it).
pub(crate) fn cli() -> PathBuf {
    if let Ok(bin) = std::env::var("SNAP2DSQL_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("snap2dsql");
    assert!(
        bin.exists(),
        "{} missing: run `cargo test --workspace` (or cargo build -p snap2dsql-cli)",
        bin.display()
    );
    bin
}

/// Old ids of target orders that differ from their source row, or whose `customer_id` is not
/// the new key of their customer (joined on old ids).
pub(crate) async fn mismatched_orders(db: &Client) -> Vec<i32> {
    let sql = format!(
        "SELECT s.id FROM sales.orders s
         JOIN {TARGET}.orders t ON t.old_id = s.id
         LEFT JOIN {TARGET}.customers c ON c.old_id = s.customer_id
         WHERE t.customer_id IS DISTINCT FROM c.id
            OR (t.order_date, t.order_timestamp, t.product_details, t.quantity, t.unit_cost, t.unit_weight)
               IS DISTINCT FROM
               (s.order_date, s.order_timestamp, s.product_details, s.quantity, s.unit_cost, s.unit_weight)
         ORDER BY s.id"
    );
    db.query(sql.as_str(), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Every target key is the deterministic key of its old id.
async fn assert_keys(db: &Client, ns: Uuid, source: &str, target: &str) {
    let rows = db
        .query(format!("SELECT id, old_id FROM {target}").as_str(), &[])
        .await
        .unwrap();
    assert!(!rows.is_empty(), "{target} is empty");
    for r in &rows {
        let id: Uuid = r.get(0);
        let old: i32 = r.get(1);
        assert_eq!(id, new_key(ns, source, old as i64), "{target} old_id {old}");
    }
}

/// The target holds exactly the source rows: same count, no duplicate and no missing old id,
/// the ledger's rows sum to the count, every key and reference rewritten, every value equal.
pub(crate) async fn assert_exact(db: &Client, ns: Uuid) {
    for table in ["customers", "orders"] {
        let source = scalar(db, &format!("SELECT count(*) FROM sales.{table}")).await;
        let target = scalar(db, &format!("SELECT count(*) FROM {TARGET}.{table}")).await;
        let distinct = scalar(
            db,
            &format!("SELECT count(DISTINCT old_id) FROM {TARGET}.{table}"),
        )
        .await;
        let missing = scalar(
            db,
            &format!(
                "SELECT count(*) FROM sales.{table} s
                 WHERE NOT EXISTS (SELECT 1 FROM {TARGET}.{table} t WHERE t.old_id = s.id)"
            ),
        )
        .await;
        let ledger = ledger_rows(db, Some(&format!("sales.{table}"))).await;
        assert_eq!(
            (target, distinct, missing, ledger),
            (source, source, 0, source),
            "sales.{table}: (target rows, distinct old ids, missing old ids, ledger rows)"
        );
        assert_keys(
            db,
            ns,
            &format!("sales.{table}"),
            &format!("{TARGET}.{table}"),
        )
        .await;
    }
    let bad_customers = scalar(
        db,
        &format!(
            "SELECT count(*) FROM sales.customers s JOIN {TARGET}.customers t ON t.old_id = s.id
             WHERE (t.username, t.first_name, t.last_name) IS DISTINCT FROM (s.username, s.first_name, s.last_name)"
        ),
    )
    .await;
    assert_eq!(bad_customers, 0, "customers whose values differ");
    assert_eq!(mismatched_orders(db).await, Vec::<i32>::new());
    // Every order's customer_id is a loaded customer's key (the source has no orphans).
    let referenced = scalar(
        db,
        &format!(
            "SELECT count(*) FROM {TARGET}.orders o JOIN {TARGET}.customers c ON c.id = o.customer_id"
        ),
    )
    .await;
    let orders = scalar(db, "SELECT count(*) FROM sales.orders").await;
    assert_eq!(
        referenced, orders,
        "orders whose customer_id names a loaded customer"
    );
}

/// A digest of a target table's contents, to prove it did not change.
async fn digest(db: &Client, table: &str) -> String {
    db.query_one(
        format!(
            "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
        )
        .as_str(),
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storefront_loads_with_keys_and_references_rewritten() {
    let url = storefront_db("load_keys", 300, 3_000);
    let f = Fixture::new(&url, None, 2_000, 500).await;
    let target = f.target(0.0).await;
    let chunks = f.chunks(1_000).await;
    assert!(chunks.len() >= 4, "several chunks: {}", chunks.len());
    let (ctx, reports) = f.ctx(&target, options(400, 3)).await;
    assert!(reports.is_empty(), "no orphans in the storefront");
    let outcomes = load(&ctx, &chunks, 2).await;
    let written: u64 = outcomes.iter().map(|o| o.rows_written).sum();
    assert_eq!(written, 3_300);
    assert!(outcomes.iter().all(|o| o.rows_already_committed == 0));
    let db = connect(&url).await;
    assert_exact(&db, f.ns()).await;
    // Batches stay inside the bound: at most 400 rows, one ledger row each.
    let widest = scalar(&db, "SELECT max(rows)::bigint FROM snap2dsql.ledger").await;
    assert!(widest <= 400, "a batch of {widest} rows");
    let batches = scalar(&db, "SELECT count(*) FROM snap2dsql.ledger").await;
    let expected: u64 = outcomes.iter().map(|o| o.batches_written).sum();
    assert_eq!(batches as u64, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rerun_of_a_finished_load_writes_nothing() {
    let url = storefront_db("load_rerun", 300, 3_000);
    let f = Fixture::new(&url, None, 2_000, 500).await;
    let target = f.target(0.0).await;
    let chunks = f.chunks(1_000).await;
    let (ctx, _) = f.ctx(&target, options(400, 3)).await;
    load(&ctx, &chunks, 2).await;
    let db = connect(&url).await;
    let ledger_before = scalar(&db, "SELECT count(*) FROM snap2dsql.ledger").await;
    let ledger_digest = digest(&db, "snap2dsql.ledger").await;
    let customers = digest(&db, &format!("{TARGET}.customers")).await;
    let orders = digest(&db, &format!("{TARGET}.orders")).await;

    // The target is re-prepared, as a rerun of `run` does.
    let target = f.target(0.0).await;
    let (ctx, _) = f.ctx(&target, options(400, 3)).await;
    let outcomes = load(&ctx, &chunks, 2).await;
    assert_eq!(outcomes.len(), chunks.len());
    for o in &outcomes {
        // Outcomes come in completion order.
        let c = chunks.iter().find(|c| c.id == o.chunk).unwrap();
        assert_eq!(o.rows_written, 0, "{}", o.chunk);
        assert_eq!(o.batches_written, 0, "{}", o.chunk);
        assert_eq!(o.rows_already_committed, c.rows, "{}", o.chunk);
    }
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM snap2dsql.ledger").await,
        ledger_before
    );
    assert_eq!(digest(&db, "snap2dsql.ledger").await, ledger_digest);
    assert_eq!(digest(&db, &format!("{TARGET}.customers")).await, customers);
    assert_eq!(digest(&db, &format!("{TARGET}.orders")).await, orders);
    assert_exact(&db, f.ns()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_points_then_a_rerun_loads_exactly_once() {
    let url = storefront_db("load_kill", 300, 40_000);
    let f = Fixture::new(&url, None, 10_000, 2_000).await;
    let total = 40_300i64;
    let mut args = f.args("run");
    args.extend(
        [
            "--create-tables",
            "--batch-rows",
            "100",
            "--chunk-rows",
            "4000",
            "--concurrency",
            "2",
            "--parallel-chunks",
            "2",
        ]
        .map(String::from),
    );
    let db = connect(&url).await;
    let logs = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0x5eed_2026_1125);
    let mut kills_mid_run = 0;
    let mut kill_points = Vec::new();
    for i in 0..7 {
        let log = std::fs::File::create(logs.path().join(format!("run-{i}.log"))).unwrap();
        let mut child = Command::new(cli())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        // Kill 0 lands during start-up; the others after a random number of further rows
        // committed, plus a random delay (mid-batch, mid-COMMIT, between chunks...).
        let before = ledger_rows(&db, None).await;
        let wait_rows = if i == 0 {
            0
        } else {
            rng.random_range(1..=30) * 100
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none()
            && ledger_rows(&db, None).await < before + wait_rows
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..40))).await;
        let alive = child.try_wait().unwrap().is_none();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let after = ledger_rows(&db, None).await;
        if alive && after < total {
            kills_mid_run += 1;
        }
        kill_points.push(after);
    }
    eprintln!("ledger rows after each SIGKILL: {kill_points:?} of {total}");
    assert!(
        kills_mid_run >= 5,
        "only {kills_mid_run} kills landed mid-run (ledger rows after each kill: {kill_points:?})"
    );
    let mut distinct = kill_points.clone();
    distinct.dedup();
    assert!(
        distinct.len() >= 4,
        "kills at different points: {kill_points:?}"
    );

    let report = logs.path().join("report.json");
    let status = Command::new(cli())
        .args(&args)
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "final run: {status}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_exact(&db, f.ns()).await;
    assert_eq!(ledger_rows(&db, None).await, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn injected_conflicts_are_retried_to_an_exact_load() {
    let url = storefront_db("load_occ", 300, 3_000);
    let f = Fixture::new(&url, None, 2_000, 500).await;
    let target = f.target(0.2).await;
    let chunks = f.chunks(1_000).await;
    let (ctx, _) = f.ctx(&target, options(50, 4)).await;
    let outcomes = load(&ctx, &chunks, 2).await;
    let retries: u64 = outcomes.iter().map(|o| o.retries).sum();
    let batches: u64 = outcomes.iter().map(|o| o.batches_written).sum();
    assert!(batches >= 66, "{batches} batches");
    assert!(
        retries > 0,
        "20% conflicts over {batches} batches, no retry"
    );
    let db = connect(&url).await;
    assert_exact(&db, f.ns()).await;
}

/// `docs.pages`: `rows` rows of 8 KiB random (incompressible) text.
const PAGES: &str = "CREATE SCHEMA docs;
CREATE TABLE docs.pages (id serial PRIMARY KEY, body text NOT NULL);
INSERT INTO docs.pages (body)
SELECT (SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, 256) i)
FROM generate_series(1, 3000) g;";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wide_rows_load_under_dsqls_10_mib_which_would_trip() {
    let url = pg().create_db("load_wide");
    pg().psql(db_name(&url), PAGES);
    let mut f = Fixture::new(&url, None, 10_000, 1_000).await;
    assert_eq!(f.mapping.tables[0].target(), "docs_dsql.pages");
    let db = connect(&url).await;
    let same = "SELECT count(*) FROM docs.pages s JOIN docs_dsql.pages t ON t.old_id = s.id AND t.body = s.body";

    // Default bounds (2,500 rows, 4 MiB): about 500 rows a batch, never near DSQL's limits.
    let target = f.target(0.0).await;
    let chunks = f.chunks(100_000).await;
    let (ctx, _) = f.ctx(&target, LoadOptions::default()).await;
    let outcomes = load(&ctx, &chunks, 1).await;
    assert_eq!(outcomes[0].rows_written, 3_000);
    assert_eq!(outcomes[0].retries, 0);
    assert_eq!(scalar(&db, same).await, 3_000);
    let (batches, max_bytes): (i64, i64) = {
        let r = db
            .query_one(
                "SELECT count(*), max(bytes) FROM snap2dsql.ledger WHERE table_name = 'docs.pages'",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(batches >= 6, "24 MiB in 4 MiB batches: {batches}");
    assert!(max_bytes <= 4 * 1024 * 1024, "a batch of {max_bytes} bytes");

    // The widest bounds validate() allows (2,999 rows, 8 MiB) are still inside DSQL's limits.
    let widest = LoadOptions {
        batch_rows: 2_999,
        batch_bytes: 8 * 1024 * 1024,
        ..LoadOptions::default()
    };
    widest.validate().unwrap();
    for bad in [
        LoadOptions {
            batch_rows: 3_000,
            ..LoadOptions::default()
        },
        LoadOptions {
            batch_bytes: 11 * 1024 * 1024,
            ..LoadOptions::default()
        },
    ] {
        assert!(matches!(bad.validate(), Err(Error::Usage(_))), "{bad:?}");
    }
    f.mapping.migration.id = "wide-max".into();
    f.mapping.tables[0].target_schema = "docs_max".into();
    let target = f.target(0.0).await;
    let (ctx, _) = f.ctx(&target, widest).await;
    let outcomes = load(&ctx, &chunks, 1).await;
    assert_eq!(outcomes[0].rows_written, 3_000);
    assert_eq!(outcomes[0].retries, 0);
    let max_bytes = scalar(
        &db,
        "SELECT max(bytes) FROM snap2dsql.ledger WHERE migration = 'wide-max'",
    )
    .await;
    assert!(
        max_bytes > 7 * 1024 * 1024 && max_bytes <= 8 * 1024 * 1024,
        "{max_bytes}"
    );

    // What the bounds protect from: the stand-in, as DSQL, refuses a transaction past 3,000
    // rows...
    let mut db = connect(&f.target_url).await;
    let insert = |n: u32| {
        format!(
            "INSERT INTO docs_dsql.pages (id, old_id, body)
             SELECT gen_random_uuid(), -g, 'x' FROM generate_series(1, {n}) g"
        )
    };
    let tx = db.transaction().await.unwrap();
    tx.batch_execute(&insert(1_500)).await.unwrap();
    tx.batch_execute(&insert(1_500)).await.unwrap();
    let e = tx.batch_execute(&insert(1)).await.unwrap_err();
    let d = e.as_db_error().expect("a server error");
    assert_eq!(
        (d.code().code(), d.message()),
        ("54000", "transaction row limit exceeded")
    );
    drop(tx);
    // ...and past 10 MiB sent (1,300 rows of 8 KiB: under the row limit, over the byte limit).
    let wide = |n: usize| {
        let rows: Vec<String> = (0..n)
            .map(|i| {
                let body: String = (0..256)
                    .map(|j| format!("{:032x}", (i * 256 + j) as u128 * 0x9e37_79b9_7f4a_7c15))
                    .collect();
                format!("(gen_random_uuid(), {}, '{body}')", -(i as i64) - 10_000)
            })
            .collect();
        format!(
            "INSERT INTO docs_dsql.pages (id, old_id, body) VALUES {}",
            rows.join(", ")
        )
    };
    let tx = db.transaction().await.unwrap();
    tx.batch_execute(&wide(1_000)).await.unwrap();
    let e = tx.batch_execute(&wide(300)).await.unwrap_err();
    let d = e.as_db_error().expect("a server error");
    assert_eq!(
        (d.code().code(), d.message()),
        ("54000", "transaction size limit 10mb exceeded")
    );
    assert_eq!(
        snap2dsql::error::classify_sqlstate(d.code().code()),
        ErrorClass::TooBig
    );
    drop(tx);
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM docs_dsql.pages").await,
        3_000
    );
}

/// Runs `snap2dsql status`; returns the exit code and `(rows, loaded)` per table.
fn status(f: &Fixture) -> (i32, Vec<(String, u64, u64)>) {
    let out = Command::new(cli()).args(f.args("status")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tables = stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((
                cols.first()?.to_string(),
                cols.get(1)?.parse().ok()?,
                cols.get(2)?.parse().ok()?,
            ))
        })
        .collect();
    (out.status.code().unwrap_or(-1), tables)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_shows_a_partial_load_then_a_complete_one() {
    let url = storefront_db("load_status", 300, 3_000);
    let f = Fixture::new(&url, None, 2_000, 500).await;
    let target = f.target(0.0).await;
    let chunks = f.chunks(1_000).await;
    let (ctx, _) = f.ctx(&target, options(400, 2)).await;
    // Only the first two chunks of orders.
    let some: Vec<Chunk> = chunks
        .iter()
        .filter(|c| c.table == "sales.orders")
        .take(2)
        .cloned()
        .collect();
    let partial: u64 = some.iter().map(|c| c.rows).sum();
    load(&ctx, &some, 2).await;
    let (code, tables) = status(&f);
    assert_eq!(code, 3, "{tables:?}");
    assert_eq!(
        tables,
        vec![
            ("sales.customers".to_string(), 300, 0),
            ("sales.orders".to_string(), 3_000, partial),
        ]
    );
    load(&ctx, &chunks, 2).await;
    let (code, tables) = status(&f);
    assert_eq!(code, 0, "{tables:?}");
    assert_eq!(
        tables,
        vec![
            ("sales.customers".to_string(), 300, 300),
            ("sales.orders".to_string(), 3_000, 3_000),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_connections_mid_load_still_load_exactly() {
    let url = storefront_db("load_terminate", 300, 40_000);
    let f = Fixture::new(&url, None, 10_000, 2_000).await;
    let target = f.target(0.0).await;
    let chunks = f.chunks(4_000).await;
    let (ctx, _) = f.ctx(&target, options(100, 2)).await;
    // A terminator beside the load: ends every loader session of this database upstream (the
    // stand-in then loses its upstream and closes the client's connection) every 150-400 ms
    // until the load ends.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let terminator = {
        let done = done.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let db = connect(&url).await;
            let mut rng = StdRng::seed_from_u64(8);
            let (mut rounds, mut terminated) = (0, 0);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(rng.random_range(150..400))).await;
                let n = scalar(
                    &db,
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                     WHERE application_name = 'snap2dsql' AND datname = current_database()
                       AND pid <> pg_backend_pid()",
                )
                .await;
                if n > 0 {
                    rounds += 1;
                    terminated += n;
                }
            }
            (rounds, terminated)
        })
    };
    let result = migrate::load_chunks(&ctx, &chunks, 2, &|_, _| {}).await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (rounds, terminated) = terminator.await.unwrap();
    let outcomes = result.unwrap();
    eprintln!("{terminated} connections dropped in {rounds} rounds");
    assert!(
        rounds >= 3,
        "connections dropped in only {rounds} rounds ({terminated} backends)"
    );
    let db = connect(&url).await;
    let retries: u64 = outcomes.iter().map(|o| o.retries).sum();
    assert!(retries > 0, "{terminated} connections dropped, no retry");
    assert_exact(&db, f.ns()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn data_error_from_the_server_names_the_batch_and_keeps_committed_batches() {
    let url = storefront_db("load_data_error", 300, 40_000);
    let f = Fixture::new(&url, None, 100_000, 5_000).await;
    let target = f.target(0.0).await;
    let chunks = f.chunks(100_000).await;
    let db = connect(&url).await;
    // Orders are exported in insertion order: old id 25000 is row 24999 of the one chunk.
    db.batch_execute(&format!(
        "ALTER TABLE {TARGET}.orders ADD CONSTRAINT no_25000 CHECK (old_id <> 25000)"
    ))
    .await
    .unwrap();
    let (ctx, _) = f.ctx(&target, options(1_000, 1)).await;
    let orders: Vec<Chunk> = chunks
        .iter()
        .filter(|c| c.table == "sales.orders")
        .cloned()
        .collect();
    assert_eq!(orders.len(), 1);
    let err = migrate::load_chunks(&ctx, &chunks, 1, &|_, _| {})
        .await
        .unwrap_err();
    let text = err.to_string();
    let Error::Batch {
        chunk,
        range,
        table,
        class,
        source,
        ..
    } = &err
    else {
        panic!("expected Error::Batch, got {text}");
    };
    assert_eq!(*class, ErrorClass::Data, "{text}");
    assert_eq!(err.class(), ErrorClass::Data);
    assert!(!err.is_retryable());
    assert_eq!(chunk, &orders[0].id);
    assert_eq!(table, "sales.orders");
    assert_eq!(range, "rows 24000..25000");
    assert_eq!(source.sqlstate(), Some("23514"), "{text}");
    assert!(text.contains(&orders[0].id), "{text}");
    assert!(text.contains("rows 24000..25000"), "{text}");
    // The server's own words, not just "db error".
    assert!(
        text.contains("violates check constraint \"no_25000\""),
        "{text}"
    );
    // The 24 batches before it stay committed and recorded, and only they are in the target.
    let ledger = ledger_rows(&db, Some("sales.orders")).await;
    assert_eq!(ledger, 24_000);
    let loaded = scalar(&db, &format!("SELECT count(*) FROM {TARGET}.orders")).await;
    assert_eq!(loaded, ledger);
    assert_eq!(
        scalar(
            &db,
            &format!("SELECT max(old_id)::bigint FROM {TARGET}.orders")
        )
        .await,
        24_000
    );

    // Fixed target, rerun: the rest loads, the committed batches are not written again.
    db.batch_execute(&format!(
        "ALTER TABLE {TARGET}.orders DROP CONSTRAINT no_25000"
    ))
    .await
    .unwrap();
    let outcomes = load(&ctx, &orders, 1).await;
    assert_eq!(
        (outcomes[0].rows_already_committed, outcomes[0].rows_written),
        (24_000, 16_000)
    );
    assert_exact(&db, f.ns()).await;
}
