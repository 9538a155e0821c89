//! Exported values -> the PostgreSQL binary wire form of the target column's type.
//!
//! The export hands over integers, floats, booleans and bytea typed, and everything else as
//! PostgreSQL's text output (DateStyle ISO, IntervalStyle postgres). The loader writes rows with
//! `COPY ... FROM STDIN (FORMAT binary)`, so every value must become exactly what the target type's
//! receive function reads. This module does that, one value at a time, without the 4-byte length
//! prefix (the caller writes it).
//!
//! Design rules:
//! - Parsers accept what PostgreSQL's text output produces and refuse the rest with a reason that
//!   names the expected form: a value that cannot be read exactly is never guessed at.
//! - Nothing is rounded silently: `numeric(p,s)` refuses extra non-zero fraction digits, varchar(n)
//!   refuses longer values, floats never stand in for numerics.
//! - The hot path does not allocate (apart from growing `out`); errors do.
//! - A text target gets what PostgreSQL's `value::text` cast would give.
//!
//! Which source makes sense for which target ([`encode_text`]; text, varchar, char and name
//! sources may go anywhere, their text parsed as the target's; other pairs are refused, naming
//! both types):
//!
//! | target | sources |
//! |---|---|
//! | smallint, integer, bigint | integers (range-checked), numeric with a zero fraction |
//! | real, double precision | integers, floats, numeric (over- and underflow refused) |
//! | numeric, numeric(p,s) | integers, floats, numeric, money (`$1,234.56`); NaN kept, infinities refused |
//! | boolean, bytea, uuid, date, time, timetz, timestamptz, interval | the same type |
//! | timestamp | timestamp, date (midnight) |
//! | json, jsonb | json, jsonb, arrays (as [`array_to_json`]) |
//! | text, varchar(n), char(n), name | anything, as its text (arrays as their literal) |
//!
//! Submodules: `numeric` (numeric and money), `datetime` (date, time, timestamps, interval),
//! `array` (array literals -> JSON).

mod array;
mod datetime;
#[cfg(feature = "test-hooks")]
pub mod hooks;
mod numeric;
pub mod print;

pub use array::array_to_json;

use crate::types::PgType;
use std::fmt::Write as _;

/// Why one value did not convert; the caller adds file, row group, row, column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ConvertError {
    /// The type the value should have become, e.g. `timestamp`.
    pub expected: String,
    /// Why it did not, lower case, naming the expected form where that helps.
    pub reason: String,
}

/// Internal parsers report only a reason; the public functions add the expected type.
type R<T> = Result<T, String>;

fn fail(dst: &PgType, start: usize, out: &mut Vec<u8>, reason: String) -> ConvertError {
    out.truncate(start);
    ConvertError {
        expected: dst.to_string(),
        reason,
    }
}

fn finish(dst: &PgType, start: usize, out: &mut Vec<u8>, r: R<()>) -> Result<(), ConvertError> {
    r.map_err(|reason| fail(dst, start, out, reason))
}

/// Coarse kinds of source types: which target types make sense for a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Numeric,
    Money,
    Bool,
    /// text, varchar, char, name: their text can be parsed into any target.
    Text,
    Bytea,
    Uuid,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    Json,
    Array,
    /// Enums, network types, xml, bit strings, text search, unknown: only ever text.
    Opaque,
}

fn kind(t: &PgType) -> Kind {
    match t {
        PgType::SmallInt | PgType::Integer | PgType::BigInt => Kind::Int,
        PgType::Real | PgType::Double => Kind::Float,
        PgType::Numeric { .. } => Kind::Numeric,
        PgType::Money => Kind::Money,
        PgType::Boolean => Kind::Bool,
        PgType::Text | PgType::Varchar(_) | PgType::Char(_) | PgType::Name => Kind::Text,
        PgType::Bytea => Kind::Bytea,
        PgType::Uuid => Kind::Uuid,
        PgType::Date => Kind::Date,
        PgType::Time => Kind::Time,
        PgType::TimeTz => Kind::TimeTz,
        PgType::Timestamp => Kind::Timestamp,
        PgType::TimestampTz => Kind::TimestampTz,
        PgType::Interval => Kind::Interval,
        PgType::Json | PgType::Jsonb => Kind::Json,
        PgType::Array(_) => Kind::Array,
        PgType::Enum(_)
        | PgType::Inet
        | PgType::Cidr
        | PgType::MacAddr
        | PgType::MacAddr8
        | PgType::Xml
        | PgType::Bit(_)
        | PgType::VarBit(_)
        | PgType::TsVector
        | PgType::TsQuery
        | PgType::Other(_) => Kind::Opaque,
    }
}

fn is_textlike(t: &PgType) -> bool {
    matches!(
        t,
        PgType::Text | PgType::Varchar(_) | PgType::Char(_) | PgType::Name
    )
}

fn mismatch(src: &PgType, dst: &PgType) -> String {
    format!("a {src} value cannot become {dst}: the types make no sense together")
}

fn unsupported_target(dst: &PgType) -> String {
    format!(
        "{dst} is not a target type the converter writes (DSQL cannot store it); map the column to a DSQL type"
    )
}

/// Exported text (PostgreSQL text output of a source column of type `src`) -> binary of `dst`.
///
/// This is the path for every column the export wrote as a string: numerics, dates and times,
/// uuids, json, arrays, enums and all text types. On error `out` is left as it was.
pub fn encode_text(
    src: &PgType,
    dst: &PgType,
    text: &str,
    out: &mut Vec<u8>,
) -> Result<(), ConvertError> {
    let start = out.len();
    let r = encode_text_inner(src, dst, text, out);
    finish(dst, start, out, r)
}

fn encode_text_inner(src: &PgType, dst: &PgType, text: &str, out: &mut Vec<u8>) -> R<()> {
    let sk = kind(src);
    if is_textlike(dst) {
        // The `::text` cast of a boolean spells it out; every other type's cast is its output,
        // except char(n), whose padding is insignificant and dropped outside char(n).
        if sk == Kind::Bool {
            let b = parse_bool(text)?;
            return encode_textlike(dst, if b { "true" } else { "false" }, out);
        }
        if matches!(src, PgType::Char(_)) && !matches!(dst, PgType::Char(_)) {
            return encode_textlike(dst, text.trim_end_matches(' '), out);
        }
        return encode_textlike(dst, text, out);
    }
    let ok = |kinds: &[Kind]| sk == Kind::Text || kinds.contains(&sk);
    match dst {
        PgType::SmallInt | PgType::Integer | PgType::BigInt => {
            if !ok(&[Kind::Int, Kind::Numeric]) {
                return Err(mismatch(src, dst));
            }
            let v = parse_int(text, sk == Kind::Numeric)?;
            put_int(v, dst, out)
        }
        PgType::Real => {
            if !ok(&[Kind::Int, Kind::Float, Kind::Numeric]) {
                return Err(mismatch(src, dst));
            }
            let v = match src {
                PgType::Double => f64_to_f32(parse_f64(text)?)?,
                _ if sk == Kind::Int => parse_int(text, false)? as f32,
                _ => parse_f32(text)?,
            };
            out.extend_from_slice(&v.to_bits().to_be_bytes());
            Ok(())
        }
        PgType::Double => {
            if !ok(&[Kind::Int, Kind::Float, Kind::Numeric]) {
                return Err(mismatch(src, dst));
            }
            let v = match src {
                // float4 -> float8 widens the stored value, as PostgreSQL's cast does.
                PgType::Real => f64::from(parse_f32(text)?),
                _ if sk == Kind::Int => parse_int(text, false)? as f64,
                _ => parse_f64(text)?,
            };
            out.extend_from_slice(&v.to_bits().to_be_bytes());
            Ok(())
        }
        PgType::Numeric { precision, scale } => match sk {
            Kind::Money => numeric::encode_money(text, *precision, *scale, out),
            Kind::Int | Kind::Float | Kind::Numeric | Kind::Text => {
                numeric::encode_numeric_text(text, *precision, *scale, out)
            }
            _ => Err(mismatch(src, dst)),
        },
        PgType::Boolean => {
            if !ok(&[Kind::Bool]) {
                return Err(mismatch(src, dst));
            }
            out.push(u8::from(parse_bool(text)?));
            Ok(())
        }
        PgType::Bytea => {
            if !ok(&[Kind::Bytea]) {
                return Err(mismatch(src, dst));
            }
            decode_bytea(text, out)
        }
        PgType::Uuid => {
            if !ok(&[Kind::Uuid]) {
                return Err(mismatch(src, dst));
            }
            out.extend_from_slice(&parse_uuid(text)?);
            Ok(())
        }
        PgType::Date => {
            if !ok(&[Kind::Date]) {
                return Err(mismatch(src, dst));
            }
            out.extend_from_slice(&datetime::parse_date(text)?.to_be_bytes());
            Ok(())
        }
        PgType::Time => {
            if !ok(&[Kind::Time]) {
                return Err(mismatch(src, dst));
            }
            out.extend_from_slice(&datetime::parse_time(text)?.to_be_bytes());
            Ok(())
        }
        PgType::TimeTz => {
            if !ok(&[Kind::TimeTz]) {
                return Err(mismatch(src, dst));
            }
            let (micros, zone) = datetime::parse_timetz(text)?;
            out.extend_from_slice(&micros.to_be_bytes());
            out.extend_from_slice(&zone.to_be_bytes());
            Ok(())
        }
        PgType::Timestamp => {
            let v = match sk {
                Kind::Timestamp | Kind::Text => datetime::parse_timestamp(text)?,
                Kind::Date => datetime::date_to_timestamp(datetime::parse_date(text)?)?,
                _ => return Err(mismatch(src, dst)),
            };
            out.extend_from_slice(&v.to_be_bytes());
            Ok(())
        }
        PgType::TimestampTz => {
            if !ok(&[Kind::TimestampTz]) {
                return Err(mismatch(src, dst));
            }
            out.extend_from_slice(&datetime::parse_timestamptz(text)?.to_be_bytes());
            Ok(())
        }
        PgType::Interval => {
            if !ok(&[Kind::Interval]) {
                return Err(mismatch(src, dst));
            }
            let iv = datetime::parse_interval(text)?;
            out.extend_from_slice(&iv.micros.to_be_bytes());
            out.extend_from_slice(&iv.days.to_be_bytes());
            out.extend_from_slice(&iv.months.to_be_bytes());
            Ok(())
        }
        PgType::Json | PgType::Jsonb => {
            let jsonb = matches!(dst, PgType::Jsonb);
            match src {
                PgType::Array(elem) => {
                    let json = array::to_json(elem, text)?;
                    encode_json_unchecked(jsonb, &json, out);
                    Ok(())
                }
                _ if ok(&[Kind::Json]) => {
                    check_no_nul(text)?;
                    validate_json(text)?;
                    encode_json_unchecked(jsonb, text, out);
                    Ok(())
                }
                _ => Err(mismatch(src, dst)),
            }
        }
        _ => Err(unsupported_target(dst)),
    }
}

/// A typed integer (Parquet INT32/INT64) -> binary of `dst`, range-checked.
///
/// Integers may become any integer type (when in range), numeric, real, double precision or text.
pub fn encode_i64(v: i64, dst: &PgType, out: &mut Vec<u8>) -> Result<(), ConvertError> {
    let start = out.len();
    let r = match dst {
        PgType::SmallInt | PgType::Integer | PgType::BigInt => put_int(v, dst, out),
        PgType::Real => {
            out.extend_from_slice(&(v as f32).to_bits().to_be_bytes());
            Ok(())
        }
        PgType::Double => {
            out.extend_from_slice(&(v as f64).to_bits().to_be_bytes());
            Ok(())
        }
        PgType::Numeric { precision, scale } => {
            let mut buf = StackBuf::new();
            let _ = write!(buf, "{v}");
            numeric::encode_numeric_text(buf.as_str(), *precision, *scale, out)
        }
        t if is_textlike(t) => {
            let mut buf = StackBuf::new();
            let _ = write!(buf, "{v}");
            encode_textlike(dst, buf.as_str(), out)
        }
        t if t.dsql_supported() => Err(mismatch(&PgType::BigInt, dst)),
        _ => Err(unsupported_target(dst)),
    };
    finish(dst, start, out, r)
}

/// A typed float (Parquet FLOAT) -> binary of `dst`: real, double precision, numeric or text.
///
/// Numeric gets the shortest decimal that reads back as the same float (NaN kept, infinities
/// refused); text gets PostgreSQL's `float4out` spelling.
pub fn encode_f32(v: f32, dst: &PgType, out: &mut Vec<u8>) -> Result<(), ConvertError> {
    let start = out.len();
    let r = match dst {
        PgType::Real => {
            out.extend_from_slice(&v.to_bits().to_be_bytes());
            Ok(())
        }
        PgType::Double => {
            out.extend_from_slice(&f64::from(v).to_bits().to_be_bytes());
            Ok(())
        }
        PgType::Numeric { precision, scale } => float_to_numeric(
            v.is_nan(),
            v.is_infinite(),
            |b| shortest_f32(v, b),
            *precision,
            *scale,
            out,
        ),
        t if is_textlike(t) => {
            let mut buf = StackBuf::new();
            pg_float_text(&mut buf, v.is_nan(), v.is_infinite(), v < 0.0, true, |b| {
                shortest_f32(v, b)
            });
            encode_textlike(dst, buf.as_str(), out)
        }
        t if t.dsql_supported() => Err(mismatch(&PgType::Real, dst)),
        _ => Err(unsupported_target(dst)),
    };
    finish(dst, start, out, r)
}

/// A typed double (Parquet DOUBLE) -> binary of `dst`: double precision, real (refusing overflow
/// and underflow as PostgreSQL's cast does), numeric or text (as [`encode_f32`]).
pub fn encode_f64(v: f64, dst: &PgType, out: &mut Vec<u8>) -> Result<(), ConvertError> {
    let start = out.len();
    let r = match dst {
        PgType::Double => {
            out.extend_from_slice(&v.to_bits().to_be_bytes());
            Ok(())
        }
        PgType::Real => f64_to_f32(v).map(|f| out.extend_from_slice(&f.to_bits().to_be_bytes())),
        PgType::Numeric { precision, scale } => float_to_numeric(
            v.is_nan(),
            v.is_infinite(),
            |b| shortest_f64(v, b),
            *precision,
            *scale,
            out,
        ),
        t if is_textlike(t) => {
            let mut buf = StackBuf::new();
            pg_float_text(&mut buf, v.is_nan(), v.is_infinite(), v < 0.0, false, |b| {
                shortest_f64(v, b)
            });
            encode_textlike(dst, buf.as_str(), out)
        }
        t if t.dsql_supported() => Err(mismatch(&PgType::Double, dst)),
        _ => Err(unsupported_target(dst)),
    };
    finish(dst, start, out, r)
}

/// A typed boolean (Parquet BOOLEAN) -> boolean, or text `true`/`false` (the `::text` cast).
pub fn encode_bool(v: bool, dst: &PgType, out: &mut Vec<u8>) -> Result<(), ConvertError> {
    let start = out.len();
    let r = match dst {
        PgType::Boolean => {
            out.push(u8::from(v));
            Ok(())
        }
        t if is_textlike(t) => encode_textlike(dst, if v { "true" } else { "false" }, out),
        t if t.dsql_supported() => Err(mismatch(&PgType::Boolean, dst)),
        _ => Err(unsupported_target(dst)),
    };
    finish(dst, start, out, r)
}

/// Typed bytes (Parquet BINARY of a bytea column) -> bytea, or text in bytea's hex output
/// (`\x0a0b`, the `::text` cast).
pub fn encode_bytes(v: &[u8], dst: &PgType, out: &mut Vec<u8>) -> Result<(), ConvertError> {
    let start = out.len();
    let r = match dst {
        PgType::Bytea => {
            out.extend_from_slice(v);
            Ok(())
        }
        t if is_textlike(t) => {
            let len = 2 + 2 * v.len();
            let fits = match t {
                PgType::Varchar(Some(n)) | PgType::Char(Some(n)) => len <= *n as usize,
                PgType::Name => len <= NAME_MAX_BYTES,
                _ => true,
            };
            if fits {
                out.reserve(len);
                out.extend_from_slice(b"\\x");
                for b in v {
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 15)]);
                }
                Ok(())
            } else {
                Err(format!(
                    "the hex text of {} bytes has {len} characters, more than {t} allows",
                    v.len()
                ))
            }
        }
        t if t.dsql_supported() => Err(mismatch(&PgType::Bytea, dst)),
        _ => Err(unsupported_target(dst)),
    };
    finish(dst, start, out, r)
}

/// PostgreSQL's `float4out` text of `v` (extra_float_digits 1, the default): what `v::text`
/// gives for a real. Used by [`print`].
pub fn float4_text(v: f32) -> String {
    let mut buf = StackBuf::new();
    pg_float_text(&mut buf, v.is_nan(), v.is_infinite(), v < 0.0, true, |b| {
        shortest_f32(v, b)
    });
    buf.as_str().to_string()
}

/// PostgreSQL's `float8out` text of `v` (extra_float_digits 1): what `v::text` gives for a
/// double precision.
pub fn float8_text(v: f64) -> String {
    let mut buf = StackBuf::new();
    pg_float_text(&mut buf, v.is_nan(), v.is_infinite(), v < 0.0, false, |b| {
        shortest_f64(v, b)
    });
    buf.as_str().to_string()
}

const HEX: &[u8; 16] = b"0123456789abcdef";
/// PostgreSQL's `name` holds at most NAMEDATALEN - 1 = 63 bytes.
const NAME_MAX_BYTES: usize = 63;

// ---------------------------------------------------------------------------------------------
// Small helpers shared by the submodules.

/// A fixed-size, stack-allocated text buffer for formatting numbers without allocating.
pub(crate) struct StackBuf {
    buf: [u8; 64],
    len: usize,
}

impl StackBuf {
    pub(crate) fn new() -> Self {
        StackBuf {
            buf: [0; 64],
            len: 0,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only `write_str` fills the buffer, with whole `str`s: always valid UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    fn push(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn check_no_nul(s: &str) -> R<()> {
    if s.as_bytes().contains(&0) {
        return Err("contains a NUL character, which PostgreSQL text cannot store".into());
    }
    Ok(())
}

/// UTF-8 text into text, varchar(n), char(n) or name, with PostgreSQL's length rule: longer than
/// n characters is refused, unless the excess is only spaces, which PostgreSQL trims too.
fn encode_textlike(dst: &PgType, s: &str, out: &mut Vec<u8>) -> R<()> {
    check_no_nul(s)?;
    match dst {
        PgType::Varchar(Some(n)) | PgType::Char(Some(n)) => {
            let n = *n as usize;
            // At most n bytes is at most n characters: no counting needed.
            if s.len() <= n {
                out.extend_from_slice(s.as_bytes());
                return Ok(());
            }
            match s.char_indices().nth(n) {
                None => out.extend_from_slice(s.as_bytes()),
                Some((cut, _)) if s.as_bytes()[cut..].iter().all(|&b| b == b' ') => {
                    out.extend_from_slice(&s.as_bytes()[..cut]);
                }
                Some(_) => {
                    return Err(format!(
                        "value has {} characters, more than the {n} of {dst}",
                        s.chars().count()
                    ));
                }
            }
        }
        PgType::Name if s.len() > NAME_MAX_BYTES => {
            return Err(format!(
                "value has {} bytes, more than the {NAME_MAX_BYTES} a name holds",
                s.len()
            ));
        }
        _ => out.extend_from_slice(s.as_bytes()),
    }
    Ok(())
}

fn encode_json_unchecked(jsonb: bool, json: &str, out: &mut Vec<u8>) {
    if jsonb {
        // jsonb's binary form: a version byte (1), then the JSON text.
        out.push(1);
    }
    out.extend_from_slice(json.as_bytes());
}

/// Cheap JSON syntax check so that one bad value fails alone instead of failing a COPY batch.
/// `IgnoredAny` never builds values: no depth limit, no float range limit (PostgreSQL has neither).
fn validate_json(s: &str) -> R<()> {
    serde_json::from_str::<serde::de::IgnoredAny>(s)
        .map(|_| ())
        .map_err(|e| format!("not valid JSON: {e}"))
}

/// Parses PostgreSQL's integer output (`-?[0-9]+`). With `allow_zero_fraction`, a numeric's
/// `12.000` is accepted as 12 (a non-zero fraction is refused, never rounded).
fn parse_int(text: &str, allow_zero_fraction: bool) -> R<i64> {
    let b = text.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    let (digits, frac) = match digits.iter().position(|&c| c == b'.') {
        Some(p) if allow_zero_fraction => (&digits[..p], &digits[p + 1..]),
        _ => (digits, &b""[..]),
    };
    if digits.is_empty() {
        return Err(format!(
            "{text:?} is not an integer: expected an optional minus sign and decimal digits"
        ));
    }
    // Accumulate negatively so that i64::MIN parses.
    let mut acc: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(format!(
                "{text:?} is not an integer: unexpected {:?}; expected an optional minus sign and decimal digits",
                char::from(c)
            ));
        }
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_sub(i64::from(c - b'0')))
            .ok_or_else(|| format!("{text:?} is out of range for a 64-bit integer"))?;
    }
    if !frac.iter().all(|&c| c == b'0') {
        return Err(format!(
            "{text:?} has a non-zero fraction: an integer column cannot hold it without rounding"
        ));
    }
    if neg {
        Ok(acc)
    } else {
        acc.checked_neg()
            .ok_or_else(|| format!("{text:?} is out of range for a 64-bit integer"))
    }
}

fn put_int(v: i64, dst: &PgType, out: &mut Vec<u8>) -> R<()> {
    match dst {
        PgType::SmallInt => {
            let x = i16::try_from(v)
                .map_err(|_| format!("{v} is out of range for smallint (-32768..32767)"))?;
            out.extend_from_slice(&x.to_be_bytes());
        }
        PgType::Integer => {
            let x = i32::try_from(v).map_err(|_| {
                format!("{v} is out of range for integer (-2147483648..2147483647)")
            })?;
            out.extend_from_slice(&x.to_be_bytes());
        }
        _ => out.extend_from_slice(&v.to_be_bytes()),
    }
    Ok(())
}

/// True when `b` is a plain decimal float spelling: optional sign, digits with at most one point,
/// optional exponent. Rust's float parser also takes `inf`, `nan` and `+`; PostgreSQL's output
/// never has those (its specials are checked by name first).
fn is_decimal_float(b: &[u8]) -> bool {
    let mut i = usize::from(b.first() == Some(&b'-'));
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

fn float_syntax_error(text: &str) -> String {
    format!(
        "{text:?} is not a floating-point number: expected decimal digits with an optional exponent (e.g. -1.5e+20), NaN, Infinity or -Infinity"
    )
}

fn parse_f64(text: &str) -> R<f64> {
    match text {
        "NaN" => return Ok(f64::NAN),
        "Infinity" => return Ok(f64::INFINITY),
        "-Infinity" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    if !is_decimal_float(text.as_bytes()) {
        return Err(float_syntax_error(text));
    }
    let v: f64 = text.parse().map_err(|_| float_syntax_error(text))?;
    if v.is_infinite() {
        return Err(format!(
            "{text:?} is out of range for double precision (magnitude above 1.8e+308)"
        ));
    }
    if v == 0.0 && has_nonzero_digit(text) {
        return Err(format!(
            "{text:?} is out of range for double precision (magnitude below 4.9e-324)"
        ));
    }
    Ok(v)
}

fn parse_f32(text: &str) -> R<f32> {
    match text {
        "NaN" => return Ok(f32::NAN),
        "Infinity" => return Ok(f32::INFINITY),
        "-Infinity" => return Ok(f32::NEG_INFINITY),
        _ => {}
    }
    if !is_decimal_float(text.as_bytes()) {
        return Err(float_syntax_error(text));
    }
    let v: f32 = text.parse().map_err(|_| float_syntax_error(text))?;
    if v.is_infinite() {
        return Err(format!(
            "{text:?} is out of range for real (magnitude above 3.4e+38)"
        ));
    }
    if v == 0.0 && has_nonzero_digit(text) {
        return Err(format!(
            "{text:?} is out of range for real (magnitude below 1.4e-45)"
        ));
    }
    Ok(v)
}

/// Whether the mantissa of a decimal float spelling has a non-zero digit.
fn has_nonzero_digit(text: &str) -> bool {
    text.bytes()
        .take_while(|&c| c != b'e' && c != b'E')
        .any(|c| (b'1'..=b'9').contains(&c))
}

/// double -> real as PostgreSQL's cast: overflow and underflow to zero are errors.
fn f64_to_f32(v: f64) -> R<f32> {
    let f = v as f32;
    if f.is_infinite() && v.is_finite() {
        return Err(format!(
            "{v:e} is out of range for real (magnitude above 3.4e+38)"
        ));
    }
    if f == 0.0 && v != 0.0 {
        return Err(format!(
            "{v:e} is out of range for real (magnitude below 1.4e-45)"
        ));
    }
    Ok(f)
}

fn float_to_numeric(
    nan: bool,
    inf: bool,
    fmt: impl FnOnce(&mut StackBuf) -> std::fmt::Result,
    precision: Option<u32>,
    scale: Option<u32>,
    out: &mut Vec<u8>,
) -> R<()> {
    if nan {
        return numeric::encode_numeric_text("NaN", precision, scale, out);
    }
    if inf {
        return Err(numeric::infinity_reason());
    }
    let mut buf = StackBuf::new();
    fmt(&mut buf).map_err(|_| "float does not format".to_string())?;
    numeric::encode_numeric_text(buf.as_str(), precision, scale, out)
}

/// The fewest significant digits that read back as `v`, the closest such (ties to even), in
/// `{:e}` form: PostgreSQL's Ryu output. Rust's own shortest `{:e}` differs in two ways: on exact
/// ties it rounds the last digit up, and it accepts a spelling that lies exactly on the bound of
/// `v`'s rounding interval, which Ryu (as built into PostgreSQL) excludes.
fn shortest_f64(v: f64, out: &mut StackBuf) -> std::fmt::Result {
    let bits = v.abs().to_bits();
    let (exp, frac) = ((bits >> 52) as i32, bits & ((1 << 52) - 1));
    let bounds = float_bounds(exp, frac, 52, 1075);
    for p in shortest_start(|b| write!(b, "{v:e}"))..17 {
        let mut b = StackBuf::new();
        write!(b, "{v:.p$e}")?;
        if b.as_str().parse::<f64>() == Ok(v) && !on_bound(b.as_str(), &bounds) {
            *out = b;
            return Ok(());
        }
    }
    write!(out, "{v:.16e}")
}

/// Where the search for the shortest digits can start: Rust's shortest `{:e}` has the fewest
/// digits that read back (its criterion is looser than Ryu's: a spelling on a rounding bound also
/// counts), so no spelling with fewer digits can pass the stricter test either.
fn shortest_start(fmt: impl FnOnce(&mut StackBuf) -> std::fmt::Result) -> usize {
    let mut b = StackBuf::new();
    if fmt(&mut b).is_err() {
        return 0;
    }
    let s = b.as_str();
    let mant = s.split_once('e').map_or(s, |(m, _)| m);
    let digits = mant.bytes().filter(u8::is_ascii_digit).count();
    digits.saturating_sub(1)
}

/// [`shortest_f64`] for real.
fn shortest_f32(v: f32, out: &mut StackBuf) -> std::fmt::Result {
    let bits = u64::from(v.abs().to_bits());
    let (exp, frac) = ((bits >> 23) as i32, bits & ((1 << 23) - 1));
    let bounds = float_bounds(exp, frac, 23, 150);
    for p in shortest_start(|b| write!(b, "{v:e}"))..9 {
        let mut b = StackBuf::new();
        write!(b, "{v:.p$e}")?;
        if b.as_str().parse::<f32>() == Ok(v) && !on_bound(b.as_str(), &bounds) {
            *out = b;
            return Ok(());
        }
    }
    write!(out, "{v:.8e}")
}

/// The two bounds of a positive float's rounding interval (the midpoints to its neighbours),
/// each as `odd * 2^k`. `exp`/`frac` are the raw IEEE fields; `bias` includes the mantissa bits.
fn float_bounds(exp: i32, frac: u64, mant_bits: u32, bias: i32) -> [(u64, i32); 2] {
    let (m, e) = if exp == 0 {
        (frac, 1 - bias)
    } else {
        (frac | (1 << mant_bits), exp - bias)
    };
    let upper = (2 * m + 1, e - 1);
    // Just above a power of two, the gap below is half the gap above.
    let lower = if frac == 0 && exp > 1 {
        (4 * m - 1, e - 2)
    } else {
        ((2 * m).saturating_sub(1), e - 1)
    };
    [upper, lower]
}

/// Whether `{:e}` text `s` (`-d.ddde-x`) is exactly one of `bounds` (`odd * 2^k`).
fn on_bound(s: &str, bounds: &[(u64, i32); 2]) -> bool {
    let s = s.trim_start_matches('-');
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let Ok(exp) = exp.parse::<i32>() else {
        return false;
    };
    let frac_digits = mant.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
    let mut d: u64 = 0;
    for c in mant.bytes().filter(u8::is_ascii_digit) {
        d = d * 10 + u64::from(c - b'0');
    }
    if d == 0 {
        return false;
    }
    // s = d * 10^e10 = odd(d) * 5^e10 * 2^(tz + e10).
    let e10 = exp - frac_digits;
    let tz = d.trailing_zeros() as i32;
    let od = u128::from(d >> tz);
    if e10.unsigned_abs() > 27 {
        return false;
    }
    let pow5 = 5u128.pow(e10.unsigned_abs());
    let odd = if e10 >= 0 {
        od * pow5
    } else if od % pow5 == 0 {
        od / pow5
    } else {
        return false;
    };
    bounds
        .iter()
        .any(|&(m, k)| odd == u128::from(m) && tz + e10 == k)
}

/// PostgreSQL's float output (`float4out`/`float8out` with the default extra_float_digits):
/// the shortest round-trip digits, fixed notation for decimal exponents -4..14 (-4..5 for real),
/// else `d.ddde+XX`. `fmt` writes the digits in `{:e}` form ([`shortest_f64`], [`shortest_f32`]).
fn pg_float_text(
    buf: &mut StackBuf,
    nan: bool,
    inf: bool,
    neg: bool,
    single: bool,
    fmt: impl FnOnce(&mut StackBuf) -> std::fmt::Result,
) {
    if nan {
        let _ = buf.write_str("NaN");
        return;
    }
    if inf {
        let _ = buf.write_str(if neg { "-Infinity" } else { "Infinity" });
        return;
    }
    let mut e = StackBuf::new();
    if fmt(&mut e).is_err() {
        return;
    }
    let s = e.as_str();
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let mut digits = [0u8; 24];
    let mut n = 0;
    for c in mant.bytes().filter(u8::is_ascii_digit) {
        if n < digits.len() {
            digits[n] = c;
            n += 1;
        }
    }
    let digits = &digits[..n];
    if negative {
        buf.push(b'-');
    }
    if digits == b"0" {
        buf.push(b'0');
        return;
    }
    let limit = if single { 6 } else { 15 };
    if (-4..limit).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            let padded = digits.iter().copied().chain(std::iter::repeat(b'0'));
            for (i, d) in padded.take(int_len.max(n)).enumerate() {
                if i == int_len {
                    buf.push(b'.');
                }
                buf.push(d);
            }
        } else {
            buf.push(b'0');
            buf.push(b'.');
            for _ in 0..(-exp - 1) {
                buf.push(b'0');
            }
            for &d in digits {
                buf.push(d);
            }
        }
    } else {
        buf.push(digits[0]);
        if n > 1 {
            buf.push(b'.');
            for &d in &digits[1..] {
                buf.push(d);
            }
        }
        let _ = write!(
            buf,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    }
}

fn parse_bool(text: &str) -> R<bool> {
    match text {
        "t" | "true" => Ok(true),
        "f" | "false" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a boolean: expected t, f, true or false"
        )),
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// bytea's text output: hex format `\x0a0b` (any case), or the older escape format (`\\`, `\ooo`
/// octal escapes, other bytes as themselves).
fn decode_bytea(text: &str, out: &mut Vec<u8>) -> R<()> {
    let b = text.as_bytes();
    if let Some(hex) = b.strip_prefix(b"\\x") {
        if hex.len() % 2 != 0 {
            return Err(format!(
                "bytea hex text has an odd number ({}) of hex digits: expected \\x followed by pairs of hex digits",
                hex.len()
            ));
        }
        out.reserve(hex.len() / 2);
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            match (hex_val(pair[0]), hex_val(pair[1])) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => {
                    return Err(format!(
                        "bytea hex text has a non-hex character at position {}: expected \\x followed by pairs of hex digits",
                        2 + 2 * i
                    ));
                }
            }
        }
        return Ok(());
    }
    // Escape format.
    out.reserve(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if i + 3 < b.len()
            && matches!(b[i + 1], b'0'..=b'3')
            && matches!(b[i + 2], b'0'..=b'7')
            && matches!(b[i + 3], b'0'..=b'7')
        {
            out.push((b[i + 1] - b'0') << 6 | (b[i + 2] - b'0') << 3 | (b[i + 3] - b'0'));
            i += 4;
        } else {
            return Err(format!(
                "bytea text has an invalid escape at byte {i}: expected hex format \\x0a0b..., or escape format with \\\\ and \\ooo octal escapes (000-377)"
            ));
        }
    }
    Ok(())
}

/// A uuid as PostgreSQL reads it: 32 hex digits in any case, optionally in braces, optionally with
/// a hyphen after any group of four digits (the standard 8-4-4-4-12 form is the common case).
fn parse_uuid(text: &str) -> R<[u8; 16]> {
    let b = text.as_bytes();
    // Fast path: the standard forms, via the uuid crate (which also takes `urn:uuid:`, which
    // PostgreSQL does not).
    if (b.len() == 36 || b.len() == 32)
        && let Ok(u) = uuid::Uuid::try_parse_ascii(b)
    {
        return Ok(*u.as_bytes());
    }
    let err = || {
        format!(
            "{text:?} is not a uuid: expected 32 hex digits such as a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 (braces and hyphens between groups of four digits optional)"
        )
    };
    let inner = match b.strip_prefix(b"{") {
        Some(rest) => rest.strip_suffix(b"}").ok_or_else(err)?,
        None => b,
    };
    let mut bytes = [0u8; 16];
    let mut i = 0;
    for (k, slot) in bytes.iter_mut().enumerate() {
        let (Some(&h), Some(&l)) = (inner.get(i), inner.get(i + 1)) else {
            return Err(err());
        };
        *slot = match (hex_val(h), hex_val(l)) {
            (Some(h), Some(l)) => h << 4 | l,
            _ => return Err(err()),
        };
        i += 2;
        if k % 2 == 1 && k < 15 && inner.get(i) == Some(&b'-') {
            i += 1;
        }
    }
    if i != inner.len() {
        return Err(err());
    }
    Ok(*uuid::Uuid::from_bytes(bytes).as_bytes())
}

#[cfg(test)]
mod roundtrip;
/// The target types [`exercise_parsers`] tries.
fn exercised_types() -> Vec<PgType> {
    vec![
        PgType::SmallInt,
        PgType::Integer,
        PgType::BigInt,
        PgType::Real,
        PgType::Double,
        PgType::Numeric {
            precision: None,
            scale: None,
        },
        PgType::Numeric {
            precision: Some(8),
            scale: Some(2),
        },
        PgType::Money,
        PgType::Boolean,
        PgType::Text,
        PgType::Varchar(Some(5)),
        PgType::Char(Some(3)),
        PgType::Bytea,
        PgType::Date,
        PgType::Time,
        PgType::TimeTz,
        PgType::Timestamp,
        PgType::TimestampTz,
        PgType::Interval,
        PgType::Uuid,
        PgType::Json,
        PgType::Jsonb,
        PgType::Array(Box::new(PgType::Integer)),
        PgType::Array(Box::new(PgType::Text)),
        PgType::Array(Box::new(PgType::Date)),
    ]
}

/// Every text parser on one arbitrary input, for the fuzzer (`fuzz/`) and the replay of its
/// corpus in the tests: `text` is converted to each target type (as that type's own text and as
/// a text column's value), and each value that converts is printed as PostgreSQL's canonical
/// text, converted again and printed again. Refusing the input is fine; a panic, or a canonical
/// text that does not survive its own round trip, is a bug (this function panics on the latter).
pub fn exercise_parsers(text: &str) {
    for ty in exercised_types() {
        for src in [&ty, &PgType::Text] {
            let mut bin = Vec::new();
            if encode_text(src, &ty, text, &mut bin).is_err() {
                continue;
            }
            let mut canon = String::new();
            if print::canonical_text(&ty, &bin, &mut canon).is_err() {
                continue;
            }
            // A json target keeps its input's text; jsonb and everything else print canonically.
            if matches!(ty, PgType::Json | PgType::Array(_)) {
                continue;
            }
            let mut again = Vec::new();
            encode_text(&ty, &ty, &canon, &mut again).unwrap_or_else(|e| {
                panic!("{ty}: {text:?} printed as {canon:?}, which does not convert back: {e:?}")
            });
            let mut canon2 = String::new();
            print::canonical_text(&ty, &again, &mut canon2)
                .unwrap_or_else(|e| panic!("{ty}: {canon:?} converted, then failed to print: {e}"));
            assert_eq!(
                canon2, canon,
                "{ty}: {text:?} is not stable under its round trip"
            );
        }
    }
}

#[cfg(test)]
mod tests;
