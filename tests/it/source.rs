//! `verify --source`: the target against the live source, page by key; changes made in the
//! source after the snapshot are reported apart from migration errors.

use snap2dsql::pages::PageSizing;
use snap2dsql::verify::source::verify_source;
use snap2dsql::verify::{DiffKind, Status, VerifyOptions};
use snap2dsql_tests::{db_name, export_and_plan, load_fresh, pg};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn source_changes_after_the_snapshot_are_not_migration_errors() {
    let src = pg().storefront_db("srcsrc", 100, 600);
    let (export, mapping, _dir) = export_and_plan(&src, "src-export").await;
    let (url, target, _standin) = load_fresh(&export, &mapping, "srcdst").await;
    let options = VerifyOptions {
        pages: PageSizing {
            first_rows: 50,
            min_rows: 5,
            max_rows: 120,
            target: Duration::from_secs(10),
        },
        max_listed: 50,
        ..VerifyOptions::default()
    };
    let report = verify_source(export.clone(), mapping.clone(), &target, &src, &options)
        .await
        .unwrap();
    assert!(report.ok, "{report:#?}");
    let orders = report.table("sales.orders").unwrap();
    assert_eq!((orders.rows_in_export, orders.rows_in_target), (600, 600));
    let a = orders.after_snapshot.as_ref().unwrap();
    assert_eq!((a.changed, a.inserted, a.deleted), (0, 0, 0));

    // The source moves on after the snapshot...
    pg().psql(
        db_name(&src),
        "UPDATE sales.customers SET username = 'renamed' WHERE id = 6; \
         INSERT INTO sales.orders SELECT 100000, customer_id, order_date, order_timestamp, product_details, \
           quantity, unit_cost, unit_weight FROM sales.orders WHERE id = 1; \
         DELETE FROM sales.orders WHERE id = 20;",
    );
    // ... and the migration went wrong on two rows.
    pg().psql(
        db_name(&url),
        "UPDATE sales.orders SET unit_cost = unit_cost + 0.01 WHERE old_id = 10; \
         DELETE FROM sales.orders WHERE old_id = 7;",
    );
    let report = verify_source(export.clone(), mapping.clone(), &target, &src, &options)
        .await
        .unwrap();
    assert!(!report.ok);
    let customers = report.table("sales.customers").unwrap();
    assert_eq!(customers.status, Status::Match, "{customers:#?}");
    let a = customers.after_snapshot.as_ref().unwrap();
    assert_eq!((a.changed, a.inserted, a.deleted), (1, 0, 0));
    assert_eq!(a.rows[0].old_key.as_deref(), Some("6"));
    assert_eq!(a.rows[0].columns[0].column, "username");
    assert_eq!(a.rows[0].columns[0].export.as_deref(), Some("renamed"));

    let orders = report.table("sales.orders").unwrap();
    assert_eq!(orders.status, Status::Mismatch);
    assert_eq!(
        (orders.missing, orders.extra, orders.differing),
        (1, 0, 1),
        "{orders:#?}"
    );
    let errors: Vec<(DiffKind, Option<&str>)> = orders
        .differences
        .iter()
        .map(|d| (d.kind, d.old_key.as_deref()))
        .collect();
    assert!(
        errors.contains(&(DiffKind::Missing, Some("7"))),
        "{errors:?}"
    );
    assert!(
        errors.contains(&(DiffKind::Differs, Some("10"))),
        "{errors:?}"
    );
    let a = orders.after_snapshot.as_ref().unwrap();
    assert_eq!((a.changed, a.inserted, a.deleted), (0, 1, 1), "{a:#?}");
    let after: Vec<(DiffKind, Option<&str>)> = a
        .rows
        .iter()
        .map(|d| (d.kind, d.old_key.as_deref()))
        .collect();
    assert!(
        after.contains(&(DiffKind::Missing, Some("100000"))),
        "{after:?}"
    );
    assert!(after.contains(&(DiffKind::Extra, Some("20"))), "{after:?}");
}
