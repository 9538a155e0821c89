//! Orphan references: the scan before the load (in memory, or by spilled partitions within a
//! memory budget: the same result) and each `on_orphan` policy through a real load.

use crate::load::{
    Fixture, TARGET, cli, ledger_rows, load, mismatched_orders, options, scalar, storefront_db,
};
use snap2dsql::error::{Error, ErrorClass};
use snap2dsql::keys::new_key;
use snap2dsql::load::orphans::OrphanReport;
use snap2dsql::mapping::OnOrphan;
use snap2dsql::schema::SourceSchema;
use snap2dsql_tests::{connect, db_name, pg};
use std::process::Command;
use uuid::Uuid;

/// A storefront with one orphan order (id 7 -> customer 999999), the FK dropped, planned from
/// the schema as it was before (so customer_id is a rewritten reference).
async fn orphan_fixture(prefix: &str, on_orphan: OnOrphan) -> Fixture {
    orphan_fixture_with(prefix, on_orphan, "").await
}

/// [`orphan_fixture`], with `more` SQL run on the source before the export.
async fn orphan_fixture_with(prefix: &str, on_orphan: OnOrphan, more: &str) -> Fixture {
    let url = storefront_db(prefix, 300, 3_000);
    let schema = SourceSchema::from_postgres(&connect(&url).await, "source")
        .await
        .unwrap();
    pg().psql(
        db_name(&url),
        &format!(
            "ALTER TABLE sales.orders DROP CONSTRAINT orders_customer_id_fkey;
             UPDATE sales.orders SET customer_id = 999999 WHERE id = 7; {more}"
        ),
    );
    let mut f = Fixture::new(&url, Some(schema), 2_000, 500).await;
    let orders = f
        .mapping
        .tables
        .iter_mut()
        .find(|t| t.source == "sales.orders")
        .unwrap();
    let col = orders
        .columns
        .iter_mut()
        .find(|c| c.name == "customer_id")
        .unwrap();
    assert_eq!(col.references.as_deref(), Some("sales.customers"));
    col.on_orphan = Some(on_orphan);
    f.save();
    f
}

/// The `customer_id` value at a location, read straight from the Parquet file.
fn parquet_value(file: &str, row_group: usize, row: usize) -> i32 {
    use arrow::array::{Array, Int32Array};
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap()).unwrap();
    let schema = builder.parquet_schema();
    let idx = (0..schema.num_columns())
        .find(|i| schema.column(*i).name() == "customer_id")
        .unwrap();
    let mask = ProjectionMask::leaves(schema, [idx]);
    let reader = builder
        .with_projection(mask)
        .with_row_groups(vec![row_group])
        .build()
        .unwrap();
    let mut seen = 0;
    for batch in reader {
        let batch = batch.unwrap();
        let col = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        if row < seen + col.len() {
            return col.value(row - seen);
        }
        seen += col.len();
    }
    panic!("row {row} is not in row group {row_group} of {file}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orphan_fail_stops_before_anything_is_written() {
    let f = orphan_fixture("load_orphan_fail", OnOrphan::Fail).await;
    // The scan names the orphan exactly.
    let err = snap2dsql::load::orphans::scan(&f.export, &f.mapping)
        .await
        .unwrap_err();
    let Error::Orphan {
        location,
        value,
        parent,
    } = &err
    else {
        panic!("expected Error::Orphan, got {err}");
    };
    assert_eq!(value, "999999");
    assert_eq!(parent, "sales.customers");
    assert_eq!(location.column, "customer_id");
    assert!(location.file.contains("sales.orders"), "{}", location.file);
    assert_eq!(
        parquet_value(&location.file, location.row_group, location.row),
        999_999
    );
    let text = err.to_string();
    for part in [
        location.file.as_str(),
        &format!("row group {}", location.row_group),
        &format!("row {}", location.row),
        "\"customer_id\"",
        "999999",
    ] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
    assert_eq!(err.class(), ErrorClass::Data);

    // `run` stops on it before writing a row.
    let mut args = f.args("run");
    args.extend(["--create-tables"].map(String::from));
    let out = Command::new(cli()).args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("orphan reference 999999"), "{stderr}");
    let db = connect(&f.url).await;
    assert_eq!(ledger_rows(&db, None).await, 0);
    for table in ["customers", "orders"] {
        let n = scalar(&db, &format!("SELECT count(*) FROM {TARGET}.{table}")).await;
        assert_eq!(n, 0, "{TARGET}.{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_orphan_scan_by_spilled_partitions_finds_what_the_in_memory_scan_finds() {
    use snap2dsql::load::orphans::{BYTES_PER_KEY, Budget, scan_with};
    // 31 orphan orders (id 7, and every 97th order to a customer that never existed) and a
    // few NULL references, which are not orphans.
    let f = orphan_fixture_with(
        "load_orphan_spill",
        OnOrphan::Null,
        "UPDATE sales.orders SET customer_id = 1000000 + id WHERE id % 97 = 0;
         UPDATE sales.orders SET customer_id = NULL WHERE id % 101 = 0;",
    )
    .await;
    let source = connect(&f.url).await;
    let expected = scalar(
        &source,
        "SELECT count(*) FROM sales.orders o WHERE o.customer_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM sales.customers c WHERE c.id = o.customer_id)",
    )
    .await;
    assert_eq!(expected, 31);
    let spill_dir = tempfile::tempdir().unwrap();
    // 2 KiB holds 64 keys: the 300 customers' keys go to 10 partitions on disk.
    let tiny = Budget {
        memory_bytes: 2_048,
        spill_dir: spill_dir.path().to_path_buf(),
    };
    let (whole, whole_reports, whole_stats) = scan_with(&f.export, &f.mapping, &Budget::default())
        .await
        .unwrap();
    let (parts, parts_reports, parts_stats) =
        scan_with(&f.export, &f.mapping, &tiny).await.unwrap();
    assert_eq!(whole_stats.partitions, 1);
    assert_eq!(whole_stats.max_keys_in_memory, 300);
    assert!(parts_stats.partitions >= 8, "{parts_stats:?}");
    assert!(
        parts_stats.max_keys_in_memory * BYTES_PER_KEY <= tiny.memory_bytes,
        "{parts_stats:?}"
    );
    eprintln!(
        "orphan scan: whole {whole_stats:?}; in 2 KiB: {parts_stats:?} ({} bytes of keys at most)",
        parts_stats.max_keys_in_memory * BYTES_PER_KEY
    );
    // The same orphan values, counts and example rows; the spill files are gone.
    assert_eq!(parts, whole);
    let json = |r: &Vec<OrphanReport>| serde_json::to_value(r).unwrap();
    assert_eq!(json(&parts_reports), json(&whole_reports));
    assert_eq!(whole_reports.len(), 1);
    assert_eq!(whole_reports[0].count as i64, expected);
    assert_eq!(whole_reports[0].examples.len(), 20);
    let values = &whole[&("sales.orders".to_string(), "customer_id".to_string())];
    assert_eq!(values.len(), 31);
    assert!(values.contains(&999_999) && values.contains(&(1_000_000 + 97)));
    assert_eq!(std::fs::read_dir(spill_dir.path()).unwrap().count(), 0);

    // on_orphan = "fail": both stop at the same first orphan row.
    let mut failing = f.mapping.clone();
    for t in &mut failing.tables {
        for c in &mut t.columns {
            if c.on_orphan.is_some() {
                c.on_orphan = Some(OnOrphan::Fail);
            }
        }
    }
    let first = |r: snap2dsql::error::Result<_>| match r {
        Err(Error::Orphan {
            location, value, ..
        }) => (location, value),
        Err(e) => panic!("expected an orphan, got {e}"),
        Ok(_) => panic!("expected an orphan"),
    };
    let whole_first = first(
        scan_with(&f.export, &failing, &Budget::default())
            .await
            .map(|_| ()),
    );
    let parts_first = first(scan_with(&f.export, &failing, &tiny).await.map(|_| ()));
    assert_eq!(whole_first, parts_first);
    assert_eq!(whole_first.1, "999999");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orphan_null_loads_null_and_reports_it() {
    let f = orphan_fixture("load_orphan_null", OnOrphan::Null).await;
    let target = f.target(0.0).await;
    let chunks = f.chunks(1_000).await;
    let (ctx, reports) = f.ctx(&target, options(400, 3)).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert_eq!(
        (
            r.table.as_str(),
            r.column.as_str(),
            r.parent.as_str(),
            r.on_orphan.as_str(),
            r.count
        ),
        ("sales.orders", "customer_id", "sales.customers", "null", 1)
    );
    assert_eq!(r.examples.len(), 1);
    assert!(r.examples[0].contains("value 999999"), "{:?}", r.examples);
    assert!(
        r.examples[0].contains("\"customer_id\""),
        "{:?}",
        r.examples
    );
    let outcomes = load(&ctx, &chunks, 2).await;
    assert_eq!(outcomes.iter().map(|o| o.orphans_loaded).sum::<u64>(), 1);
    let db = connect(&f.url).await;
    let row = db
        .query_one(
            &format!("SELECT customer_id FROM {TARGET}.orders WHERE old_id = 7"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<Uuid>>(0), None);
    // Every other order exact; the orphan compares equal too (NULL customer, no customer 999999).
    assert_eq!(mismatched_orders(&db).await, Vec::<i32>::new());
    let n = scalar(&db, &format!("SELECT count(*) FROM {TARGET}.orders")).await;
    assert_eq!(n, 3_000);
    assert_eq!(
        scalar(
            &db,
            &format!("SELECT count(*) FROM {TARGET}.orders WHERE customer_id IS NULL")
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orphan_keep_loads_the_deterministic_key() {
    let f = orphan_fixture("load_orphan_keep", OnOrphan::Keep).await;
    let target = f.target(0.0).await;
    let chunks = f.chunks(1_000).await;
    let (ctx, reports) = f.ctx(&target, options(400, 3)).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(
        (reports[0].count, reports[0].on_orphan.as_str()),
        (1, "keep")
    );
    let outcomes = load(&ctx, &chunks, 2).await;
    assert_eq!(outcomes.iter().map(|o| o.orphans_loaded).sum::<u64>(), 1);
    let db = connect(&f.url).await;
    // Only the orphan differs from "customer_id = its customer's key": it has no customer.
    assert_eq!(mismatched_orders(&db).await, vec![7]);
    let row = db
        .query_one(
            &format!("SELECT customer_id FROM {TARGET}.orders WHERE old_id = 7"),
            &[],
        )
        .await
        .unwrap();
    let kept: Uuid = row.get(0);
    assert_eq!(kept, new_key(f.ns(), "sales.customers", 999_999));
    let n = scalar(&db, &format!("SELECT count(*) FROM {TARGET}.orders")).await;
    assert_eq!(n, 3_000);
}
