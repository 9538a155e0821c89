//! Dates, times and intervals: the export's text output (DateStyle ISO, IntervalStyle postgres,
//! whatever zone offset a timestamptz was written with) read into numbers and printed as the
//! verify session prints them (TimeZone UTC): `2024-02-29`, `0001-12-31 BC`, `infinity`,
//! `12:00:00.5`, `01:02:03-00:00:15`, `2020-01-01 05:30:00+00`, `1 year 2 mons -3 days +04:05:06`.
//!
//! Written apart from the loader's parsers (which produce binary): a date off by a day there
//! shows as a different text here.

use std::fmt::Write as _;

const USECS_PER_SEC: i64 = 1_000_000;
const USECS_PER_DAY: i64 = 86_400 * USECS_PER_SEC;
/// `infinity` and `-infinity` as order keys.
pub const INFINITY: i128 = i128::MAX;

/// Days since 1970-01-01 of (astronomical year, month, day), proleptic Gregorian.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (astronomical year, month, day) of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn bad(kind: &str, text: &str) -> String {
    format!("{text:?} is not a {kind} in PostgreSQL's ISO output")
}

/// Splits a trailing ` BC`.
fn era(text: &str) -> (&str, bool) {
    match text.strip_suffix(" BC") {
        Some(t) => (t, true),
        None => (text, false),
    }
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD` (years of 4 or more digits) -> days since 1970-01-01.
fn ymd(s: &str, bc: bool) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() < 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d) = (digits(y)?, digits(m)?, digits(d)?);
    let y = if bc { 1 - y } else { y };
    let month_days = [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y == 0 && !bc || !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn push_ymd(days: i64, out: &mut String) -> bool {
    let (y, m, d) = civil_from_days(days);
    let bc = y <= 0;
    let _ = write!(out, "{:04}-{m:02}-{d:02}", if bc { 1 - y } else { y });
    bc
}

/// `HH:MM:SS[.f{1,6}]` (hours 0-24) -> microseconds.
fn hms(s: &str) -> Option<i64> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    let mut it = whole.split(':');
    let (h, m, sec) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || m.len() != 2 || sec.len() != 2 {
        return None;
    }
    let (h, m, sec) = (digits(h)?, digits(m)?, digits(sec)?);
    if m > 59 || sec > 60 {
        return None;
    }
    let mut micros = ((h * 60 + m) * 60 + sec) * USECS_PER_SEC;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 6 || !f.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        micros += digits(&format!("{f:0<6}"))?;
    }
    Some(micros)
}

fn push_seconds(micros: i64, out: &mut String) {
    let _ = write!(out, "{:02}", micros / USECS_PER_SEC);
    let f = micros % USECS_PER_SEC;
    if f != 0 {
        let s = format!("{f:06}");
        out.push('.');
        out.push_str(s.trim_end_matches('0'));
    }
}

fn push_time(micros: i64, out: &mut String) {
    let min = micros / (60 * USECS_PER_SEC);
    let _ = write!(out, "{:02}:{:02}:", min / 60, min % 60);
    push_seconds(micros % (60 * USECS_PER_SEC), out);
}

/// `+HH[:MM[:SS]]` -> seconds east of UTC.
fn zone(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let mut total = 0;
    for (i, part) in rest.split(':').enumerate() {
        if i > 2 || part.len() != 2 {
            return None;
        }
        total += digits(part)? * [3600, 60, 1][i];
    }
    Some(sign * total)
}

/// PostgreSQL's `EncodeTimezone` of an offset in seconds east of UTC.
fn push_zone(east: i64, out: &mut String) {
    let a = east.abs();
    let _ = write!(out, "{}{:02}", if east >= 0 { '+' } else { '-' }, a / 3600);
    if a % 60 != 0 {
        let _ = write!(out, ":{:02}:{:02}", a / 60 % 60, a % 60);
    } else if a / 60 % 60 != 0 {
        let _ = write!(out, ":{:02}", a / 60 % 60);
    }
}

/// A parsed date: days since 1970-01-01, or an infinity.
fn date_days(text: &str) -> Result<Option<i64>, String> {
    match text {
        "infinity" => return Ok(Some(i64::MAX)),
        "-infinity" => return Ok(Some(i64::MIN)),
        _ => {}
    }
    let (t, bc) = era(text);
    ymd(t, bc).map(Some).ok_or_else(|| bad("date", text))
}

/// Canonical text of a date; with `midnight`, of that date as a timestamp.
pub fn date(text: &str, midnight: bool, out: &mut String) -> Result<(), String> {
    match date_days(text)? {
        Some(i64::MAX) => out.push_str("infinity"),
        Some(i64::MIN) => out.push_str("-infinity"),
        Some(days) => {
            let bc = push_ymd(days, out);
            if midnight {
                out.push_str(" 00:00:00");
            }
            if bc {
                out.push_str(" BC");
            }
        }
        None => return Err(bad("date", text)),
    }
    Ok(())
}

/// Canonical text of a time.
pub fn time(text: &str, out: &mut String) -> Result<(), String> {
    let micros = hms(text)
        .filter(|m| *m <= USECS_PER_DAY)
        .ok_or_else(|| bad("time", text))?;
    push_time(micros, out);
    Ok(())
}

/// Canonical text of a timetz: the time and its own offset (a timetz keeps its zone).
pub fn timetz(text: &str, out: &mut String) -> Result<(), String> {
    let at = text.rfind(['+', '-']).ok_or_else(|| bad("timetz", text))?;
    let micros = hms(&text[..at])
        .filter(|m| *m <= USECS_PER_DAY)
        .ok_or_else(|| bad("timetz", text))?;
    let east = zone(&text[at..]).ok_or_else(|| bad("timetz", text))?;
    push_time(micros, out);
    push_zone(east, out);
    Ok(())
}

/// Microseconds since 1970-01-01 00:00 (UTC for a timestamptz), in i128 (PostgreSQL's range
/// counted from 1970 passes i64), infinities at [`INFINITY`] and its negation.
fn timestamp_micros(text: &str, with_zone: bool) -> Result<i128, String> {
    let kind = if with_zone {
        "timestamptz"
    } else {
        "timestamp"
    };
    match text {
        "infinity" => return Ok(INFINITY),
        "-infinity" => return Ok(-INFINITY),
        _ => {}
    }
    let (t, bc) = era(text);
    let (day, rest) = t.split_once(' ').ok_or_else(|| bad(kind, text))?;
    let days = ymd(day, bc).ok_or_else(|| bad(kind, text))?;
    let (clock, east) = if with_zone {
        let at = rest.rfind(['+', '-']).ok_or_else(|| bad(kind, text))?;
        (
            &rest[..at],
            zone(&rest[at..]).ok_or_else(|| bad(kind, text))?,
        )
    } else {
        (rest, 0)
    };
    let micros = hms(clock)
        .filter(|m| *m < USECS_PER_DAY)
        .ok_or_else(|| bad(kind, text))?;
    Ok(
        i128::from(days) * i128::from(USECS_PER_DAY) + i128::from(micros)
            - i128::from(east) * i128::from(USECS_PER_SEC),
    )
}

/// Canonical text of a timestamp, or of a timestamptz (in UTC, `+00`).
pub fn timestamp(text: &str, with_zone: bool, out: &mut String) -> Result<(), String> {
    match timestamp_micros(text, with_zone)? {
        INFINITY => out.push_str("infinity"),
        t if t == -INFINITY => out.push_str("-infinity"),
        ts => {
            let day = i128::from(USECS_PER_DAY);
            let bc = push_ymd(ts.div_euclid(day) as i64, out);
            out.push(' ');
            push_time(ts.rem_euclid(day) as i64, out);
            if with_zone {
                out.push_str("+00");
            }
            if bc {
                out.push_str(" BC");
            }
        }
    }
    Ok(())
}

/// An interval's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interval {
    months: i64,
    days: i64,
    micros: i64,
}

/// IntervalStyle postgres output: `[N year[s]] [N mon[s]] [N day[s]] [[+-]HH:MM:SS[.f]]`.
fn parse_interval(text: &str) -> Result<Interval, String> {
    let mut iv = Interval {
        months: 0,
        days: 0,
        micros: 0,
    };
    let mut words = text.split_whitespace().peekable();
    let mut any = false;
    while let Some(w) = words.next() {
        any = true;
        if w.contains(':') {
            let (neg, clock) = match w.as_bytes()[0] {
                b'-' => (true, &w[1..]),
                b'+' => (false, &w[1..]),
                _ => (false, w),
            };
            let (hours, rest) = clock.split_once(':').ok_or_else(|| bad("interval", text))?;
            let h = digits(hours).ok_or_else(|| bad("interval", text))?;
            let ms = hms(&format!("00:{rest}")).ok_or_else(|| bad("interval", text))?;
            let m = h
                .checked_mul(3600 * USECS_PER_SEC)
                .and_then(|v| v.checked_add(ms))
                .ok_or_else(|| bad("interval", text))?;
            iv.micros = if neg { -m } else { m };
            continue;
        }
        let n: i64 = w.parse().map_err(|_| bad("interval", text))?;
        let unit = words.next().ok_or_else(|| bad("interval", text))?;
        match unit.trim_end_matches('s') {
            "year" => iv.months += n * 12,
            "mon" => iv.months += n,
            "day" => iv.days += n,
            _ => return Err(bad("interval", text)),
        }
    }
    if !any {
        return Err(bad("interval", text));
    }
    Ok(iv)
}

/// Canonical text of an interval (IntervalStyle postgres, `EncodeInterval`).
pub fn interval(text: &str, out: &mut String) -> Result<(), String> {
    if text == "infinity" || text == "-infinity" {
        out.push_str(text);
        return Ok(());
    }
    let iv = parse_interval(text)?;
    let mut first = true;
    let mut before_negative = false;
    let mut field = |v: i64, unit: &str, out: &mut String| {
        if v == 0 {
            return;
        }
        if !first {
            out.push(' ');
        }
        if before_negative && v > 0 {
            out.push('+');
        }
        let _ = write!(out, "{v} {unit}{}", if v == 1 { "" } else { "s" });
        before_negative = v < 0;
        first = false;
    };
    field(iv.months / 12, "year", out);
    field(iv.months % 12, "mon", out);
    field(iv.days, "day", out);
    if first || iv.micros != 0 {
        if !first {
            out.push(' ');
        }
        if iv.micros < 0 {
            out.push('-');
        } else if before_negative {
            out.push('+');
        }
        let a = iv.micros.unsigned_abs() as i64;
        let _ = write!(
            out,
            "{:02}:{:02}:",
            a / (3600 * USECS_PER_SEC),
            a / (60 * USECS_PER_SEC) % 60
        );
        push_seconds(a % (60 * USECS_PER_SEC), out);
    }
    Ok(())
}

/// An order key of a canonical date, time or timestamp text (for min and max), infinities at
/// the ends.
pub fn order_key(kind: OrderKind, text: &str) -> Option<i128> {
    let v = match kind {
        OrderKind::Date => date_days(text).ok()??,
        OrderKind::Time => hms(text)?,
        OrderKind::Timestamp => return timestamp_micros(text, false).ok(),
        OrderKind::TimestampTz => return timestamp_micros(text, true).ok(),
    };
    Some(match v {
        i64::MAX => INFINITY,
        i64::MIN => -INFINITY,
        v => i128::from(v),
    })
}

/// Which kind of text [`order_key`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKind {
    Date,
    Time,
    Timestamp,
    TimestampTz,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(f: fn(&str, &mut String) -> Result<(), String>, t: &str) -> String {
        let mut s = String::new();
        f(t, &mut s).unwrap();
        s
    }

    #[test]
    fn dates_and_timestamps() {
        let d = |t: &str| {
            let mut s = String::new();
            date(t, false, &mut s).unwrap();
            s
        };
        assert_eq!(d("2024-02-29"), "2024-02-29");
        assert_eq!(d("0001-12-31 BC"), "0001-12-31 BC");
        assert_eq!(d("5874897-12-31"), "5874897-12-31");
        let mut s = String::new();
        date("0005-02-29 BC", true, &mut s).unwrap();
        assert_eq!(s, "0005-02-29 00:00:00 BC");
        assert!(date("2023-02-29", false, &mut String::new()).is_err());
        let ts = |t: &str, z: bool| {
            let mut s = String::new();
            timestamp(t, z, &mut s).unwrap();
            s
        };
        assert_eq!(
            ts("2020-01-01 00:00:00+05:30", true),
            "2019-12-31 18:30:00+00"
        );
        assert_eq!(
            ts("0001-01-01 00:00:00+00 BC", true),
            "0001-01-01 00:00:00+00 BC"
        );
        assert_eq!(
            ts("1999-12-31 23:59:59.999999", false),
            "1999-12-31 23:59:59.999999"
        );
        assert_eq!(ts("infinity", true), "infinity");
        assert!(
            order_key(OrderKind::Date, "0001-12-31 BC") < order_key(OrderKind::Date, "0001-01-01")
        );
    }

    #[test]
    fn times_and_intervals() {
        assert_eq!(c(time, "24:00:00"), "24:00:00");
        assert_eq!(c(time, "12:00:00.50"), "12:00:00.5");
        assert_eq!(c(timetz, "01:02:03-00:00:15"), "01:02:03-00:00:15");
        assert_eq!(c(timetz, "12:34:56.789+05:30"), "12:34:56.789+05:30");
        assert_eq!(
            c(interval, "1 year 2 mons -1 days -01:00:00"),
            "1 year 2 mons -1 days -01:00:00"
        );
        assert_eq!(c(interval, "-1 days +02:03:00"), "-1 days +02:03:00");
        assert_eq!(c(interval, "00:00:00"), "00:00:00");
        assert_eq!(c(interval, "14 mons"), "1 year 2 mons");
        assert_eq!(c(interval, "-00:00:00.000001"), "-00:00:00.000001");
        assert_eq!(
            c(interval, "-2562047788:00:54.775807"),
            "-2562047788:00:54.775807"
        );
    }
}
