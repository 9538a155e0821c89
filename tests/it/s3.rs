//! Exports in S3 (the AWS emulator): found, planned and loaded the same as local ones.

use snap2dsql::export::Export;
use snap2dsql::load::{LoadContext, LoadOptions};
use snap2dsql::local_export::{LocalExportOptions, local_export};
use snap2dsql::store::Store;
use snap2dsql::target::Target;
use snap2dsql_tests::{connect, moto, pg, upload_dir};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread")]
async fn export_in_s3_is_planned_and_loaded_like_a_local_one() {
    let src = pg().storefront_db("s3src", 200, 2500);
    let dir = tempfile::tempdir().unwrap();
    let client = connect(&src).await;
    let mut opts = LocalExportOptions::new("s3-export-1");
    opts.rows_per_file = 1000;
    opts.rows_per_row_group = 400;
    local_export(&client, dir.path(), &opts, &|_, _| {})
        .await
        .unwrap();

    let s3 = moto().s3();
    let bucket = format!("snap2dsql-test-{}", std::process::id());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let uploaded = upload_dir(&s3, dir.path(), &bucket, "exports/s3-export-1").await;
    assert!(uploaded >= 6, "uploaded {uploaded} objects");

    let remote = Export::open_store(
        Store::S3 {
            client: s3.clone(),
            bucket: bucket.clone(),
            prefix: "exports/s3-export-1".into(),
        },
        None,
    )
    .await
    .unwrap();
    let local = Export::open(dir.path().to_str().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(remote.database, local.database);
    let files = |e: &Export| -> Vec<(String, Vec<String>)> {
        e.tables
            .iter()
            .map(|t| {
                (
                    t.qualified(),
                    t.files.iter().map(|f| f.key.clone()).collect(),
                )
            })
            .collect()
    };
    assert_eq!(files(&remote), files(&local));
    // orders: 2,500 rows, 1,000 a file -> 3 part files, _SUCCESS skipped.
    assert_eq!(remote.table("sales.orders").unwrap().files.len(), 3);

    let remote_plan = snap2dsql::plan::plan(&remote, None).await.unwrap();
    let local_plan = snap2dsql::plan::plan(&local, None).await.unwrap();
    assert_eq!(remote_plan.mapping, local_plan.mapping);
    let orders = remote_plan
        .report
        .tables
        .iter()
        .find(|t| t.source == "sales.orders")
        .unwrap();
    // 400 rows a row group: 3 + 3 + 2.
    assert_eq!((orders.rows, orders.files, orders.row_groups), (2500, 3, 8));

    // Load from S3 (ranged GETs of footers and row groups) through the DSQL stand-in.
    let standin = snap2dsql_tests::standin::start().await;
    let target = Target::parse(&standin.db("s3dst")).await.unwrap();
    let mapping = remote_plan.mapping;
    snap2dsql::migrate::prepare_target(&target, &mapping, true)
        .await
        .unwrap();
    let chunks = snap2dsql::chunk::plan_chunks(&remote, &mapping)
        .await
        .unwrap();
    let (orphans, reports) = snap2dsql::load::orphans::scan(&remote, &mapping)
        .await
        .unwrap();
    assert!(reports.is_empty());
    let ctx = LoadContext::new(
        Arc::new(remote),
        Arc::new(mapping.clone()),
        target.clone(),
        orphans,
        LoadOptions::default(),
    );
    let outcomes = snap2dsql::migrate::load_chunks(&ctx, &chunks, 2, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(outcomes.iter().map(|o| o.rows_written).sum::<u64>(), 2700);
    let counts = snap2dsql::migrate::count_target(&target, &mapping)
        .await
        .unwrap();
    assert_eq!(counts["sales.customers"], 200);
    assert_eq!(counts["sales.orders"], 2500);
}

#[tokio::test(flavor = "multi_thread")]
async fn incomplete_export_in_s3_is_refused() {
    let s3 = moto().s3();
    let bucket = format!("snap2dsql-incomplete-{}", std::process::id());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let info = r#"{"exportTaskIdentifier":"half","status":"IN_PROGRESS","percentProgress":40}"#;
    s3.put_object()
        .bucket(&bucket)
        .key("half/export_info_half.json")
        .body(info.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    let err = Export::open_store(
        Store::S3 {
            client: s3,
            bucket,
            prefix: "half".into(),
        },
        None,
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, snap2dsql::Error::ExportNotComplete { .. }),
        "{msg}"
    );
    assert!(msg.contains("half") && msg.contains("IN_PROGRESS"), "{msg}");
}
