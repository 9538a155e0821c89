//! One exported value -> the canonical text of its target column, by the mapping's declared
//! transformation: the source type (`originalType`, refined by the source schema), the target
//! type, and what the export holds (an integer, float, boolean or bytes typed; every other type
//! as PostgreSQL's text output).

use super::datetime;
use super::float;
use super::json::{self, Element};
use super::numeric;
use crate::types::PgType;
use std::fmt::Write as _;

/// A value as the export holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Raw<'a> {
    Int(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Bytes(&'a [u8]),
    Str(&'a str),
}

impl Raw<'_> {
    /// The value shown in an error message.
    pub fn show(&self) -> String {
        match self {
            Raw::Int(v) => v.to_string(),
            Raw::F32(v) => v.to_string(),
            Raw::F64(v) => v.to_string(),
            Raw::Bool(v) => v.to_string(),
            Raw::Bytes(b) => format!("<{} bytes>", b.len()),
            Raw::Str(s) if s.chars().count() > 200 => {
                format!(
                    "{}... ({} characters)",
                    s.chars().take(200).collect::<String>(),
                    s.chars().count()
                )
            }
            Raw::Str(s) => s.to_string(),
        }
    }
}

fn hex(b: &[u8], out: &mut String) {
    out.push_str("\\x");
    for byte in b {
        let _ = write!(out, "{byte:02x}");
    }
}

/// What the source value's `::text` is, for a text target.
fn source_text(source: &PgType, raw: Raw, out: &mut String) -> Result<(), String> {
    match raw {
        Raw::Int(v) => {
            let _ = write!(out, "{v}");
        }
        Raw::F32(v) => float::f32_text(v, out),
        Raw::F64(v) if *source == PgType::Real => float::f32_text(v as f32, out),
        Raw::F64(v) => float::f64_text(v, out),
        Raw::Bool(v) => out.push_str(if v { "true" } else { "false" }),
        Raw::Bytes(b) => hex(b, out),
        Raw::Str(s) => match source {
            // bpchar's padding is insignificant: `::text` drops it.
            PgType::Char(_) => out.push_str(s.trim_end_matches(' ')),
            PgType::Boolean => out.push_str(if parse_bool(s)? { "true" } else { "false" }),
            _ => out.push_str(s),
        },
    }
    Ok(())
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "yes" | "on" | "1" | "y" => Ok(true),
        "f" | "false" | "no" | "off" | "0" | "n" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean")),
    }
}

/// A character count past `n`: only spaces may be cut (as PostgreSQL's assignment cast does).
fn fit_length(text: &mut String, n: u32, ty: &PgType) -> Result<(), String> {
    let n = n as usize;
    if let Some((cut, _)) = text.char_indices().nth(n) {
        if text[cut..].bytes().any(|c| c != b' ') {
            return Err(format!(
                "{} characters do not fit {ty}",
                text.chars().count()
            ));
        }
        text.truncate(cut);
    }
    Ok(())
}

fn int_range(v: i128, target: &PgType) -> Result<(), String> {
    let ok = match target {
        PgType::SmallInt => i16::try_from(v).is_ok(),
        PgType::Integer => i32::try_from(v).is_ok(),
        _ => i64::try_from(v).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{v} is out of range for {target}"))
    }
}

fn element(t: &PgType) -> (Element, u8) {
    let mut base = t;
    while let PgType::Array(inner) = base {
        base = inner;
    }
    let kind = match base {
        PgType::SmallInt
        | PgType::Integer
        | PgType::BigInt
        | PgType::Real
        | PgType::Double
        | PgType::Numeric { .. } => Element::Number,
        PgType::Boolean => Element::Bool,
        PgType::Json | PgType::Jsonb => Element::Json,
        _ => Element::String,
    };
    let delim = match base {
        PgType::Other(name) if name.eq_ignore_ascii_case("box") => b';',
        _ => b',',
    };
    (kind, delim)
}

fn mismatch(source: &PgType, target: &PgType) -> String {
    format!("the mapping declares no conversion from {source} to {target}")
}

/// Appends the canonical text of `raw` (of source type `source`) in a `target` column.
pub fn canonical(
    source: &PgType,
    target: &PgType,
    raw: Raw,
    out: &mut String,
) -> Result<(), String> {
    match target {
        PgType::Text | PgType::Varchar(_) | PgType::Char(_) | PgType::Name => {
            let mut t = String::new();
            source_text(source, raw, &mut t)?;
            match target {
                PgType::Varchar(Some(n)) => fit_length(&mut t, *n, target)?,
                PgType::Char(n) => {
                    fit_length(&mut t, n.unwrap_or(1), target)?;
                    let kept = t.trim_end_matches(' ').len();
                    t.truncate(kept);
                }
                _ => {}
            }
            out.push_str(&t);
        }
        PgType::SmallInt | PgType::Integer | PgType::BigInt => {
            let v: i128 = match raw {
                Raw::Int(v) => i128::from(v),
                Raw::Str(s) => match numeric::parse(s)? {
                    numeric::Num::Finite(d) => d
                        .integer()
                        .ok_or_else(|| format!("{s:?} is not an integer"))?,
                    _ => return Err(format!("{s:?} is not an integer")),
                },
                _ => return Err(mismatch(source, target)),
            };
            int_range(v, target)?;
            let _ = write!(out, "{v}");
        }
        PgType::Real => match raw {
            Raw::Int(v) => float::f32_text(v as f32, out),
            Raw::F32(v) => float::f32_text(v, out),
            Raw::F64(v) => {
                let f = v as f32;
                if v.is_finite() && f.is_infinite() {
                    return Err(format!("{v} overflows real"));
                }
                if v != 0.0 && f == 0.0 {
                    return Err(format!("{v} underflows real"));
                }
                float::f32_text(f, out)
            }
            Raw::Str(s) => float::f32_text(parse_float(s)?, out),
            _ => return Err(mismatch(source, target)),
        },
        PgType::Double => match raw {
            Raw::Int(v) => float::f64_text(v as f64, out),
            Raw::F32(v) => float::f64_text(f64::from(v), out),
            Raw::F64(v) => float::f64_text(v, out),
            Raw::Str(s) if *source == PgType::Real => {
                float::f64_text(f64::from(parse_float::<f32>(s)?), out)
            }
            Raw::Str(s) => float::f64_text(parse_float(s)?, out),
            _ => return Err(mismatch(source, target)),
        },
        PgType::Numeric { precision, scale } => {
            let text = match raw {
                Raw::Int(v) => v.to_string(),
                Raw::F32(v) => shortest_decimal(v.is_nan(), v.is_infinite(), &format!("{v:e}")),
                Raw::F64(v) => shortest_decimal(v.is_nan(), v.is_infinite(), &format!("{v:e}")),
                Raw::Str(s) if *source == PgType::Money => numeric::money_digits(s),
                Raw::Str(s) => s.to_string(),
                _ => return Err(mismatch(source, target)),
            };
            numeric::numeric_text(&text, *precision, *scale, out)?;
        }
        PgType::Boolean => match raw {
            Raw::Bool(v) => out.push_str(if v { "true" } else { "false" }),
            Raw::Str(s) => out.push_str(if parse_bool(s)? { "true" } else { "false" }),
            _ => return Err(mismatch(source, target)),
        },
        PgType::Bytea => match raw {
            Raw::Bytes(b) => hex(b, out),
            Raw::Str(s) => hex(&bytea_input(s)?, out),
            _ => return Err(mismatch(source, target)),
        },
        PgType::Uuid => uuid_text(str_of(raw, source, target)?, out)?,
        PgType::Date => datetime::date(str_of(raw, source, target)?, false, out)?,
        PgType::Time => datetime::time(str_of(raw, source, target)?, out)?,
        PgType::TimeTz => datetime::timetz(str_of(raw, source, target)?, out)?,
        PgType::Timestamp => {
            let s = str_of(raw, source, target)?;
            if *source == PgType::Date {
                datetime::date(s, true, out)?;
            } else {
                datetime::timestamp(s, false, out)?;
            }
        }
        PgType::TimestampTz => datetime::timestamp(str_of(raw, source, target)?, true, out)?,
        PgType::Interval => datetime::interval(str_of(raw, source, target)?, out)?,
        PgType::Json | PgType::Jsonb => {
            let s = str_of(raw, source, target)?;
            let as_json;
            let text = match source {
                PgType::Array(elem) => {
                    let (kind, delim) = element(elem);
                    let mut j = String::new();
                    json::array(s, kind, delim, &mut j)?;
                    as_json = j;
                    as_json.as_str()
                }
                _ => s,
            };
            if *target == PgType::Jsonb {
                json::jsonb(text, out)?;
            } else {
                json::json(text, out)?;
            }
        }
        other => return Err(format!("{other} is not a DSQL column type")),
    }
    Ok(())
}

fn str_of<'a>(raw: Raw<'a>, source: &PgType, target: &PgType) -> Result<&'a str, String> {
    match raw {
        Raw::Str(s) => Ok(s),
        _ => Err(mismatch(source, target)),
    }
}

fn parse_float<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    let t = s.trim();
    let t = match t.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => "inf".to_string(),
        "-infinity" => "-inf".to_string(),
        "nan" => "NaN".to_string(),
        _ => t.to_string(),
    };
    t.parse()
        .map_err(|_| format!("{s:?} is not a floating-point number"))
}

/// A float's shortest decimal (from Rust's `{:e}`) as a numeric input text.
fn shortest_decimal(nan: bool, infinite: bool, sci: &str) -> String {
    if nan {
        "NaN".into()
    } else if infinite {
        "Infinity".into()
    } else {
        sci.to_string()
    }
}

/// uuid input (hyphens anywhere between digit pairs, braces, upper case) -> `uuid_out`.
fn uuid_text(s: &str, out: &mut String) -> Result<(), String> {
    let t = s.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(t);
    let hexes: Vec<u8> = t.bytes().filter(|c| *c != b'-').collect();
    if hexes.len() != 32 || !hexes.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!("{s:?} is not a uuid"));
    }
    for (i, c) in hexes.iter().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        out.push(char::from(c.to_ascii_lowercase()));
    }
    Ok(())
}

/// bytea input: `\x` hex, or the escape format (`\\`, `\ooo`, other bytes as they are).
fn bytea_input(s: &str) -> Result<Vec<u8>, String> {
    if let Some(h) = s.strip_prefix("\\x") {
        let h: Vec<u8> = h.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
        if h.len() % 2 != 0 {
            return Err(format!("{s:?}: odd number of hex digits"));
        }
        return h
            .chunks(2)
            .map(|p| {
                std::str::from_utf8(p)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(|| format!("{s:?}: not hex"))
            })
            .collect();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let o = b
                .get(i + 1..i + 4)
                .and_then(|o| std::str::from_utf8(o).ok())
                .and_then(|o| u8::from_str_radix(o, 8).ok())
                .ok_or_else(|| format!("{s:?}: bad escape"))?;
            out.push(o);
            i += 4;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &PgType, t: &PgType, raw: Raw) -> String {
        let mut out = String::new();
        canonical(s, t, raw, &mut out).unwrap();
        out
    }

    #[test]
    fn declared_transformations() {
        let num = |p, s| PgType::Numeric {
            precision: Some(p),
            scale: Some(s),
        };
        assert_eq!(
            c(&PgType::Money, &num(21, 4), Raw::Str("-$1,234.56")),
            "-1234.5600"
        );
        assert_eq!(c(&PgType::Integer, &num(6, 2), Raw::Int(42)), "42.00");
        assert_eq!(c(&PgType::Double, &num(10, 3), Raw::F64(0.5)), "0.500");
        assert_eq!(
            c(&PgType::Char(Some(5)), &PgType::Text, Raw::Str("ab   ")),
            "ab"
        );
        assert_eq!(
            c(&PgType::Text, &PgType::Char(Some(5)), Raw::Str("ab")),
            "ab"
        );
        assert_eq!(
            c(&PgType::Bytea, &PgType::Text, Raw::Bytes(&[1, 255])),
            "\\x01ff"
        );
        assert_eq!(c(&PgType::Boolean, &PgType::Text, Raw::Bool(true)), "true");
        assert_eq!(
            c(&PgType::Real, &PgType::Double, Raw::F32(0.1)),
            "0.10000000149011612"
        );
        assert_eq!(
            c(&PgType::Date, &PgType::Timestamp, Raw::Str("2024-02-29")),
            "2024-02-29 00:00:00"
        );
        assert_eq!(
            c(
                &PgType::Uuid,
                &PgType::Uuid,
                Raw::Str("{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}")
            ),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
        assert_eq!(
            c(
                &PgType::Array(Box::new(PgType::Integer)),
                &PgType::Jsonb,
                Raw::Str("{1,NULL,-1}")
            ),
            "[1, null, -1]"
        );
        assert_eq!(
            c(&PgType::Text, &PgType::Varchar(Some(3)), Raw::Str("abc   ")),
            "abc"
        );
        let mut out = String::new();
        assert!(
            canonical(
                &PgType::Text,
                &PgType::Varchar(Some(3)),
                Raw::Str("abcd"),
                &mut out
            )
            .is_err()
        );
        assert!(
            canonical(
                &PgType::BigInt,
                &PgType::SmallInt,
                Raw::Int(40_000),
                &mut out
            )
            .is_err()
        );
        assert_eq!(
            c(
                &PgType::Numeric {
                    precision: None,
                    scale: None
                },
                &PgType::Integer,
                Raw::Str("12.000")
            ),
            "12"
        );
        assert_eq!(
            c(&PgType::Bytea, &PgType::Bytea, Raw::Str("a\\\\b\\001")),
            "\\x615c6201"
        );
    }
}
