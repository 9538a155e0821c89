//! `verify` against a real PostgreSQL.
//!
//! - The printer property: for many values of every DSQL target type, made inside
//!   PostgreSQL, `convert::print` of the value's binary form equals PostgreSQL's `v::text`
//!   in a verify session, byte for byte.
//! - End to end: an export of a table with a column of every kind of source type, planned,
//!   loaded and verified: every table matches (this covers every type the mapping produces).
//! - Damage: the storefront loaded into a fresh database per case, one change made by SQL, and
//!   verify names exactly that row (missing, extra or differing, with the columns and values).

use snap2dsql::convert::print;
use snap2dsql::export::Export;
use snap2dsql::mapping::{Mapping, Rewrite};
use snap2dsql::target::Target;
use snap2dsql::types::PgType;
use snap2dsql::verify::{
    DiffKind, Difference, Status, VerifyOptions, VerifyReport, prepare_session, verify,
};
use snap2dsql_tests::{connect, db_name, export_and_plan, export_and_plan_with, load_fresh, pg};
use std::sync::Arc;

mod in_parts;

/// Values of one type: Rust's canonical text of `send(v)` == `v::text`. Returns how many.
async fn check(c: &tokio_postgres::Client, ty: &str, send: &str, values: &str) -> usize {
    let t = PgType::parse(ty).unwrap();
    let rows = c
        .query(
            &format!("SELECT v::text, {send}(v) FROM ({values}) AS x(v) WHERE v IS NOT NULL"),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{ty}: {e:?}"));
    assert!(!rows.is_empty(), "{ty}: no values");
    for r in &rows {
        let want: String = r.get(0);
        let bin: Vec<u8> = r.get(1);
        let mut got = String::new();
        print::canonical_text(&t, &bin, &mut got).unwrap_or_else(|e| panic!("{ty}: {want:?}: {e}"));
        assert_eq!(got, want, "{ty}: canonical text differs from PostgreSQL's");
    }
    rows.len()
}

fn list(ty: &str, items: &[&str]) -> String {
    let v: Vec<String> = items
        .iter()
        .map(|s| format!("('{}'::{ty})", s.replace('\'', "''")))
        .collect();
    format!("VALUES {}", v.join(", "))
}

fn random(n: usize, expr: &str) -> String {
    format!("SELECT {expr} FROM generate_series(1, {n}) AS r(i)")
}

#[tokio::test]
async fn canonical_text_equals_postgresql_for_every_target_type() {
    let c = connect(&pg().create_db("vcanon")).await;
    prepare_session(&c).await.unwrap();
    let mut n = 0;
    for (ty, send, lo, hi) in [
        ("smallint", "int2send", "-32768", "32767"),
        ("integer", "int4send", "-2147483648", "2147483647"),
        (
            "bigint",
            "int8send",
            "-9223372036854775808",
            "9223372036854775807",
        ),
    ] {
        let values = format!(
            "{} UNION ALL {}",
            list(ty, &[lo, hi, "0", "-1", "7"]),
            random(300, &format!("((random() - 0.5) * {hi})::{ty}"))
        );
        n += check(&c, ty, send, &values).await;
    }
    let f8 = format!(
        "{} UNION ALL {}",
        list(
            "float8",
            &[
                "NaN",
                "Infinity",
                "-Infinity",
                "-0",
                "0",
                "5e-324",
                "1.7976931348623157e+308",
                "0.1",
                "1e15",
                "1e16",
                "123456789012345680",
                "0.0001",
                "0.00001",
            ]
        ),
        random(
            1000,
            "(random() - 0.5) * power(10::float8, (random() * 600 - 300)::int)"
        )
    );
    n += check(&c, "double precision", "float8send", &f8).await;
    let f4 = format!(
        "{} UNION ALL {}",
        list(
            "float4",
            &[
                "NaN",
                "Infinity",
                "-0",
                "1e-45",
                "3.4028235e+38",
                "0.1",
                "100000",
                "1e6",
                "1234567"
            ]
        ),
        random(
            1000,
            "((random() - 0.5) * power(10::float8, (random() * 70 - 35)::int))::real"
        )
    );
    n += check(&c, "real", "float4send", &f4).await;
    let nums = format!(
        "{} UNION ALL {} UNION ALL {}",
        list(
            "numeric",
            &[
                "NaN",
                "0",
                "-0.000",
                "0.0001",
                "1.500",
                "100.00",
                "-1",
                "9999",
                "10000",
                "0.00001",
                "1e-1000",
                "12345678901234567890.123456789",
                "-0.1",
            ]
        ),
        random(
            1000,
            "round((random() - 0.5)::numeric * 10::numeric ^ (random() * 30)::int, (random() * 20)::int)"
        ),
        "SELECT repeat('9', 1000)::numeric"
    );
    n += check(&c, "numeric", "numeric_send", &nums).await;
    let scaled = random(
        300,
        "round((random() * 9999 - 5000)::numeric, 2)::numeric(6,2)",
    );
    n += check(&c, "numeric(6,2)", "numeric_send", &scaled).await;
    n += check(&c, "boolean", "boolsend", "VALUES (true), (false)").await;
    let texts = format!(
        "{} UNION ALL {}",
        list(
            "text",
            &[
                "",
                "plain",
                "quote's",
                "back\\slash",
                "new\nline",
                "ünïcødé 日本語 😀",
                "  spaces  ",
                "NULL",
            ]
        ),
        "SELECT string_agg(chr((random() * 55000 + 1)::int), '') FROM generate_series(1, 300) r(i), \
         LATERAL generate_series(1, 1 + r.i % 30) k GROUP BY r.i"
    );
    n += check(&c, "text", "textsend", &texts).await;
    let short = format!("SELECT v::varchar(40) FROM ({texts}) x(v) WHERE char_length(v) <= 40");
    n += check(&c, "varchar(40)", "varcharsend", &short).await;
    let chars = format!(
        "{} UNION ALL SELECT v::char(40) FROM ({texts}) x(v) WHERE char_length(v) <= 40",
        list("char(5)", &["ab", "ab   ", "", " a b"])
    );
    n += check(&c, "char(40)", "bpcharsend", &chars).await;
    let bytes = format!(
        "{} UNION ALL {}",
        "SELECT '\\x'::bytea UNION ALL SELECT decode(string_agg(lpad(to_hex(b), 2, '0'), ''), 'hex') FROM generate_series(0, 255) b",
        random(200, "decode(md5(random()::text), 'hex')")
    );
    n += check(&c, "bytea", "byteasend", &bytes).await;
    let uuids = format!(
        "{} UNION ALL {}",
        list(
            "uuid",
            &[
                "00000000-0000-0000-0000-000000000000",
                "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"
            ]
        ),
        random(200, "md5(random()::text)::uuid")
    );
    n += check(&c, "uuid", "uuid_send", &uuids).await;
    let dates = format!(
        "{} UNION ALL {}",
        list(
            "date",
            &[
                "2000-01-01",
                "1999-12-31",
                "2024-02-29",
                "1600-02-29",
                "0001-01-01",
                "0001-12-31 BC",
                "0005-02-29 BC",
                "4714-11-24 BC",
                "5874897-12-31",
                "10000-01-01",
                "infinity",
                "-infinity",
            ]
        ),
        random(
            2000,
            "'2000-01-01'::date + (random() * 4000000 - 2000000)::int"
        )
    );
    n += check(&c, "date", "date_send", &dates).await;
    let times = format!(
        "{} UNION ALL {}",
        list(
            "time",
            &[
                "00:00:00",
                "24:00:00",
                "23:59:59.999999",
                "12:00:00.5",
                "00:00:00.000001"
            ]
        ),
        random(1000, "'00:00'::time + random() * interval '24 hours'")
    );
    n += check(&c, "time", "time_send", &times).await;
    let timetz = format!(
        "{} UNION ALL {}",
        list(
            "timetz",
            &[
                "00:00:00+00",
                "24:00:00-15:59",
                "12:34:56.789+05:30",
                "01:02:03-00:00:15",
                "23:59:59.999999+15:59:59",
            ]
        ),
        random(
            500,
            "(('00:00'::time + random() * interval '24 hours')::text \
             || (CASE WHEN random() < 0.5 THEN '+' ELSE '-' END) \
             || lpad((random() * 15)::int::text, 2, '0') || ':' || lpad((random() * 59)::int::text, 2, '0'))::timetz"
        )
    );
    n += check(&c, "timetz", "timetz_send", &timetz).await;
    let ts_list = [
        "2000-01-01 00:00:00",
        "4714-11-24 00:00:00 BC",
        "294276-12-31 23:59:59.999999",
        "infinity",
        "-infinity",
        "2024-02-29 12:00:00.000001",
        "0001-01-01 00:00:00 BC",
        "0001-12-31 23:59:59.5 BC",
        "1999-12-31 23:59:59.999999",
        "10000-06-15 01:02:03",
    ];
    let ts_random = "'2000-01-01'::timestamp + (random() * 1.6e11 - 1.2e11) * interval '1 second' \
                     + (random() * 1e6)::int * interval '1 microsecond'";
    let ts = format!(
        "{} UNION ALL {}",
        list("timestamp", &ts_list),
        random(2000, ts_random)
    );
    n += check(&c, "timestamp", "timestamp_send", &ts).await;
    let tstz = format!(
        "{} UNION ALL {}",
        list("timestamptz", &ts_list),
        random(2000, &format!("({ts_random})::timestamptz"))
    );
    n += check(&c, "timestamptz", "timestamptz_send", &tstz).await;
    let intervals = format!(
        "{} UNION ALL {}",
        list(
            "interval",
            &[
                "0",
                "1 year 2 mons 3 days 04:05:06.789",
                "-1 days +02:03:00",
                "-1 year -2 mons +3 days -04:05:06",
                "1 mon -1 days",
                "-00:00:00.000001",
                "178000000 years",
                "-2562047788:00:54.775807",
                "1 day",
                "-1 day",
                "1 year -1 mons",
            ]
        ),
        random(
            1000,
            "make_interval((random() * 40 - 20)::int, (random() * 30 - 15)::int, 0, (random() * 80 - 40)::int, \
             (random() * 50 - 25)::int, (random() * 120 - 60)::int, round((random() * 120 - 60)::numeric, 6)::float8)"
        )
    );
    n += check(&c, "interval", "interval_send", &intervals).await;
    let json_items = [
        r#"{"a": [1, 2.5e300, "x\"y", null, true], "b": {}}"#,
        "[]",
        r#""\u00e9\n\u0001""#,
        "1e400",
        "-0",
        "0.000",
        "1.50E+2",
        "  {\"k\" : \"spaced\" , \"a\":1}  ",
        r#"{"dup": 1, "dup": 2, "aa": {"c": [], "b": -1.0e-2}}"#,
        r#"{"\ud83d\ude00": "\/slash\b\f\r\t"}"#,
    ];
    n += check(&c, "json", "json_send", &list("json", &json_items)).await;
    let jsonb = format!(
        "{} UNION ALL {}",
        list("jsonb", &json_items),
        random(
            500,
            "jsonb_build_object(md5(random()::text), round(random()::numeric * 1000, (random() * 5)::int), \
             repeat('k', (random() * 3)::int), ARRAY[random(), -1e-5, 1e20], 'b', random() < 0.5, 'n', NULL::int, \
             's', chr((random() * 5000 + 1)::int) || E'\\n\\t\"\\\\')"
        )
    );
    n += check(&c, "jsonb", "jsonb_send", &jsonb).await;
    eprintln!("canonical texts: {n} values");
}

async fn run_verify(export: &Arc<Export>, mapping: &Arc<Mapping>, target: &Target) -> VerifyReport {
    verify(
        export.clone(),
        mapping.clone(),
        target,
        &VerifyOptions::default(),
        &|_, _| {},
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_source_type_loads_and_verifies_as_a_match() {
    let src = pg().create_db("vtypes");
    pg().psql(
        db_name(&src),
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); \
         CREATE TABLE public.everything (id serial PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, \
           f4 real, f8 double precision, n numeric, n62 numeric(6,2), m money, b boolean, t text, \
           vc varchar(12), c5 char(5), by bytea, u uuid, d date, tm time, ttz timetz, ts timestamp, \
           tstz timestamptz, iv interval, j json, jb jsonb, ai integer[], at text[], e mood, ip inet); \
         INSERT INTO public.everything (i2, i4, i8, f4, f8, n, n62, m, b, t, vc, c5, by, u, d, tm, ttz, ts, tstz, iv, j, jb, ai, at, e, ip) \
         SELECT (g % 300)::smallint, g * 1000, g::bigint * 1000000007, (g / 7.0)::real, g / 3.0, \
           round((random() - 0.5)::numeric * 1e6, (g % 9)), round((random() * 9999)::numeric, 2), \
           (g * 1.25)::money, g % 2 = 0, 'text ' || g || repeat(' ', g % 3), 'vc' || g, 'c' || (g % 50), \
           decode(md5(g::text), 'hex'), md5(g::text)::uuid, date '2000-01-01' + (g * 37 - 5000), \
           time '00:00' + g * interval '17 minutes 3.25 seconds', \
           (time '00:00' + g * interval '7 minutes')::timetz, \
           timestamp '1999-12-31 23:59:59.999999' + g * interval '1 day 1 microsecond', \
           timestamptz '2020-01-01 00:00:00+05:30' - g * interval '3 days 1 second', \
           make_interval(0, g % 14, 0, g % 40 - 20, g % 30 - 10, 0, (g % 60) / 4.0), \
           json_build_object('g', g, 'x', ARRAY[g, -g], 's', 'é' || g), \
           jsonb_build_object('g', g, 'nested', jsonb_build_object('b', 1.50, 'a', NULL), 'k' || (g % 3), 1e3), \
           ARRAY[g, NULL, -g], ARRAY['a' || g, 'with \"quote\"', NULL], \
           (ARRAY['sad', 'ok', 'happy']::mood[])[1 + g % 3], ('10.0.' || (g % 250) || '.1/24')::inet \
         FROM generate_series(1, 400) g; \
         INSERT INTO public.everything (i2) VALUES (NULL);",
    );
    let (export, mapping, _dir) = export_and_plan(&src, "vtypes-export").await;
    // A reviewer's edits: one column dropped, one renamed.
    let mut edited = (*mapping).clone();
    let table = edited
        .tables
        .iter_mut()
        .find(|t| t.source == "public.everything")
        .unwrap();
    for c in &mut table.columns {
        match c.name.as_str() {
            "ip" => c.drop = true,
            "vc" => c.target = "label".into(),
            _ => {}
        }
    }
    edited.validate("edited").unwrap();
    let mapping = Arc::new(edited);
    let (url, target, _standin) = load_fresh(&export, &mapping, "vtypesdst").await;
    let report = run_verify(&export, &mapping, &target).await;
    let t = report.table("public.everything").unwrap();
    assert_eq!(t.status, Status::Match, "{t:#?}");
    assert_eq!((t.rows_in_export, t.rows_in_target), (401, 401));
    // The all-NULL row is counted in every nullable column on both sides.
    let t_col = t.columns.iter().find(|c| c.name == "t").unwrap();
    assert_eq!((t_col.nulls_in_export, t_col.nulls_in_target), (1, 1));
    assert!(report.ok);

    // One changed value in each column, each in its own row: each row is named with exactly
    // that column.
    let changes = [
        ("i2", "i2 + 1"),
        ("i4", "i4 + 1"),
        ("i8", "i8 + 1"),
        ("f4", "f4 * 2 + 1"),
        ("f8", "f8 + 0.5"),
        ("n", "n + 1"),
        ("n62", "n62 + 0.01"),
        ("m", "m + 0.0001"),
        ("b", "NOT b"),
        ("t", "t || ' '"),
        ("label", "label || 'x'"),
        ("c5", "'zz'"),
        ("by", "by || '\\x00'::bytea"),
        ("u", "md5('x')::uuid"),
        ("d", "d + 1"),
        ("tm", "tm + interval '1 microsecond'"),
        ("ttz", "ttz + interval '1 second'"),
        ("ts", "ts + interval '1 microsecond'"),
        ("tstz", "tstz + interval '1 microsecond'"),
        ("iv", "iv + interval '1 microsecond'"),
        ("j", "'{\"g\": 0}'::json"),
        ("jb", "jb || '{\"z\": 1}'::jsonb"),
        ("ai", "ai || '[1]'::jsonb"),
        ("at", "at || '[\"x\"]'::jsonb"),
        ("e", "e || '!'"),
    ];
    let db = db_name(&url).to_string();
    let mut sql = String::new();
    for (k, (col, expr)) in changes.iter().enumerate() {
        sql.push_str(&format!(
            "UPDATE public.everything SET {col} = {expr} WHERE old_id = {};\n",
            k + 1
        ));
    }
    pg().psql(&db, &sql);
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
    let t = report.table("public.everything").unwrap();
    assert_eq!(t.status, Status::Mismatch);
    assert_eq!(
        (t.missing, t.extra, t.differing),
        (0, 0, changes.len() as u64)
    );
    for (k, (col, _)) in changes.iter().enumerate() {
        let old = (k + 1).to_string();
        let d = t
            .differences
            .iter()
            .find(|d| d.old_key.as_deref() == Some(old.as_str()))
            .unwrap_or_else(|| panic!("{col}: row {old} not listed: {t:#?}"));
        assert_eq!(d.kind, DiffKind::Differs);
        assert_eq!(d.columns.len(), 1, "{col}: {d:#?}");
        assert_eq!(d.columns[0].column, *col, "{d:#?}");
    }
}

/// One storefront source with a NULL first name, exported and planned once per test.
async fn storefront() -> (Arc<Export>, Arc<Mapping>, tempfile::TempDir) {
    let src = pg().storefront_db("vsrc", 100, 600);
    pg().psql(
        db_name(&src),
        "UPDATE sales.customers SET first_name = NULL WHERE id = 5",
    );
    export_and_plan(&src, "vsrc-export").await
}

/// The only difference of `table`, asserting the other tables match.
fn only_difference<'a>(report: &'a VerifyReport, table: &str) -> &'a Difference {
    for t in &report.tables {
        if t.source == table {
            assert_eq!(t.status, Status::Mismatch, "{t:#?}");
            assert_eq!(
                t.missing + t.extra + t.differing,
                1,
                "exactly one difference expected: {t:#?}"
            );
            assert_eq!(t.differences.len(), 1, "{t:#?}");
        } else {
            assert_eq!(t.status, Status::Match, "{t:#?}");
        }
    }
    assert!(!report.ok);
    &report.table(table).unwrap().differences[0]
}

/// A damage case: name, SQL, table, kind, key, old key, changed column.
type Case<'a> = (
    &'a str,
    String,
    &'a str,
    DiffKind,
    String,
    Option<&'a str>,
    Option<&'a str>,
);

#[tokio::test(flavor = "multi_thread")]
async fn clean_load_matches_and_each_damage_is_named() {
    let (export, mapping, _dir) = storefront().await;
    let ns = mapping.migration.namespace;
    let key = |table: &str, old: i64| snap2dsql::keys::new_key(ns, table, old).to_string();

    let (_url, target, _standin) = load_fresh(&export, &mapping, "vclean").await;
    let report = run_verify(&export, &mapping, &target).await;
    assert!(report.ok, "{report:#?}");
    for t in &report.tables {
        assert_eq!(t.status, Status::Match);
        assert_eq!(t.rows_in_export, t.rows_in_target);
        assert_eq!(t.fingerprint_export, t.fingerprint_target);
    }
    assert_eq!(report.rows_in_export, 700);
    let first = report.table("sales.customers").unwrap();
    let fname = first
        .columns
        .iter()
        .find(|c| c.name == "first_name")
        .unwrap();
    assert_eq!((fname.nulls_in_export, fname.nulls_in_target), (1, 1));
    // Sums, minimums and maximums where they apply, equal on both sides.
    let orders = report.table("sales.orders").unwrap();
    let col = |n: &str| orders.columns.iter().find(|c| c.name == n).unwrap();
    let quantity = col("quantity");
    assert!(quantity.sum_export.is_some());
    assert_eq!(quantity.sum_export, quantity.sum_target);
    assert_eq!(quantity.min_export.as_deref(), Some("1"));
    assert_eq!(quantity.max_export.as_deref(), Some("9"));
    let ts = col("order_timestamp");
    assert!(
        ts.min_export
            .as_deref()
            .is_some_and(|m| m.starts_with("2020-01-01"))
    );
    assert_eq!(
        (&ts.min_export, &ts.max_export),
        (&ts.min_target, &ts.max_target)
    );
    assert_eq!(ts.sum_export, None);
    assert_eq!(col("product_details").min_export, None);

    // (name, SQL damage, table, kind, key, old key, changed column)
    let other_customer = key("sales.customers", 3);
    let cases: Vec<Case> = vec![
        (
            "deleted row",
            "DELETE FROM sales.orders WHERE old_id = 7".into(),
            "sales.orders",
            DiffKind::Missing,
            key("sales.orders", 7),
            Some("7"),
            None,
        ),
        (
            "duplicated row (a copy under another new key, same old key)",
            "INSERT INTO sales.orders SELECT '00000000-0000-0000-0000-000000000001', old_id, customer_id, \
             order_date, order_timestamp, product_details, quantity, unit_cost, unit_weight \
             FROM sales.orders WHERE old_id = 8"
                .into(),
            "sales.orders",
            DiffKind::Extra,
            "00000000-0000-0000-0000-000000000001".into(),
            Some("8"),
            None,
        ),
        (
            "extra row",
            "INSERT INTO sales.customers (id, old_id, username) \
             VALUES ('00000000-0000-0000-0000-0000000000ff', 100000, 'intruder')"
                .into(),
            "sales.customers",
            DiffKind::Extra,
            "00000000-0000-0000-0000-0000000000ff".into(),
            Some("100000"),
            None,
        ),
        (
            "timestamp off by one microsecond",
            "UPDATE sales.orders SET order_timestamp = order_timestamp + interval '1 microsecond' WHERE old_id = 9".into(),
            "sales.orders",
            DiffKind::Differs,
            key("sales.orders", 9),
            Some("9"),
            Some("order_timestamp"),
        ),
        (
            "numeric off in the last decimal",
            "UPDATE sales.orders SET unit_cost = unit_cost + 0.01 WHERE old_id = 10".into(),
            "sales.orders",
            DiffKind::Differs,
            key("sales.orders", 10),
            Some("10"),
            Some("unit_cost"),
        ),
        (
            "string with a trailing space",
            "UPDATE sales.orders SET product_details = product_details || ' ' WHERE old_id = 11".into(),
            "sales.orders",
            DiffKind::Differs,
            key("sales.orders", 11),
            Some("11"),
            Some("product_details"),
        ),
        (
            "NULL turned into an empty string",
            "UPDATE sales.customers SET first_name = '' WHERE old_id = 5".into(),
            "sales.customers",
            DiffKind::Differs,
            key("sales.customers", 5),
            Some("5"),
            Some("first_name"),
        ),
        (
            "varchar changed",
            "UPDATE sales.customers SET username = 'user6x' WHERE old_id = 6".into(),
            "sales.customers",
            DiffKind::Differs,
            key("sales.customers", 6),
            Some("6"),
            Some("username"),
        ),
        (
            "re-pointed foreign key",
            format!(
                "UPDATE sales.orders SET customer_id = CASE WHEN customer_id = '{other_customer}' \
                 THEN '{}'::uuid ELSE '{other_customer}'::uuid END WHERE old_id = 12",
                key("sales.customers", 4)
            ),
            "sales.orders",
            DiffKind::Differs,
            key("sales.orders", 12),
            Some("12"),
            Some("customer_id"),
        ),
        (
            "date changed",
            "UPDATE sales.orders SET order_date = order_date + 1 WHERE old_id = 13".into(),
            "sales.orders",
            DiffKind::Differs,
            key("sales.orders", 13),
            Some("13"),
            Some("order_date"),
        ),
        (
            "integer changed",
            "UPDATE sales.orders SET quantity = quantity + 1 WHERE old_id = 14".into(),
            "sales.orders",
            DiffKind::Differs,
            key("sales.orders", 14),
            Some("14"),
            Some("quantity"),
        ),
        (
            "real changed",
            "UPDATE sales.orders SET unit_weight = unit_weight + 1 WHERE old_id = 15".into(),
            "sales.orders",
            DiffKind::Differs,
            key("sales.orders", 15),
            Some("15"),
            Some("unit_weight"),
        ),
    ];
    for (name, sql, table, kind, want_key, old, column) in cases {
        let (url, target, _standin) = load_fresh(&export, &mapping, "vdamage").await;
        let db = db_name(&url).to_string();
        let before = pg().psql(&db, &format!("SELECT count(*) FROM {table}"));
        pg().psql(&db, &sql);
        let report = run_verify(&export, &mapping, &target).await;
        let d = only_difference(&report, table);
        assert_eq!(d.kind, kind, "{name}: {d:#?}");
        assert_eq!(d.key, want_key, "{name}: {d:#?}");
        assert_eq!(d.old_key.as_deref(), old, "{name}: {d:#?}");
        match column {
            Some(col) => {
                assert_eq!(d.columns.len(), 1, "{name}: {d:#?}");
                let c = &d.columns[0];
                assert_eq!(c.column, col, "{name}: {d:#?}");
                assert_ne!(c.export, c.target, "{name}");
                // The target's value is what the database holds now.
                let now = pg().psql(
                    &db,
                    &format!(
                        "SELECT coalesce({col}::text, '<null>') FROM {table} WHERE id = '{want_key}'"
                    ),
                );
                assert_eq!(
                    c.target.clone().unwrap_or_else(|| "<null>".into()),
                    now.trim_end_matches('\n'),
                    "{name}"
                );
            }
            None => assert!(d.columns.is_empty(), "{name}: {d:#?}"),
        }
        let t = report.table(table).unwrap();
        let after: u64 = pg()
            .psql(&db, &format!("SELECT count(*) FROM {table}"))
            .trim()
            .parse()
            .unwrap();
        assert_eq!(t.rows_in_target, after, "{name}");
        assert_eq!(
            t.rows_in_export,
            before.trim().parse::<u64>().unwrap(),
            "{name}"
        );
        eprintln!("{name}: found in {:.2} s", report.seconds);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_is_bounded_and_counts_every_difference() {
    let (export, mapping, _dir) = storefront().await;
    let (url, target, _standin) = load_fresh(&export, &mapping, "vbound").await;
    pg().psql(db_name(&url), "DELETE FROM sales.orders WHERE old_id <= 30");
    let report = verify(
        export.clone(),
        mapping.clone(),
        &target,
        &VerifyOptions {
            max_listed: 5,
            ..VerifyOptions::default()
        },
        &|_, _| {},
    )
    .await
    .unwrap();
    let t = report.table("sales.orders").unwrap();
    assert_eq!(t.status, Status::Mismatch);
    assert_eq!((t.missing, t.extra, t.differing), (30, 0, 0));
    assert_eq!(t.differences.len(), 5);
    assert!(t.differences.iter().all(|d| d.kind == DiffKind::Missing));
    assert_eq!(t.rows_in_export - t.rows_in_target, 30);
    assert_eq!(t.buckets_listed, t.differing_buckets);
    assert!(t.differing_buckets > 1 && t.differing_buckets <= 30);

    // A small memory budget: only the first differing bucket is compared, and the report says so.
    let small = verify(
        export.clone(),
        mapping.clone(),
        &target,
        &VerifyOptions {
            listing_budget: 1,
            ..VerifyOptions::default()
        },
        &|_, _| {},
    )
    .await
    .unwrap();
    let st = small.table("sales.orders").unwrap();
    assert_eq!(st.buckets_listed, 1);
    assert_eq!(st.differing_buckets, t.differing_buckets);
    assert!(st.missing >= 1 && st.missing < 30, "{st:#?}");
    // The JSON report has the documented fields.
    let json = serde_json::to_value(&report).unwrap();
    for f in ["export_id", "tables", "ok", "rows_per_second"] {
        assert!(json.get(f).is_some(), "{f}");
    }
    let tj = json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["source"] == "sales.orders")
        .unwrap();
    for f in [
        "source",
        "target",
        "status",
        "rows_in_export",
        "rows_in_target",
        "columns",
        "fingerprint_export",
        "fingerprint_target",
        "seconds",
        "differing_buckets",
        "buckets_listed",
        "missing",
        "extra",
        "differing",
        "differences",
    ] {
        assert!(tj.get(f).is_some(), "{f}");
    }
    assert_eq!(tj["status"], "mismatch");
}

#[tokio::test(flavor = "multi_thread")]
async fn table_without_primary_key_is_compared_as_a_multiset() {
    let src = pg().create_db("vnopk");
    pg().psql(
        db_name(&src),
        "CREATE TABLE public.events (msg text, n int); \
         INSERT INTO public.events SELECT 'event ' || (g % 40), g % 7 FROM generate_series(1, 300) g; \
         INSERT INTO public.events VALUES (NULL, NULL), (NULL, NULL), ('', 0);",
    );
    let (export, mapping, _dir) = export_and_plan(&src, "vnopk-export").await;
    assert!(
        mapping
            .table("public.events")
            .unwrap()
            .primary_key
            .is_empty(),
        "{mapping:#?}"
    );
    let (url, target, _standin) = load_fresh(&export, &mapping, "vnopkdst").await;
    let report = run_verify(&export, &mapping, &target).await;
    assert!(report.ok, "{report:#?}");

    // One of two identical all-NULL rows deleted, one copy of a duplicated row changed.
    pg().psql(
        db_name(&url),
        "DELETE FROM public.events WHERE ctid = (SELECT min(ctid) FROM public.events WHERE msg IS NULL); \
         UPDATE public.events SET n = 99 WHERE ctid = (SELECT min(ctid) FROM public.events WHERE msg = 'event 1');",
    );
    let report = run_verify(&export, &mapping, &target).await;
    let t = report.table("public.events").unwrap();
    assert_eq!(t.status, Status::Mismatch);
    // Without a key, a changed row is one missing and one extra row.
    assert_eq!((t.missing, t.extra, t.differing), (2, 1, 0), "{t:#?}");
    let keys: Vec<(DiffKind, &str)> = t
        .differences
        .iter()
        .map(|d| (d.kind, d.key.as_str()))
        .collect();
    assert!(
        keys.contains(&(DiffKind::Missing, "NULL, NULL")),
        "{keys:?}"
    );
    assert!(
        keys.contains(&(DiffKind::Missing, "event 1, 1")),
        "{keys:?}"
    );
    assert!(keys.contains(&(DiffKind::Extra, "event 1, 99")), "{keys:?}");
}
