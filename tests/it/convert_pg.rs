//! `convert` against a real PostgreSQL: values are made inside PostgreSQL (extremes, unicode,
//! BC dates, infinities, odd zone offsets, many random values), read back as PostgreSQL's text
//! output, encoded by `convert`, written with binary COPY into a table of the target type, and
//! compared value for value IN PostgreSQL (typed comparison, and for exact-representation types
//! the type's send function too).

use bytes::Bytes;
use futures::SinkExt;
use snap2dsql::convert::{
    ConvertError, encode_bool, encode_bytes, encode_f32, encode_f64, encode_i64, encode_text,
};
use snap2dsql::types::PgType;
use snap2dsql_tests::{connect, pg};
use tokio_postgres::{Client, Row};

async fn db() -> Client {
    let client = connect(&pg().create_db("convert")).await;
    client
        .batch_execute(
            "SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 1; \
             SET TimeZone = 'UTC'",
        )
        .await
        .unwrap();
    client
}

/// One COPY binary stream: header, (id, value) rows, trailer.
fn copy_stream(rows: &[(i32, Vec<u8>)]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(rows.iter().map(|r| r.1.len() + 14).sum::<usize>() + 21);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    for (id, v) in rows {
        buf.extend_from_slice(&2i16.to_be_bytes());
        buf.extend_from_slice(&4i32.to_be_bytes());
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
        buf.extend_from_slice(v);
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}

/// Makes `<name>_src (id, v src)` from `values` (a query with one column), reads it with
/// `select` (an expression over `v`), encodes each row with `encode`, COPYs into
/// `<name>_dst (id, v dst)` and asserts that `eq` (a condition over `s.v` and `d.v`) holds for
/// every id. Returns the number of values checked.
async fn check_with<F>(
    c: &Client,
    name: &str,
    (src, dst): (&str, &str),
    values: &str,
    eq: &str,
    select: &str,
    encode: F,
) -> usize
where
    F: Fn(&Row, &mut Vec<u8>) -> Result<(), ConvertError>,
{
    c.batch_execute(&format!(
        "CREATE TABLE {name}_src (id int PRIMARY KEY, v {src} NOT NULL); \
         INSERT INTO {name}_src SELECT row_number() OVER (), v FROM ({values}) AS g(v) WHERE v IS NOT NULL; \
         CREATE TABLE {name}_dst (id int PRIMARY KEY, v {dst})"
    ))
    .await
    .unwrap_or_else(|e| panic!("{name}: fixture: {e:?}"));
    let rows = c
        .query(
            &format!("SELECT id, {select} FROM {name}_src ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty(), "{name}: no values");
    let mut encoded = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i32 = row.get(0);
        let mut out = Vec::new();
        if let Err(e) = encode(row, &mut out) {
            let text: String = c
                .query_one(
                    &format!("SELECT v::text FROM {name}_src WHERE id = $1"),
                    &[&id],
                )
                .await
                .map(|r| r.get(0))
                .unwrap_or_default();
            panic!(
                "{name}: id {id} value {text:?} into {dst}: {e} (expected {})",
                e.expected
            );
        }
        encoded.push((id, out));
    }
    let sink = c
        .copy_in::<_, Bytes>(&format!(
            "COPY {name}_dst (id, v) FROM STDIN (FORMAT binary)"
        ))
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from(copy_stream(&encoded)))
        .await
        .unwrap_or_else(|e| panic!("{name}: copy: {e:?}"));
    let n = sink
        .as_mut()
        .finish()
        .await
        .unwrap_or_else(|e| panic!("{name}: copy into {dst}: {e:?}"));
    assert_eq!(n as usize, rows.len(), "{name}");
    let bad = c
        .query(
            &format!(
                "SELECT s.id, s.v::text, d.v::text FROM {name}_src s FULL JOIN {name}_dst d ON s.id = d.id \
                 WHERE s.id IS NULL OR d.id IS NULL OR NOT coalesce({eq}, false) ORDER BY 1 LIMIT 5"
            ),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: compare: {e:?}"));
    let bad: Vec<(Option<i32>, Option<String>, Option<String>)> =
        bad.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert!(
        bad.is_empty(),
        "{name}: {src} -> {dst}: mismatches (id, source, loaded): {bad:?}"
    );
    rows.len()
}

/// The text path: `SELECT v::text`, then [`encode_text`].
async fn check(c: &Client, name: &str, src: &str, dst: &str, values: &str, eq: &str) -> usize {
    let (s, d) = (PgType::parse(src).unwrap(), PgType::parse(dst).unwrap());
    check_with(c, name, (src, dst), values, eq, "v::text", |row, out| {
        encode_text(&s, &d, row.get(1), out)
    })
    .await
}

const SAME: &str = "s.v IS NOT DISTINCT FROM d.v";

/// `generate_series` source of `n` random rows for `expr`.
fn random(n: usize, expr: &str) -> String {
    format!("SELECT {expr} FROM generate_series(1, {n}) AS r(i)")
}

fn list(ty: &str, items: &[&str]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|s| format!("('{}'::{ty})", s.replace('\'', "''")))
        .collect();
    format!("VALUES {}", items.join(", "))
}

#[tokio::test]
async fn integers_and_floats() {
    let c = db().await;
    let mut n = 0;
    let ints = |ty: &str, min: &str, max: &str, rnd: &str| {
        format!(
            "{} UNION ALL {}",
            list(ty, &[min, max, "0", "-1", "1"]),
            random(500, &format!("({rnd})::{ty}"))
        )
    };
    let small = ints("smallint", "-32768", "32767", "random() * 65535 - 32768");
    let int = ints(
        "integer",
        "-2147483648",
        "2147483647",
        "(random() - 0.5) * 4.2e9",
    );
    let big = ints(
        "bigint",
        "-9223372036854775808",
        "9223372036854775807",
        "(random() - 0.5) * 1.8e19",
    );
    n += check(&c, "i2", "smallint", "smallint", &small, SAME).await;
    n += check(&c, "i4", "integer", "integer", &int, SAME).await;
    n += check(&c, "i8", "bigint", "bigint", &big, SAME).await;
    n += check(&c, "i2_8", "smallint", "bigint", &small, SAME).await;
    n += check(&c, "i4_2", "integer", "smallint", &small, SAME).await;
    n += check(&c, "i8_4", "bigint", "integer", &int, SAME).await;
    n += check(
        &c,
        "i8_num",
        "bigint",
        "numeric(19,0)",
        &big,
        "s.v::numeric = d.v",
    )
    .await;
    n += check(
        &c,
        "i8_f8",
        "bigint",
        "double precision",
        &big,
        "float8send(s.v::float8) = float8send(d.v)",
    )
    .await;
    n += check(
        &c,
        "i8_f4",
        "bigint",
        "real",
        &big,
        "float4send(s.v::real) = float4send(d.v)",
    )
    .await;

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
                "2.2250738585072014e-308",
                "4.9e-324",
                "1.7976931348623157e+308",
                "0.30000000000000004",
                "1e+15",
                "123456789012345.6",
                "0.0001",
                "1e-05",
            ]
        ),
        random(
            1000,
            "(random() - 0.5) * power(10::float8, (random() * 600 - 300)::int)"
        )
    );
    let f4 = format!(
        "{} UNION ALL {}",
        list(
            "real",
            &[
                "NaN",
                "Infinity",
                "-Infinity",
                "-0",
                "1.1754944e-38",
                "1e-45",
                "3.4028235e+38",
                "0.1",
                "100000",
                "1e+06"
            ]
        ),
        random(
            1000,
            "((random() - 0.5) * power(10::float8, (random() * 70 - 35)::int))::real"
        )
    );
    let f8_exact = "float8send(s.v) = float8send(d.v)";
    let f4_exact = "float4send(s.v) = float4send(d.v)";
    n += check(
        &c,
        "f8",
        "double precision",
        "double precision",
        &f8,
        f8_exact,
    )
    .await;
    n += check(&c, "f4", "real", "real", &f4, f4_exact).await;
    n += check(
        &c,
        "f4_8",
        "real",
        "double precision",
        &f4,
        "float8send(s.v::float8) = float8send(d.v)",
    )
    .await;
    let f8_small = format!(
        "SELECT v FROM ({f8}) x(v) WHERE v = 0 OR v <> v OR abs(v) BETWEEN 1.2e-38 AND 3.4e38"
    );
    n += check(
        &c,
        "f8_4",
        "double precision",
        "real",
        &f8_small,
        "float4send(s.v::real) = float4send(d.v)",
    )
    .await;
    let finite = format!("SELECT v FROM ({f8}) x(v) WHERE v NOT IN ('Infinity', '-Infinity')");
    n += check(
        &c,
        "f8_num",
        "double precision",
        "numeric",
        &finite,
        // The float's own digits, exactly (PostgreSQL's float8::numeric cast keeps only 15).
        "d.v = s.v::text::numeric AND d.v::float8 = s.v",
    )
    .await;
    n += check(
        &c,
        "f8_text",
        "double precision",
        "text",
        &f8,
        "s.v::text = d.v",
    )
    .await;
    n += check(
        &c,
        "bool",
        "boolean",
        "boolean",
        "VALUES (true), (false)",
        SAME,
    )
    .await;
    n += check(
        &c,
        "bool_t",
        "boolean",
        "text",
        "VALUES (true), (false)",
        "s.v::text = d.v",
    )
    .await;
    eprintln!("integers_and_floats: {n} values");
}

#[tokio::test]
async fn numerics() {
    let c = db().await;
    let mut n = 0;
    let exact = "s.v = d.v AND numeric_send(s.v) = numeric_send(d.v)";
    let big_digits = "(CASE WHEN random() < 0.5 THEN '-' ELSE '' END || floor(random() * 1e15)::text \
                      || lpad(floor(random() * 1e15)::text, 15, '0') || '.' \
                      || lpad(floor(random() * 1e15)::text, 15, '0'))::numeric";
    let scaled = "round((random() - 0.5)::numeric * 10::numeric ^ (random() * 30)::int, (random() * 20)::int)";
    let values = format!(
        "{} UNION ALL {} UNION ALL {} UNION ALL {} UNION ALL {}",
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
        "SELECT repeat('9', 1000)::numeric",
        // The largest and smallest numerics PostgreSQL has.
        "SELECT ('-' || repeat('9', 131072) || '.' || repeat('9', 16383))::numeric",
        random(1000, big_digits),
        random(1000, scaled)
    );
    n += check(&c, "num", "numeric", "numeric", &values, exact).await;
    let scaled2 = format!(
        "{} UNION ALL {}",
        list(
            "numeric(10,2)",
            &["99999999.99", "-99999999.99", "0", "0.01", "NaN"]
        ),
        random(
            1000,
            "round((random() - 0.5)::numeric * 2e8, 2)::numeric(10,2)"
        )
    );
    n += check(
        &c,
        "num_ps",
        "numeric(10,2)",
        "numeric(12,4)",
        &scaled2,
        "s.v::numeric(12,4) = d.v AND numeric_send(s.v::numeric(12,4)) = numeric_send(d.v)",
    )
    .await;
    let six = random(
        1000,
        "round((random() - 0.5)::numeric * 1e14, (random() * 6)::int)",
    );
    n += check(
        &c,
        "num_20_6",
        "numeric",
        "numeric(20,6)",
        &six,
        "numeric_send(s.v::numeric(20,6)) = numeric_send(d.v)",
    )
    .await;
    let floaty = format!(
        "SELECT v FROM ({values}) x(v) WHERE v = 'NaN' OR v = 0 OR abs(v) BETWEEN 1e-300 AND 1e300"
    );
    n += check(
        &c,
        "num_f8",
        "numeric",
        "double precision",
        &floaty,
        "float8send(s.v::float8) = float8send(d.v)",
    )
    .await;
    let money = format!(
        "{} UNION ALL {}",
        list(
            "money",
            &[
                "0",
                "1234.56",
                "-1234.56",
                "-0.01",
                "999999999999999.99",
                "-999999999999999.99"
            ]
        ),
        random(1000, "((random() - 0.5) * 2e12)::numeric(14,2)::money")
    );
    n += check(
        &c,
        "money",
        "money",
        "numeric(19,4)",
        &money,
        "s.v::numeric = d.v",
    )
    .await;
    eprintln!("numerics: {n} values");
}

#[tokio::test]
async fn text_types() {
    let c = db().await;
    let mut n = 0;
    let specials = [
        "",
        "plain",
        "quote's",
        "dq\"",
        "back\\slash",
        "\\x41",
        "new\nline",
        "tab\tcr\r",
        "ünïcødé",
        "日本語テキスト",
        "😀 emoji 👍🏽",
        "e\u{301} combining",
        "{a,b}",
        "NULL",
        "  spaces  ",
    ];
    let values = format!(
        "{} UNION ALL {} UNION ALL {} UNION ALL {}",
        list("text", &specials),
        "SELECT repeat('long ', 20000)",
        random(300, "md5(random()::text)"),
        // Random code points below the surrogates, 1 to 30 of them.
        "SELECT string_agg(chr((random() * 55000 + 32)::int), '') FROM generate_series(1, 300) r(i), \
         LATERAL generate_series(1, 1 + r.i % 30) k GROUP BY r.i"
    );
    n += check(&c, "txt", "text", "text", &values, SAME).await;
    let short = format!("SELECT v FROM ({values}) x(v) WHERE char_length(v) <= 20");
    n += check(&c, "vc20", "text", "varchar(20)", &short, SAME).await;
    n += check(&c, "vc_src", "varchar(20)", "varchar(20)", &short, SAME).await;
    n += check(&c, "ch20", "char(20)", "char(20)", &short, SAME).await;
    // The export writes char(n) with its padding (the output function, not the text cast).
    for (i, dst) in ["char(20)", "varchar(20)", "text"].into_iter().enumerate() {
        let (s, d) = (PgType::Char(Some(20)), PgType::parse(dst).unwrap());
        n += check_with(
            &c,
            &format!("ch_pad{i}"),
            ("char(20)", dst),
            &short,
            &format!("s.v::{dst} = d.v"),
            "concat(v)",
            |row, out| {
                let padded: &str = row.get(1);
                assert_eq!(padded.chars().count(), 20, "{padded:?}");
                encode_text(&s, &d, padded, out)
            },
        )
        .await;
    }
    n += check(
        &c,
        "ch_vc",
        "char(20)",
        "varchar(20)",
        &short,
        "s.v::varchar = d.v",
    )
    .await;
    n += check(
        &c,
        "nm",
        "name",
        "name",
        &random(100, "md5(random()::text)::name"),
        SAME,
    )
    .await;
    n += check(
        &c,
        "nm_vc",
        "name",
        "varchar(63)",
        "VALUES ('pg_class'::name), (repeat('n', 63)::name)",
        "s.v::text = d.v",
    )
    .await;
    c.batch_execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy ''quoted''')")
        .await
        .unwrap();
    let mood = PgType::Enum("mood".into());
    n += check_with(
        &c,
        "enum",
        ("mood", "text"),
        "SELECT unnest(enum_range(NULL::mood))",
        "s.v::text = d.v",
        "v::text",
        |row, out| encode_text(&mood, &PgType::Text, row.get(1), out),
    )
    .await;
    let opaque = [
        (
            "inet",
            "'192.168.0.1/24'::inet UNION ALL SELECT '::1'::inet",
        ),
        ("cidr", "'10.0.0.0/8'::cidr"),
        ("macaddr", "'08:00:2b:01:02:03'::macaddr"),
        ("bit(4)", "B'1010'::bit(4)"),
        ("tsvector", "to_tsvector('simple', 'a fat cat''s mat')"),
        ("xml", "'<a x=\"1\">t</a>'::xml"),
        ("int4range", "int4range(1, 10)"),
    ];
    for (i, (ty, v)) in opaque.iter().enumerate() {
        n += check(
            &c,
            &format!("op{i}"),
            ty,
            "text",
            &format!("SELECT {v}"),
            "s.v::text = d.v",
        )
        .await;
    }
    let json = list(
        "json",
        &[
            r#"{"a": [1, 2.5e300, "x\"y", null, true], "b": {}}"#,
            "[]",
            r#""\u00e9\n""#,
            "1e400",
            "  {\"k\" : \"spaced\" }  ",
            r#"{"dup": 1, "dup": 2}"#,
        ],
    );
    let deep = "SELECT (repeat('[', 1000) || repeat(']', 1000))::json";
    n += check(
        &c,
        "json",
        "json",
        "json",
        &format!("{json} UNION ALL {deep}"),
        "json_send(s.v) = json_send(d.v)",
    )
    .await;
    n += check(
        &c,
        "jsonb",
        "jsonb",
        "jsonb",
        &format!("SELECT v::jsonb FROM ({json} UNION ALL {deep}) x(v)"),
        SAME,
    )
    .await;
    n += check(
        &c,
        "txt_jsonb",
        "text",
        "jsonb",
        "VALUES ('{\"a\": 1}'), ('\"s\"')",
        "s.v::jsonb = d.v",
    )
    .await;
    eprintln!("text_types: {n} values");
}

#[tokio::test]
async fn bytea_and_uuid() {
    let c = db().await;
    let mut n = 0;
    let values = format!(
        "{} UNION ALL {} UNION ALL {}",
        "SELECT '\\x'::bytea UNION ALL SELECT 'plain \\\\ text'::bytea",
        "SELECT decode(string_agg(lpad(to_hex(b), 2, '0'), ''), 'hex') FROM generate_series(0, 255) b",
        random(
            300,
            "decode(md5(random()::text) || md5(random()::text), 'hex')"
        )
    );
    n += check(&c, "bytea_hex", "bytea", "bytea", &values, SAME).await;
    n += check(&c, "bytea_txt", "bytea", "text", &values, "s.v::text = d.v").await;
    c.batch_execute("SET bytea_output = escape").await.unwrap();
    n += check(&c, "bytea_esc", "bytea", "bytea", &values, SAME).await;
    c.batch_execute("RESET bytea_output").await.unwrap();
    let uuids = format!(
        "{} UNION ALL {}",
        list(
            "uuid",
            &[
                "00000000-0000-0000-0000-000000000000",
                "ffffffff-ffff-ffff-ffff-ffffffffffff"
            ]
        ),
        random(500, "gen_random_uuid()")
    );
    n += check(&c, "uuid", "uuid", "uuid", &uuids, SAME).await;
    let spellings = list(
        "text",
        &[
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
        ],
    );
    n += check(
        &c,
        "uuid_txt",
        "text",
        "uuid",
        &spellings,
        "s.v::uuid = d.v",
    )
    .await;
    eprintln!("bytea_and_uuid: {n} values");
}

#[tokio::test]
async fn dates_and_times() {
    let c = db().await;
    let mut n = 0;
    let dates = format!(
        "{} UNION ALL {}",
        list(
            "date",
            &[
                "2000-01-01",
                "1999-12-31",
                "2024-02-29",
                "1900-02-28",
                "1600-02-29",
                "0001-01-01",
                "0001-12-31 BC",
                "0001-02-29 BC",
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
    n += check(&c, "date", "date", "date", &dates, SAME).await;
    let ts_dates = format!("SELECT v FROM ({dates}) x(v) WHERE v < '294276-12-31'");
    n += check(
        &c,
        "date_ts",
        "date",
        "timestamp",
        &ts_dates,
        "s.v::timestamp = d.v",
    )
    .await;
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
    n += check(&c, "time", "time", "time", &times, SAME).await;
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
                "00:00:00-15:59:59",
            ]
        ),
        random(
            1000,
            "(('00:00'::time + random() * interval '24 hours')::text \
             || (CASE WHEN random() < 0.5 THEN '+' ELSE '-' END) \
             || lpad((random() * 15)::int::text, 2, '0') || ':' || lpad((random() * 59)::int::text, 2, '0') \
             || CASE WHEN random() < 0.2 THEN ':' || lpad((random() * 59)::int::text, 2, '0') ELSE '' END)::timetz"
        )
    );
    n += check(
        &c,
        "timetz",
        "timetz",
        "timetz",
        &timetz,
        "s.v = d.v AND timetz_send(s.v) = timetz_send(d.v)",
    )
    .await;
    let ts = format!(
        "{} UNION ALL {}",
        list(
            "timestamp",
            &[
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
            ]
        ),
        random(
            2000,
            "'2000-01-01'::timestamp + (random() * 1.6e11 - 1.2e11) * interval '1 second' \
             + (random() * 1e6)::int * interval '1 microsecond'"
        )
    );
    n += check(&c, "ts", "timestamp", "timestamp", &ts, SAME).await;
    eprintln!("dates_and_times: {n} values");
}

#[tokio::test]
async fn timestamptz_in_odd_zones() {
    let c = db().await;
    let mut n = 0;
    let zones = [
        "UTC",
        "Asia/Kolkata",
        "America/St_Johns",
        "Europe/Amsterdam",
        "Pacific/Chatham",
        "America/Los_Angeles",
        "Africa/Monrovia",
    ];
    for (i, zone) in zones.iter().enumerate() {
        c.batch_execute(&format!("SET TimeZone = '{zone}'"))
            .await
            .unwrap();
        let values = format!(
            "{} UNION ALL {} UNION ALL {}",
            list(
                "timestamptz",
                &[
                    "2024-01-05 13:45:00.5+05:30",
                    "2024-07-05 13:45:00.5",
                    "1880-01-01 00:00:00+00",
                    "1900-01-01 12:00:00",
                    "1930-06-01 12:00:00",
                    "0044-03-15 12:00:00 BC",
                    "4714-11-24 00:00:00+00 BC",
                    "294276-12-31 23:59:59.999999+00",
                    "infinity",
                    "-infinity",
                    "2024-02-29 23:59:59.999999",
                    "2024-03-10 02:30:00",
                ]
            ),
            random(
                1000,
                "'2000-01-01'::timestamptz + (random() * 1.2e10 - 6e9) * interval '1 second'"
            ),
            random(
                200,
                "'2000-01-01'::timestamptz + (random() * 1.6e11 - 1.2e11) * interval '1 second'"
            )
        );
        n += check(
            &c,
            &format!("tstz{i}"),
            "timestamptz",
            "timestamptz",
            &values,
            SAME,
        )
        .await;
    }
    eprintln!("timestamptz_in_odd_zones: {n} values");
}

#[tokio::test]
async fn intervals() {
    let c = db().await;
    let values = format!(
        "{} UNION ALL {}",
        list(
            "interval",
            &[
                "1 year 2 mons 3 days 04:05:06.789",
                "-1 days +02:03:00",
                "0",
                "-00:00:01",
                "1 mon",
                "2 years",
                "100:00:00",
                "178956970 years 7 mons",
                "-178956970 years -8 mons",
                "2147483647 days",
                "-2147483648 days",
                "2562047788:00:54.775807",
                "1 year -1 mons +1 days -00:00:00.000001",
                "-1 years -2 mons -3 days -04:05:06",
                "0.000001 seconds",
            ]
        ),
        "SELECT '-2562047788:00:54.775807'::interval - interval '1 microsecond' UNION ALL "
            .to_string()
            + &random(
                2000,
                "make_interval(years => (random() * 200 - 100)::int, months => (random() * 24 - 12)::int, \
             days => (random() * 2000 - 1000)::int) \
             + (random() * 2e11 - 1e11)::bigint * interval '1 microsecond'"
            )
    );
    let n = check(
        &c,
        "iv",
        "interval",
        "interval",
        &values,
        "s.v = d.v AND interval_send(s.v) = interval_send(d.v)",
    )
    .await;
    eprintln!("intervals: {n} values");
}

#[tokio::test]
async fn arrays_to_jsonb() {
    let c = db().await;
    let mut n = 0;
    let as_json = "array_to_json(s.v)::jsonb = d.v";
    let ints = "SELECT '{}'::int[] UNION ALL SELECT '{1,2,3}' UNION ALL SELECT '{NULL}' \
                UNION ALL SELECT '{{1,2},{3,4}}' UNION ALL SELECT '{-2147483648,2147483647,NULL}' \
                UNION ALL SELECT '[0:2]={1,2,3}' UNION ALL SELECT '{{{1},{2}},{{3},{NULL}}}' \
                UNION ALL SELECT array_agg(CASE WHEN random() < 0.1 THEN NULL ELSE ((random() - 0.5) * 4e9)::int END) \
                FROM generate_series(1, 300) r(i), LATERAL generate_series(0, r.i % 12) k GROUP BY r.i";
    n += check(&c, "a_int", "integer[]", "jsonb", ints, as_json).await;
    n += check(
        &c,
        "a_int_json",
        "integer[]",
        "json",
        ints,
        "array_to_json(s.v)::jsonb = d.v::jsonb",
    )
    .await;
    n += check(
        &c,
        "a_int_txt",
        "integer[]",
        "text",
        ints,
        "s.v::text = d.v",
    )
    .await;
    let texts = "SELECT ARRAY['a', 'b c', 'with \"quote\"', E'back\\\\slash', 'com,ma', NULL, 'NULL', '', \
                 'ünï', '{br}', E'new\\nline', ' lead', 'trail ', E'\\\\\"both\\\\\"', '😀']::text[] \
                 UNION ALL SELECT ARRAY[['a', 'b'], ['c', NULL]] \
                 UNION ALL SELECT ARRAY[[E'x\\ty', '\"'], ['{', '}']] \
                 UNION ALL SELECT array_agg(md5(random()::text) || chr((random() * 55000 + 32)::int)) \
                 FROM generate_series(1, 200) r(i), LATERAL generate_series(0, r.i % 8) k GROUP BY r.i";
    n += check(&c, "a_text", "text[]", "jsonb", texts, as_json).await;
    n += check(
        &c,
        "a_vc",
        "varchar(10)[]",
        "jsonb",
        "SELECT ARRAY['x y', NULL]::varchar(10)[]",
        as_json,
    )
    .await;
    let nums = "SELECT ARRAY[1.50, -0.001, 100, 1e-20, 12345678901234567890.123456789, NULL]::numeric[] \
                UNION ALL SELECT ARRAY[[1, 2], [3.0, 4.00]] \
                UNION ALL SELECT array_agg(round((random() - 0.5)::numeric * 1e10, 4)) \
                FROM generate_series(1, 200) r(i), LATERAL generate_series(0, r.i % 8) k GROUP BY r.i";
    n += check(&c, "a_num", "numeric[]", "jsonb", nums, as_json).await;
    let floats = "SELECT ARRAY[1e20, -1.5e-5, 0.1, 0, 1.7976931348623157e308]::float8[] \
                  UNION ALL SELECT ARRAY[1e-45, 3.4e38]::real[]::float8[]";
    n += check(&c, "a_f8", "double precision[]", "jsonb", floats, as_json).await;
    let bools = "SELECT ARRAY[true, false, NULL] UNION ALL SELECT ARRAY[[true], [false]]";
    n += check(&c, "a_bool", "boolean[]", "jsonb", bools, as_json).await;
    let jsons = "SELECT ARRAY['{\"a\": 1}'::jsonb, '[1, \"x,y\"]', NULL, '\"s\\\"q\"']";
    n += check(&c, "a_jsonb", "jsonb[]", "jsonb", jsons, as_json).await;
    eprintln!("arrays_to_jsonb: {n} values");
}

/// The typed Parquet paths: values read as Rust integers, floats, booleans and bytes.
#[tokio::test]
async fn typed_values() {
    let c = db().await;
    let mut n = 0;
    let big = "SELECT unnest(ARRAY[-9223372036854775808, 9223372036854775807, 0, -1]::bigint[]) \
               UNION ALL SELECT ((random() - 0.5) * 1.8e19)::bigint FROM generate_series(1, 500)";
    let small = "SELECT unnest(ARRAY[-2147483648, 2147483647, 0]::bigint[]) \
                 UNION ALL SELECT ((random() - 0.5) * 4.2e9)::bigint FROM generate_series(1, 500)";
    let i64_into = |dst: &'static str| {
        let d = PgType::parse(dst).unwrap();
        move |row: &Row, out: &mut Vec<u8>| encode_i64(row.get(1), &d, out)
    };
    n += check_with(
        &c,
        "t_i8",
        ("bigint", "bigint"),
        big,
        SAME,
        "v",
        i64_into("bigint"),
    )
    .await;
    n += check_with(
        &c,
        "t_i4",
        ("bigint", "integer"),
        small,
        SAME,
        "v",
        i64_into("integer"),
    )
    .await;
    n += check_with(
        &c,
        "t_num",
        ("bigint", "numeric(21,2)"),
        big,
        "s.v::numeric = d.v",
        "v",
        i64_into("numeric(21,2)"),
    )
    .await;
    n += check_with(
        &c,
        "t_txt",
        ("bigint", "text"),
        big,
        "s.v::text = d.v",
        "v",
        i64_into("text"),
    )
    .await;
    n += check_with(
        &c,
        "t_f8",
        ("bigint", "double precision"),
        big,
        "s.v::float8 = d.v",
        "v",
        i64_into("double precision"),
    )
    .await;

    let f8 = "SELECT unnest(ARRAY['NaN', 'Infinity', '-Infinity', '-0', '5e-324', '1.7976931348623157e+308', \
              '1e+15', '1e+14', '0.0001', '1e-05', '0.30000000000000004']::float8[]) \
              UNION ALL SELECT (random() - 0.5) * power(10::float8, (random() * 600 - 300)::int) \
              FROM generate_series(1, 1000)";
    let f8_into = |dst: &'static str| {
        let d = PgType::parse(dst).unwrap();
        move |row: &Row, out: &mut Vec<u8>| encode_f64(row.get(1), &d, out)
    };
    n += check_with(
        &c,
        "t_f8_f8",
        ("float8", "float8"),
        f8,
        "float8send(s.v) = float8send(d.v)",
        "v",
        f8_into("double precision"),
    )
    .await;
    n += check_with(
        &c,
        "t_f8_txt",
        ("float8", "text"),
        f8,
        "s.v::text = d.v",
        "v",
        f8_into("text"),
    )
    .await;
    let f8_finite = format!("SELECT v FROM ({f8}) x(v) WHERE v NOT IN ('Infinity', '-Infinity')");
    n += check_with(
        &c,
        "t_f8_num",
        ("float8", "numeric"),
        &f8_finite,
        "d.v::float8 = s.v AND d.v = s.v::text::numeric",
        "v",
        f8_into("numeric"),
    )
    .await;
    let f8_real = format!(
        "SELECT v FROM ({f8}) x(v) WHERE v = 0 OR v <> v OR abs(v) BETWEEN 1.2e-38 AND 3.4e38"
    );
    n += check_with(
        &c,
        "t_f8_f4",
        ("float8", "real"),
        &f8_real,
        "float4send(s.v::real) = float4send(d.v)",
        "v",
        f8_into("real"),
    )
    .await;

    let f4 = "SELECT unnest(ARRAY['NaN', 'Infinity', '-0', '1e-45', '3.4028235e+38', '0.1', '100000', \
              '1e+06', '1.0000001']::real[]) \
              UNION ALL SELECT ((random() - 0.5) * power(10::float8, (random() * 70 - 35)::int))::real \
              FROM generate_series(1, 1000)";
    let f4_into = |dst: &'static str| {
        let d = PgType::parse(dst).unwrap();
        move |row: &Row, out: &mut Vec<u8>| encode_f32(row.get(1), &d, out)
    };
    n += check_with(
        &c,
        "t_f4_f4",
        ("real", "real"),
        f4,
        "float4send(s.v) = float4send(d.v)",
        "v",
        f4_into("real"),
    )
    .await;
    n += check_with(
        &c,
        "t_f4_f8",
        ("real", "float8"),
        f4,
        "float8send(s.v::float8) = float8send(d.v)",
        "v",
        f4_into("double precision"),
    )
    .await;
    n += check_with(
        &c,
        "t_f4_txt",
        ("real", "text"),
        f4,
        "s.v::text = d.v",
        "v",
        f4_into("text"),
    )
    .await;
    let f4_finite = format!("SELECT v FROM ({f4}) x(v) WHERE v NOT IN ('Infinity', '-Infinity')");
    n += check_with(
        &c,
        "t_f4_num",
        ("real", "numeric"),
        &f4_finite,
        "d.v::real = s.v AND d.v = s.v::text::numeric",
        "v",
        f4_into("numeric"),
    )
    .await;

    let bools = "VALUES (true), (false)";
    let boolean = PgType::Boolean;
    n += check_with(
        &c,
        "t_b",
        ("boolean", "boolean"),
        bools,
        SAME,
        "v",
        |row, out| encode_bool(row.get(1), &boolean, out),
    )
    .await;
    n += check_with(
        &c,
        "t_b_txt",
        ("boolean", "text"),
        bools,
        "s.v::text = d.v",
        "v",
        |row, out| encode_bool(row.get(1), &PgType::Text, out),
    )
    .await;
    let bytes = "SELECT '\\x'::bytea UNION ALL SELECT decode(md5(random()::text), 'hex') FROM generate_series(1, 200)";
    n += check_with(
        &c,
        "t_by",
        ("bytea", "bytea"),
        bytes,
        SAME,
        "v",
        |row, out| encode_bytes(row.get::<_, &[u8]>(1), &PgType::Bytea, out),
    )
    .await;
    n += check_with(
        &c,
        "t_by_txt",
        ("bytea", "text"),
        bytes,
        "s.v::text = d.v",
        "v",
        |row, out| encode_bytes(row.get::<_, &[u8]>(1), &PgType::Text, out),
    )
    .await;
    eprintln!("typed_values: {n} values");
}

/// What the converter refuses, PostgreSQL would have rounded or rejected: never a silent change.
#[tokio::test]
async fn refusals_are_real_changes() {
    let c = db().await;
    let cases = [
        ("numeric", "numeric(5,2)", "1.555"),
        ("numeric", "numeric(5,2)", "1000"),
        ("text", "varchar(3)", "abcd"),
        ("bigint", "smallint", "40000"),
    ];
    for (src, dst, v) in cases {
        let mut out = Vec::new();
        let e = encode_text(
            &PgType::parse(src).unwrap(),
            &PgType::parse(dst).unwrap(),
            v,
            &mut out,
        )
        .unwrap_err();
        assert!(!e.reason.is_empty());
        let same = c
            .query_one(&format!("SELECT ($1::{src})::{dst}::text = $1"), &[&v])
            .await;
        match same {
            Err(_) => {}
            Ok(row) => assert!(
                !row.get::<_, bool>(0),
                "{v} into {dst}: PostgreSQL keeps it, we refuse"
            ),
        }
    }
}
