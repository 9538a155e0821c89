//! The target schema keeps what the source promised (issue 17): real pg_dump files of databases
//! built here (plain with data, `--schema-only`, custom format) and the live catalog read the
//! same; the plan carries defaults, CHECKs, identities and views, reports every other object,
//! and checks DSQL's limits; the DDL runs through the DSQL stand-in, and after the load the
//! defaults and checks behave.

use snap2dsql::error::Error;
use snap2dsql::export::Export;
use snap2dsql::local_export::{LocalExportOptions, local_export};
use snap2dsql::mapping::Mapping;
use snap2dsql::plan::Plan;
use snap2dsql::schema::SourceSchema;
use snap2dsql::schema::report::Outcome;
use snap2dsql::target::Target;
use snap2dsql_tests::{connect, db_name, pg, standin};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A schema with every object kind the report covers, and some rows.
const EVERY_KIND: &str = r#"
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SCHEMA shop;
CREATE TYPE shop.status AS ENUM ('new', 'paid', 'shipped');
CREATE DOMAIN shop.positive AS integer CHECK (VALUE > 0);
CREATE TYPE shop.pair AS (a int, b int);
CREATE SEQUENCE shop.invoice_numbers;
CREATE TABLE shop.customers (
    id serial PRIMARY KEY CHECK (id > 0),
    username varchar(50) NOT NULL UNIQUE,
    note text DEFAULT '' NOT NULL,
    created_at timestamptz DEFAULT now() NOT NULL,
    credit numeric(10,2) DEFAULT 0 CHECK (credit >= 0),
    token text DEFAULT encode(public.gen_random_bytes(8), 'hex'));
CREATE TABLE shop.orders (
    id bigserial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES shop.customers (id),
    status shop.status DEFAULT 'new' NOT NULL,
    qty int DEFAULT 1 NOT NULL,
    CONSTRAINT qty_range CHECK (qty >= 1 AND qty <= 1000),
    CONSTRAINT shipped_has_qty CHECK (status <> 'shipped' OR qty > 0));
CREATE TABLE shop.order_lines (
    order_id bigint NOT NULL REFERENCES shop.orders (id),
    line smallint NOT NULL,
    seq serial,
    sku text NOT NULL CHECK (sku <> ''),
    PRIMARY KEY (order_id, line));
ALTER TABLE shop.orders ADD CONSTRAINT under_500 CHECK (qty < 500) NOT VALID;
CREATE INDEX orders_status_idx ON shop.orders (status);
CREATE INDEX customers_lower_idx ON shop.customers (lower(username));
CREATE VIEW shop.big_orders AS
    SELECT o.id, o.qty, c.username FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id
    WHERE o.qty > 5;
CREATE VIEW shop.big_order_count AS SELECT count(*) AS n FROM shop.big_orders;
CREATE VIEW shop.fresh AS SELECT id FROM shop.orders WHERE status = 'new';
CREATE MATERIALIZED VIEW shop.totals AS SELECT customer_id, sum(qty) AS qty FROM shop.orders GROUP BY 1;
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER customers_touch BEFORE UPDATE ON shop.customers
    FOR EACH ROW EXECUTE FUNCTION shop.touch();
CREATE FUNCTION shop.twice(x int) RETURNS int LANGUAGE sql AS 'SELECT x * 2';
COMMENT ON TABLE shop.customers IS 'who buys';
COMMENT ON COLUMN shop.orders.qty IS 'how many';
COMMENT ON VIEW shop.big_orders IS 'over five';
INSERT INTO shop.customers (username, credit) SELECT 'user' || g, g FROM generate_series(1, 20) g;
INSERT INTO shop.orders (customer_id, status, qty)
    SELECT 1 + g % 20, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3]::shop.status, 1 + g % 9
    FROM generate_series(1, 50) g;
INSERT INTO shop.order_lines (order_id, line, sku)
    SELECT 1 + g % 50, g, 'sku' || g FROM generate_series(1, 100) g;
"#;

/// `pg_dump` of `url`'s database with `args`, into `path`.
fn pg_dump(url: &str, args: &[&str], path: &Path) {
    let path = path.to_str().expect("a UTF-8 temp path");
    pg().pg_dump(url, &[args, &["-f", path]].concat());
}

/// The three dumps a user may have of `url`: plain with data, schema only, custom format.
struct Dumps {
    _dir: tempfile::TempDir,
    with_data: PathBuf,
    schema_only: PathBuf,
    custom: PathBuf,
}

fn dumps(url: &str) -> Dumps {
    let dir = tempfile::tempdir().unwrap();
    let d = Dumps {
        with_data: dir.path().join("with-data.sql"),
        schema_only: dir.path().join("schema-only.sql"),
        custom: dir.path().join("custom.dump"),
        _dir: dir,
    };
    pg_dump(url, &[], &d.with_data);
    pg_dump(url, &["--schema-only"], &d.schema_only);
    pg_dump(url, &["-Fc"], &d.custom);
    d
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every reading of the source gives the same schema; the custom-format dump is refused naming
/// the pg_restore command.
async fn read_all_ways(url: &str, d: &Dumps) -> SourceSchema {
    let live = SourceSchema::load(url).await.unwrap();
    let with_data = std::fs::read_to_string(&d.with_data).unwrap();
    assert!(with_data.contains("FROM stdin;"), "the dump has data");
    assert_eq!(SourceSchema::load(path(&d.with_data)).await.unwrap(), live);
    assert_eq!(
        SourceSchema::load(path(&d.schema_only)).await.unwrap(),
        live
    );
    let err = SourceSchema::load(path(&d.custom)).await.unwrap_err();
    assert!(matches!(err, Error::Schema { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "pg_restore --schema-only -f schema.sql {}",
            path(&d.custom)
        )),
        "{err}"
    );
    live
}

/// The export of `url` planned with `schema`: (export, plan, export directory).
async fn export_and_plan(
    url: &str,
    schema: &SourceSchema,
) -> (Arc<Export>, Plan, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let client = connect(url).await;
    local_export(
        &client,
        dir.path(),
        &LocalExportOptions::new("st"),
        &|_, _| {},
    )
    .await
    .unwrap();
    let export = Export::open(path(dir.path()), None).await.unwrap();
    let plan = snap2dsql::plan::plan(&export, Some(schema)).await.unwrap();
    plan.mapping.validate("test").unwrap();
    (Arc::new(export), plan, dir)
}

/// Creates the tables through the stand-in, loads the export and runs the post-load steps.
async fn load_through_standin(export: &Arc<Export>, mapping: &Mapping, url: &str) {
    let mapping = Arc::new(mapping.clone());
    let target = Target::parse(url).await.unwrap();
    snap2dsql_tests::load_into(export, &mapping, &target).await;
    snap2dsql::migrate::post_load(&target, &mapping)
        .await
        .unwrap();
}

fn sqlstate(e: &tokio_postgres::Error) -> &str {
    e.code().map(|c| c.code()).unwrap_or("none")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_object_kind_is_carried_changed_or_dropped_and_the_target_keeps_its_promises() {
    let source = pg().create_db("st_every");
    pg().psql(db_name(&source), EVERY_KIND);
    let d = dumps(&source);
    let schema = read_all_ways(&source, &d).await;
    assert_eq!(schema.views.len(), 3);
    let (export, plan, _dir) = export_and_plan(&source, &schema).await;
    let m = &plan.mapping;
    let report = &plan.report.schema;

    // The mapping: defaults (enum casts made text casts), checks, identity, views.
    let table = |s: &str| m.table(s).unwrap();
    let col = |t: &str, c: &str| {
        table(t)
            .columns
            .iter()
            .find(|x| x.name == c)
            .unwrap()
            .clone()
    };
    assert_eq!(
        col("shop.customers", "note").default.as_deref(),
        Some("''::text")
    );
    assert_eq!(
        col("shop.customers", "created_at").default.as_deref(),
        Some("now()")
    );
    assert_eq!(
        col("shop.customers", "token").default,
        None,
        "an extension's function"
    );
    assert_eq!(
        col("shop.orders", "status").default.as_deref(),
        Some("'new'::text")
    );
    let seq = col("shop.order_lines", "seq");
    assert!(seq.identity, "a non-key serial becomes an identity");
    assert_eq!(seq.target_type.to_string(), "bigint");
    let checks =
        |t: &str| -> Vec<String> { table(t).checks.iter().map(|c| c.name.clone()).collect() };
    assert_eq!(checks("shop.customers"), ["customers_credit_check"]);
    assert_eq!(checks("shop.orders"), ["qty_range", "shipped_has_qty"]);
    assert_eq!(checks("shop.order_lines"), ["order_lines_sku_check"]);
    let views: Vec<&str> = m.views.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        views,
        ["big_orders", "big_order_count"],
        "a view after the views it reads"
    );

    // The report: a line for every object, each dropped one with why and what to do.
    let dropped = report.lines(Outcome::Dropped).join("\n");
    for want in [
        "column default shop.customers.token DEFAULT",
        "constraint shop.customers customers_id_check CHECK (id > 0): it reads column id, whose type changes from integer to uuid",
        "constraint shop.orders under_500 CHECK (qty < 500): NOT VALID in the source",
        "index shop.customers customers_lower_idx",
        "view shop.fresh: uses type shop.status",
        "sequence shop.invoice_numbers",
        "view shop.totals: a materialized view",
        "trigger shop.customers.customers_touch",
        "function shop.touch: DSQL refuses functions other than LANGUAGE sql (language plpgsql)",
        "function shop.twice: functions are not migrated",
        "type shop.pair: DSQL refuses CREATE TYPE (composite)",
        "type shop.positive",
        "extension pgcrypto",
        "comment table shop.customers",
        "comment column shop.orders.qty",
        "comment view shop.big_orders",
    ] {
        assert!(
            dropped.contains(want),
            "{want:?} not dropped in:\n{dropped}"
        );
    }
    for line in report
        .objects
        .iter()
        .filter(|l| l.outcome == Outcome::Dropped)
    {
        assert!(line.why.is_some() && line.todo.is_some(), "{line:?}");
    }
    let changed = report.lines(Outcome::Changed).join("\n");
    for want in [
        "column default shop.order_lines.seq (sequence): bigint GENERATED BY DEFAULT AS IDENTITY (CACHE 1)",
        "column default shop.customers.id (sequence): the integer key becomes a uuid: new rows get DEFAULT gen_random_uuid()",
        "constraint shop.orders shipped_has_qty CHECK",
        "type shop.status (enum)",
        "constraint shop.customers UNIQUE (username): a UNIQUE index built after the load",
    ] {
        assert!(
            changed.contains(want),
            "{want:?} not changed in:\n{changed}"
        );
    }
    // `plan` prints the report and writes it as schema-report.json.
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(crate::load::cli())
        .args([
            "plan",
            "--export",
            path(_dir.path()),
            "--source-schema",
            path(&d.with_data),
        ])
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("schema objects NOT carried to DSQL"),
        "{stdout}"
    );
    assert!(
        stdout.contains("trigger shop.customers.customers_touch"),
        "{stdout}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("schema-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        json["objects"].as_array().unwrap().len(),
        report.objects.len()
    );
    assert_eq!(json["counts"]["trigger"]["dropped"], 1);
    let ddl = std::fs::read_to_string(out.path().join("ddl.sql")).unwrap();
    assert!(
        ddl.contains("CONSTRAINT \"qty_range\" CHECK (qty >= 1 AND qty <= 1000)"),
        "{ddl}"
    );
    assert!(
        ddl.contains("\"note\" text DEFAULT ''::text NOT NULL"),
        "{ddl}"
    );
    let post = std::fs::read_to_string(out.path().join("ddl-post-load.sql")).unwrap();
    assert!(
        post.contains("CREATE VIEW \"shop\".\"big_order_count\" AS"),
        "{post}"
    );
    let counts: Vec<String> = report.summary();
    println!("schema report counts:\n{}", counts.join("\n"));
    let total: usize = report
        .counts
        .values()
        .map(|c| c.carried + c.changed + c.dropped)
        .sum();
    assert_eq!(total, report.objects.len());

    // Through the stand-in: the DDL is accepted, the load and the post-load run.
    let standin = standin::start().await;
    let url = standin.db("st_every_target");
    load_through_standin(&export, m, &url).await;
    let db = connect(&url).await;
    // An insert without the defaulted columns succeeds: key, note, created_at, credit, status.
    let row = db
        .query_one(
            "INSERT INTO shop.customers (username) VALUES ('newcomer')
             RETURNING id::text, note, created_at IS NOT NULL, credit::text",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0).len(),
        36,
        "a uuid key from new_key_default"
    );
    assert_eq!(row.get::<_, &str>(1), "");
    assert!(row.get::<_, bool>(2));
    assert_eq!(row.get::<_, &str>(3), "0.00");
    let order = db
        .query_one(
            "INSERT INTO shop.orders (customer_id) SELECT id FROM shop.customers WHERE username = 'user1'
             RETURNING id::text, status, qty",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(order.get::<_, &str>(1), "new");
    assert_eq!(order.get::<_, i32>(2), 1);
    // The identity was restarted past the loaded maximum (100 lines loaded).
    let seq: i64 = db
        .query_one(
            &format!(
                "INSERT INTO shop.order_lines (order_id, line, sku) VALUES ('{}', 1, 'x') RETURNING seq",
                order.get::<_, &str>(0)
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(seq, 101);
    // A row violating a CHECK is refused.
    for bad in [
        "INSERT INTO shop.customers (username, credit) VALUES ('broke', -1)".to_string(),
        "INSERT INTO shop.orders (customer_id, qty) SELECT id, 0 FROM shop.customers LIMIT 1"
            .to_string(),
        format!(
            "INSERT INTO shop.order_lines (order_id, line, sku) VALUES ('{}', 1, '')",
            order.get::<_, &str>(0)
        ),
    ] {
        let e = db.batch_execute(&bad).await.unwrap_err();
        assert_eq!(sqlstate(&e), "23514", "{bad}: {e}");
    }
    // The views exist and answer as on the source.
    let n: i64 = db
        .query_one("SELECT n FROM shop.big_order_count", &[])
        .await
        .unwrap()
        .get(0);
    let src = connect(&source).await;
    let want: i64 = src
        .query_one("SELECT count(*) FROM shop.orders WHERE qty > 5", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, want);
    let e = db
        .batch_execute("SELECT * FROM shop.fresh")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P01", "a dropped view is not created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storefront_dumps_plan_and_load_with_a_key_default() {
    let source = pg().storefront_db("st_store", 30, 200);
    let d = dumps(&source);
    let schema = read_all_ways(&source, &d).await;
    let (export, plan, _dir) = export_and_plan(&source, &schema).await;
    let standin = standin::start().await;
    let url = standin.db("st_store_target");
    load_through_standin(&export, &plan.mapping, &url).await;
    let db = connect(&url).await;
    let id: String = db
        .query_one(
            "INSERT INTO sales.customers (username) VALUES ('walk-in') RETURNING id::text",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(id.len(), 36);
    let dropped = plan.report.schema.lines(Outcome::Dropped);
    assert!(dropped.is_empty(), "{dropped:#?}");

    // With new_key_default = "" the key has no default: an insert must bring its own key.
    let mut m = plan.mapping.clone();
    m.migration.new_key_default = String::new();
    let key = m.tables[0].key_column().unwrap();
    assert_eq!(
        snap2dsql::schema::target::default_clause(&plan.mapping.migration, key),
        " DEFAULT gen_random_uuid()"
    );
    assert_eq!(
        snap2dsql::schema::target::default_clause(&m.migration, key),
        ""
    );
}

#[test]
fn dsql_limits_fail_the_mapping_by_name() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let source = pg().create_db("st_limits");
    pg().psql(
        db_name(&source),
        "CREATE TABLE wide_key (a int, b int, c int, d int, e int, f int, g int, h int, i int,
                                big varchar(2000), PRIMARY KEY (a, b, c, d, e, f, g, h, i));",
    );
    let schema = rt.block_on(SourceSchema::load(&source)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (export, mut plan) = rt.block_on(async {
        let client = connect(&source).await;
        local_export(
            &client,
            dir.path(),
            &LocalExportOptions::new("lim"),
            &|_, _| {},
        )
        .await
        .unwrap();
        let export = Export::open(path(dir.path()), None).await.unwrap();
        let plan = snap2dsql::plan::plan(&export, Some(&schema)).await.unwrap();
        (export, plan)
    });
    drop(export);
    let t = &mut plan.mapping.tables[0];
    for i in 0..24 {
        t.indexes.push(snap2dsql::mapping::IndexMapping {
            name: format!("ix{i}"),
            columns: vec!["big".into()],
            unique: false,
            reason: None,
        });
    }
    t.indexes[0].name = "x".repeat(64);
    let err = plan
        .mapping
        .validate("mapping.toml")
        .unwrap_err()
        .to_string();
    for want in [
        "table public.wide_key: 25 indexes (the primary key's included), DSQL allows 24",
        "table public.wide_key, primary key: 9 key columns, DSQL allows 8",
        "index ix1: its columns' declared sizes allow 2000 bytes, DSQL keys hold 1024",
        "the name is 64 bytes",
    ] {
        assert!(err.contains(want), "{want:?} not in: {err}");
    }
    let mut m = plan.mapping.clone();
    m.tables[0].indexes.clear();
    m.tables[0].primary_key.truncate(8);
    m.validate("mapping.toml").unwrap();
    for i in 0..11 {
        let mut t = m.tables[0].clone();
        t.target_schema = format!("s{i}");
        m.tables.push(t);
    }
    let err = m.validate("mapping.toml").unwrap_err().to_string();
    assert!(err.contains("12 target schemas: DSQL allows 10"), "{err}");
}
