//! Verification in parts (`shared/src/verify/parts.rs`), as the pipeline runs it: the same report
//! as verifying whole, and rows outside every generated key found.

use super::*;
use snap2dsql::verify::parts;

/// The verification in parts (the pipeline's `PlanVerify`, `VerifyPart`s and `Verify`), run
/// here in-process.
async fn verify_in_parts(
    export: &Arc<Export>,
    mapping: &Arc<Mapping>,
    target: &Target,
    item_rows: u64,
) -> (VerifyReport, Vec<parts::VerifyItem>) {
    let options = VerifyOptions::default();
    let nulled = snap2dsql::verify::expect::orphans::find(export, mapping)
        .await
        .unwrap();
    let items = parts::plan_items(export, mapping, target, item_rows, &options)
        .await
        .unwrap();
    let mut combiner = parts::Combiner::new(mapping, &options).unwrap();
    for item in &items {
        let part = parts::run_item(
            Some(export.clone()),
            mapping,
            target,
            &nulled,
            item,
            &options,
        )
        .await
        .unwrap();
        // Through its JSON, as the part objects in S3 carry it.
        let json = serde_json::to_vec(&part).unwrap();
        combiner
            .add(&serde_json::from_slice(&json).unwrap())
            .unwrap();
    }
    let report = combiner
        .finish(export.clone(), mapping.clone(), target, &nulled, &options)
        .await
        .unwrap();
    (report, items)
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_in_parts_equals_the_whole_and_finds_rows_outside_every_part() {
    let (export, mapping, _dir) = storefront().await;
    let (url, target, _standin) = load_fresh(&export, &mapping, "vparts").await;
    let whole = run_verify(&export, &mapping, &target).await;
    let (report, items) = verify_in_parts(&export, &mapping, &target, 40).await;
    assert!(whole.ok && report.ok, "{report:#?}");
    // 100 customers and 600 orders by 40 rows: uuid key ranges and runs of row groups.
    let target_parts = |table: &str| -> Vec<&parts::KeyRange> {
        items
            .iter()
            .filter(|i| i.table == table)
            .filter_map(|i| match &i.side {
                parts::Side::Target { range } => Some(range),
                parts::Side::Export { .. } => None,
            })
            .collect()
    };
    let orders = target_parts("sales.orders");
    assert_eq!(orders.len(), 15, "{orders:#?}");
    assert!(orders[0].from.is_none() && orders[14].to.is_none());
    assert!(
        orders.windows(2).all(|w| w[0].to == w[1].from),
        "{orders:#?}"
    );
    assert!(items.len() >= 20, "{} items", items.len());
    for t in &whole.tables {
        let p = report.table(&t.source).unwrap();
        assert_eq!(
            (p.status, p.rows_in_export, p.rows_in_target),
            (t.status, t.rows_in_export, t.rows_in_target)
        );
        assert_eq!(
            (&p.fingerprint_export, &p.fingerprint_target),
            (&t.fingerprint_export, &t.fingerprint_target)
        );
        assert_eq!(
            serde_json::to_value(&p.columns).unwrap(),
            serde_json::to_value(&t.columns).unwrap(),
            "{}",
            t.source
        );
    }

    // A row below every generated key (in the first, open range), a row above them (in the last)
    // and a deleted row: all three named, as the whole verification names them.
    pg().psql(
        db_name(&url),
        "INSERT INTO sales.customers (id, old_id, username) VALUES \
         ('00000000-0000-0000-0000-000000000000', 100001, 'first'), \
         ('ffffffff-ffff-ffff-ffff-ffffffffffff', 100002, 'last'); \
         DELETE FROM sales.orders WHERE old_id = 7",
    );
    let whole = run_verify(&export, &mapping, &target).await;
    let (report, _) = verify_in_parts(&export, &mapping, &target, 40).await;
    assert!(!report.ok);
    for table in ["sales.customers", "sales.orders"] {
        let (p, w) = (report.table(table).unwrap(), whole.table(table).unwrap());
        assert_eq!(
            (p.missing, p.extra, p.differing),
            (w.missing, w.extra, w.differing)
        );
        assert_eq!(
            serde_json::to_value(&p.differences).unwrap(),
            serde_json::to_value(&w.differences).unwrap()
        );
    }
    let c = report.table("sales.customers").unwrap();
    assert_eq!((c.extra, c.rows_in_target - c.rows_in_export), (2, 2));
    assert_eq!(report.table("sales.orders").unwrap().missing, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_in_parts_cuts_integer_keys_between_the_targets_smallest_and_largest() {
    let src = pg().create_db("vints");
    pg().psql(
        db_name(&src),
        "CREATE TABLE public.plain (k bigint PRIMARY KEY, v text); \
         INSERT INTO public.plain SELECT g * 3, 'v' || g FROM generate_series(1, 1000) g;",
    );
    // Planned with the source schema, then the reviewer keeps the source's own bigint key.
    let (export, planned, _dir) = export_and_plan_with(&src, "vints-export", Some(&src)).await;
    let mut mapping = (*planned).clone();
    let table = &mut mapping.tables[0];
    assert_eq!(table.primary_key, ["k"]);
    let k = table.columns.iter_mut().find(|c| c.name == "k").unwrap();
    (k.rewrite, k.target_type, k.keep_old) = (Rewrite::None, PgType::BigInt, None);
    (k.default, k.note) = (None, None);
    table
        .indexes
        .retain(|i| !i.columns.contains(&"old_k".to_string()));
    mapping.validate("kept key").unwrap();
    let mapping = Arc::new(mapping);
    let (url, target, _standin) = load_fresh(&export, &mapping, "vintsdst").await;
    let (report, items) = verify_in_parts(&export, &mapping, &target, 100).await;
    assert!(report.ok, "{report:#?}");
    let ranges: Vec<&parts::KeyRange> = items
        .iter()
        .filter_map(|i| match &i.side {
            parts::Side::Target { range } => Some(range),
            parts::Side::Export { .. } => None,
        })
        .collect();
    // Keys 3..=3000 in 10 ranges: cuts at 3 + 2998 * i / 10, the ends open.
    assert_eq!(ranges.len(), 10, "{ranges:#?}");
    assert_eq!(ranges[0].column.as_deref(), Some("k"));
    assert_eq!(
        (ranges[0].from.clone(), ranges[0].to.clone()),
        (None, Some(parts::KeyBound::Int(302)))
    );
    assert_eq!(ranges[9].from, Some(parts::KeyBound::Int(2701)));
    assert_eq!(ranges[9].to, None);

    // Rows below and above every key, and one deleted: named as the whole verification does.
    pg().psql(
        db_name(&url),
        "INSERT INTO public.plain VALUES (-100, 'below'), (1000000, 'above'); \
         DELETE FROM public.plain WHERE k = 300",
    );
    let whole = run_verify(&export, &mapping, &target).await;
    let (report, _) = verify_in_parts(&export, &mapping, &target, 100).await;
    let (p, w) = (
        report.table("public.plain").unwrap(),
        whole.table("public.plain").unwrap(),
    );
    assert_eq!((p.missing, p.extra, p.differing), (1, 2, 0), "{p:#?}");
    assert_eq!(
        serde_json::to_value(&p.differences).unwrap(),
        serde_json::to_value(&w.differences).unwrap()
    );
}
