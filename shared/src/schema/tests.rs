//! Unit tests of the DDL reader; the catalog reader is tested against a real server in
//! `tests/it/schema.rs`.

use super::*;

fn ddl(sql: &str) -> SourceSchema {
    SourceSchema::from_ddl(sql, "test.sql").unwrap_or_else(|e| panic!("{e}"))
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

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn quoted_identifiers_keep_spaces_case_and_quotes() {
    let s = ddl(r#"
        CREATE SCHEMA "My Shop";
        CREATE TABLE "My Shop"."Order ""Items""" (
            "Item ID" int PRIMARY KEY, "UPPER" text, lower_case text, Folded text);
        CREATE TABLE "My Shop".notes ("Ref" int REFERENCES "My Shop"."Order ""Items""");
    "#);
    let t = s.table("My Shop.Order \"Items\"").expect("quoted table");
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Item ID", "UPPER", "lower_case", "folded"]);
    assert_eq!(t.primary_key, ["Item ID"]);
    let notes = s.table("My Shop.notes").expect("notes");
    assert_eq!(
        notes.foreign_keys,
        [ForeignKey {
            name: "notes_Ref_fkey".into(),
            columns: strs(&["Ref"]),
            ref_table: "My Shop.Order \"Items\"".into(),
            ref_columns: strs(&["Item ID"]),
        }]
    );
}

#[test]
fn unqualified_names_default_to_public() {
    let s = ddl("CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (t_id int REFERENCES t);");
    assert!(s.table("public.t").is_some());
    assert!(s.table("t").is_none());
    assert_eq!(s.tables["public.u"].foreign_keys[0].ref_table, "public.t");
}

#[test]
fn composite_primary_keys_from_table_constraints_and_alter_table() {
    let s = ddl("
        CREATE TABLE a (x int, y text, z int, PRIMARY KEY (y, x));
        CREATE TABLE b (x int, y int);
        ALTER TABLE ONLY b ADD CONSTRAINT b_pkey PRIMARY KEY (x, y);
    ");
    assert_eq!(s.tables["public.a"].primary_key, ["y", "x"]);
    assert_eq!(
        s.tables["public.a"].columns,
        [
            col("x", PgType::Integer, true, false),
            col("y", PgType::Text, true, false),
            col("z", PgType::Integer, false, false),
        ]
    );
    assert_eq!(s.tables["public.b"].primary_key, ["x", "y"]);
    assert!(s.tables["public.b"].columns.iter().all(|c| c.not_null));
}

#[test]
fn composite_and_self_referencing_foreign_keys() {
    let s = ddl("
        CREATE TABLE s.wh (region text, code int, PRIMARY KEY (region, code));
        CREATE TABLE s.stock (r text, c int, id int PRIMARY KEY, parent int REFERENCES s.stock,
            CONSTRAINT stock_wh FOREIGN KEY (r, c) REFERENCES s.wh (region, code));
        CREATE TABLE s.bin (r text, c int);
        ALTER TABLE ONLY s.bin ADD CONSTRAINT bin_wh_fkey FOREIGN KEY (r, c) REFERENCES s.wh;
    ");
    let stock = &s.tables["s.stock"];
    assert_eq!(
        stock.foreign_keys,
        [
            ForeignKey {
                name: "stock_parent_fkey".into(),
                columns: strs(&["parent"]),
                ref_table: "s.stock".into(),
                ref_columns: strs(&["id"]),
            },
            ForeignKey {
                name: "stock_wh".into(),
                columns: strs(&["r", "c"]),
                ref_table: "s.wh".into(),
                ref_columns: strs(&["region", "code"]),
            },
        ]
    );
    assert_eq!(
        s.tables["s.bin"].foreign_keys[0].ref_columns,
        ["region", "code"]
    );
}

#[test]
fn reference_without_columns_to_a_table_without_primary_key_is_an_error() {
    let e = SourceSchema::from_ddl(
        "CREATE TABLE p (id int); CREATE TABLE c (p_id int REFERENCES p);",
        "keys.sql",
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Schema { .. }));
    assert!(
        msg.starts_with("source schema keys.sql: table public.c"),
        "{msg}"
    );
    assert!(msg.contains("public.p"), "{msg}");
}

#[test]
fn unique_constraints_column_table_and_alter() {
    let s = ddl("
        CREATE TABLE t (a int UNIQUE, b int, c int, UNIQUE (c, b));
        ALTER TABLE t ADD CONSTRAINT t_b_key UNIQUE (b);
        CREATE UNIQUE INDEX t_a_c_uidx ON t (a, c);
    ");
    let t = &s.tables["public.t"];
    assert_eq!(
        t.unique,
        [strs(&["a"]), strs(&["b"]), strs(&["c", "b"])],
        "sorted"
    );
    assert_eq!(
        t.indexes,
        [IndexDef {
            name: "t_a_c_uidx".into(),
            columns: strs(&["a", "c"]),
            unique: true,
            plain: true,
        }]
    );
}

#[test]
fn primary_key_using_an_index_takes_the_index() {
    let s = ddl("
        CREATE TABLE t (a int, b int);
        CREATE UNIQUE INDEX t_idx ON t (b, a);
        ALTER TABLE t ADD CONSTRAINT t_pkey PRIMARY KEY USING INDEX t_idx;
    ");
    let t = &s.tables["public.t"];
    assert_eq!(t.primary_key, ["b", "a"]);
    assert!(t.indexes.is_empty());
    assert!(t.columns.iter().all(|c| c.not_null));
}

#[test]
fn arrays_carry_their_element_type() {
    let s = ddl("
        CREATE TYPE mood AS ENUM ('sad', 'happy');
        CREATE TABLE t (a text[], b int[][], c integer ARRAY, d varchar(10)[3], e mood[],
            f public.mood[], g pg_catalog.int8[]);
    ");
    let types: Vec<PgType> = s.tables["public.t"]
        .columns
        .iter()
        .map(|c| c.data_type.clone())
        .collect();
    let arr = |t: PgType| PgType::Array(Box::new(t));
    let mood = PgType::Enum("public.mood".into());
    assert_eq!(
        types,
        [
            arr(PgType::Text),
            arr(PgType::Integer),
            arr(PgType::Integer),
            arr(PgType::Varchar(Some(10))),
            arr(mood.clone()),
            arr(mood),
            arr(PgType::BigInt),
        ]
    );
}

#[test]
fn enums_with_labels_qualified_and_altered() {
    let s = ddl(r#"
        CREATE TYPE sales.mood AS ENUM ('sad', 'ok', 'happy');
        CREATE TYPE "Color" AS ENUM ('red', 'blue');
        ALTER TYPE "Color" ADD VALUE 'green' BEFORE 'blue';
        ALTER TYPE "Color" ADD VALUE 'white' AFTER 'blue';
        ALTER TYPE "Color" ADD VALUE 'black';
        ALTER TYPE "Color" RENAME VALUE 'red' TO 'crimson';
        CREATE TABLE sales.t (m sales.mood NOT NULL, c "Color", p public."Color", x mood);
    "#);
    assert_eq!(s.enums["sales.mood"], ["sad", "ok", "happy"]);
    assert_eq!(
        s.enums["public.Color"],
        ["crimson", "green", "blue", "white", "black"]
    );
    let cols = &s.tables["sales.t"].columns;
    assert_eq!(
        cols[0],
        col("m", PgType::Enum("sales.mood".into()), true, false)
    );
    assert_eq!(cols[1].data_type, PgType::Enum("public.Color".into()));
    assert_eq!(cols[2].data_type, PgType::Enum("public.Color".into()));
    // Unqualified names are looked up in public only, like a default search_path.
    assert_eq!(cols[3].data_type, PgType::Other("mood".into()));
}

#[test]
fn user_defined_types_are_qualified_when_the_ddl_creates_them() {
    let s = ddl("
        CREATE DOMAIN posint AS int CHECK (VALUE > 0);
        CREATE TYPE pair AS (a int, b int);
        CREATE TABLE t (a posint, b pair, c public.citext, d point, e public.vector(3), f posint[]);
    ");
    let types: Vec<PgType> = s.tables["public.t"]
        .columns
        .iter()
        .map(|c| c.data_type.clone())
        .collect();
    assert_eq!(
        types,
        [
            PgType::Other("public.posint".into()),
            PgType::Other("public.pair".into()),
            PgType::Other("public.citext".into()),
            PgType::Other("point".into()),
            PgType::Other("public.vector(3)".into()),
            PgType::Array(Box::new(PgType::Other("public.posint".into()))),
        ]
    );
}

#[test]
fn builtin_type_spellings() {
    let s = ddl("
        CREATE TABLE t (a pg_catalog.int4, b character varying(50), c varchar,
            d timestamp(3) with time zone, e double precision, f numeric(6), g decimal(6,2),
            h bit varying(8), i uuid, j jsonb, k bool, l char, m character(3), n smallint,
            o float(24), p time(2), q interval day to second(3), r text, s bytea, u timestamp,
            v bigint, w real, x date, y json, z money);
    ");
    let types: Vec<PgType> = s.tables["public.t"]
        .columns
        .iter()
        .map(|c| c.data_type.clone())
        .collect();
    assert_eq!(
        types,
        [
            PgType::Integer,
            PgType::Varchar(Some(50)),
            PgType::Varchar(None),
            PgType::TimestampTz,
            PgType::Double,
            PgType::Numeric {
                precision: Some(6),
                scale: Some(0)
            },
            PgType::Numeric {
                precision: Some(6),
                scale: Some(2)
            },
            PgType::VarBit(Some(8)),
            PgType::Uuid,
            PgType::Jsonb,
            PgType::Boolean,
            PgType::Char(Some(1)),
            PgType::Char(Some(3)),
            PgType::SmallInt,
            PgType::Real,
            PgType::Time,
            PgType::Interval,
            PgType::Text,
            PgType::Bytea,
            PgType::Timestamp,
            PgType::BigInt,
            PgType::Real,
            PgType::Date,
            PgType::Json,
            PgType::Money,
        ]
    );
}

#[test]
fn serial_types_defaults_and_identity_columns() {
    let s = ddl("
        CREATE TABLE t (
            a serial, b bigserial PRIMARY KEY, c smallserial, d serial4,
            e int DEFAULT nextval('t_e_seq'::regclass),
            f bigint DEFAULT pg_catalog.nextval('s'),
            g int GENERATED ALWAYS AS IDENTITY,
            h int GENERATED BY DEFAULT AS IDENTITY (START WITH 10),
            i int DEFAULT 42,
            j int, k int, l int);
        CREATE SEQUENCE t_j_seq;
        ALTER TABLE ONLY t ALTER COLUMN j SET DEFAULT nextval('public.t_j_seq'::regclass);
        ALTER TABLE t ALTER COLUMN k ADD GENERATED ALWAYS AS IDENTITY (
            SEQUENCE NAME public.t_k_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1);
        ALTER TABLE t ALTER COLUMN l SET DEFAULT 0;
    ");
    let cols = &s.tables["public.t"].columns;
    let got: Vec<(&str, &PgType, bool, bool)> = cols
        .iter()
        .map(|c| (c.name.as_str(), &c.data_type, c.not_null, c.serial))
        .collect();
    assert_eq!(
        got,
        [
            ("a", &PgType::Integer, true, true),
            ("b", &PgType::BigInt, true, true),
            ("c", &PgType::SmallInt, true, true),
            ("d", &PgType::Integer, true, true),
            ("e", &PgType::Integer, false, true),
            ("f", &PgType::BigInt, false, true),
            ("g", &PgType::Integer, true, true),
            ("h", &PgType::Integer, true, true),
            ("i", &PgType::Integer, false, false),
            ("j", &PgType::Integer, false, true),
            ("k", &PgType::Integer, true, true),
            ("l", &PgType::Integer, false, false),
        ]
    );
}

#[test]
fn catalog_defaults_are_classified_like_ddl_defaults() {
    assert!(ddl::default_is_nextval("nextval('t_id_seq'::regclass)"));
    assert!(ddl::default_is_nextval(
        "(nextval('s.\"Odd Seq\"'::regclass))::integer"
    ));
    assert!(!ddl::default_is_nextval("now()"));
    assert!(!ddl::default_is_nextval(
        "('x'::text || nextval('s'::regclass))"
    ));
    assert!(!ddl::default_is_nextval("not valid sql ("));
}

#[test]
fn not_null_from_every_spelling() {
    let s = ddl("
        CREATE TABLE t (a int NOT NULL, b int NULL, c int, d int, e int CONSTRAINT e_nn NOT NULL);
        ALTER TABLE t ALTER COLUMN c SET NOT NULL;
        ALTER TABLE t ALTER COLUMN e DROP NOT NULL;
    ");
    let nn: Vec<bool> = s.tables["public.t"]
        .columns
        .iter()
        .map(|c| c.not_null)
        .collect();
    assert_eq!(nn, [true, false, true, false, false]);
}

#[test]
fn expression_partial_and_other_indexes_are_not_plain() {
    let s = ddl("
        CREATE TABLE t (a int, b text, c int);
        CREATE INDEX t_plain ON t USING btree (a, c);
        CREATE INDEX t_asc ON t (a ASC NULLS LAST);
        CREATE INDEX t_expr ON t (lower(b));
        CREATE INDEX t_mixed ON t (a, (c + 1));
        CREATE INDEX t_partial ON t (a) WHERE c > 0;
        CREATE INDEX t_hash ON t USING hash (b);
        CREATE INDEX t_desc ON t (a DESC);
        CREATE INDEX t_nulls ON t (a NULLS FIRST);
        CREATE INDEX t_incl ON t (a) INCLUDE (b);
        CREATE INDEX t_ops ON t (b text_pattern_ops);
        CREATE INDEX t_coll ON t (b COLLATE \"C\");
        CREATE INDEX t_paren ON t ((a));
        CREATE INDEX ON t (lower(b), a);
        CREATE INDEX ON t (c);
        CREATE INDEX ON missing_table (a);
    ");
    let got: Vec<(&str, Vec<&str>, bool)> = s.tables["public.t"]
        .indexes
        .iter()
        .map(|i| {
            (
                i.name.as_str(),
                i.columns.iter().map(String::as_str).collect(),
                i.plain,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("t_asc", vec!["a"], true),
            ("t_c_idx", vec!["c"], true),
            ("t_coll", vec!["b"], false),
            ("t_desc", vec!["a"], false),
            ("t_expr", vec![], false),
            ("t_hash", vec!["b"], false),
            ("t_incl", vec!["a"], false),
            ("t_lower_a_idx", vec!["a"], false),
            ("t_mixed", vec!["a"], false),
            ("t_nulls", vec!["a"], false),
            ("t_ops", vec!["b"], false),
            ("t_paren", vec!["a"], true),
            ("t_partial", vec!["a"], false),
            ("t_plain", vec!["a", "c"], true),
        ]
    );
    assert_eq!(s.tables.len(), 1);
}

#[test]
fn default_names_are_shortened_like_postgresql() {
    let table = "a".repeat(60);
    let name = ddl::object_name(&table, &"b".repeat(10), "fkey");
    assert_eq!(name, format!("{}_{}_fkey", "a".repeat(47), "b".repeat(10)));
    assert_eq!(name.len(), 63);
    assert_eq!(ddl::object_name("t", "a_b", "idx"), "t_a_b_idx");
    // Never cut inside a character.
    let name = ddl::object_name(&"é".repeat(40), "x", "idx");
    assert!(name.len() <= 63, "{name}");
}

#[test]
fn pg_dump_preamble_meta_commands_and_other_statements_are_skipped() {
    let s = ddl(r#"\restrict abc123
--
-- PostgreSQL database dump
--
SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;
COMMENT ON EXTENSION citext IS 'case-insensitive text';
CREATE SCHEMA sales;
ALTER SCHEMA sales OWNER TO postgres;
CREATE FUNCTION sales.f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
CREATE TABLE sales.t (id integer NOT NULL, name public.citext);
ALTER TABLE sales.t OWNER TO postgres;
COMMENT ON TABLE sales.t IS 'a table';
CREATE SEQUENCE sales.t_id_seq AS integer START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
ALTER SEQUENCE sales.t_id_seq OWNED BY sales.t.id;
CREATE VIEW sales.v AS SELECT id FROM sales.t;
CREATE MATERIALIZED VIEW sales.mv AS SELECT id FROM sales.t;
CREATE INDEX mv_idx ON sales.mv (id);
ALTER TABLE ONLY sales.other ADD CONSTRAINT other_pkey PRIMARY KEY (id);
GRANT SELECT ON TABLE sales.t TO PUBLIC;
ALTER TABLE ONLY sales.t ALTER COLUMN id SET DEFAULT nextval('sales.t_id_seq'::regclass);
ALTER TABLE ONLY sales.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);
\unrestrict abc123
"#);
    assert_eq!(s.tables.keys().collect::<Vec<_>>(), ["sales.t"]);
    let t = s.table("sales.t").expect("sales.t");
    assert_eq!(t.primary_key, ["id"]);
    assert_eq!(
        t.columns,
        [
            col("id", PgType::Integer, true, true),
            col("name", PgType::Other("public.citext".into()), false, false),
        ]
    );
}

#[test]
fn syntax_error_names_the_file_the_line_and_the_parser_message() {
    let e = SourceSchema::from_ddl(
        "CREATE TABLE a (x int);\n\nCREATE TABLE b (y int,, z int);\n",
        "dump.sql",
    )
    .unwrap_err();
    assert!(matches!(&e, Error::Schema { source_name, .. } if source_name == "dump.sql"));
    let msg = e.to_string();
    assert_eq!(
        msg,
        "source schema dump.sql: statement at line 3: syntax error at or near \",\""
    );
}

#[test]
fn inheritance_and_partitions_put_parent_columns_first() {
    let s = ddl("
        CREATE TABLE base (id int PRIMARY KEY, created date NOT NULL);
        CREATE TABLE child (note text, created date) INHERITS (base);
        CREATE TABLE ev (id bigint GENERATED BY DEFAULT AS IDENTITY, at date) PARTITION BY RANGE (at);
        CREATE TABLE ev_1 PARTITION OF ev (at NOT NULL) FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    ");
    assert_eq!(
        s.tables["public.child"].columns,
        [
            col("id", PgType::Integer, true, false),
            col("created", PgType::Date, true, false),
            col("note", PgType::Text, false, false),
        ]
    );
    assert!(s.tables["public.child"].primary_key.is_empty());
    assert_eq!(
        s.tables["public.ev_1"].columns,
        [
            col("id", PgType::BigInt, true, true),
            col("at", PgType::Date, true, false),
        ]
    );
}

#[test]
fn alter_table_column_changes_and_dropped_constraints() {
    let s = ddl("
        CREATE TABLE p (id int PRIMARY KEY);
        CREATE TABLE t (a int, b int, gone int);
        ALTER TABLE t ADD COLUMN c varchar(5) NOT NULL;
        ALTER TABLE t ALTER COLUMN a TYPE bigint;
        ALTER TABLE t DROP COLUMN gone;
        ALTER TABLE t ADD CONSTRAINT t_b_fkey FOREIGN KEY (b) REFERENCES p (id);
        ALTER TABLE t ADD CONSTRAINT t_a_fkey FOREIGN KEY (a) REFERENCES p (id);
        ALTER TABLE t DROP CONSTRAINT t_b_fkey;
    ");
    let t = &s.tables["public.t"];
    assert_eq!(
        t.columns,
        [
            col("a", PgType::BigInt, false, false),
            col("b", PgType::Integer, false, false),
            col("c", PgType::Varchar(Some(5)), true, false),
        ]
    );
    let fks: Vec<&str> = t.foreign_keys.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(fks, ["t_a_fkey"]);
}

#[test]
fn serializes_types_as_sql_names() {
    let s = ddl("CREATE TABLE t (id serial PRIMARY KEY, tags text[]);");
    let json = serde_json::to_value(&s).expect("serialize");
    assert_eq!(
        json["tables"]["public.t"]["columns"][1]["data_type"],
        "text[]"
    );
    assert_eq!(json["tables"]["public.t"]["primary_key"][0], "id");
}

#[tokio::test]
async fn load_reads_a_file_and_reports_a_missing_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("schema.sql");
    std::fs::write(&path, "CREATE TABLE t (id int PRIMARY KEY);").expect("write");
    let s = SourceSchema::load(path.to_str().expect("utf-8 path"))
        .await
        .expect("load");
    assert_eq!(s.tables["public.t"].primary_key, ["id"]);
    let missing = dir.path().join("missing.sql");
    let e = SourceSchema::load(missing.to_str().expect("utf-8 path"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

#[test]
fn database_urls_are_shown_without_password() {
    assert_eq!(
        crate::db::redact_url("postgres://app:s3cret@db.example.com:5432/shop"),
        "postgres://app:***@db.example.com:5432/shop"
    );
    assert_eq!(
        crate::db::redact_url("postgresql://app@host/db"),
        "postgresql://app@host/db"
    );
}

#[test]
fn a_dump_with_data_reads_as_its_schema() {
    // The shape pg_dump writes by default: COPY blocks with rows in between the DDL.
    let dump = "CREATE TABLE public.t (\n    id integer NOT NULL,\n    note text DEFAULT ''::text NOT NULL\n);\n\
                COPY public.t (id, note) FROM stdin;\n1\thello\n2\t\\N\n\\.\n\
                ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n";
    let s = ddl(dump);
    let t = s.table("public.t").unwrap();
    assert_eq!(t.primary_key, ["id"]);
    assert_eq!(t.columns[1].default.as_deref(), Some("''::text"));
    // Without skipping, the first row is a syntax error (the issue's report).
    let err = SourceSchema::from_ddl(&dump.replace("COPY public.t", "-- COPY"), "d.sql")
        .unwrap_err()
        .to_string();
    assert!(err.contains("syntax error at or near \"1\""), "{err}");
}

#[test]
fn defaults_checks_views_and_other_objects() {
    let s = ddl("
        CREATE TYPE public.mood AS ENUM ('sad', 'ok');
        CREATE DOMAIN public.pos AS int CHECK (VALUE > 0);
        CREATE SEQUENCE public.free_seq;
        CREATE SEQUENCE public.t_n_seq;
        CREATE TABLE public.t (
            id int PRIMARY KEY, n int DEFAULT nextval('t_n_seq'), qty int DEFAULT 1 CHECK (qty > 0),
            m mood DEFAULT 'ok', a int, b int, CHECK (a < b), CONSTRAINT named CHECK (a > 0),
            g int GENERATED ALWAYS AS (a + 1) STORED);
        ALTER SEQUENCE public.t_n_seq OWNED BY public.t.n;
        ALTER TABLE public.t ADD CONSTRAINT late CHECK (b > 0) NOT VALID;
        ALTER TABLE public.t ALTER COLUMN a SET DEFAULT 7;
        CREATE VIEW public.v AS SELECT id FROM public.t WHERE qty > 1;
        CREATE FUNCTION public.f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
        CREATE TRIGGER tr BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.f();
        CREATE EXTENSION IF NOT EXISTS pgcrypto;
        COMMENT ON TABLE public.t IS 'the t';
        COMMENT ON COLUMN public.t.qty IS 'how many';
    ");
    let t = s.table("public.t").unwrap();
    let defaults: Vec<(&str, Option<&str>, bool)> = t
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.default.as_deref(), c.serial))
        .collect();
    assert_eq!(
        defaults,
        [
            ("id", None, false),
            ("n", None, true),
            ("qty", Some("1"), false),
            ("m", Some("'ok'"), false),
            ("a", Some("7"), false),
            ("b", None, false),
            ("g", None, false),
        ]
    );
    assert_eq!(t.columns[6].generated.as_deref(), Some("a + 1"));
    let checks: Vec<(&str, &str, bool)> = t
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.expr.as_str(), c.valid))
        .collect();
    assert_eq!(
        checks,
        [
            ("late", "b > 0", false),
            ("named", "a > 0", true),
            ("t_check", "a < b", true),
            ("t_qty_check", "qty > 0", true),
        ]
    );
    assert_eq!(s.views.len(), 1);
    assert_eq!(s.views[0].name, "public.v");
    assert_eq!(s.views[0].query, "SELECT id FROM public.t WHERE qty > 1");
    let objects: Vec<(ObjectKind, &str, &str)> = s
        .objects
        .iter()
        .map(|o| (o.kind, o.name.as_str(), o.detail.as_str()))
        .collect();
    assert_eq!(
        objects,
        [
            (ObjectKind::Sequence, "public.free_seq", ""),
            (ObjectKind::Trigger, "public.t.tr", "runs public.f"),
            (ObjectKind::Function, "public.f", "language plpgsql"),
            (ObjectKind::Type, "public.pos", "domain"),
            (ObjectKind::Extension, "pgcrypto", ""),
            (ObjectKind::Comment, "column public.t.qty", "how many"),
            (ObjectKind::Comment, "table public.t", "the t"),
        ]
    );
}
