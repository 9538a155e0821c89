//! Unit tests of the dispatch, scalar parsers and typed encoders (datetime, numeric and array
//! parsers have their own tests beside them).

use super::*;

fn t(name: &str) -> PgType {
    PgType::parse(name).unwrap()
}

fn text(src: &str, dst: &str, v: &str) -> Result<Vec<u8>, ConvertError> {
    let mut out = Vec::new();
    encode_text(&t(src), &t(dst), v, &mut out).map(|_| out)
}

fn reason(src: &str, dst: &str, v: &str) -> String {
    text(src, dst, v).unwrap_err().reason
}

#[test]
fn integers() {
    assert_eq!(
        text("smallint", "smallint", "-32768").unwrap(),
        (-32768i16).to_be_bytes()
    );
    assert_eq!(
        text("integer", "integer", "2147483647").unwrap(),
        i32::MAX.to_be_bytes()
    );
    assert_eq!(
        text("bigint", "bigint", "-9223372036854775808").unwrap(),
        i64::MIN.to_be_bytes()
    );
    assert_eq!(text("bigint", "bigint", "0").unwrap(), 0i64.to_be_bytes());
    assert!(reason("bigint", "smallint", "32768").contains("out of range for smallint"));
    assert!(reason("bigint", "integer", "-2147483649").contains("out of range for integer"));
    assert!(reason("bigint", "bigint", "9223372036854775808").contains("64-bit"));
    for bad in [
        "", "-", "+1", " 1", "1 ", "1.0", "0x10", "1_000", "1e3", "١",
    ] {
        assert!(
            reason("bigint", "bigint", bad).contains("expected an optional minus sign"),
            "{bad:?}"
        );
    }
    // A numeric with a zero fraction is an integer; a non-zero fraction is refused.
    assert_eq!(
        text("numeric(10,2)", "bigint", "12.00").unwrap(),
        12i64.to_be_bytes()
    );
    assert!(reason("numeric(10,2)", "bigint", "12.50").contains("non-zero fraction"));
    // Integers into floats and numerics.
    assert_eq!(
        text("integer", "real", "16777217").unwrap(),
        16777216f32.to_bits().to_be_bytes()
    );
    assert_eq!(
        text("bigint", "double precision", "-3").unwrap(),
        (-3f64).to_bits().to_be_bytes()
    );
    assert_eq!(
        text("bigint", "numeric", "-12345").unwrap(),
        text("numeric", "numeric", "-12345").unwrap()
    );
}

#[test]
fn floats() {
    let d = |v: &str| {
        text("double precision", "double precision", v)
            .map(|b| f64::from_be_bytes(b.try_into().unwrap()))
    };
    let r = |v: &str| text("real", "real", v).map(|b| f32::from_be_bytes(b.try_into().unwrap()));
    assert_eq!(d("1.5").unwrap(), 1.5);
    assert_eq!(d("1e+20").unwrap(), 1e20);
    assert_eq!(d("-1.2345e-05").unwrap(), -1.2345e-5);
    assert_eq!(d("Infinity").unwrap(), f64::INFINITY);
    assert_eq!(d("-Infinity").unwrap(), f64::NEG_INFINITY);
    assert!(d("NaN").unwrap().is_nan());
    assert!(d("-0").unwrap().is_sign_negative());
    assert_eq!(d("4.9e-324").unwrap(), 4.9e-324);
    assert_eq!(d("1.7976931348623157e+308").unwrap(), f64::MAX);
    assert_eq!(r("3.4028235e+38").unwrap(), f32::MAX);
    assert_eq!(r("1e-45").unwrap(), 1e-45f32);
    assert_eq!(r("0.1").unwrap(), 0.1f32);
    for bad in [
        "inf", "nan", "infinity", "+1", "", ".", "1e", "1.5x", " 1", "0x1p3",
    ] {
        assert!(
            d(bad)
                .unwrap_err()
                .reason
                .contains("expected decimal digits"),
            "{bad:?}"
        );
    }
    assert!(d("1e309").unwrap_err().reason.contains("out of range"));
    assert!(d("1e-400").unwrap_err().reason.contains("out of range"));
    assert!(
        r("1e39")
            .unwrap_err()
            .reason
            .contains("out of range for real")
    );
    // real -> double widens the stored value; double -> real rounds, refusing overflow.
    assert_eq!(
        text("real", "double precision", "0.1").unwrap(),
        f64::from(0.1f32).to_bits().to_be_bytes()
    );
    assert_eq!(
        text("double precision", "real", "0.1").unwrap(),
        0.1f32.to_bits().to_be_bytes()
    );
    assert!(reason("double precision", "real", "1e300").contains("out of range for real"));
    assert!(reason("double precision", "real", "1e-300").contains("out of range for real"));
    // Floats into numeric keep their digits; infinities are refused.
    assert_eq!(
        text("double precision", "numeric", "1e+20").unwrap(),
        text("numeric", "numeric", "100000000000000000000").unwrap()
    );
    assert!(reason("double precision", "numeric", "Infinity").contains("DSQL"));
}

#[test]
fn booleans() {
    assert_eq!(text("boolean", "boolean", "t").unwrap(), [1]);
    assert_eq!(text("boolean", "boolean", "false").unwrap(), [0]);
    for bad in ["T", "yes", "1", "", "tru"] {
        assert!(reason("boolean", "boolean", bad).contains("expected t, f, true or false"));
    }
    // The text cast spells booleans out.
    assert_eq!(text("boolean", "text", "t").unwrap(), b"true");
}

#[test]
fn text_types() {
    assert_eq!(
        text("text", "text", "a'b\"c\\d\ne").unwrap(),
        b"a'b\"c\\d\ne"
    );
    assert_eq!(text("text", "varchar(3)", "äöü").unwrap(), "äöü".as_bytes());
    let e = reason("text", "varchar(3)", "äöüx");
    assert!(
        e.contains("4 characters") && e.contains("3 of varchar(3)"),
        "{e}"
    );
    // Excess spaces are trimmed, as PostgreSQL does.
    assert_eq!(text("char(5)", "char(3)", "ab   ").unwrap(), b"ab ");
    assert!(reason("text", "char(3)", "abcd").contains("char(3)"));
    // char(n) padding is not part of the value outside char(n).
    assert_eq!(text("char(5)", "varchar(5)", "ab   ").unwrap(), b"ab");
    assert_eq!(text("char(5)", "text", "  a  ").unwrap(), b"  a");
    assert_eq!(text("char(5)", "char(5)", "ab   ").unwrap(), b"ab   ");
    assert_eq!(
        text("text", "varchar", &"x".repeat(10_000)).unwrap().len(),
        10_000
    );
    assert!(reason("text", "text", "a\0b").contains("NUL"));
    assert!(reason("text", "name", &"n".repeat(64)).contains("63"));
    assert_eq!(
        text("name", "varchar(63)", "pg_class").unwrap(),
        b"pg_class"
    );
    // Opaque sources pass through as text.
    for src in [
        "inet",
        "cidr",
        "macaddr",
        "xml",
        "bit(3)",
        "tsvector",
        "USER-DEFINED",
        "money",
    ] {
        assert_eq!(text(src, "text", "x y").unwrap(), b"x y", "{src}");
    }
    let mood = PgType::Enum("mood".into());
    let mut out = Vec::new();
    encode_text(&mood, &PgType::Text, "happy", &mut out).unwrap();
    assert_eq!(out, b"happy");
    assert_eq!(text("integer[]", "text", "{1,2}").unwrap(), b"{1,2}");
}

#[test]
fn json_types() {
    assert_eq!(
        text("json", "json", r#"{"a": [1, 2]}"#).unwrap(),
        br#"{"a": [1, 2]}"#
    );
    assert_eq!(text("jsonb", "jsonb", "[1]").unwrap(), b"\x01[1]");
    assert_eq!(text("text", "jsonb", "null").unwrap(), b"\x01null");
    assert!(reason("json", "json", "{").contains("not valid JSON"));
    assert!(reason("json", "jsonb", "{'a': 1}").contains("not valid JSON"));
    // What PostgreSQL accepts and serde_json's value types would not.
    assert!(text("jsonb", "jsonb", "1e400").is_ok());
    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    assert!(text("jsonb", "jsonb", &deep).is_ok());
    assert_eq!(
        text("integer[]", "jsonb", "{{1,2},{3,NULL}}").unwrap(),
        b"\x01[[1,2],[3,null]]"
    );
    assert_eq!(text("text[]", "json", r#"{"a b"}"#).unwrap(), br#"["a b"]"#);
    assert!(reason("numeric[]", "jsonb", "{NaN}").contains("JSON number"));
}

#[test]
fn bytea() {
    assert_eq!(text("bytea", "bytea", "\\x").unwrap(), b"");
    assert_eq!(text("bytea", "bytea", "\\x00ffA0").unwrap(), [0, 255, 160]);
    assert!(reason("bytea", "bytea", "\\x0").contains("odd number"));
    assert!(reason("bytea", "bytea", "\\x0g").contains("non-hex"));
    // Escape format.
    assert_eq!(
        text("bytea", "bytea", "ab\\\\\\000\\377").unwrap(),
        b"ab\\\x00\xff"
    );
    assert!(reason("bytea", "bytea", "\\400").contains("escape format"));
    assert!(reason("bytea", "bytea", "a\\b").contains("escape format"));
    assert_eq!(text("bytea", "text", "\\x00ff").unwrap(), b"\\x00ff");
}

#[test]
fn uuids() {
    let want = *uuid::Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        .unwrap()
        .as_bytes();
    for ok in [
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "a0eebc999c0b4ef8bb6d6bb9bd380a11",
        "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
        "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
    ] {
        assert_eq!(text("uuid", "uuid", ok).unwrap(), want, "{ok}");
    }
    for bad in [
        "urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
        "a0eeb-c99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "",
    ] {
        assert!(
            reason("uuid", "uuid", bad).contains("32 hex digits"),
            "{bad}"
        );
    }
}

#[test]
fn datetime_dispatch() {
    assert_eq!(
        text("date", "date", "2000-01-02").unwrap(),
        1i32.to_be_bytes()
    );
    assert_eq!(
        text("date", "timestamp", "2000-01-02").unwrap(),
        86_400_000_000i64.to_be_bytes()
    );
    assert_eq!(
        text("date", "timestamp", "infinity").unwrap(),
        i64::MAX.to_be_bytes()
    );
    let mut tz = Vec::new();
    tz.extend_from_slice(&3_600_000_000i64.to_be_bytes());
    tz.extend_from_slice(&(-7200i32).to_be_bytes());
    assert_eq!(text("timetz", "timetz", "01:00:00+02").unwrap(), tz);
    let mut iv = Vec::new();
    iv.extend_from_slice(&0i64.to_be_bytes());
    iv.extend_from_slice(&3i32.to_be_bytes());
    iv.extend_from_slice(&14i32.to_be_bytes());
    assert_eq!(
        text("interval", "interval", "1 year 2 mons 3 days").unwrap(),
        iv
    );
    let e = text("timestamp", "timestamp", "2024-13-01 00:00:00").unwrap_err();
    assert_eq!(e.expected, "timestamp");
    assert!(e.reason.contains("month 13"), "{e}");
}

#[test]
fn nonsense_pairs_name_both_types() {
    for (src, dst) in [
        ("timestamp", "timestamptz"),
        ("timestamptz", "timestamp"),
        ("integer", "date"),
        ("date", "integer"),
        ("uuid", "bytea"),
        ("boolean", "integer"),
        ("integer[]", "integer"),
        ("inet", "uuid"),
        ("interval", "time"),
        ("json", "numeric"),
    ] {
        let e = reason(src, dst, "x");
        assert!(
            e.contains(&t(src).to_string())
                && e.contains(&t(dst).to_string())
                && e.contains("make no sense"),
            "{src} -> {dst}: {e}"
        );
    }
    assert!(reason("inet", "inet", "::1").contains("not a target type"));
    assert!(reason("integer[]", "integer[]", "{1}").contains("not a target type"));
}

#[test]
fn errors_leave_out_untouched() {
    let mut out = vec![7u8];
    assert!(encode_text(&t("numeric"), &t("numeric(3,0)"), "12345", &mut out).is_err());
    assert!(encode_text(&t("text[]"), &t("jsonb"), "{\"a}", &mut out).is_err());
    assert!(encode_i64(1 << 40, &t("integer"), &mut out).is_err());
    assert_eq!(out, [7]);
}

#[test]
fn typed_values() {
    let enc = |f: &dyn Fn(&mut Vec<u8>) -> Result<(), ConvertError>| {
        let mut out = Vec::new();
        f(&mut out).map(|_| out)
    };
    assert_eq!(
        enc(&|o| encode_i64(-5, &t("smallint"), o)).unwrap(),
        (-5i16).to_be_bytes()
    );
    assert!(
        enc(&|o| encode_i64(40_000, &t("smallint"), o))
            .unwrap_err()
            .reason
            .contains("smallint")
    );
    assert!(enc(&|o| encode_i64(1 << 31, &t("integer"), o)).is_err());
    assert_eq!(
        enc(&|o| encode_i64(i64::MAX, &t("bigint"), o)).unwrap(),
        i64::MAX.to_be_bytes()
    );
    assert_eq!(
        enc(&|o| encode_i64(-1234567, &t("numeric(10,2)"), o)).unwrap(),
        text("numeric", "numeric(10,2)", "-1234567").unwrap()
    );
    assert!(enc(&|o| encode_i64(123456, &t("numeric(5,2)"), o)).is_err());
    assert_eq!(
        enc(&|o| encode_i64(i64::MIN, &t("text"), o)).unwrap(),
        b"-9223372036854775808"
    );
    assert!(enc(&|o| encode_i64(12345, &t("varchar(4)"), o)).is_err());
    assert!(
        enc(&|o| encode_i64(1, &t("boolean"), o))
            .unwrap_err()
            .reason
            .contains("make no sense")
    );
    assert!(
        enc(&|o| encode_i64(1, &t("inet"), o))
            .unwrap_err()
            .reason
            .contains("not a target type")
    );

    assert_eq!(
        enc(&|o| encode_f32(0.1, &t("real"), o)).unwrap(),
        0.1f32.to_bits().to_be_bytes()
    );
    assert_eq!(
        enc(&|o| encode_f32(0.1, &t("double precision"), o)).unwrap(),
        f64::from(0.1f32).to_bits().to_be_bytes()
    );
    assert_eq!(
        enc(&|o| encode_f32(0.1, &t("numeric"), o)).unwrap(),
        text("numeric", "numeric", "0.1").unwrap()
    );
    assert_eq!(
        enc(&|o| encode_f64(f64::NAN, &t("numeric(5,2)"), o)).unwrap(),
        text("numeric", "numeric", "NaN").unwrap()
    );
    assert!(
        enc(&|o| encode_f64(f64::INFINITY, &t("numeric"), o))
            .unwrap_err()
            .reason
            .contains("DSQL")
    );
    assert!(enc(&|o| encode_f64(1e300, &t("real"), o)).is_err());
    assert!(
        enc(&|o| encode_f64(0.125, &t("numeric(4,2)"), o))
            .unwrap_err()
            .reason
            .contains("round")
    );
    assert_eq!(enc(&|o| encode_f64(1e20, &t("text"), o)).unwrap(), b"1e+20");

    assert_eq!(enc(&|o| encode_bool(true, &t("boolean"), o)).unwrap(), [1]);
    assert_eq!(
        enc(&|o| encode_bool(false, &t("text"), o)).unwrap(),
        b"false"
    );
    assert!(enc(&|o| encode_bool(false, &t("integer"), o)).is_err());

    assert_eq!(
        enc(&|o| encode_bytes(&[0, 255], &t("bytea"), o)).unwrap(),
        [0, 255]
    );
    assert_eq!(
        enc(&|o| encode_bytes(&[0, 255], &t("text"), o)).unwrap(),
        b"\\x00ff"
    );
    assert!(enc(&|o| encode_bytes(&[0, 255], &t("varchar(5)"), o)).is_err());
    assert!(enc(&|o| encode_bytes(&[0], &t("uuid"), o)).is_err());
}

#[test]
fn float_text_matches_postgresql_output() {
    let d = |v: f64| {
        let mut b = StackBuf::new();
        pg_float_text(&mut b, v.is_nan(), v.is_infinite(), v < 0.0, false, |b| {
            shortest_f64(v, b)
        });
        b.as_str().to_string()
    };
    let f = |v: f32| {
        let mut b = StackBuf::new();
        pg_float_text(&mut b, v.is_nan(), v.is_infinite(), v < 0.0, true, |b| {
            shortest_f32(v, b)
        });
        b.as_str().to_string()
    };
    for (v, s) in [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.5, "1.5"),
        (100.0, "100"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1e14, "100000000000000"),
        (1e15, "1e+15"),
        (123456789012345680000.0, "1.2345678901234568e+20"),
        (-1.5e-300, "-1.5e-300"),
        (f64::MAX, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
        (0.1 + 0.2, "0.30000000000000004"),
        // 37973158399071580 is a rounding-interval bound: PostgreSQL spells the value longer.
        (37973158399071584.0, "3.7973158399071584e+16"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "Infinity"),
        (f64::NEG_INFINITY, "-Infinity"),
    ] {
        assert_eq!(d(v), s);
    }
    for (v, s) in [
        (100000.0f32, "100000"),
        (1000000.0, "1e+06"),
        (0.1, "0.1"),
        (3.4028235e38, "3.4028235e+38"),
        (-1.25, "-1.25"),
        // Exact tie: round to even, as PostgreSQL's Ryu does.
        (295_964.0 + 0.125, "295964.12"),
        // 333728400 is a rounding-interval bound: PostgreSQL takes a longer, inner spelling.
        (-(333_728_384_u32 as f32), "-3.3372838e+08"),
    ] {
        assert_eq!(f(v), s);
    }
}
