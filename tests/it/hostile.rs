//! Hostile identifiers: schema, table and column names with quotes, spaces, unicode, upper case
//! and SQL fragments go through export, plan, DDL, load, post-load and verification quoted,
//! every time: the rows arrive exactly and nothing in a name executes.

use snap2dsql::chunk::plan_chunks;
use snap2dsql::export::Export;
use snap2dsql::load::{LoadContext, LoadOptions};
use snap2dsql::local_export::{LocalExportOptions, local_export};
use snap2dsql::migrate;
use snap2dsql::schema::SourceSchema;
use snap2dsql::target::Target;
use snap2dsql::verify::VerifyOptions;
use snap2dsql_tests::{connect, db_name, pg};
use std::sync::Arc;

/// A canary table that any executed fragment would drop, and tables whose names are fragments.
const HOSTILE: &str = r#"
CREATE TABLE public.students (id int PRIMARY KEY);
INSERT INTO public.students VALUES (1);
CREATE SCHEMA "we""ird Ünï";
CREATE TABLE "we""ird Ünï"."Robert'); DROP TABLE public.students;--" (
    "Id" serial PRIMARY KEY,
    "it's" text,
    "Ünïcödé" text,
    "select" int,
    "MixedCase" varchar(20),
    """quoted""" text,
    "x$1" numeric(8,2)
);
INSERT INTO "we""ird Ünï"."Robert'); DROP TABLE public.students;--"
    ("it's", "Ünïcödé", "select", "MixedCase", """quoted""", "x$1")
SELECT 'o''neil ' || g, 'ü ' || g || ' 😀', g, 'Row ' || g, '"' || g || '"', g / 7.0
FROM generate_series(1, 500) g;
CREATE TABLE "we""ird Ünï"."child; DELETE FROM public.students" (
    id serial PRIMARY KEY,
    "parent Id" int REFERENCES "we""ird Ünï"."Robert'); DROP TABLE public.students;--" ("Id"),
    "Value" text
);
INSERT INTO "we""ird Ünï"."child; DELETE FROM public.students" ("parent Id", "Value")
SELECT 1 + g % 500, $$'; DROP SCHEMA public CASCADE; --$$ || g FROM generate_series(1, 1200) g;
CREATE INDEX "idx ""x"" Ü" ON "we""ird Ünï"."Robert'); DROP TABLE public.students;--" ("MixedCase");
"#;

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_are_quoted_everywhere_and_load_exactly() {
    let url = pg().create_db("hostile");
    pg().psql(db_name(&url), HOSTILE);
    let client = connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = LocalExportOptions::new("hostile-export");
    opts.rows_per_file = 400;
    opts.rows_per_row_group = 150;
    let summary = local_export(&client, dir.path(), &opts, &|_, _| {})
        .await
        .unwrap();
    // "parent Id" has a space: Aurora skips such a table, and so does local-export, saying so.
    assert!(
        summary
            .skipped
            .iter()
            .any(|s| s.target.contains("child; DELETE FROM public.students")),
        "{:?}",
        summary.skipped
    );
    let export = Export::open(dir.path().to_str().unwrap(), None)
        .await
        .unwrap();
    let schema = SourceSchema::from_postgres(&client, "source")
        .await
        .unwrap();
    let mut mapping = snap2dsql::plan::plan(&export, Some(&schema))
        .await
        .unwrap()
        .mapping;
    // Load beside the source, into another hostile schema name.
    for t in &mut mapping.tables {
        t.target_schema = r#"dst "Ü"; DROP TABLE public.students"#.into();
    }
    mapping.validate("hostile mapping").unwrap();
    // Written through the DSQL stand-in, 10% of commits failing with an injected conflict.
    let standin = snap2dsql_tests::standin::start().await;
    let target = Target::parse(&standin.url(db_name(&url))).await.unwrap();
    migrate::prepare_target(&target, &mapping, true)
        .await
        .unwrap();
    standin.set_conflict_fraction(0.1);
    let chunks = plan_chunks(&export, &mapping).await.unwrap();
    let (orphans, _) = snap2dsql::load::orphans::scan(&export, &mapping)
        .await
        .unwrap();
    let export = Arc::new(export);
    let mapping = Arc::new(mapping);
    let ctx = LoadContext::new(
        export.clone(),
        mapping.clone(),
        target.clone(),
        orphans,
        LoadOptions {
            batch_rows: 100,
            ..LoadOptions::default()
        },
    );
    let outcomes = migrate::load_chunks(&ctx, &chunks, 2, &|_, _| {})
        .await
        .unwrap();
    // 500 rows, and the canary's own row (public.students is exported too).
    assert_eq!(outcomes.iter().map(|o| o.rows_written).sum::<u64>(), 501);
    // Indexes on both old keys and on "MixedCase", under their quoted names.
    assert_eq!(migrate::post_load(&target, &mapping).await.unwrap(), 3);
    let report = snap2dsql::verify::verify(
        export,
        mapping.clone(),
        &target,
        &VerifyOptions::default(),
        &|_, _| {},
    )
    .await
    .unwrap();
    assert!(report.ok, "{report:#?}");

    // Values equal the source's, column by column, through the quoted names.
    let same: i64 = client
        .query_one(
            r#"SELECT count(*) FROM "we""ird Ünï"."Robert'); DROP TABLE public.students;--" s
               JOIN "dst ""Ü""; DROP TABLE public.students"."Robert'); DROP TABLE public.students;--" t
                 ON t."old_Id" = s."Id"
               WHERE (t."it's", t."Ünïcödé", t."select", t."MixedCase", t."""quoted""", t."x$1")
                     = (s."it's", s."Ünïcödé", s."select", s."MixedCase", s."""quoted""", s."x$1")"#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(same, 500);
    // Nothing in a name executed: the canary is there, with its row.
    let canary: i64 = client
        .query_one("SELECT count(*) FROM public.students", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(canary, 1);
    let index: i64 = client
        .query_one(
            r#"SELECT count(*) FROM pg_indexes
               WHERE schemaname = 'dst "Ü"; DROP TABLE public.students'"#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        index, 5,
        "2 primary keys, 2 old-key indexes, the MixedCase index"
    );
}
