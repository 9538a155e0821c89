//! Reading an export and planning its migration, against a real PostgreSQL: the storefront's plan
//! gives the seed's hand-written DSQL DDL, every exported type survives plan + load exactly, bad
//! exports fail naming what is wrong, and the `plan` and `key` commands do what they say.

use snap2dsql::chunk::plan_chunks;
use snap2dsql::ddl::{self, Statement};
use snap2dsql::error::Error;
use snap2dsql::export::Export;
use snap2dsql::load::{LoadContext, LoadOptions, orphans};
use snap2dsql::local_export::{LocalExportOptions, local_export};
use snap2dsql::mapping::{ColumnMapping, Mapping, OnOrphan, Rewrite, TableMapping};
use snap2dsql::migrate;
use snap2dsql::plan::{Plan, plan};
use snap2dsql::schema::SourceSchema;
use snap2dsql::target::Target;
use snap2dsql::types::PgType;
use snap2dsql_tests::standin::{self, Standin};
use snap2dsql_tests::{connect, db_name, parquet_files, pg};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const EXPORT_ID: &str = "plan-test";

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A fresh database holding scripts/storefront.sql with the given sizes.
fn storefront_db(customers: u32, orders: u32) -> String {
    pg().storefront_db("plan_storefront", customers, orders)
}

/// `local-export` of `url` into a fresh temp dir; returns the dir (keep it alive) and the root.
async fn export_db(url: &str, rows_per_row_group: usize) -> (tempfile::TempDir, PathBuf) {
    let client = connect(url).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(EXPORT_ID);
    let opts = LocalExportOptions {
        export_id: EXPORT_ID.into(),
        rows_per_file: 1_000_000,
        rows_per_row_group,
    };
    local_export(&client, &out, &opts, &|_, _| {})
        .await
        .unwrap();
    (dir, out)
}

/// `pg_dump --schema-only` of `url` into `dir/schema.sql`.
fn schema_dump(url: &str, dir: &Path) -> PathBuf {
    let path = dir.join("schema.sql");
    std::fs::write(&path, pg().schema_dump(url)).unwrap();
    path
}

async fn open(root: &Path) -> Export {
    Export::open(root.to_str().unwrap(), None).await.unwrap()
}

fn column<'a>(t: &'a TableMapping, name: &str) -> &'a ColumnMapping {
    t.columns
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{}: no column {name}", t.source))
}

/// The one file at the export's root whose name starts with `prefix`.
fn root_file(root: &Path, prefix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "{prefix}* in {}: {found:?}", root.display());
    found.into_iter().next().unwrap()
}

/// Edits the export's `export_tables_info_*.json` in place.
fn edit_tables_info(root: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = root_file(root, "export_tables_info_");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// The `originalTypeMappings` array of table `target` (`db.schema.table`).
fn type_mappings<'a>(v: &'a mut serde_json::Value, target: &str) -> &'a mut Vec<serde_json::Value> {
    v["perTableStatus"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["target"] == target)
        .unwrap_or_else(|| panic!("no perTableStatus entry {target}"))["schemaMetadata"]
        ["originalTypeMappings"]
        .as_array_mut()
        .unwrap()
}

/// A DSQL stand-in in front of the test server, and the URL through it of the upstream database
/// behind `direct`: the target of a load into the source's own database (another schema).
async fn through_standin(direct: &str) -> (Standin, String) {
    let standin = standin::start().await;
    let url = standin.url(db_name(direct));
    (standin, url)
}

/// Prepares the target (schemas, tables, ledger) in `direct`'s database through a DSQL
/// stand-in, scans orphans, loads every chunk.
async fn load_all(export: Export, mapping: Mapping, direct: &str) -> Result<u64, Error> {
    mapping.validate("test mapping")?;
    let (_standin, target_url) = through_standin(direct).await;
    let target = Target::parse(&target_url).await?;
    migrate::prepare_target(&target, &mapping, true).await?;
    let chunks = plan_chunks(&export, &mapping).await?;
    let (orphans, reports) = orphans::scan(&export, &mapping).await?;
    assert!(reports.is_empty(), "unexpected orphans: {reports:?}");
    let ctx = LoadContext::new(
        Arc::new(export),
        Arc::new(mapping),
        target,
        orphans,
        LoadOptions::default(),
    );
    let outcomes = migrate::load_chunks(&ctx, &chunks, 2, &|_, _| {}).await?;
    Ok(outcomes.iter().map(|o| o.rows_written).sum())
}

// ---------------------------------------------------------------------------------------------
// 1. The storefront: the plan gives the seed's hand-written DSQL DDL.

/// The seed's target DDL (storefront.md), verbatim, in schema `seed` instead of `sales`.
const SEED_DDL: &str = "
create schema seed;
create table seed.customers (id uuid primary key, old_id int, username varchar(50),
    first_name varchar(50), last_name varchar(50));
create index async customers_oid on seed.customers (old_id);
create table seed.orders (id uuid primary key, old_id int, customer_id uuid, order_date date,
    order_timestamp timestamp, product_details text, quantity int, unit_cost numeric(6,2),
    unit_weight real);
create index async orders_oid on seed.orders (old_id);
create index async orders_customer on seed.orders (customer_id);
";

/// Words allowed outside double quotes in the generated DSQL DDL: keywords and type names.
/// Anything else (an unquoted identifier, SERIAL, REFERENCES, ...) fails the check.
const DDL_WORDS: &[&str] = &[
    "CREATE",
    "SCHEMA",
    "IF",
    "NOT",
    "EXISTS",
    "TABLE",
    "NULL",
    "PRIMARY",
    "KEY",
    "INDEX",
    "ASYNC",
    "ON",
    "UNIQUE",
    "uuid",
    "integer",
    "varchar",
    "text",
    "date",
    "timestamp",
    "numeric",
    "real",
    "bigint",
    // Column defaults (the rewritten key's `new_key_default`), CHECKs and identity columns are
    // valid on DSQL (dsql-recorded.md) and carried (issue 17).
    "DEFAULT",
    "gen_random_uuid",
    "CONSTRAINT",
    "CHECK",
    "GENERATED",
    "BY",
    "AS",
    "IDENTITY",
    "CACHE",
];

/// Words the generated DSQL DDL must never contain, even quoted names aside.
const UNSUPPORTED: &[&str] = &[
    "SERIAL",
    "BIGSERIAL",
    "SEQUENCE",
    "NEXTVAL",
    "REFERENCES",
    "FOREIGN",
    "TRIGGER",
    "CONCURRENTLY",
    "USING",
    "TEMPORARY",
    "UNLOGGED",
    "PARTITION",
    "INHERITS",
];

/// The SQL outside double-quoted identifiers (`""` inside one is an escaped quote).
fn unquoted(sql: &str) -> String {
    let mut out = String::new();
    let mut chars = sql.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        match (in_quotes, c) {
            (false, '"') => {
                in_quotes = true;
                out.push(' ');
            }
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
            }
            (true, '"') => in_quotes = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    assert!(!in_quotes, "unbalanced quotes in {sql}");
    out
}

fn check_dsql_statement(st: &Statement) {
    let sql = &st.sql;
    let bare = unquoted(sql);
    assert!(
        !bare.contains(';'),
        "{}: one statement per transaction, got {sql}",
        st.what
    );
    for word in bare
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && !w.chars().all(|c| c.is_ascii_digit()))
    {
        assert!(
            !UNSUPPORTED.contains(&word.to_ascii_uppercase().as_str()),
            "{}: DSQL does not support {word}: {sql}",
            st.what
        );
        assert!(
            DDL_WORDS.contains(&word),
            "{}: {word:?} is neither a keyword nor a type: an unquoted identifier? {sql}",
            st.what
        );
    }
}

/// Runs one DDL statement on a DSQL connection; a statement that answers a `job_id` (an async
/// index build) is waited for with `CALL sys.wait_for_job`.
async fn run_dsql_ddl(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<(), tokio_postgres::Error> {
    for m in client.simple_query(sql).await? {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = m
            && let Ok(Some(job)) = row.try_get("job_id")
        {
            client
                .simple_query(&format!("CALL sys.wait_for_job('{job}')"))
                .await?;
        }
    }
    Ok(())
}

/// Columns (table, name, type) and primary keys of the tables of schema `schema`.
async fn shape(
    client: &tokio_postgres::Client,
    schema: &str,
) -> (Vec<(String, String, String)>, Vec<(String, String)>) {
    let cols = client
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod)
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY 1, a.attnum",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let keys = client
        .query(
            "SELECT c.relname::text, pg_get_constraintdef(k.oid)
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    (cols, keys)
}

/// Non-key indexes of schema `schema` as (table, columns).
async fn indexes(client: &tokio_postgres::Client, schema: &str) -> BTreeSet<(String, String)> {
    client
        .query(
            "SELECT c.relname::text,
                    (SELECT string_agg(a.attname, ',' ORDER BY k.n)
                     FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND NOT i.indisprimary",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The storefront plan against the seed: keys, references, DDL text, and the tables the DDL
/// creates compared in PostgreSQL with those of the seed's hand-written DDL.
async fn assert_storefront_plan(p: &Plan, from_schema: bool) {
    let m = &p.mapping;
    assert_eq!(m.tables.len(), 2, "{m:#?}");
    for name in ["sales.customers", "sales.orders"] {
        let t = m
            .table(name)
            .unwrap_or_else(|| panic!("{name} not planned"));
        assert_eq!(t.target(), name);
        assert_eq!(t.primary_key, ["id"], "{name}");
        assert_eq!(t.primary_key_guessed, !from_schema, "{name}");
        let id = column(t, "id");
        assert_eq!(id.rewrite, Rewrite::Key, "{name}.id");
        assert_eq!(id.source_type, PgType::Integer);
        assert_eq!(id.target_type, PgType::Uuid);
        assert_eq!(id.keep_old.as_deref(), Some("old_id"));
        assert!(id.not_null);
        assert_eq!(id.guessed, !from_schema, "{name}.id");
    }
    let orders = m.table("sales.orders").unwrap();
    let fk = column(orders, "customer_id");
    assert_eq!(fk.rewrite, Rewrite::Reference);
    assert_eq!(fk.references.as_deref(), Some("sales.customers"));
    assert_eq!(fk.on_orphan, Some(OnOrphan::Fail));
    assert_eq!(fk.source_type, PgType::Integer);
    assert_eq!(fk.target_type, PgType::Uuid);
    assert_eq!(fk.guessed, !from_schema);
    for c in orders
        .columns
        .iter()
        .chain(&m.table("sales.customers").unwrap().columns)
    {
        assert!(!c.drop, "{} dropped", c.name);
        if c.name != "id" && c.name != "customer_id" {
            assert_eq!(c.rewrite, Rewrite::None, "{}", c.name);
            assert_eq!(c.target_type, c.source_type, "{}: no type change", c.name);
        }
    }
    let username = column(m.table("sales.customers").unwrap(), "username");
    assert_eq!(
        username.not_null, from_schema,
        "username is NOT NULL in the source: carried with a schema, unknown without"
    );
    assert_eq!(p.report.keys_rewritten.len(), 2, "{:?}", p.report);
    assert_eq!(p.report.references_rewritten.len(), 1, "{:?}", p.report);
    if from_schema {
        assert!(p.report.guesses.is_empty(), "{:?}", p.report.guesses);
    } else {
        let guesses = p.report.guesses.join("\n");
        for want in [
            "sales.customers: primary key guessed as (id)",
            "sales.orders: primary key guessed as (id)",
            "sales.orders.customer_id: guessed to reference sales.customers(id)",
        ] {
            assert!(
                guesses.contains(want),
                "{want:?} not in guesses:\n{guesses}"
            );
        }
    }

    // The DSQL DDL text: supported features only, every identifier quoted, async indexes.
    let create = ddl::create_statements(m);
    let post = ddl::post_load_statements(m);
    assert_eq!(
        create.iter().map(|s| s.sql.as_str()).collect::<Vec<_>>()[0],
        "CREATE SCHEMA IF NOT EXISTS \"sales\""
    );
    assert_eq!(create.len(), 3, "{create:#?}");
    for st in create.iter().chain(&post) {
        check_dsql_statement(st);
    }
    for st in &post {
        assert!(
            st.sql.starts_with("CREATE INDEX ASYNC IF NOT EXISTS "),
            "{}",
            st.sql
        );
        assert!(st.is_job(), "{}: an async job to wait for", st.what);
    }
    let seed_indexes = [
        "ON \"sales\".\"customers\" (\"old_id\")",
        "ON \"sales\".\"orders\" (\"old_id\")",
        "ON \"sales\".\"orders\" (\"customer_id\")",
    ];
    for want in seed_indexes {
        assert!(
            post.iter().any(|s| s.sql.ends_with(want)),
            "no index {want} in {post:#?}"
        );
    }
    // With the schema, the source's own index on order_date comes along; nothing else.
    assert_eq!(post.len(), 3 + usize::from(from_schema), "{post:#?}");

    // Run our DDL and the seed's through the DSQL stand-in, one statement at a time (each index
    // build waited for), and compare what PostgreSQL made of both, read upstream.
    let standin = standin::start().await;
    let via_url = standin.db("plan_ddl");
    let via = connect(&via_url).await;
    for st in create.iter().chain(&post) {
        run_dsql_ddl(&via, &st.sql)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", st.what, st.sql));
    }
    for sql in SEED_DDL.split(';').filter(|s| !s.trim().is_empty()) {
        run_dsql_ddl(&via, sql)
            .await
            .unwrap_or_else(|e| panic!("seed DDL: {e}\n{sql}"));
    }
    let client = connect(&standin.direct_url(&via_url)).await;
    let (ours_cols, ours_keys) = shape(&client, "sales").await;
    let (seed_cols, seed_keys) = shape(&client, "seed").await;
    assert_eq!(
        ours_cols, seed_cols,
        "columns and types differ from the seed's DDL"
    );
    assert_eq!(
        ours_keys, seed_keys,
        "constraints differ from the seed's (primary keys only; no references, no checks)"
    );
    // The only defaults: the rewritten keys' new_key_default (issue 17); never a serial's.
    let defaults: Vec<String> = client
        .query(
            "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
             JOIN pg_class c ON c.oid = d.adrelid
             WHERE c.relnamespace = 'sales'::regnamespace",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        defaults,
        ["gen_random_uuid()", "gen_random_uuid()"],
        "the DSQL DDL's column defaults: the two new keys' only (a serial's nextval?)"
    );
    let mut ours = indexes(&client, "sales").await;
    let seed = indexes(&client, "seed").await;
    if from_schema {
        assert!(
            ours.remove(&("orders".to_string(), "order_date".to_string())),
            "the source index orders_order_date is not carried: {ours:?}"
        );
    }
    assert_eq!(ours, seed, "secondary indexes differ from the seed's");
}

#[tokio::test]
async fn storefront_plan_with_source_schema_gives_the_seed_ddl() {
    let url = storefront_db(20, 60);
    let (dir, root) = export_db(&url, 25).await;
    let export = open(&root).await;

    let client = connect(&url).await;
    let live = SourceSchema::from_postgres(&client, &url).await.unwrap();
    let from_live = plan(&export, Some(&live)).await.unwrap();
    let dump = schema_dump(&url, dir.path());
    let file = SourceSchema::load(dump.to_str().unwrap()).await.unwrap();
    let from_file = plan(&export, Some(&file)).await.unwrap();
    assert_eq!(
        from_file.mapping, from_live.mapping,
        "a pg_dump file and the live catalog plan differently"
    );
    assert_eq!(from_file.report.warnings, from_live.report.warnings);

    for p in [&from_live, &from_file] {
        assert_storefront_plan(p, true).await;
        assert_eq!(p.report.export_id, EXPORT_ID);
        assert_eq!(p.report.database, db_name(&url));
        let rows: Vec<(&str, u64)> = p
            .report
            .tables
            .iter()
            .map(|t| (t.source.as_str(), t.rows))
            .collect();
        assert_eq!(rows, [("sales.customers", 20), ("sales.orders", 60)]);
        let orders = p.report.tables.iter().find(|t| t.source == "sales.orders");
        assert_eq!(orders.unwrap().row_groups, 3, "60 rows in row groups of 25");
        assert!(p.mapping.validate("planned").is_ok());
    }
    // The mapping survives its file form unchanged.
    let text = from_file.mapping.to_toml().unwrap();
    assert_eq!(
        Mapping::from_toml(&text, "mapping.toml").unwrap(),
        from_file.mapping
    );

    // Loaded (into schema dst of the same database), every order points at its customer's new
    // key and every row keeps its old id: what the seed's job loses, this keeps.
    let mut mapping = from_file.mapping;
    for t in &mut mapping.tables {
        t.target_schema = "dst".into();
    }
    assert_eq!(load_all(export, mapping, &url).await.unwrap(), 80);
    let row = client
        .query_one(
            "SELECT
               (SELECT count(*) FROM dst.customers t JOIN sales.customers s ON s.id = t.old_id
                WHERE (t.username, t.first_name, t.last_name)
                      IS NOT DISTINCT FROM (s.username, s.first_name, s.last_name)),
               (SELECT count(*) FROM dst.orders t JOIN sales.orders s ON s.id = t.old_id
                JOIN dst.customers c ON c.id = t.customer_id AND c.old_id = s.customer_id
                WHERE (t.order_date, t.order_timestamp, t.product_details, t.quantity,
                       t.unit_cost, t.unit_weight)
                      IS NOT DISTINCT FROM (s.order_date, s.order_timestamp, s.product_details,
                       s.quantity, s.unit_cost, s.unit_weight))",
            &[],
        )
        .await
        .unwrap();
    let (customers, orders): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!((customers, orders), (20, 60), "rows that loaded exactly");
}

/// Aurora's metadata carries `originalNumPrecision` but no scale (aurora-export.md lists the
/// fields): `unit_cost numeric(6,2)` arrives as `numeric` with precision 6 and nothing else.
fn strip_numeric_scale(root: &Path) {
    edit_tables_info(root, |v| {
        for t in v["perTableStatus"].as_array_mut().unwrap() {
            let Some(cols) = t["schemaMetadata"]["originalTypeMappings"].as_array_mut() else {
                continue;
            };
            for c in cols {
                c.as_object_mut().unwrap().remove("originalNumScale");
            }
        }
    });
}

#[tokio::test]
async fn storefront_from_aurora_metadata_without_numeric_scale_loads_exactly() {
    let url = storefront_db(10, 30);
    let (_dir, root) = export_db(&url, 100).await;
    strip_numeric_scale(&root);
    let export = open(&root).await;
    let client = connect(&url).await;
    let schema = SourceSchema::from_postgres(&client, &url).await.unwrap();

    // With the schema, its numeric(6,2) is the type.
    let known = plan(&export, Some(&schema)).await.unwrap();
    let unit_cost = column(known.mapping.table("sales.orders").unwrap(), "unit_cost");
    let numeric_6_2 = PgType::Numeric {
        precision: Some(6),
        scale: Some(2),
    };
    assert_eq!(unit_cost.source_type, numeric_6_2);
    assert_eq!(unit_cost.target_type, numeric_6_2);

    // Without it, the scale is unknown: the target must still hold every numeric(6,s) value
    // (numeric(6) would be numeric(6,0) and refuse 123.45), and the report must say so.
    let guessed = plan(&export, None).await.unwrap();
    let unit_cost = column(guessed.mapping.table("sales.orders").unwrap(), "unit_cost");
    assert_ne!(
        unit_cost.target_type,
        PgType::Numeric {
            precision: Some(6),
            scale: None
        },
        "numeric(6) means scale 0"
    );
    assert!(
        guessed
            .report
            .warnings
            .iter()
            .any(|w| w.starts_with("sales.orders.unit_cost: ")),
        "{:?}",
        guessed.report.warnings
    );
    for (p, schema_name) in [(known, "known"), (guessed, "guessed")] {
        let mut mapping = p.mapping;
        // Its own migration id: the ledger would otherwise count the second load as done.
        mapping.migration.id = schema_name.into();
        for t in &mut mapping.tables {
            t.target_schema = schema_name.into();
        }
        assert_eq!(load_all(export.clone(), mapping, &url).await.unwrap(), 40);
        let same: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {schema_name}.orders t JOIN sales.orders s
                     ON s.id = t.old_id AND s.unit_cost = t.unit_cost"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(same, 30, "{schema_name}: unit_cost loaded exactly");
    }
}

#[tokio::test]
async fn storefront_plan_without_source_schema_guesses_the_same_keys() {
    let url = storefront_db(10, 30);
    let (_dir, root) = export_db(&url, 100).await;
    let export = open(&root).await;
    let guessed = plan(&export, None).await.unwrap();
    assert_storefront_plan(&guessed, false).await;

    // The same keys and references as with the schema; only the guess marks and what the
    // export cannot know (NOT NULL, source indexes) differ.
    let client = connect(&url).await;
    let live = SourceSchema::from_postgres(&client, &url).await.unwrap();
    let known = plan(&export, Some(&live)).await.unwrap();
    for (g, k) in guessed.mapping.tables.iter().zip(&known.mapping.tables) {
        assert_eq!(g.source, k.source);
        assert_eq!(g.primary_key, k.primary_key);
        for (gc, kc) in g.columns.iter().zip(&k.columns) {
            assert_eq!(
                (
                    &gc.name,
                    &gc.target_type,
                    gc.rewrite,
                    &gc.references,
                    &gc.keep_old
                ),
                (
                    &kc.name,
                    &kc.target_type,
                    kc.rewrite,
                    &kc.references,
                    &kc.keep_old
                ),
            );
        }
    }
}

/// Quoted, mixed-case, spaced names; a self-reference; a column already called `old_<key>`.
const ODD_NAMES: &str = r#"
CREATE SCHEMA "Shop Floor";
CREATE TABLE "Shop Floor"."Order Items" (
  "Id" bigint PRIMARY KEY,
  "Parent_id" bigint REFERENCES "Shop Floor"."Order Items" ("Id"),
  "old_Id" int,
  "Label" text NOT NULL
);
CREATE INDEX "Label ""Idx""" ON "Shop Floor"."Order Items" ("Label");
CREATE TABLE "Shop Floor".notes (
  id int PRIMARY KEY,
  item bigint REFERENCES "Shop Floor"."Order Items" ("Id"),
  body text
);
INSERT INTO "Shop Floor"."Order Items"
SELECT g, CASE WHEN g > 1 THEN g / 2 END, -g, 'label ' || g FROM generate_series(1, 9) g;
INSERT INTO "Shop Floor".notes SELECT g, CASE WHEN g % 3 > 0 THEN g END, 'n' || g
FROM generate_series(1, 9) g;
"#;

#[tokio::test]
async fn odd_names_and_a_self_reference_plan_and_load() {
    let url = pg().create_db("plan_names");
    pg().psql(db_name(&url), ODD_NAMES);
    let (_dir, root) = export_db(&url, 4).await;
    let export = open(&root).await;
    let client = connect(&url).await;
    let schema = SourceSchema::from_postgres(&client, &url).await.unwrap();
    let p = plan(&export, Some(&schema)).await.unwrap();
    let items = p.mapping.table("Shop Floor.Order Items").unwrap();
    let id = column(items, "Id");
    assert_eq!(id.rewrite, Rewrite::Key);
    assert_eq!(
        id.keep_old.as_deref(),
        Some("old_old_Id"),
        "\"old_Id\" exists: the old key needs another name"
    );
    let parent = column(items, "Parent_id");
    assert_eq!(parent.rewrite, Rewrite::Reference);
    assert_eq!(parent.references.as_deref(), Some("Shop Floor.Order Items"));
    assert_eq!(column(items, "old_Id").rewrite, Rewrite::None);
    let notes = p.mapping.table("Shop Floor.notes").unwrap();
    assert_eq!(
        column(notes, "item").references.as_deref(),
        Some("Shop Floor.Order Items")
    );
    for st in ddl::create_statements(&p.mapping)
        .iter()
        .chain(&ddl::post_load_statements(&p.mapping))
    {
        check_dsql_statement(st);
    }

    let mut mapping = p.mapping;
    for t in &mut mapping.tables {
        t.target_schema = "dst".into();
    }
    assert_eq!(load_all(export, mapping.clone(), &url).await.unwrap(), 18);
    let (_standin, target_url) = through_standin(&url).await;
    let target = Target::parse(&target_url).await.unwrap();
    assert_eq!(migrate::post_load(&target, &mapping).await.unwrap(), 5);
    let row = client
        .query_one(
            r#"SELECT
                 (SELECT count(*) FROM "Shop Floor"."Order Items" s
                  JOIN dst."Order Items" t ON t."old_old_Id" = s."Id"
                  WHERE t."old_Id" = s."old_Id" AND t."Label" = s."Label"
                    AND t."Parent_id" IS NOT DISTINCT FROM
                        (SELECT p."Id" FROM dst."Order Items" p
                         WHERE p."old_old_Id" = s."Parent_id")),
                 (SELECT count(*) FROM "Shop Floor".notes s
                  JOIN dst.notes t ON t.old_id = s.id
                  WHERE t.body = s.body AND t.item IS NOT DISTINCT FROM
                        (SELECT p."Id" FROM dst."Order Items" p WHERE p."old_old_Id" = s.item)),
                 (SELECT count(*) FROM pg_indexes WHERE schemaname = 'dst')"#,
            &[],
        )
        .await
        .unwrap();
    let (items, notes, indexes): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (items, notes),
        (9, 9),
        "rows loaded exactly, references resolved"
    );
    // Two primary keys, two old-key indexes, two reference indexes, the source's "Label" index.
    assert_eq!(indexes, 7);
}

// ---------------------------------------------------------------------------------------------
// 2. Every type of the export's mapping table, through local-export -> plan -> load, compared
//    value by value in PostgreSQL.

const EVERY_TYPE: &str = r#"
CREATE SCHEMA src;
CREATE TYPE src.mood AS ENUM ('happy', 'sad', 'o''k', 'ünï "q" \');
CREATE TABLE src.every_type (
  id int PRIMARY KEY,
  c_smallint smallint, c_integer integer, c_bigint bigint, c_real real, c_double double precision,
  c_numeric_ps numeric(12,3), c_numeric numeric, c_money money, c_boolean boolean, c_bytea bytea,
  c_date date, c_time time, c_timetz timetz, c_timestamp timestamp, c_timestamptz timestamptz,
  c_interval interval, c_uuid uuid, c_json json, c_jsonb jsonb, c_enum src.mood,
  c_int_array int[], c_text_array text[], c_inet inet, c_cidr cidr, c_macaddr macaddr, c_xml xml,
  c_bit bit(4), c_varbit varbit(8), c_tsvector tsvector,
  c_char char(5), c_varchar varchar(20), c_text text
);
INSERT INTO src.every_type VALUES
 (1, 32767, 2147483647, 9223372036854775807, '3.4028235e38', '1.7976931348623157e308',
  '999999999.999', '12345678901234567890123456.123456789012', '92233720368547758.07', true,
  '\x00ff5c0a22'::bytea, '5874897-12-31', '24:00:00', '23:59:59.999999+15:59',
  '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00', '178000000 years',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": "v\"q",  "n": [1, 2.50], "k": "dup"}',
  '{"k": "v\"q", "n": [1, 2.50], "u": "ü😀\\"}', 'ünï "q" \', '{1,NULL,-3}',
  '{"a,b","c\"d","e\\f",NULL,"NULL",""," lead","trail "}', '2001:db8::1/64', '10.0.0.0/8',
  '08:00:2b:01:02:03', '<a x="1">t&amp;ü</a>', B'1010', B'101', 'a fat cat',
  'ab', 'héllo', E'line1\nline2\ttab \\ back ''quote'' "dq"'),
 (2, -32768, -2147483648, -9223372036854775808, 'NaN', '-Infinity',
  '-999999999.999', 'NaN', '-92233720368547758.08', false,
  ''::bytea, '4713-01-01 BC', '00:00', '00:00:00-15:59',
  '4713-01-01 00:00:00 BC', '-infinity', '-178000000 years',
  '00000000-0000-0000-0000-000000000000', '"ünïcødé 😀"', '[]', 'o''k', '{}', '{{a,b},{c,d}}',
  '::', '0.0.0.0/0', 'ff:ff:ff:ff:ff:ff', '<r>ünï &lt;</r>', B'0000', B'', '''quoted'' ünï',
  'ü', '', E'😀\r\n"\\'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL),
 (4, 0, 0, 0, '-Infinity', 'NaN', '0', '-0.000000000001', '0', true,
  '\xdeadbeef'::bytea, '2000-02-29', '12:00', '12:00+00', 'infinity', 'infinity',
  '1 mon -2 days 03:04:05.678901', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null',
  '{"a": {"b": [true, null]}}', 'sad', '{2147483647}', '{"with space","\\"}', '192.168.0.1',
  '192.168.0.0/24', '01:02:03:04:05:06', '', B'1111', B'11111111', '',
  '     ', 'xxxxxxxxxxxxxxxxxxxx', ''),
 (5, 1, -1, 1, '1.17549435e-38', '5e-324', '0.001',
  '-99999999999999999999999999.999999999999', '0.01', false,
  '\x5c'::bytea, '0001-01-01', '00:00:00.000001', '24:00:00+00', '2000-01-01 00:00:00.000001',
  '4713-01-01 00:00:00+00 BC', '-1 years -2 mons +3 days -04:05:06.000001',
  'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '"\u0000 \\ \n"', '"\u00e9"', 'happy',
  '{{1,2},{3,NULL}}', '{"{}","a\"b",ü,"\\\\"}', '::ffff:1.2.3.4', '2001:db8::/32',
  '00:00:00:00:00:00', E'plain\ntext', B'0101', B'10101010', E'''a b'' c:1A ''it''''s'':2',
  'ü', '😀', E'tab\there');
"#;

/// How a target column is compared with its source column in SQL.
enum Cmp {
    /// Same type on both sides.
    Same,
    /// Target holds the source's text form (`src::text`).
    Text,
    /// json: no equality operator; its text is kept exactly.
    JsonText,
    /// Arrays become `array_to_json(src)::jsonb`.
    ArrayJson,
    /// money -> numeric.
    Numeric,
}

/// (column, expected target type, comparison).
const EVERY_TYPE_COLUMNS: &[(&str, &str, Cmp)] = &[
    ("c_smallint", "smallint", Cmp::Same),
    ("c_integer", "integer", Cmp::Same),
    ("c_bigint", "bigint", Cmp::Same),
    ("c_real", "real", Cmp::Same),
    ("c_double", "double precision", Cmp::Same),
    ("c_numeric_ps", "numeric(12,3)", Cmp::Same),
    // DSQL's bare numeric is numeric(18,6); plan makes it numeric(38,12) (values chosen to fit).
    ("c_numeric", "numeric(38,12)", Cmp::Same),
    ("c_money", "numeric(21,4)", Cmp::Numeric),
    ("c_boolean", "boolean", Cmp::Same),
    ("c_bytea", "bytea", Cmp::Same),
    ("c_date", "date", Cmp::Same),
    ("c_time", "time", Cmp::Same),
    ("c_timetz", "timetz", Cmp::Same),
    ("c_timestamp", "timestamp", Cmp::Same),
    ("c_timestamptz", "timestamptz", Cmp::Same),
    ("c_interval", "interval", Cmp::Same),
    ("c_uuid", "uuid", Cmp::Same),
    ("c_json", "json", Cmp::JsonText),
    ("c_jsonb", "jsonb", Cmp::Same),
    ("c_enum", "text", Cmp::Text),
    ("c_int_array", "jsonb", Cmp::ArrayJson),
    ("c_text_array", "jsonb", Cmp::ArrayJson),
    ("c_inet", "text", Cmp::Text),
    ("c_cidr", "text", Cmp::Text),
    ("c_macaddr", "text", Cmp::Text),
    ("c_xml", "text", Cmp::Text),
    ("c_bit", "text", Cmp::Text),
    ("c_varbit", "text", Cmp::Text),
    ("c_tsvector", "text", Cmp::Text),
    ("c_char", "char(5)", Cmp::Same),
    ("c_varchar", "varchar(20)", Cmp::Same),
    ("c_text", "text", Cmp::Text),
];

#[tokio::test]
async fn every_exported_type_loads_exactly() {
    let url = pg().create_db("plan_types");
    pg().psql(db_name(&url), EVERY_TYPE);
    // Row groups of 2 rows: 3 row groups, so positions and row group selection matter.
    let (_dir, root) = export_db(&url, 2).await;
    let export = open(&root).await;
    let client = connect(&url).await;
    let schema = SourceSchema::from_postgres(&client, &url).await.unwrap();
    let p = plan(&export, Some(&schema)).await.unwrap();
    // A pg_dump file of the same database plans the same (enum labels with quotes and a
    // backslash, arrays, money, bare numeric).
    let dir = tempfile::tempdir().unwrap();
    let dump = schema_dump(&url, dir.path());
    let from_file = SourceSchema::load(dump.to_str().unwrap()).await.unwrap();
    assert_eq!(from_file, schema, "pg_dump file and catalog disagree");
    let p_file = plan(&export, Some(&from_file)).await.unwrap();
    assert_eq!(p_file.mapping, p.mapping);
    let warnings = p.report.warnings.join("\n");
    assert!(
        warnings.contains("src.every_type.c_numeric: numeric without declared precision")
            && warnings.contains("numeric(38,12)"),
        "{warnings}"
    );
    let conversions = p.report.conversions.join("\n");
    for c in [
        "c_money: money -> numeric(21,4)",
        "c_enum: src.mood -> text",
        "c_int_array: integer[] -> jsonb",
        "c_inet: inet -> text",
    ] {
        assert!(conversions.contains(c), "{c:?} not in {conversions}");
    }
    let mut mapping = p.mapping;
    assert_eq!(mapping.tables.len(), 1);
    let t = &mut mapping.tables[0];
    assert_eq!(t.source, "src.every_type");
    assert_eq!(column(t, "id").rewrite, Rewrite::Key);
    let planned: Vec<(String, String)> = t
        .columns
        .iter()
        .filter(|c| c.name != "id")
        .map(|c| (c.name.clone(), c.target_type.to_string()))
        .collect();
    let expected: Vec<(String, String)> = EVERY_TYPE_COLUMNS
        .iter()
        .map(|(c, ty, _)| (c.to_string(), ty.to_string()))
        .collect();
    assert_eq!(planned, expected, "planned target types");
    assert_eq!(
        column(t, "c_enum").source_type,
        PgType::Enum("src.mood".into()),
        "the schema resolves the export's USER-DEFINED"
    );
    assert_eq!(
        column(t, "c_int_array").source_type,
        PgType::Array(Box::new(PgType::Integer)),
        "the schema resolves the export's ARRAY"
    );
    // Into the same database, another schema: source and target meet in one query.
    t.target_schema = "dst".into();
    let written = load_all(export, mapping.clone(), &url).await.unwrap();
    assert_eq!(written, 5);

    let diffs: Vec<String> = EVERY_TYPE_COLUMNS
        .iter()
        .map(|(c, _, cmp)| {
            let src = match cmp {
                Cmp::Same => format!("s.{c}"),
                Cmp::Text => format!("s.{c}::text"),
                Cmp::JsonText => format!("s.{c}::text"),
                Cmp::ArrayJson => format!("array_to_json(s.{c})::jsonb"),
                Cmp::Numeric => format!("s.{c}::numeric"),
            };
            let dst = match cmp {
                Cmp::JsonText => format!("t.{c}::text"),
                _ => format!("t.{c}"),
            };
            format!(
                "CASE WHEN {dst} IS NOT DISTINCT FROM {src} THEN NULL \
                 ELSE format('{c}: target %L, source %L', t.{c}::text, s.{c}::text) END"
            )
        })
        .collect();
    let sql = format!(
        "SELECT s.id, t.old_id, t.id::text, concat_ws(E'\\n', {})
         FROM src.every_type s FULL JOIN dst.every_type t ON t.old_id = s.id
         ORDER BY coalesce(s.id, t.old_id)",
        diffs.join(",\n")
    );
    let rows = client.query(sql.as_str(), &[]).await.unwrap();
    assert_eq!(rows.len(), 5);
    let mut problems = Vec::new();
    for r in &rows {
        let (src_id, old_id, new_id, diff): (Option<i32>, Option<i32>, Option<String>, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let Some(id) = src_id.filter(|_| old_id.is_some()) else {
            problems.push(format!(
                "row only on one side: source {src_id:?}, target {old_id:?}"
            ));
            continue;
        };
        let want =
            snap2dsql::keys::new_key(mapping.migration.namespace, "src.every_type", id.into());
        if new_id.as_deref() != Some(want.to_string().as_str()) {
            problems.push(format!("id {id}: new key {new_id:?}, expected {want}"));
        }
        if !diff.is_empty() {
            problems.push(format!("id {id}:\n{diff}"));
        }
    }
    assert!(
        problems.is_empty(),
        "values differ:\n{}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn without_schema_the_types_the_export_hides_are_warned() {
    let url = pg().create_db("plan_vague");
    pg().psql(db_name(&url), EVERY_TYPE);
    let (_dir, root) = export_db(&url, 100).await;
    let export = open(&root).await;
    let p = plan(&export, None).await.unwrap();
    let t = p.mapping.table("src.every_type").unwrap();
    // The export says USER-DEFINED and ARRAY: the enum and the arrays' element types are lost.
    assert_eq!(
        column(t, "c_enum").source_type,
        PgType::Other("USER-DEFINED".into())
    );
    assert_eq!(column(t, "c_enum").target_type, PgType::Text);
    assert_eq!(column(t, "c_int_array").target_type, PgType::Jsonb);
    let said = [p.report.warnings.clone(), p.report.guesses.clone()]
        .concat()
        .join("\n");
    for c in ["c_enum", "c_int_array", "c_text_array"] {
        let line = said
            .lines()
            .find(|l| l.starts_with(&format!("src.every_type.{c}: ")))
            .unwrap_or_else(|| panic!("nothing said about {c}:\n{said}"));
        assert!(line.contains("--source-schema"), "{line}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Bad inputs: each a specific error naming the file, column or value.

const SHOP: &str = r#"
CREATE SCHEMA shop;
CREATE TABLE shop.items (id int PRIMARY KEY, name text, made_at text, note text);
INSERT INTO shop.items
SELECT g, 'item ' || g,
       CASE WHEN g = 4 THEN 'the 4th, noonish' ELSE '2024-01-0' || g || ' 10:00:00' END,
       'note "' || g || E'"\n\\'
FROM generate_series(1, 6) g;
"#;

/// A database with shop.items (6 rows), exported in row groups of 2 rows.
async fn shop_export() -> (String, tempfile::TempDir, PathBuf) {
    let url = pg().create_db("plan_bad");
    pg().psql(db_name(&url), SHOP);
    let (dir, root) = export_db(&url, 2).await;
    (url, dir, root)
}

fn items_target(url: &str) -> String {
    format!("{}.shop.items", db_name(url))
}

#[tokio::test]
async fn source_schema_disagreeing_with_the_export_is_warned() {
    let (url, _dir, root) = shop_export().await;
    let db = db_name(&url);
    // After the export: a new table, a changed column type.
    pg().psql(
        db,
        "CREATE TABLE shop.later (id int PRIMARY KEY);
         ALTER TABLE shop.items ALTER made_at TYPE varchar(40);
         ALTER TABLE shop.items ALTER note TYPE int USING length(note);",
    );
    let client = connect(&url).await;
    let schema = SourceSchema::from_postgres(&client, &url).await.unwrap();
    // And a table exported but gone from the schema.
    let mut schema_without_items = schema.clone();
    schema_without_items.tables.remove("shop.items");

    let export = open(&root).await;
    let p = plan(&export, Some(&schema)).await.unwrap();
    let warnings = p.report.warnings.join("\n");
    assert!(
        warnings.contains(
            "table shop.later is in the source schema but not in the export: not migrated"
        ),
        "{warnings}"
    );
    assert!(
        warnings.contains("shop.items.note: the export says text, the source schema says integer: planned from the export"),
        "{warnings}"
    );
    let items = p.mapping.table("shop.items").unwrap();
    assert_eq!(column(items, "note").target_type, PgType::Text);
    // A changed type is planned from the export: it is what the files hold.
    assert!(
        warnings.contains(
            "shop.items.made_at: the export says text, the source schema says varchar(40)"
        ),
        "{warnings}"
    );
    assert_eq!(column(items, "made_at").source_type, PgType::Text);

    let p = plan(&export, Some(&schema_without_items)).await.unwrap();
    let warnings = p.report.warnings.join("\n");
    assert!(
        warnings.contains(
            "table shop.items is not in the source schema: its keys and references are guessed"
        ),
        "{warnings}"
    );
    let items = p.mapping.table("shop.items").unwrap();
    assert!(items.primary_key_guessed);
    assert!(
        p.report
            .guesses
            .iter()
            .any(|g| g == "shop.items: primary key guessed as (id)")
    );
}

#[tokio::test]
async fn empty_tables_and_flat_table_folders_plan_and_load() {
    let url = pg().create_db("plan_layout");
    pg().psql(
        db_name(&url),
        "CREATE TABLE public.empty (id int PRIMARY KEY, v text);
         CREATE TABLE public.flat (id int PRIMARY KEY, v text);
         INSERT INTO flat SELECT g, 'v' || g FROM generate_series(1, 7) g;",
    );
    let (_dir, root) = export_db(&url, 3).await;
    // An older export: part files directly under the table folder, no batch folder.
    let table_dir = root.join(db_name(&url)).join("public.flat");
    for f in parquet_files(&table_dir) {
        std::fs::rename(&f, table_dir.join(f.file_name().unwrap())).unwrap();
    }
    for e in std::fs::read_dir(&table_dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        }
    }
    let export = open(&root).await;
    assert!(
        !root.join(db_name(&url)).join("public.empty").exists(),
        "local-export writes no folder for an empty table"
    );
    let p = plan(&export, None).await.unwrap();
    let sizes: Vec<(&str, u64, usize)> = p
        .report
        .tables
        .iter()
        .map(|t| (t.source.as_str(), t.rows, t.row_groups))
        .collect();
    assert_eq!(sizes, [("public.empty", 0, 0), ("public.flat", 7, 3)]);
    assert!(
        p.report
            .warnings
            .iter()
            .any(|w| w
                .contains("public.empty: status COMPLETE but no .parquet files: treated as empty")),
        "{:?}",
        p.report.warnings
    );
    let mut mapping = p.mapping;
    for t in &mut mapping.tables {
        t.target_schema = "dst".into();
    }
    assert_eq!(load_all(export, mapping, &url).await.unwrap(), 7);
    let same = pg().psql(
        db_name(&url),
        "SELECT (SELECT count(*) FROM dst.flat t JOIN flat s ON s.id = t.old_id AND s.v = t.v),
                (SELECT count(*) FROM dst.empty)",
    );
    assert_eq!(same.trim(), "7|0");
}

#[tokio::test]
async fn missing_export_info_is_named() {
    let (_url, _dir, root) = shop_export().await;
    std::fs::remove_file(root_file(&root, "export_info_")).unwrap();
    let err = Export::open(root.to_str().unwrap(), None)
        .await
        .unwrap_err();
    let Error::Metadata { file, reason } = &err else {
        panic!("expected Error::Metadata, got {err:?}");
    };
    assert!(file.starts_with(root.to_str().unwrap()), "{file}");
    assert!(file.contains("export_info_"), "{file}");
    assert!(reason.contains("no export_info_*.json"), "{reason}");
}

#[tokio::test]
async fn malformed_export_info_is_named() {
    let (_url, _dir, root) = shop_export().await;
    let info = root_file(&root, "export_info_");
    std::fs::write(&info, b"{\"exportTaskIdentifier\": \"x\", \"status\": ").unwrap();
    let err = Export::open(root.to_str().unwrap(), None)
        .await
        .unwrap_err();
    let Error::Metadata { file, reason } = &err else {
        panic!("expected Error::Metadata, got {err:?}");
    };
    assert_eq!(file, &info.display().to_string());
    assert!(reason.contains("not the expected JSON"), "{reason}");
    assert!(
        err.to_string()
            .contains(&format!("export_info_{EXPORT_ID}.json")),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_export_tables_info_is_named() {
    let (url, _dir, root) = shop_export().await;
    let tables_info = root_file(&root, "export_tables_info_");
    // Valid JSON, wrong shape: perTableStatus is not a list.
    std::fs::write(&tables_info, b"{\"perTableStatus\": {\"target\": \"x\"}}").unwrap();
    let err = Export::open(root.to_str().unwrap(), None)
        .await
        .unwrap_err();
    let Error::Metadata { file, reason } = &err else {
        panic!("expected Error::Metadata, got {err:?}");
    };
    assert_eq!(file, &tables_info.display().to_string());
    assert!(reason.contains("not the expected JSON"), "{reason}");
    // A target that is not <database>.<schema>.<table>.
    let bad = serde_json::json!({"perTableStatus": [
        {"target": format!("{}.items", db_name(&url)), "status": "COMPLETE"}
    ]});
    std::fs::write(&tables_info, serde_json::to_vec(&bad).unwrap()).unwrap();
    let err = Export::open(root.to_str().unwrap(), None)
        .await
        .unwrap_err();
    let Error::Metadata { reason, .. } = &err else {
        panic!("expected Error::Metadata, got {err:?}");
    };
    assert!(
        reason.contains("is not <database>.<schema>.<table>"),
        "{reason}"
    );
}

#[tokio::test]
async fn column_type_contradicting_the_parquet_type_is_named() {
    let (url, _dir, root) = shop_export().await;
    edit_tables_info(&root, |v| {
        for c in type_mappings(v, &items_target(&url)) {
            if c["columnName"] == "name" {
                c["originalType"] = "integer".into();
            }
        }
    });
    let file = parquet_files(&root).remove(0);
    let reason = expect_parquet_error(&root, &file).await;
    assert!(
        reason.contains("column \"name\" is Utf8 in Parquet, but its originalType \"integer\" is exported as int32"),
        "{reason}"
    );
}

#[tokio::test]
async fn table_the_export_did_not_complete_is_reported_not_planned() {
    let (url, _dir, root) = shop_export().await;
    edit_tables_info(&root, |v| {
        for t in v["perTableStatus"].as_array_mut().unwrap() {
            if t["target"] == items_target(&url) {
                t["status"] = "FAILED".into();
                t["warningMessage"] = "export of this table failed".into();
            }
        }
    });
    let export = open(&root).await;
    assert!(export.tables.is_empty());
    let p = plan(&export, None).await.unwrap();
    assert!(p.mapping.tables.is_empty());
    assert_eq!(p.report.skipped.len(), 1, "{:?}", p.report);
    assert_eq!(p.report.skipped[0].target, items_target(&url));
    assert_eq!(p.report.skipped[0].status, "FAILED");
    assert_eq!(p.report.skipped[0].reason, "export of this table failed");
}

#[tokio::test]
async fn missing_export_tables_info_is_named() {
    let (_url, _dir, root) = shop_export().await;
    std::fs::remove_file(root_file(&root, "export_tables_info_")).unwrap();
    let err = Export::open(root.to_str().unwrap(), None)
        .await
        .unwrap_err();
    let Error::Metadata { file, reason } = &err else {
        panic!("expected Error::Metadata, got {err:?}");
    };
    assert!(file.contains("export_tables_info_"), "{file}");
    assert!(reason.contains("no export_tables_info_*.json"), "{reason}");
}

#[tokio::test]
async fn only_a_complete_export_opens() {
    let (_url, _dir, root) = shop_export().await;
    let info = root_file(&root, "export_info_");
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&info).unwrap()).unwrap();
    assert_eq!(original["status"], "COMPLETE");
    for status in ["FAILED", "CANCELED", "IN_PROGRESS"] {
        let mut v = original.clone();
        v["status"] = status.into();
        std::fs::write(&info, serde_json::to_vec(&v).unwrap()).unwrap();
        let err = Export::open(root.to_str().unwrap(), None)
            .await
            .unwrap_err();
        let Error::ExportNotComplete {
            export_id,
            status: got,
        } = &err
        else {
            panic!("{status}: expected Error::ExportNotComplete, got {err:?}");
        };
        assert_eq!(export_id, EXPORT_ID);
        assert_eq!(got, status);
        assert!(err.to_string().contains(&format!("{status:?}")), "{err}");
    }
    // moto (and the RDS API's filters) spell it in lower case.
    let mut v = original;
    v["status"] = "complete".into();
    std::fs::write(&info, serde_json::to_vec(&v).unwrap()).unwrap();
    let export = open(&root).await;
    assert_eq!(export.tables.len(), 1);
    assert!(plan(&export, None).await.is_ok());
}

/// Plans the shop export and expects a Parquet error naming `file`.
async fn expect_parquet_error(root: &Path, file: &Path) -> String {
    let export = open(root).await;
    let err = plan(&export, None).await.unwrap_err();
    let Error::Parquet {
        file: named,
        reason,
    } = &err
    else {
        panic!("expected Error::Parquet, got {err:?}");
    };
    assert_eq!(named, &file.display().to_string(), "{err}");
    reason.clone()
}

#[tokio::test]
async fn truncated_part_file_is_named() {
    let (_url, _dir, root) = shop_export().await;
    let files = parquet_files(&root);
    assert_eq!(files.len(), 1);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len / 2).unwrap();
    drop(f);
    let reason = expect_parquet_error(&root, &files[0]).await;
    assert!(reason.contains("unreadable footer"), "{reason}");
}

#[tokio::test]
async fn non_parquet_part_file_is_named() {
    let (_url, _dir, root) = shop_export().await;
    let good = parquet_files(&root).remove(0);
    let bogus = good.with_file_name("part-99999-not-parquet-c000.gz.parquet");
    std::fs::write(&bogus, b"id,name\n1,not parquet at all\n").unwrap();
    let reason = expect_parquet_error(&root, &bogus).await;
    assert!(reason.contains("unreadable footer"), "{reason}");
}

#[tokio::test]
async fn column_in_metadata_but_not_in_parquet_is_named() {
    let (url, _dir, root) = shop_export().await;
    edit_tables_info(&root, |v| {
        type_mappings(v, &items_target(&url)).push(serde_json::json!({
            "columnName": "ghost",
            "originalType": "text",
            "expectedExportedType": "binary (UTF8)"
        }));
    });
    let file = parquet_files(&root).remove(0);
    let reason = expect_parquet_error(&root, &file).await;
    assert!(
        reason.contains(
            "column \"ghost\" of table shop.items is in the metadata but not in this file"
        ),
        "{reason}"
    );
    assert!(reason.contains("id, name, made_at, note"), "{reason}");
}

#[tokio::test]
async fn column_in_parquet_but_not_in_metadata_is_named() {
    let (url, _dir, root) = shop_export().await;
    edit_tables_info(&root, |v| {
        type_mappings(v, &items_target(&url)).retain(|c| c["columnName"] != "note");
    });
    let file = parquet_files(&root).remove(0);
    let reason = expect_parquet_error(&root, &file).await;
    assert!(
        reason.contains(
            "column \"note\" is in this file but not in the metadata of table shop.items"
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn unparseable_timestamp_fails_the_load_naming_file_row_and_value() {
    let (url, _dir, root) = shop_export().await;
    edit_tables_info(&root, |v| {
        for c in type_mappings(v, &items_target(&url)) {
            if c["columnName"] == "made_at" {
                c["originalType"] = "timestamp without time zone".into();
            }
        }
    });
    let export = open(&root).await;
    let p = plan(&export, None).await.unwrap();
    let mut mapping = p.mapping;
    let t = &mut mapping.tables[0];
    assert_eq!(column(t, "made_at").target_type, PgType::Timestamp);
    t.target_schema = "dst".into();
    let file = parquet_files(&root).remove(0);
    let err = load_all(export, mapping, &url).await.unwrap_err();
    let Error::Convert {
        location,
        value,
        expected,
        reason,
    } = &err
    else {
        panic!("expected Error::Convert, got {err:?}");
    };
    // Row 4 of 6, in row groups of 2: row group 1, row 1.
    assert_eq!(location.file, file.display().to_string());
    assert_eq!((location.row_group, location.row), (1, 1), "{err}");
    assert_eq!(location.column, "made_at");
    assert_eq!(value, "the 4th, noonish");
    assert_eq!(expected, "timestamp");
    assert!(!reason.is_empty());
    let msg = err.to_string();
    for part in [
        file.display().to_string().as_str(),
        "row group 1",
        "row 1",
        "\"made_at\"",
        "\"the 4th, noonish\"",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
}

#[tokio::test]
async fn unknown_type_is_planned_and_loaded_as_text_with_a_warning() {
    let (url, _dir, root) = shop_export().await;
    edit_tables_info(&root, |v| {
        for c in type_mappings(v, &items_target(&url)) {
            if c["columnName"] == "note" {
                c["originalType"] = "mystery_type".into();
            }
        }
    });
    let export = open(&root).await;
    let p = plan(&export, None).await.unwrap();
    let warnings = p.report.warnings.join("\n");
    assert!(
        warnings.contains(
            "shop.items.note: type mystery_type is unknown to snap2dsql: loaded as its text form"
        ),
        "{warnings}"
    );
    let mut mapping = p.mapping;
    let t = &mut mapping.tables[0];
    let note = column(t, "note");
    assert_eq!(note.source_type, PgType::Other("mystery_type".into()));
    assert_eq!(note.target_type, PgType::Text);
    t.target_schema = "dst".into();
    assert_eq!(load_all(export, mapping, &url).await.unwrap(), 6);
    let same = pg().psql(
        db_name(&url),
        "SELECT count(*) FROM shop.items s JOIN dst.items t ON t.old_id = s.id
         WHERE t.note = s.note AND t.name = s.name AND t.made_at = s.made_at",
    );
    assert_eq!(same.trim(), "6");
}

#[tokio::test]
async fn several_databases_need_database_to_choose() {
    let (url_a, _dir_a, root) = shop_export().await;
    let url_b = pg().create_db("plan_other");
    pg().psql(
        db_name(&url_b),
        "CREATE TABLE public.things (id bigint PRIMARY KEY, label text);
         INSERT INTO things VALUES (1, 'one'), (2, 'two'), (3, 'three');",
    );
    let (_dir_b, root_b) = export_db(&url_b, 100).await;
    // One export of two databases: B's folder and B's table list moved into A's export.
    let (a, b) = (db_name(&url_a), db_name(&url_b));
    std::fs::rename(root_b.join(b), root.join(b)).unwrap();
    std::fs::copy(
        root_file(&root_b, "export_tables_info_"),
        root.join(format!(
            "export_tables_info_{EXPORT_ID}_from_100_to_100.json"
        )),
    )
    .unwrap();

    let err = Export::open(root.to_str().unwrap(), None)
        .await
        .unwrap_err();
    let Error::Usage(msg) = &err else {
        panic!("expected Error::Usage, got {err:?}");
    };
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    assert!(
        msg.contains(&format!("several databases ({first}, {second})")),
        "{msg}"
    );
    assert!(msg.contains("--database"), "{msg}");

    let err = Export::open(root.to_str().unwrap(), Some("nope"))
        .await
        .unwrap_err();
    let Error::Usage(msg) = &err else {
        panic!("expected Error::Usage, got {err:?}");
    };
    assert!(msg.contains("\"nope\""), "{msg}");
    assert!(msg.contains(&format!("{first}, {second}")), "{msg}");

    for (db, table, rows) in [(b, "public.things", 3), (a, "shop.items", 6)] {
        let export = Export::open(root.to_str().unwrap(), Some(db))
            .await
            .unwrap();
        assert_eq!(export.database, db);
        let names: Vec<String> = export.tables.iter().map(|t| t.qualified()).collect();
        assert_eq!(names, [table]);
        assert!(export.warnings.is_empty(), "{:?}", export.warnings);
        let p = plan(&export, None).await.unwrap();
        assert_eq!(p.report.database, db);
        assert_eq!(p.mapping.migration.database, db);
        assert_eq!(p.report.tables[0].rows, rows);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. The command line.

/// The CLI binary next to this test binary (target/debug/snap2dsql).
fn cli() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join(format!("snap2dsql{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build the CLI first (cargo build -p snap2dsql-cli, or cargo test --workspace)",
        bin.display()
    );
    bin
}

fn run_cli(args: &[&str]) -> std::process::Output {
    Command::new(cli())
        .args(args)
        .env("SNAP2DSQL_LOG", "error")
        .output()
        .expect("run the snap2dsql CLI")
}

#[tokio::test]
async fn cli_plan_writes_mapping_and_ddl_and_key_prints_the_new_key() {
    let url = storefront_db(10, 30);
    let (dir, root) = export_db(&url, 100).await;
    let schema_file = schema_dump(&url, dir.path());
    let out = dir.path().join("plan");
    let o = run_cli(&[
        "plan",
        "--export",
        root.to_str().unwrap(),
        "--source-schema",
        schema_file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "plan exited {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    let mapping_path = out.join("mapping.toml");
    let mapping = Mapping::load(&mapping_path).unwrap();
    // The file is the library's plan for the same inputs.
    let export = open(&root).await;
    let schema = SourceSchema::load(schema_file.to_str().unwrap())
        .await
        .unwrap();
    let expected = plan(&export, Some(&schema)).await.unwrap();
    assert_eq!(mapping, expected.mapping);
    let ddl_sql = std::fs::read_to_string(out.join("ddl.sql")).unwrap();
    for st in ddl::create_statements(&mapping) {
        assert!(
            ddl_sql.contains(&format!("{};", st.sql)),
            "{} missing:\n{ddl_sql}",
            st.what
        );
    }
    let post = std::fs::read_to_string(out.join("ddl-post-load.sql")).unwrap();
    let post_statements = ddl::post_load_statements(&mapping);
    assert_eq!(post_statements.len(), 4);
    for st in post_statements {
        assert!(
            post.contains(&format!("{};", st.sql)),
            "{} missing:\n{post}",
            st.what
        );
    }
    let async_lines = post
        .lines()
        .filter(|l| l.starts_with("CREATE INDEX ASYNC IF NOT EXISTS "))
        .count();
    assert_eq!(async_lines, 4, "{post}");

    let o = run_cli(&[
        "key",
        "--mapping",
        mapping_path.to_str().unwrap(),
        "--table",
        "sales.customers",
        "--old",
        "42",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = snap2dsql::keys::new_key(mapping.migration.namespace, "sales.customers", 42);
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{want}\n"));

    let o = run_cli(&[
        "key",
        "--mapping",
        mapping_path.to_str().unwrap(),
        "--table",
        "sales.nope",
        "--old",
        "42",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("\"sales.nope\""), "{stderr}");

    // Negative keys exist (sequences can start anywhere).
    let o = run_cli(&[
        "key",
        "--mapping",
        mapping_path.to_str().unwrap(),
        "--table",
        "sales.orders",
        "--old",
        "-5",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = snap2dsql::keys::new_key(mapping.migration.namespace, "sales.orders", -5);
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{want}\n"));

    // The report as JSON; the DDL is DSQL's, and there is no other dialect to ask for.
    let out_json = dir.path().join("plan-json");
    let o = run_cli(&[
        "plan",
        "--export",
        root.to_str().unwrap(),
        "--out",
        out_json.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "--json prints JSON: {e}: {}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    assert_eq!(report["export_id"], EXPORT_ID);
    assert_eq!(report["database"], db_name(&url));
    assert!(
        !report["guesses"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let post = std::fs::read_to_string(out_json.join("ddl-post-load.sql")).unwrap();
    assert_eq!(
        post.matches("\nCREATE INDEX ASYNC IF NOT EXISTS ").count(),
        3,
        "{post}"
    );
}

#[tokio::test]
async fn cli_plan_writes_a_mapping_dsql_would_refuse_then_fails_saying_why() {
    let url = pg().create_db("plan_wide");
    let cols: Vec<String> = (1..=255).map(|i| format!("c{i} int")).collect();
    pg().psql(
        db_name(&url),
        &format!(
            "CREATE TABLE wide (id int PRIMARY KEY, {}); INSERT INTO wide (id) VALUES (1);",
            cols.join(", ")
        ),
    );
    let (dir, root) = export_db(&url, 100).await;
    let out = dir.path().join("plan");
    let o = run_cli(&[
        "plan",
        "--export",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("error: mapping "), "{stderr}");
    assert!(
        stderr.contains("table public.wide: 257 target columns, DSQL allows 255"),
        "{stderr}"
    );
    // Written anyway, to be edited (drop columns) and reviewed.
    let text = std::fs::read_to_string(out.join("mapping.toml")).unwrap();
    assert!(text.contains("source = \"public.wide\""));
    assert!(out.join("ddl.sql").exists());
}

#[test]
fn cli_plan_of_a_bad_export_dir_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-export");
    let out = dir.path().join("plan");
    let o = run_cli(&[
        "plan",
        "--export",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert_eq!(o.status.code(), Some(2), "an unusable argument");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("is not a directory"), "{stderr}");
    assert!(!out.join("mapping.toml").exists());

    // A directory, but no export in it.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run_cli(&[
        "plan",
        "--export",
        empty.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.starts_with("error: export metadata "), "{stderr}");
    assert!(stderr.contains(empty.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("no export_info_*.json"), "{stderr}");
    assert!(!out.join("mapping.toml").exists());
}
