//! Frozen vectors from implementations other than this crate's: new keys computed with Python's
//! `uuid.uuid5` (CPython 3), and canonical texts printed by PostgreSQL itself (`(input::source)
//! ::target::text`, or `array_to_json(input::source)::jsonb::text` for arrays, in a verify session)
//! for edge values. Checked against both the verifier's expectation and the loader's keys: neither
//! side may drift from the outside world, even together.

use super::uuid5;
use super::value::{Raw, canonical};
use crate::types::PgType;

/// (namespace, source table, old key, new key): Python `uuid.uuid5(ns, f"{table}:{old}")`.
/// The first namespace is the default of migration `storefront`, `uuid5(NAMESPACE_URL,
/// "snap2dsql:storefront")`.
const KEYS: &[(&str, &str, i64, &str)] = &[
    (
        "339e3a0d-5466-5616-b562-a0636c96d9f1",
        "sales.customers",
        42,
        "4294d559-1590-5f71-a3b1-57f40bc6601e",
    ),
    (
        "339e3a0d-5466-5616-b562-a0636c96d9f1",
        "sales.customers",
        -1,
        "875324f8-8449-53e1-9aaf-46e16fbeae3d",
    ),
    (
        "339e3a0d-5466-5616-b562-a0636c96d9f1",
        "sales.orders",
        0,
        "ae97734e-b751-5dfd-86f3-e3eed4197be6",
    ),
    (
        "339e3a0d-5466-5616-b562-a0636c96d9f1",
        "sales.orders",
        9223372036854775807,
        "e1a18de7-bf4d-56a2-9f24-51914133a8b4",
    ),
    (
        "339e3a0d-5466-5616-b562-a0636c96d9f1",
        "sales.orders",
        -9223372036854775808,
        "73262546-f9c0-585f-a7c6-86c1f35ffd49",
    ),
    (
        "339e3a0d-5466-5616-b562-a0636c96d9f1",
        "Hostile \"Schema\".tåble 😀",
        7,
        "ed0e182e-6cc0-581d-874a-90f0036427df",
    ),
    (
        "339e3a0d-5466-5616-b562-a0636c96d9f1",
        "public.accounts",
        120,
        "2219a909-176b-5d39-9b53-d7f266967251",
    ),
    (
        "0f6c2d4e-8a1b-4c3d-9e5f-6a7b8c9d0e1f",
        "sales.customers",
        42,
        "e2d2c827-f77a-5eda-ae0a-8def6a5a32d0",
    ),
    (
        "0f6c2d4e-8a1b-4c3d-9e5f-6a7b8c9d0e1f",
        "sales.customers",
        -1,
        "061967c0-17dd-5660-be4b-b4555319d9c4",
    ),
    (
        "0f6c2d4e-8a1b-4c3d-9e5f-6a7b8c9d0e1f",
        "sales.orders",
        0,
        "33d3759b-a4c3-5d84-a2c2-eb6c5236518b",
    ),
    (
        "0f6c2d4e-8a1b-4c3d-9e5f-6a7b8c9d0e1f",
        "sales.orders",
        9223372036854775807,
        "ec29d9b1-1c51-5409-bc5e-27a1f3c0d59e",
    ),
    (
        "0f6c2d4e-8a1b-4c3d-9e5f-6a7b8c9d0e1f",
        "sales.orders",
        -9223372036854775808,
        "f2e2c035-f03a-5f19-8ee8-924454ad60ca",
    ),
    (
        "0f6c2d4e-8a1b-4c3d-9e5f-6a7b8c9d0e1f",
        "Hostile \"Schema\".tåble 😀",
        7,
        "86dc725f-8904-57e9-8c1d-d9e9fe702dad",
    ),
    (
        "0f6c2d4e-8a1b-4c3d-9e5f-6a7b8c9d0e1f",
        "public.accounts",
        120,
        "9daaa289-d55e-52f9-8d10-a012045793d0",
    ),
];

/// (source type, the export's text, target type, PostgreSQL's canonical text).
const TEXTS: &[(&str, &str, &str, &str)] = &[
    ("date", "0001-12-31 BC", "date", "0001-12-31 BC"),
    ("date", "4714-11-24 BC", "date", "4714-11-24 BC"),
    ("date", "5874897-12-31", "date", "5874897-12-31"),
    ("date", "infinity", "date", "infinity"),
    ("date", "-infinity", "date", "-infinity"),
    (
        "date",
        "0005-02-29 BC",
        "timestamp",
        "0005-02-29 00:00:00 BC",
    ),
    ("date", "2024-02-29", "timestamp", "2024-02-29 00:00:00"),
    (
        "timestamp",
        "294276-12-31 23:59:59.999999",
        "timestamp",
        "294276-12-31 23:59:59.999999",
    ),
    (
        "timestamp",
        "0001-01-01 00:00:00 BC",
        "timestamp",
        "0001-01-01 00:00:00 BC",
    ),
    ("timestamp", "infinity", "timestamp", "infinity"),
    (
        "timestamp",
        "2024-02-29 12:00:00.000001",
        "timestamp",
        "2024-02-29 12:00:00.000001",
    ),
    (
        "timestamptz",
        "2020-01-01 00:00:00+05:30",
        "timestamptz",
        "2019-12-31 18:30:00+00",
    ),
    (
        "timestamptz",
        "2020-01-01 00:00:00-00:00:15",
        "timestamptz",
        "2020-01-01 00:00:15+00",
    ),
    (
        "timestamptz",
        "0001-01-01 00:00:00+00 BC",
        "timestamptz",
        "0001-01-01 00:00:00+00 BC",
    ),
    ("timestamptz", "-infinity", "timestamptz", "-infinity"),
    ("time", "24:00:00", "time", "24:00:00"),
    ("time", "00:00:00.000001", "time", "00:00:00.000001"),
    ("timetz", "24:00:00-15:59", "timetz", "24:00:00-15:59"),
    ("timetz", "01:02:03-00:00:15", "timetz", "01:02:03-00:00:15"),
    (
        "timetz",
        "12:34:56.789+05:30",
        "timetz",
        "12:34:56.789+05:30",
    ),
    ("timetz", "00:00:00+00", "timetz", "00:00:00+00"),
    (
        "interval",
        "1 year 2 mons -3 days +04:05:06.789",
        "interval",
        "1 year 2 mons -3 days +04:05:06.789",
    ),
    (
        "interval",
        "-1 days +02:03:00",
        "interval",
        "-1 days +02:03:00",
    ),
    ("interval", "14 mons", "interval", "1 year 2 mons"),
    (
        "interval",
        "-00:00:00.000001",
        "interval",
        "-00:00:00.000001",
    ),
    ("interval", "178000000 years", "interval", "178000000 years"),
    ("interval", "00:00:00", "interval", "00:00:00"),
    ("interval", "1 mon -1 days", "interval", "1 mon -1 days"),
    (
        "interval",
        "-1 years -2 mons +3 days -04:05:06",
        "interval",
        "-1 years -2 mons +3 days -04:05:06",
    ),
    ("numeric", "1.500", "numeric", "1.500"),
    ("numeric", "-0.000", "numeric", "0.000"),
    ("numeric", "NaN", "numeric", "NaN"),
    (
        "numeric",
        "12345678901234567890.123456789",
        "numeric",
        "12345678901234567890.123456789",
    ),
    ("numeric", "12.5", "numeric(6,2)", "12.50"),
    ("numeric", "9999.990", "numeric(6,2)", "9999.99"),
    ("numeric", "-0.5", "numeric(38,12)", "-0.500000000000"),
    ("money", "-$1,234.56", "numeric(21,4)", "-1234.5600"),
    (
        "money",
        "$92,233,720,368,547,758.07",
        "numeric(21,4)",
        "92233720368547758.0700",
    ),
    (
        "jsonb",
        "{\"b\": 1, \"aa\": 2, \"a\": 3, \"a\": 4}",
        "jsonb",
        "{\"a\": 4, \"b\": 1, \"aa\": 2}",
    ),
    (
        "jsonb",
        "[1.50E+2, -0, 0.000, 1e-5]",
        "jsonb",
        "[150, 0, 0.000, 0.00001]",
    ),
    (
        "jsonb",
        "\"\\u00e9\\ud83d\\ude00\\/\\b\"",
        "jsonb",
        "\"é😀/\\b\"",
    ),
    (
        "json",
        "  {\"k\" : \"spaced\" , \"a\":1}  ",
        "jsonb",
        "{\"a\": 1, \"k\": \"spaced\"}",
    ),
    ("text", "ünïcødé 日本語 😀", "text", "ünïcødé 日本語 😀"),
    (
        "text",
        "ünïcødé 日本語 😀",
        "varchar(20)",
        "ünïcødé 日本語 😀",
    ),
    ("char(5)", "é  ", "text", "é"),
    ("text", "é", "char(5)", "é"),
    (
        "uuid",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "uuid",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    ),
    ("integer[]", "{1,NULL,-1}", "jsonb", "[1, null, -1]"),
    (
        "text[]",
        "{a,\"b c\",NULL,\"NULL\",\"quo\\\"te\"}",
        "jsonb",
        "[\"a\", \"b c\", null, \"NULL\", \"quo\\\"te\"]",
    ),
    (
        "boolean[]",
        "{{t,f},{f,t}}",
        "jsonb",
        "[[true, false], [false, true]]",
    ),
    (
        "numeric[]",
        "{1.50,-0.000,1e-5}",
        "jsonb",
        "[1.50, 0.000, 0.00001]",
    ),
];

fn uuid_bytes(s: &str) -> [u8; 16] {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    b
}

#[test]
fn new_keys_equal_pythons_uuid5_on_both_sides() {
    let storefront = uuid5::uuid5(
        &uuid_bytes("6ba7b811-9dad-11d1-80b4-00c04fd430c8"),
        b"snap2dsql:storefront",
    );
    let mut s = String::new();
    uuid5::hyphenated(&storefront, &mut s);
    assert_eq!(s, KEYS[0].0, "default namespace");
    assert_eq!(
        crate::keys::default_namespace("storefront").to_string(),
        KEYS[0].0
    );
    for (ns, table, old, new) in KEYS {
        let mut s = String::new();
        uuid5::new_key_text(&uuid_bytes(ns), table, *old, &mut s);
        assert_eq!(s, *new, "verifier: {table} {old}");
        let loader = crate::keys::new_key(uuid::Uuid::from_bytes(uuid_bytes(ns)), table, *old);
        assert_eq!(loader.to_string(), *new, "loader: {table} {old}");
    }
}

#[test]
fn canonical_texts_equal_postgresqls_for_edge_values() {
    for (source, input, target, want) in TEXTS {
        let (s, t) = (
            PgType::parse(source).unwrap(),
            PgType::parse(target).unwrap(),
        );
        let mut got = String::new();
        canonical(&s, &t, Raw::Str(input), &mut got)
            .unwrap_or_else(|e| panic!("{source} {input:?} -> {target}: {e}"));
        assert_eq!(got, *want, "{source} {input:?} -> {target}");
    }
}

#[test]
fn float_texts_equal_postgresqls() {
    // float8 values and PostgreSQL's `v::text` (extra_float_digits 1).
    let doubles = [
        (-0.0, "-0"),
        (1e15, "1e+15"),
        (123456789012345.0, "123456789012345"),
        (123456789012345680.0, "1.2345678901234568e+17"),
        (0.1, "0.1"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (f64::NAN, "NaN"),
        (f64::NEG_INFINITY, "-Infinity"),
        (0.00001, "1e-05"),
        (0.0001, "0.0001"),
    ];
    for (v, want) in doubles {
        let mut got = String::new();
        canonical(&PgType::Double, &PgType::Double, Raw::F64(v), &mut got).unwrap();
        assert_eq!(got, want, "{v}");
    }
    let reals = [
        (1e6f32, "1e+06"),
        (100000.0, "100000"),
        (1234567.0, "1.234567e+06"),
        (0.1, "0.1"),
        (1e-45, "1e-45"),
        (3.4028235e38, "3.4028235e+38"),
        (-0.0, "-0"),
    ];
    for (v, want) in reals {
        let mut got = String::new();
        canonical(&PgType::Real, &PgType::Real, Raw::F32(v), &mut got).unwrap();
        assert_eq!(got, want, "{v}");
    }
    let mut got = String::new();
    canonical(&PgType::Real, &PgType::Double, Raw::F32(0.1), &mut got).unwrap();
    assert_eq!(got, "0.10000000149011612");
    let num = PgType::parse("numeric(10,3)").unwrap();
    let mut got = String::new();
    canonical(&PgType::Double, &num, Raw::F64(0.5), &mut got).unwrap();
    assert_eq!(got, "0.500");
}
