//! The source schema: a pg_dump of a real database reads the same as its live catalog.

use snap2dsql::schema::{ColumnSchema, ForeignKey, IndexDef, SourceSchema};
use snap2dsql::types::PgType;
use snap2dsql_tests::{connect, db_name, pg};

const STOREFRONT: &str = r#"
CREATE SCHEMA sales;
CREATE TABLE sales.customers (
    id serial PRIMARY KEY, username varchar(50), first_name varchar(50), last_name varchar(50));
CREATE TABLE sales.orders (
    id serial PRIMARY KEY, customer_id int REFERENCES sales.customers(id), order_date date,
    order_timestamp timestamp, product_details text, quantity int, unit_cost numeric(6,2),
    unit_weight real);
CREATE TYPE sales.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE sales.warehouses (
    region text, code int, name varchar(20) NOT NULL UNIQUE, PRIMARY KEY (region, code));
CREATE TABLE sales."Stock Items" (
    "Region" text, "Code" int, sku bigint GENERATED ALWAYS AS IDENTITY,
    "say ""hi""" sales.mood NOT NULL, tags text[], dims int[][], moods sales.mood[],
    price numeric, ts timestamptz(3), note char(3), "Span" interval day to second(2),
    PRIMARY KEY (sku),
    UNIQUE ("Region", "Code", sku),
    FOREIGN KEY ("Region", "Code") REFERENCES sales.warehouses (region, code));
CREATE TABLE sales.tree (
    id bigserial PRIMARY KEY, parent_id bigint REFERENCES sales.tree, label text);
CREATE INDEX orders_date_idx ON sales.orders (order_date, customer_id);
CREATE UNIQUE INDEX customers_username_uidx ON sales.customers (username);
CREATE INDEX customers_lower_idx ON sales.customers (lower(username));
CREATE INDEX orders_partial_idx ON sales.orders (quantity) WHERE quantity > 10;
CREATE INDEX tree_hash_idx ON sales.tree USING hash (label);
CREATE INDEX tree_desc_idx ON sales.tree (label DESC);
CREATE INDEX ON sales."Stock Items" ("Code");
CREATE TABLE public.plain (a int, b text);
"#;

/// Runs pg_dump --schema-only against `url`'s database and returns the file's text.
fn schema_dump(url: &str) -> String {
    pg().schema_dump(url)
}

fn col(name: &str, data_type: PgType, not_null: bool, serial: bool) -> ColumnSchema {
    ColumnSchema {
        name: name.into(),
        data_type,
        not_null,
        serial,
        default: None,
        generated: None,
    }
}

#[tokio::test]
async fn pg_dump_file_reads_the_same_as_the_live_catalog() {
    let url = pg().create_db("schema");
    pg().psql(db_name(&url), STOREFRONT);
    let dump = schema_dump(&url);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.sql");
    std::fs::write(&path, &dump).unwrap();

    let client = connect(&url).await;
    let live = SourceSchema::from_postgres(&client, &url).await.unwrap();
    let from_file = SourceSchema::load(path.to_str().unwrap()).await.unwrap();
    assert_eq!(from_file, live, "pg_dump file and catalog disagree");
    let from_url = SourceSchema::load(&url).await.unwrap();
    assert_eq!(from_url, live);
    // The hand-written script too: serial types, column constraints, default constraint and
    // index names, a reference to a primary key without columns.
    let from_script = SourceSchema::from_ddl(STOREFRONT, "storefront.sql").unwrap();
    assert_eq!(from_script, live, "fixture script and catalog disagree");

    assert_eq!(
        live.tables.keys().collect::<Vec<_>>(),
        [
            "public.plain",
            "sales.Stock Items",
            "sales.customers",
            "sales.orders",
            "sales.tree",
            "sales.warehouses"
        ]
    );
    let orders = live.table("sales.orders").unwrap();
    assert_eq!(orders.primary_key, ["id"]);
    assert_eq!(
        orders.columns,
        [
            col("id", PgType::Integer, true, true),
            col("customer_id", PgType::Integer, false, false),
            col("order_date", PgType::Date, false, false),
            col("order_timestamp", PgType::Timestamp, false, false),
            col("product_details", PgType::Text, false, false),
            col("quantity", PgType::Integer, false, false),
            col(
                "unit_cost",
                PgType::Numeric {
                    precision: Some(6),
                    scale: Some(2)
                },
                false,
                false
            ),
            col("unit_weight", PgType::Real, false, false),
        ]
    );
    assert_eq!(
        orders.foreign_keys,
        [ForeignKey {
            name: "orders_customer_id_fkey".into(),
            columns: vec!["customer_id".into()],
            ref_table: "sales.customers".into(),
            ref_columns: vec!["id".into()],
        }]
    );
    assert_eq!(
        orders.indexes,
        [
            IndexDef {
                name: "orders_date_idx".into(),
                columns: vec!["order_date".into(), "customer_id".into()],
                unique: false,
                plain: true,
            },
            IndexDef {
                name: "orders_partial_idx".into(),
                columns: vec!["quantity".into()],
                unique: false,
                plain: false,
            },
        ]
    );

    let customers = live.table("sales.customers").unwrap();
    assert_eq!(customers.columns[0], col("id", PgType::Integer, true, true));
    assert_eq!(customers.columns[1].data_type, PgType::Varchar(Some(50)));
    assert!(customers.unique.is_empty());
    let idx: Vec<(&str, bool, bool)> = customers
        .indexes
        .iter()
        .map(|i| (i.name.as_str(), i.unique, i.plain))
        .collect();
    assert_eq!(
        idx,
        [
            ("customers_lower_idx", false, false),
            ("customers_username_uidx", true, true)
        ]
    );

    let stock = live.table("sales.Stock Items").unwrap();
    assert_eq!(stock.primary_key, ["sku"]);
    assert_eq!(stock.unique, [vec!["Region", "Code", "sku"]]);
    assert_eq!(stock.foreign_keys[0].columns, ["Region", "Code"]);
    assert_eq!(stock.foreign_keys[0].ref_table, "sales.warehouses");
    assert_eq!(stock.foreign_keys[0].ref_columns, ["region", "code"]);
    let types: Vec<(&str, &PgType, bool, bool)> = stock
        .columns
        .iter()
        .map(|c| (c.name.as_str(), &c.data_type, c.not_null, c.serial))
        .collect();
    let mood = PgType::Enum("sales.mood".into());
    assert_eq!(
        types,
        [
            ("Region", &PgType::Text, false, false),
            ("Code", &PgType::Integer, false, false),
            ("sku", &PgType::BigInt, true, true),
            ("say \"hi\"", &mood, true, false),
            ("tags", &PgType::Array(Box::new(PgType::Text)), false, false),
            (
                "dims",
                &PgType::Array(Box::new(PgType::Integer)),
                false,
                false
            ),
            (
                "moods",
                &PgType::Array(Box::new(mood.clone())),
                false,
                false
            ),
            (
                "price",
                &PgType::Numeric {
                    precision: None,
                    scale: None
                },
                false,
                false
            ),
            ("ts", &PgType::TimestampTz, false, false),
            ("note", &PgType::Char(Some(3)), false, false),
            ("Span", &PgType::Interval, false, false),
        ]
    );
    assert_eq!(
        stock.indexes,
        [IndexDef {
            name: "Stock Items_Code_idx".into(),
            columns: vec!["Code".into()],
            unique: false,
            plain: true,
        }]
    );

    let warehouses = live.table("sales.warehouses").unwrap();
    assert_eq!(warehouses.primary_key, ["region", "code"]);
    assert_eq!(warehouses.unique, [vec!["name"]]);
    assert!(warehouses.columns.iter().all(|c| c.not_null));

    let tree = live.table("sales.tree").unwrap();
    assert_eq!(tree.columns[0], col("id", PgType::BigInt, true, true));
    assert_eq!(tree.foreign_keys[0].ref_table, "sales.tree");
    assert_eq!(tree.foreign_keys[0].ref_columns, ["id"]);
    assert!(tree.indexes.iter().all(|i| !i.plain));

    let plain = live.table("public.plain").unwrap();
    assert!(plain.primary_key.is_empty());
    assert_eq!(
        live.enums["sales.mood"],
        ["sad".to_string(), "ok".into(), "happy".into()]
    );
}

/// Inheritance, partitions, domains, extension-free user types and constraint-less tables:
/// the less common layouts still read the same both ways.
#[tokio::test]
async fn partitions_inheritance_and_domains_read_the_same_both_ways() {
    let url = pg().create_db("schema_more");
    pg().psql(
        db_name(&url),
        r#"
        CREATE DOMAIN public.posint AS int CHECK (VALUE > 0);
        CREATE TYPE public."Color" AS ENUM ('red', 'green');
        CREATE TABLE public.base (id int PRIMARY KEY, created timestamptz NOT NULL DEFAULT now());
        CREATE TABLE public.child (extra posint, shade "Color") INHERITS (public.base);
        CREATE TABLE public.events (id bigint GENERATED BY DEFAULT AS IDENTITY,
            at date NOT NULL, body jsonb, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
        CREATE TABLE public.events_2026 PARTITION OF public.events
            FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        CREATE INDEX events_body_idx ON public.events (at) INCLUDE (body);
        CREATE TABLE public.event_refs (id text, ev_id bigint, ev_at date,
            FOREIGN KEY (ev_id, ev_at) REFERENCES public.events);
        CREATE INDEX event_refs_id_idx ON public.event_refs (id text_pattern_ops);
        CREATE TABLE public.empty ();
        "#,
    );
    let dump = schema_dump(&url);
    let from_file = SourceSchema::from_ddl(&dump, "dump.sql").unwrap();
    let client = connect(&url).await;
    let live = SourceSchema::from_postgres(&client, "live").await.unwrap();
    assert_eq!(from_file, live, "pg_dump file and catalog disagree");

    let child = live.table("public.child").unwrap();
    let names: Vec<&str> = child.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "created", "extra", "shade"]);
    assert_eq!(
        child.columns[2].data_type,
        PgType::Other("public.posint".into())
    );
    assert_eq!(
        child.columns[3].data_type,
        PgType::Enum("public.Color".into())
    );
    let part = live.table("public.events_2026").unwrap();
    assert_eq!(part.primary_key, ["id", "at"]);
    // Identity on partitions is PostgreSQL 17+: only the partitioned table is sure to have it.
    assert!(live.table("public.events").unwrap().columns[0].serial);
    assert!(!live.table("public.events").unwrap().indexes[0].plain);
    let refs = live.table("public.event_refs").unwrap();
    assert_eq!(refs.foreign_keys[0].ref_columns, ["id", "at"]);
    assert!(!refs.indexes[0].plain);
    assert!(live.table("public.empty").unwrap().columns.is_empty());
}
