//! Binary values -> text: a target column's binary COPY value printed exactly as PostgreSQL's
//! `value::text` prints it (`TimeZone UTC`, `DateStyle ISO, MDY`, `IntervalStyle postgres`,
//! `extra_float_digits 1`, bytea in hex). The converter's inverse, for its round-trip property
//! tests ([`super::roundtrip`]) and the fuzz hook ([`super::exercise_parsers`]); verification does
//! not use it (its export side is independent of the converter, its target side is SQL).

use crate::convert;
use crate::types::PgType;
use std::fmt::Write as _;

/// Why a binary value could not be printed (a short read: the encoder and decoder disagree).
pub type R<T> = Result<T, String>;

const USECS_PER_SEC: i64 = 1_000_000;
const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
/// Days from 0000-03-01 (proleptic Gregorian) to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_FROM_CIVIL0: i64 = 730_425;

/// Appends the canonical text of `bin` (the binary form of a value of type `t`) to `out`.
pub fn canonical_text(t: &PgType, bin: &[u8], out: &mut String) -> R<()> {
    match t {
        PgType::SmallInt => {
            let _ = write!(out, "{}", i16::from_be_bytes(fixed(bin)?));
        }
        PgType::Integer => {
            let _ = write!(out, "{}", i32::from_be_bytes(fixed(bin)?));
        }
        PgType::BigInt => {
            let _ = write!(out, "{}", i64::from_be_bytes(fixed(bin)?));
        }
        PgType::Real => out.push_str(&convert::float4_text(f32::from_be_bytes(fixed(bin)?))),
        PgType::Double => out.push_str(&convert::float8_text(f64::from_be_bytes(fixed(bin)?))),
        PgType::Numeric { .. } => numeric_text(bin, out)?,
        PgType::Boolean => match bin {
            [0] => out.push_str("false"),
            [_] => out.push_str("true"),
            _ => return Err(format!("boolean of {} bytes", bin.len())),
        },
        PgType::Char(_) => out.push_str(utf8(bin)?.trim_end_matches(' ')),
        PgType::Text | PgType::Varchar(_) | PgType::Name | PgType::Json => out.push_str(utf8(bin)?),
        PgType::Jsonb => match bin.split_first() {
            Some((1, rest)) => jsonb_text(utf8(rest)?, out)?,
            _ => return Err("jsonb without version byte 1".into()),
        },
        PgType::Bytea => {
            out.push_str("\\x");
            for b in bin {
                let _ = write!(out, "{b:02x}");
            }
        }
        PgType::Uuid => {
            let u = uuid::Uuid::from_slice(bin).map_err(|e| format!("uuid: {e}"))?;
            let _ = write!(out, "{}", u.hyphenated());
        }
        PgType::Date => date_text(i32::from_be_bytes(fixed(bin)?), out),
        PgType::Time => time_text(i64::from_be_bytes(fixed(bin)?), out),
        PgType::TimeTz => {
            let b: [u8; 12] = fixed(bin)?;
            let micros = i64::from_be_bytes(sub(&b, 0));
            let zone = i32::from_be_bytes(sub(&b, 8));
            time_text(micros, out);
            zone_text(zone, out);
        }
        PgType::Timestamp => timestamp_text(i64::from_be_bytes(fixed(bin)?), false, out),
        PgType::TimestampTz => timestamp_text(i64::from_be_bytes(fixed(bin)?), true, out),
        PgType::Interval => {
            let b: [u8; 16] = fixed(bin)?;
            interval_text(
                i64::from_be_bytes(sub(&b, 0)),
                i32::from_be_bytes(sub(&b, 8)),
                i32::from_be_bytes(sub(&b, 12)),
                out,
            );
        }
        other => return Err(format!("{other} is not a DSQL column type")),
    }
    Ok(())
}

fn fixed<const N: usize>(bin: &[u8]) -> R<[u8; N]> {
    bin.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", bin.len()))
}

fn sub<const N: usize, const M: usize>(b: &[u8; M], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

fn utf8(bin: &[u8]) -> R<&str> {
    std::str::from_utf8(bin).map_err(|e| format!("text is not UTF-8: {e}"))
}

/// `numeric_out`: base-10000 digits with weight, sign and display scale.
fn numeric_text(bin: &[u8], out: &mut String) -> R<()> {
    if bin.len() < 8 {
        return Err(format!("numeric of {} bytes", bin.len()));
    }
    let ndigits = usize::from(u16::from_be_bytes([bin[0], bin[1]]));
    let weight = i64::from(i16::from_be_bytes([bin[2], bin[3]]));
    let sign = u16::from_be_bytes([bin[4], bin[5]]);
    let dscale = i64::from(u16::from_be_bytes([bin[6], bin[7]]));
    match sign {
        0xC000 => {
            out.push_str("NaN");
            return Ok(());
        }
        0xD000 => {
            out.push_str("Infinity");
            return Ok(());
        }
        0xF000 => {
            out.push_str("-Infinity");
            return Ok(());
        }
        _ => {}
    }
    if bin.len() != 8 + 2 * ndigits {
        return Err(format!(
            "numeric with {ndigits} digits in {} bytes",
            bin.len()
        ));
    }
    let digit = |i: i64| -> i64 {
        if i < 0 || i as usize >= ndigits {
            0
        } else {
            let at = 8 + 2 * i as usize;
            i64::from(i16::from_be_bytes([bin[at], bin[at + 1]]))
        }
    };
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                let _ = write!(out, "{}", digit(0));
            } else {
                let _ = write!(out, "{:04}", digit(i));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        for j in 1..=dscale {
            let group = weight + (j + 3) / 4;
            let k = (j - 1) % 4;
            let d = digit(group) / 10i64.pow((3 - k) as u32) % 10;
            out.push(char::from(b'0' + d as u8));
        }
    }
    Ok(())
}

/// Days since 2000-01-01 -> (year, month, day), proleptic Gregorian, year 0 = 1 BC.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + PG_EPOCH_FROM_CIVIL0;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD`; returns whether the year is BC (the caller appends ` BC` at the end).
fn ymd(days: i64, out: &mut String) -> bool {
    let (y, m, d) = civil(days);
    let bc = y <= 0;
    let shown = if bc { 1 - y } else { y };
    let _ = write!(out, "{shown:04}-{m:02}-{d:02}");
    bc
}

fn date_text(days: i32, out: &mut String) {
    match days {
        i32::MIN => out.push_str("-infinity"),
        i32::MAX => out.push_str("infinity"),
        d => {
            if ymd(i64::from(d), out) {
                out.push_str(" BC");
            }
        }
    }
}

/// `SS[.ffffff]` with trailing zeros of the fraction dropped (AppendSeconds).
fn seconds(sec: i64, fsec: i64, out: &mut String) {
    let _ = write!(out, "{:02}", sec.abs());
    if fsec != 0 {
        let mut f = format!("{:06}", fsec.abs());
        while f.ends_with('0') {
            f.pop();
        }
        out.push('.');
        out.push_str(&f);
    }
}

fn time_text(micros: i64, out: &mut String) {
    let h = micros / USECS_PER_HOUR;
    let m = micros % USECS_PER_HOUR / USECS_PER_MINUTE;
    let s = micros % USECS_PER_MINUTE / USECS_PER_SEC;
    let _ = write!(out, "{h:02}:{m:02}:");
    seconds(s, micros % USECS_PER_SEC, out);
}

/// `EncodeTimezone`: zone is seconds west of UTC.
fn zone_text(zone: i32, out: &mut String) {
    let a = zone.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    let _ = write!(out, "{}{h:02}", if zone <= 0 { '+' } else { '-' });
    if s != 0 {
        let _ = write!(out, ":{m:02}:{s:02}");
    } else if m != 0 {
        let _ = write!(out, ":{m:02}");
    }
}

fn timestamp_text(ts: i64, tz: bool, out: &mut String) {
    match ts {
        i64::MIN => return out.push_str("-infinity"),
        i64::MAX => return out.push_str("infinity"),
        _ => {}
    }
    let days = ts.div_euclid(USECS_PER_DAY);
    let time = ts.rem_euclid(USECS_PER_DAY);
    let bc = ymd(days, out);
    out.push(' ');
    time_text(time, out);
    if tz {
        out.push_str("+00");
    }
    if bc {
        out.push_str(" BC");
    }
}

/// IntervalStyle postgres (`EncodeInterval`, INTSTYLE_POSTGRES).
fn interval_text(time: i64, days: i32, months: i32, out: &mut String) {
    if time == i64::MAX && days == i32::MAX && months == i32::MAX {
        return out.push_str("infinity");
    }
    if time == i64::MIN && days == i32::MIN && months == i32::MIN {
        return out.push_str("-infinity");
    }
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |value: i64, unit: &str, out: &mut String| {
        if value == 0 {
            return;
        }
        let _ = write!(
            out,
            "{}{}{value} {unit}{}",
            if is_zero { "" } else { " " },
            if is_before && value > 0 { "+" } else { "" },
            if value != 1 { "s" } else { "" }
        );
        is_before = value < 0;
        is_zero = false;
    };
    part(i64::from(months / 12), "year", out);
    part(i64::from(months % 12), "mon", out);
    part(i64::from(days), "day", out);
    let hour = time / USECS_PER_HOUR;
    let rest = time - hour * USECS_PER_HOUR;
    let min = rest / USECS_PER_MINUTE;
    let rest = rest - min * USECS_PER_MINUTE;
    let sec = rest / USECS_PER_SEC;
    let fsec = rest - sec * USECS_PER_SEC;
    if is_zero || time != 0 {
        let minus = hour < 0 || min < 0 || sec < 0 || fsec < 0;
        let _ = write!(
            out,
            "{}{}{:02}:{:02}:",
            if is_zero { "" } else { " " },
            if minus {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            },
            hour.unsigned_abs(),
            min.unsigned_abs()
        );
        seconds(sec, fsec, out);
    }
}

/// jsonb's text output of JSON text: whitespace dropped, object keys deduplicated (the last
/// wins) and sorted by length then bytes, `": "` and `", "` separators, strings re-escaped as
/// `escape_json` does, numbers printed as numeric.
pub fn jsonb_text(json: &str, out: &mut String) -> R<()> {
    let mut p = JsonParser {
        b: json.as_bytes(),
        i: 0,
    };
    p.ws();
    p.value(out)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(format!("trailing characters in JSON at byte {}", p.i));
    }
    Ok(())
}

struct JsonParser<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self
            .b
            .get(self.i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!("JSON: {what} at byte {}", self.i)
    }

    fn eat(&mut self, c: u8) -> R<()> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected {:?}", char::from(c))))
        }
    }

    fn value(&mut self, out: &mut String) -> R<()> {
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut pairs: Vec<(String, String)> = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key = self.string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                        let mut v = String::new();
                        self.value(&mut v)?;
                        match pairs.iter_mut().find(|(k, _)| *k == key) {
                            Some(slot) => slot.1 = v,
                            None => pairs.push((key, v)),
                        }
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected , or }")),
                        }
                    }
                }
                pairs.sort_by(|a, b| {
                    a.0.len()
                        .cmp(&b.0.len())
                        .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
                });
                out.push('{');
                for (n, (k, v)) in pairs.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    escape_json(k, out);
                    out.push_str(": ");
                    out.push_str(v);
                }
                out.push('}');
            }
            Some(b'[') => {
                self.i += 1;
                out.push('[');
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    let mut first = true;
                    loop {
                        self.ws();
                        if !first {
                            out.push_str(", ");
                        }
                        first = false;
                        self.value(out)?;
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected , or ]")),
                        }
                    }
                }
                out.push(']');
            }
            Some(b'"') => {
                let s = self.string()?;
                escape_json(&s, out);
            }
            Some(b't') => self.word("true", out)?,
            Some(b'f') => self.word("false", out)?,
            Some(b'n') => self.word("null", out)?,
            Some(_) => self.number(out)?,
            None => return Err(self.err("unexpected end")),
        }
        Ok(())
    }

    fn word(&mut self, w: &str, out: &mut String) -> R<()> {
        if self.b[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            out.push_str(w);
            Ok(())
        } else {
            Err(self.err("unknown literal"))
        }
    }

    fn number(&mut self, out: &mut String) -> R<()> {
        let start = self.i;
        while self
            .b
            .get(self.i)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
        let t = PgType::Numeric {
            precision: None,
            scale: None,
        };
        let mut bin = Vec::new();
        convert::encode_text(&t, &t, text, &mut bin).map_err(|e| self.err(&e.reason))?;
        numeric_text(&bin, out)
    }

    fn hex4(&mut self) -> R<u32> {
        let h = self
            .b
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("bad \\u escape"))?;
        self.i += 4;
        Ok(h)
    }

    fn string(&mut self) -> R<String> {
        self.eat(b'"')?;
        let mut s = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.b.get(self.i) else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi)
                                && self.b.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF)
                            } else {
                                hi
                            };
                            char::from_u32(cp).ok_or_else(|| self.err("bad code point"))?
                        }
                        _ => return Err(self.err("bad escape")),
                    };
                    let mut buf = [0u8; 4];
                    s.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c => s.push(c),
            }
        }
        String::from_utf8(s).map_err(|e| self.err(&e.to_string()))
    }
}

/// PostgreSQL's `escape_json`.
fn escape_json(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &PgType, bin: &[u8]) -> String {
        let mut s = String::new();
        canonical_text(t, bin, &mut s).unwrap();
        s
    }

    #[test]
    fn dates_and_timestamps() {
        assert_eq!(text(&PgType::Date, &0i32.to_be_bytes()), "2000-01-01");
        assert_eq!(text(&PgType::Date, &(-1i32).to_be_bytes()), "1999-12-31");
        assert_eq!(text(&PgType::Date, &i32::MAX.to_be_bytes()), "infinity");
        assert_eq!(
            text(&PgType::Timestamp, &1_500_000i64.to_be_bytes()),
            "2000-01-01 00:00:01.5"
        );
        assert_eq!(
            text(&PgType::TimestampTz, &(-1i64).to_be_bytes()),
            "1999-12-31 23:59:59.999999+00"
        );
    }

    #[test]
    fn numerics_and_intervals() {
        let mut bin = Vec::new();
        let t = PgType::Numeric {
            precision: Some(6),
            scale: Some(2),
        };
        convert::encode_text(&t, &t, "12.5", &mut bin).unwrap();
        assert_eq!(text(&t, &bin), "12.50");
        let mut iv = Vec::new();
        iv.extend_from_slice(&(-3_600_000_000i64).to_be_bytes());
        iv.extend_from_slice(&(-1i32).to_be_bytes());
        iv.extend_from_slice(&14i32.to_be_bytes());
        assert_eq!(
            text(&PgType::Interval, &iv),
            "1 year 2 mons -1 days -01:00:00"
        );
    }

    #[test]
    fn jsonb_normalises() {
        let mut s = String::new();
        jsonb_text(
            r#" {"bb": 1.50, "a": [1e2, "x\u00e9\n"], "a": null} "#,
            &mut s,
        )
        .unwrap();
        assert_eq!(s, r#"{"a": null, "bb": 1.50}"#);
    }
}
