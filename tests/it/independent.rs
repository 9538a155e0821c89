//! Verification does not trust the loader: a conversion corrupted inside the loader (a test-only
//! hook puts dates of one year a day late) loads without error, and verify, whose export side
//! does not use the loader's converter, reports exactly the damaged rows and column.

use snap2dsql::convert::hooks;
use snap2dsql::verify::{DiffKind, Status, VerifyOptions, verify};
use snap2dsql_tests::{db_name, export_and_plan, load_fresh, pg};

#[tokio::test(flavor = "multi_thread")]
async fn a_date_the_loader_puts_a_day_off_is_reported_by_row() {
    let src = pg().create_db("hooksrc");
    pg().psql(
        db_name(&src),
        "CREATE TABLE public.births (id serial PRIMARY KEY, born date, name text); \
         INSERT INTO public.births (born, name) SELECT CASE WHEN g % 10 = 3 THEN date '1837-06-15' + g \
           ELSE date '1990-01-01' + g END, 'n' || g FROM generate_series(1, 100) g;",
    );
    let (export, mapping, _dir) = export_and_plan(&src, "hook-export").await;
    // Year 1837 is used by no other test.
    hooks::shift_dates_of_year("1837");
    let loaded = load_fresh(&export, &mapping, "hookdst").await;
    hooks::unshift_dates_of_year("1837");
    let (url, target, _standin) = loaded;
    let late = pg().psql(
        db_name(&url),
        "SELECT count(*) FROM public.births WHERE born = date '1837-06-15' + old_id + 1",
    );
    assert_eq!(
        late.trim(),
        "10",
        "the hook put the 1837 dates a day late in the target"
    );
    let report = verify(
        export.clone(),
        mapping.clone(),
        &target,
        &VerifyOptions {
            max_listed: 100,
            ..VerifyOptions::default()
        },
        &|_, _| {},
    )
    .await
    .unwrap();
    let t = report.table("public.births").unwrap();
    assert_eq!(t.status, Status::Mismatch);
    assert_eq!((t.missing, t.extra, t.differing), (0, 0, 10), "{t:#?}");
    let mut olds: Vec<u32> = t
        .differences
        .iter()
        .map(|d| {
            assert_eq!(d.kind, DiffKind::Differs);
            assert_eq!(d.columns.len(), 1);
            let c = &d.columns[0];
            assert_eq!(c.column, "born");
            let old: u32 = d.old_key.as_deref().unwrap().parse().unwrap();
            let day = |t: &Option<String>| t.clone().unwrap();
            // The export's date, and the target's one day later.
            assert!(day(&c.export).starts_with("1837-"), "{d:#?}");
            assert_ne!(c.export, c.target);
            old
        })
        .collect();
    olds.sort();
    assert_eq!(olds, (0..10).map(|k| 3 + 10 * k).collect::<Vec<u32>>());
}
