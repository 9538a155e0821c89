//! Property tests: for every type, a value in PostgreSQL's text output form, converted to the
//! binary wire form ([`encode_text`]) and printed back as PostgreSQL prints it
//! ([`super::print::canonical_text`]), is the same text: encoder and printer undo each other on
//! every value proptest can think of. (Verification no longer relies on this: its export side is
//! its own, see `verify::expect`.)

use super::encode_text;
use super::print::canonical_text;
use crate::types::PgType;
use proptest::prelude::*;

/// text -> binary -> canonical text.
fn round_trip(t: &PgType, text: &str) -> Result<String, TestCaseError> {
    let mut bin = Vec::new();
    encode_text(t, t, text, &mut bin)
        .map_err(|e| TestCaseError::fail(format!("{t} {text:?}: encode: {e:?}")))?;
    let mut out = String::new();
    canonical_text(t, &bin, &mut out)
        .map_err(|e| TestCaseError::fail(format!("{t} {text:?}: canonical: {e}")))?;
    Ok(out)
}

fn days_in(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A date in PostgreSQL's ISO output, AD 1 to 9999 or BC 1 to 4713 (`0044-03-15 BC`; PostgreSQL's
/// range starts at 4714-11-24 BC).
fn date_text() -> impl Strategy<Value = String> {
    (1i32..=9999, 1u32..=12, any::<bool>(), 0u32..31).prop_map(|(y, m, bc, d)| {
        let y = if bc { 1 + y % 4713 } else { y };
        // A BC year y is astronomical year 1 - y: its leap years are those of 1 - y.
        let astro = if bc { 1 - y } else { y };
        let d = 1 + d % days_in(astro, m);
        if bc {
            format!("{y:04}-{m:02}-{d:02} BC")
        } else {
            format!("{y:04}-{m:02}-{d:02}")
        }
    })
}

/// `HH:MM:SS[.f]`, the fraction without trailing zeros, as PostgreSQL prints it.
fn time_text() -> impl Strategy<Value = String> {
    (0u32..24, 0u32..60, 0u32..60, 0u32..1_000_000).prop_map(|(h, m, s, us)| {
        let mut t = format!("{h:02}:{m:02}:{s:02}");
        if us > 0 {
            let f = format!("{us:06}");
            t.push('.');
            t.push_str(f.trim_end_matches('0'));
        }
        t
    })
}

/// A numeric in PostgreSQL's output: sign, integer digits without leading zeros, and exactly
/// `scale` fraction digits (trailing zeros are part of the value's display scale).
fn numeric_text() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        "[1-9][0-9]{0,30}|0",
        proptest::option::of("[0-9]{1,20}"),
    )
        .prop_map(|(neg, int, frac)| {
            let mut t = String::new();
            let zero = int == "0" && frac.as_deref().is_none_or(|f| f.chars().all(|c| c == '0'));
            if neg && !zero {
                t.push('-');
            }
            t.push_str(&int);
            if let Some(f) = frac {
                t.push('.');
                t.push_str(&f);
            }
            t
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn integers(v in any::<i64>()) {
        let t = v.to_string();
        prop_assert_eq!(round_trip(&PgType::BigInt, &t)?, t.clone());
        if let Ok(v32) = i32::try_from(v) {
            prop_assert_eq!(round_trip(&PgType::Integer, &v32.to_string())?, v32.to_string());
        } else {
            prop_assert!(round_trip(&PgType::Integer, &t).is_err(), "{} fits no integer", t);
        }
    }

    #[test]
    fn numerics(t in numeric_text()) {
        let numeric = PgType::Numeric { precision: None, scale: None };
        prop_assert_eq!(round_trip(&numeric, &t)?, t);
    }

    #[test]
    fn dates(t in date_text()) {
        prop_assert_eq!(round_trip(&PgType::Date, &t)?, t);
    }

    #[test]
    fn times(t in time_text()) {
        prop_assert_eq!(round_trip(&PgType::Time, &t)?, t);
    }

    #[test]
    fn timestamps(d in date_text(), t in time_text()) {
        // A BC timestamp prints its era after the time.
        let text = match d.strip_suffix(" BC") {
            Some(day) => format!("{day} {t} BC"),
            None => format!("{d} {t}"),
        };
        prop_assert_eq!(round_trip(&PgType::Timestamp, &text)?, text);
    }

    #[test]
    fn uuids(bytes in any::<[u8; 16]>()) {
        let t = uuid::Uuid::from_bytes(bytes).hyphenated().to_string();
        prop_assert_eq!(round_trip(&PgType::Uuid, &t)?, t);
    }

    #[test]
    fn texts(t in "[^\u{0}]{0,64}") {
        prop_assert_eq!(round_trip(&PgType::Text, &t)?, t.clone());
        let n = t.chars().count() as u32;
        prop_assert_eq!(round_trip(&PgType::Varchar(Some(n.max(1))), &t)?, t.clone());
        if n > 1 {
            // As PostgreSQL stores into varchar(n): excess spaces are cut, anything else refused.
            let short = PgType::Varchar(Some(n - 1));
            let cut: String = t.chars().take(n as usize - 1).collect();
            if t.ends_with(' ') {
                prop_assert_eq!(round_trip(&short, &t)?, cut);
            } else {
                prop_assert!(round_trip(&short, &t).is_err(), "varchar({}) took {} chars", n - 1, n);
            }
        }
    }

    /// Anything at all, in any type: an error or a value, never a panic.
    #[test]
    fn arbitrary_text_never_panics(t in ".{0,40}") {
        for ty in [
            PgType::SmallInt, PgType::Integer, PgType::BigInt, PgType::Real, PgType::Double,
            PgType::Numeric { precision: Some(8), scale: Some(2) }, PgType::Money,
            PgType::Date, PgType::Time, PgType::TimeTz, PgType::Timestamp, PgType::TimestampTz,
            PgType::Interval, PgType::Uuid, PgType::Json, PgType::Jsonb,
        ] {
            let _ = round_trip(&ty, &t);
        }
    }
}

/// The fuzzer's corpus and the inputs that once broke a parser, replayed on every test run
/// (`make fuzz` grows the corpus; it needs a fuzzing toolchain, this does not).
#[test]
fn fuzz_corpus_replays_without_a_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in ["corpus/parse_text", "regressions/parse_text"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).unwrap();
            if let Ok(text) = std::str::from_utf8(&data) {
                super::exercise_parsers(text);
            }
            n += 1;
        }
    }
    assert!(n >= 20, "only {n} corpus inputs under {}", root.display());
}
