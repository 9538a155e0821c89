//! Dates, times, timestamps and intervals: PostgreSQL's ISO text output -> binary.
//!
//! Binary forms (integer datetimes): date = i32 days since 2000-01-01; time = i64 microseconds
//! since midnight; timetz = time + i32 zone in seconds WEST of UTC; timestamp(tz) = i64
//! microseconds since 2000-01-01 00:00:00 (UTC for timestamptz); interval = i64 microseconds,
//! i32 days, i32 months. Calendar math is proleptic Gregorian with astronomical years (1 BC is
//! year 0), as in PostgreSQL. Hand-written byte parsers: no allocation, no format strings.

use super::R;

const USECS_PER_SEC: i64 = 1_000_000;
const USECS_PER_DAY: i64 = 86_400 * USECS_PER_SEC;
/// Days from 1970-01-01 to 2000-01-01.
const UNIX_TO_PG_DAYS: i64 = 10_957;
/// PostgreSQL's date range: 4714-11-24 BC (Julian day 0) to 5874897-12-31.
const DATE_MIN: i64 = -2_451_545;
const DATE_MAX: i64 = 2_145_031_948;
/// PostgreSQL's timestamp range: [4714-11-24 00:00:00 BC, 294277-01-01 00:00:00).
const TS_MIN: i64 = -211_813_488_000_000_000;
const TS_END: i64 = 9_223_371_331_200_000_000;
/// |zone offset| must stay below 16 hours (PostgreSQL's TZDISP_LIMIT).
const ZONE_LIMIT: i32 = 16 * 3600;

/// Days since 1970-01-01 of a proleptic Gregorian date (astronomical year).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i64) -> bool {
    y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Exactly `n` ASCII digits at `b[i..]`.
fn fixed(b: &[u8], i: usize, n: usize) -> Option<u32> {
    let s = b.get(i..i + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Strips a trailing ` BC`.
fn strip_bc(b: &[u8]) -> (&[u8], bool) {
    match b.strip_suffix(b" BC") {
        Some(rest) => (rest, true),
        None => (b, false),
    }
}

const DATE_FORM: &str =
    "YYYY-MM-DD (4 or more year digits, optional \" BC\"), infinity or -infinity";

/// `YYYY-MM-DD` at the start of `b` -> (days since 2000-01-01, bytes used). `bc` converts the
/// year (1 BC = year 0).
fn date_part(b: &[u8], bc: bool) -> R<(i64, usize)> {
    let mut i = 0;
    let mut year: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        if i >= 9 {
            return Err("year has too many digits".into());
        }
        year = year * 10 + i64::from(b[i] - b'0');
        i += 1;
    }
    if i < 4 || b.get(i) != Some(&b'-') || b.get(i + 3) != Some(&b'-') {
        return Err(format!("expected {DATE_FORM}"));
    }
    let (Some(m), Some(d)) = (fixed(b, i + 1, 2), fixed(b, i + 4, 2)) else {
        return Err(format!("expected {DATE_FORM}"));
    };
    if year == 0 {
        return Err("year 0 does not exist (1 BC is followed by 1 AD)".into());
    }
    let y = if bc { 1 - year } else { year };
    if !(1..=12).contains(&m) {
        return Err(format!("month {m} is not 1-12"));
    }
    if d < 1 || d > days_in_month(y, m) {
        return Err(format!("day {d} does not exist in month {m} of that year"));
    }
    Ok((days_from_civil(y, m, d) - UNIX_TO_PG_DAYS, i + 6))
}

/// `HH:MM:SS[.ffffff]` at the start of `b` -> (microseconds, bytes used); hours 00-24.
fn time_part(b: &[u8]) -> R<(i64, usize)> {
    let form = "expected HH:MM:SS with up to 6 fractional second digits";
    let (Some(h), Some(m), Some(s)) = (fixed(b, 0, 2), fixed(b, 3, 2), fixed(b, 6, 2)) else {
        return Err(form.into());
    };
    if b[2] != b':' || b[5] != b':' {
        return Err(form.into());
    }
    let mut i = 8;
    let mut frac: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return Err(form.into());
        }
        if n > 6 {
            return Err(format!(
                "{n} fractional second digits: PostgreSQL keeps at most 6 (microseconds)"
            ));
        }
        for &c in &b[start..i] {
            frac = frac * 10 + i64::from(c - b'0');
        }
        frac *= 10i64.pow(6 - n as u32);
    }
    if m > 59 || s > 59 || h > 24 {
        return Err(format!("{h:02}:{m:02}:{s:02} is not a valid time of day"));
    }
    let us = ((i64::from(h) * 60 + i64::from(m)) * 60 + i64::from(s)) * USECS_PER_SEC + frac;
    if us > USECS_PER_DAY {
        return Err("time of day beyond 24:00:00".into());
    }
    Ok((us, i))
}

/// `+HH`, `+HH:MM` or `+HH:MM:SS` (or `-`) filling all of `b` -> seconds EAST of UTC.
fn offset(b: &[u8]) -> R<i32> {
    let form = "expected a UTC offset +HH, +HH:MM or +HH:MM:SS";
    let neg = match b.first() {
        Some(b'+') => false,
        Some(b'-') => true,
        _ => return Err(form.into()),
    };
    let h = fixed(b, 1, 2).ok_or(form)?;
    let (m, s) = match b.len() {
        3 => (0, 0),
        6 if b[3] == b':' => (fixed(b, 4, 2).ok_or(form)?, 0),
        9 if b[3] == b':' && b[6] == b':' => {
            (fixed(b, 4, 2).ok_or(form)?, fixed(b, 7, 2).ok_or(form)?)
        }
        _ => return Err(form.into()),
    };
    if m > 59 || s > 59 {
        return Err(form.into());
    }
    let secs = (h * 3600 + m * 60 + s) as i32;
    if secs >= ZONE_LIMIT {
        return Err("a UTC offset of 16 hours or more is out of PostgreSQL's range".into());
    }
    Ok(if neg { -secs } else { secs })
}

fn wrap(kind: &str, text: &str, r: R<i64>) -> R<i64> {
    r.map_err(|e| format!("{text:?} is not a {kind}: {e}"))
}

/// date text -> days since 2000-01-01; infinity -> i32::MAX, -infinity -> i32::MIN.
pub(super) fn parse_date(text: &str) -> R<i32> {
    match text {
        "infinity" => return Ok(i32::MAX),
        "-infinity" => return Ok(i32::MIN),
        _ => {}
    }
    let (b, bc) = strip_bc(text.as_bytes());
    let days = wrap(
        "date",
        text,
        date_part(b, bc).and_then(|(d, used)| {
            if used != b.len() {
                return Err(format!(
                    "unexpected text after the date; expected {DATE_FORM}"
                ));
            }
            if !(DATE_MIN..=DATE_MAX).contains(&d) {
                return Err(
                    "out of PostgreSQL's date range (4714-11-24 BC to 5874897-12-31)".into(),
                );
            }
            Ok(d)
        }),
    )?;
    #[cfg(feature = "test-hooks")]
    let days = days + super::hooks::date_shift(text);
    Ok(days as i32)
}

/// A date as a timestamp at midnight (date -> timestamp column).
pub(super) fn date_to_timestamp(days: i32) -> R<i64> {
    match days {
        i32::MAX => Ok(i64::MAX),
        i32::MIN => Ok(i64::MIN),
        d => {
            let ts = i64::from(d) * USECS_PER_DAY;
            if !(TS_MIN..TS_END).contains(&ts) {
                return Err("date is out of the timestamp range (years up to 294276)".into());
            }
            Ok(ts)
        }
    }
}

/// time text -> microseconds since midnight (`24:00:00` allowed).
pub(super) fn parse_time(text: &str) -> R<i64> {
    let b = text.as_bytes();
    wrap(
        "time",
        text,
        time_part(b).and_then(|(us, used)| {
            if used != b.len() {
                return Err("unexpected text after the time; expected HH:MM:SS[.ffffff]".into());
            }
            Ok(us)
        }),
    )
}

/// timetz text `HH:MM:SS[.ffffff]+HH[:MM[:SS]]` -> (microseconds, zone seconds WEST of UTC).
pub(super) fn parse_timetz(text: &str) -> R<(i64, i32)> {
    let b = text.as_bytes();
    let mut zone = 0;
    let us = wrap(
        "time with time zone",
        text,
        time_part(b).and_then(|(us, used)| {
            zone = -offset(&b[used..])?;
            Ok(us)
        }),
    )?;
    Ok((us, zone))
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` then the rest (zone, if any).
fn timestamp_parts(b: &[u8], bc: bool) -> R<(i64, &[u8])> {
    let form = "expected YYYY-MM-DD HH:MM:SS[.ffffff]";
    let (days, used) = date_part(b, bc).map_err(|e| format!("{e}; {form}"))?;
    if b.get(used) != Some(&b' ') {
        return Err(form.into());
    }
    let (us, tused) = time_part(&b[used + 1..])?;
    if us >= USECS_PER_DAY {
        return Err("24:00:00 is not a time of day in a timestamp".into());
    }
    let ts = days
        .checked_mul(USECS_PER_DAY)
        .and_then(|t| t.checked_add(us))
        .ok_or("out of PostgreSQL's timestamp range")?;
    Ok((ts, &b[used + 1 + tused..]))
}

fn check_ts(ts: i64) -> R<i64> {
    if (TS_MIN..TS_END).contains(&ts) {
        Ok(ts)
    } else {
        Err("out of PostgreSQL's timestamp range (4714-11-24 BC to 294276-12-31)".into())
    }
}

/// timestamp text -> microseconds since 2000-01-01; infinity -> i64::MAX, -infinity -> i64::MIN.
pub(super) fn parse_timestamp(text: &str) -> R<i64> {
    match text {
        "infinity" => return Ok(i64::MAX),
        "-infinity" => return Ok(i64::MIN),
        _ => {}
    }
    let (b, bc) = strip_bc(text.as_bytes());
    wrap(
        "timestamp",
        text,
        timestamp_parts(b, bc).and_then(|(ts, rest)| {
            if !rest.is_empty() {
                return Err(
                    "unexpected text after the time (a UTC offset belongs to timestamptz); expected YYYY-MM-DD HH:MM:SS[.ffffff][ BC]"
                        .into(),
                );
            }
            check_ts(ts)
        }),
    )
}

/// timestamptz text with its UTC offset -> microseconds since 2000-01-01 00:00:00 UTC.
pub(super) fn parse_timestamptz(text: &str) -> R<i64> {
    match text {
        "infinity" => return Ok(i64::MAX),
        "-infinity" => return Ok(i64::MIN),
        _ => {}
    }
    let (b, bc) = strip_bc(text.as_bytes());
    wrap(
        "timestamp with time zone",
        text,
        timestamp_parts(b, bc).and_then(|(ts, rest)| {
            if rest.is_empty() {
                return Err(
                    "no UTC offset; expected YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM[:SS]][ BC]".into(),
                );
            }
            let off = offset(rest)?;
            check_ts(ts - i64::from(off) * USECS_PER_SEC)
        }),
    )
}

/// An interval's binary fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Interval {
    pub micros: i64,
    pub days: i32,
    pub months: i32,
}

const INTERVAL_FORM: &str = "expected IntervalStyle postgres output such as 1 year 2 mons 3 days 04:05:06.789 or -1 days +02:03:00";

/// interval text in IntervalStyle postgres -> (microseconds, days, months).
pub(super) fn parse_interval(text: &str) -> R<Interval> {
    let err = |what: &str| format!("{text:?} is not an interval: {what}; {INTERVAL_FORM}");
    if text == "infinity" || text == "-infinity" {
        return Err(format!(
            "{text:?} is not a finite interval: infinite intervals (PostgreSQL 17+) are refused, DSQL cannot be assumed to store them"
        ));
    }
    let mut months: i64 = 0;
    let mut days: i64 = 0;
    let mut micros: Option<i64> = None;
    let mut words = text.split(' ');
    let mut any = false;
    while let Some(w) = words.next() {
        any = true;
        if micros.is_some() {
            return Err(err("text after the time part"));
        }
        if w.contains(':') {
            micros = Some(interval_time(w.as_bytes()).map_err(|e| err(&e))?);
            continue;
        }
        let n = parse_signed(w).ok_or_else(|| err(&format!("{w:?} is not a number")))?;
        let unit = words
            .next()
            .ok_or_else(|| err(&format!("{w} has no unit")))?;
        let overflow = || err("field out of range");
        match unit {
            "year" | "years" => {
                months = n
                    .checked_mul(12)
                    .and_then(|y| months.checked_add(y))
                    .ok_or_else(overflow)?;
            }
            "mon" | "mons" => months = months.checked_add(n).ok_or_else(overflow)?,
            "day" | "days" => days = days.checked_add(n).ok_or_else(overflow)?,
            _ => {
                return Err(err(&format!(
                    "unknown unit {unit:?} (expected year(s), mon(s), day(s))"
                )));
            }
        }
    }
    if !any || text.is_empty() {
        return Err(err("empty"));
    }
    let months = i32::try_from(months).map_err(|_| err("months out of range"))?;
    let days = i32::try_from(days).map_err(|_| err("days out of range"))?;
    Ok(Interval {
        micros: micros.unwrap_or(0),
        days,
        months,
    })
}

/// An optionally signed decimal integer that fits i64.
fn parse_signed(w: &str) -> Option<i64> {
    let b = w.as_bytes();
    let (neg, d) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if d.is_empty() || d.len() > 19 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: i128 = d.iter().fold(0i128, |a, &c| a * 10 + i128::from(c - b'0'));
    i64::try_from(if neg { -v } else { v }).ok()
}

/// `[+-]H+:MM:SS[.ffffff]` (hours unbounded) -> signed microseconds.
fn interval_time(b: &[u8]) -> R<i64> {
    let form = "time part must be [+-]HH:MM:SS[.ffffff]";
    let (neg, b) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let hlen = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if hlen == 0 || hlen > 12 {
        return Err(form.into());
    }
    let hours: i128 = b[..hlen]
        .iter()
        .fold(0i128, |a, &c| a * 10 + i128::from(c - b'0'));
    let rest = &b[hlen..];
    // Reuse the time-of-day parser for ":MM:SS[.f]" by prefixing a dummy hour.
    if rest.first() != Some(&b':') {
        return Err(form.into());
    }
    let mut tmp = [0u8; 32];
    let tail = rest;
    if tail.len() + 2 > tmp.len() {
        return Err(form.into());
    }
    tmp[0] = b'0';
    tmp[1] = b'0';
    tmp[2..2 + tail.len()].copy_from_slice(tail);
    let (us, used) = time_part(&tmp[..2 + tail.len()])?;
    if used != 2 + tail.len() {
        return Err(form.into());
    }
    let total = hours * 3_600_000_000 + i128::from(us);
    let total = if neg { -total } else { total };
    i64::try_from(total).map_err(|_| "time part out of range".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("2000-01-01"), Ok(0));
        assert_eq!(parse_date("1999-12-31"), Ok(-1));
        assert_eq!(parse_date("2024-02-29"), Ok(8825));
        assert_eq!(parse_date("1970-01-01"), Ok(-10957));
        assert_eq!(parse_date("infinity"), Ok(i32::MAX));
        assert_eq!(parse_date("-infinity"), Ok(i32::MIN));
        assert_eq!(parse_date("4714-11-24 BC"), Ok(DATE_MIN as i32));
        assert_eq!(parse_date("5874897-12-31"), Ok(DATE_MAX as i32));
        // 1 BC is astronomical year 0, a leap year.
        assert_eq!(parse_date("0001-01-01 BC"), Ok(-730485));
        assert!(parse_date("0001-02-29 BC").is_ok());
        assert_eq!(parse_date("0001-01-01"), Ok(-730485 + 366));
        assert_eq!(parse_date("10000-01-01"), Ok(2921940));
        // The 30-day months end on the 30th (days from Python's datetime.date).
        assert_eq!(parse_date("2024-04-30"), Ok(8886));
        assert_eq!(parse_date("2023-11-30"), Ok(8734));
        for bad in ["2024-04-31", "2024-06-31", "2024-09-31", "2024-11-31"] {
            assert!(
                parse_date(bad).unwrap_err().contains("does not exist"),
                "{bad}"
            );
        }
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
            "2024-01-01 ",
            "2024/01/01",
            "0000-01-01",
            "4714-11-23 BC",
            "5874898-01-01",
            "Infinity",
            "",
            "2024-01-01 00:00:00",
        ] {
            let e = parse_date(bad).unwrap_err();
            assert!(e.starts_with(&format!("{bad:?} is not a")), "{bad}: {e}");
        }
        // Both separators are checked, each alone.
        for bad in ["2024/01/01", "2024-01/01", "2024/01-01"] {
            assert!(parse_date(bad).unwrap_err().contains("YYYY-MM-DD"), "{bad}");
        }
        assert!(parse_date("0000-01-01").unwrap_err().contains("year 0"));
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("00:00:00"), Ok(0));
        assert_eq!(parse_time("24:00:00"), Ok(USECS_PER_DAY));
        assert_eq!(parse_time("23:59:59.999999"), Ok(USECS_PER_DAY - 1));
        assert_eq!(parse_time("12:34:56.5"), Ok(45_296_500_000));
        for bad in [
            "24:00:00.000001",
            "24:00:01",
            "12:60:00",
            "12:00:60",
            "1:00:00",
            "12:00",
            "12:00:00.",
            "12:00:00.1234567",
            "12:00:00+01",
            "",
            "12.00:00",
            "12:00.00",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert!(
            parse_time("12:00:00.1234567")
                .unwrap_err()
                .contains("at most 6")
        );
    }

    #[test]
    fn timetz_zone_is_seconds_west() {
        assert_eq!(parse_timetz("12:00:00+02"), Ok((43_200_000_000, -7200)));
        assert_eq!(parse_timetz("12:00:00-08"), Ok((43_200_000_000, 28800)));
        assert_eq!(parse_timetz("00:00:00.5+05:30"), Ok((500_000, -19800)));
        assert_eq!(parse_timetz("00:00:00-00:00:15"), Ok((0, 15)));
        assert_eq!(
            parse_timetz("24:00:00+15:59:59"),
            Ok((USECS_PER_DAY, -57599))
        );
        for bad in [
            "12:00:00",
            "12:00:00+2",
            "12:00:00+16",
            "12:00:00 +02",
            "12:00:00+02:3",
            "12:00:00Z",
            "12:00:00+05:60",
            "12:00:00+05:00:60",
            "12:00:00+05.30",
            "12:00:00+05:30.15",
        ] {
            let e = parse_timetz(bad).unwrap_err();
            assert!(e.contains("time with time zone"), "{bad}: {e}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("2000-01-01 00:00:00"), Ok(0));
        assert_eq!(
            parse_timestamp("2000-01-02 00:00:01.25"),
            Ok(USECS_PER_DAY + 1_250_000)
        );
        assert_eq!(parse_timestamp("1999-12-31 23:59:59.999999"), Ok(-1));
        assert_eq!(parse_timestamp("infinity"), Ok(i64::MAX));
        assert_eq!(parse_timestamp("-infinity"), Ok(i64::MIN));
        assert_eq!(parse_timestamp("4714-11-24 00:00:00 BC"), Ok(TS_MIN));
        assert_eq!(
            parse_timestamp("294276-12-31 23:59:59.999999"),
            Ok(TS_END - 1)
        );
        assert!(parse_timestamp("294277-01-01 00:00:00").is_err());
        assert!(parse_timestamp("4714-11-23 23:59:59 BC").is_err());
        assert!(parse_timestamp("2000-01-01 24:00:00").is_err());
        assert!(parse_timestamp("2000-01-01T00:00:00").is_err());
        assert!(
            parse_timestamp("2000-01-01 00:00:00+00")
                .unwrap_err()
                .contains("timestamptz")
        );
        assert!(
            parse_timestamp("2000-01-01 00:00:00.1234567")
                .unwrap_err()
                .contains("at most 6")
        );
        assert!(parse_timestamp("2000-01-01").is_err());
    }

    #[test]
    fn timestamptz_is_utc() {
        let base = parse_timestamp("2024-01-05 13:45:00.5").unwrap();
        let h = 3_600_000_000;
        assert_eq!(
            parse_timestamptz("2024-01-05 13:45:00.5+05:30"),
            Ok(base - 5 * h - h / 2)
        );
        assert_eq!(
            parse_timestamptz("2024-01-05 13:45:00.5-08"),
            Ok(base + 8 * h)
        );
        assert_eq!(
            parse_timestamptz("2024-01-05 13:45:00.5+00:00:15"),
            Ok(base - 15_000_000)
        );
        assert_eq!(
            parse_timestamptz("0001-01-01 00:00:00+00 BC"),
            Ok(parse_timestamp("0001-01-01 00:00:00 BC").unwrap())
        );
        assert_eq!(parse_timestamptz("infinity"), Ok(i64::MAX));
        assert_eq!(parse_timestamptz("-infinity"), Ok(i64::MIN));
        assert!(
            parse_timestamptz("2024-01-05 13:45:00")
                .unwrap_err()
                .contains("no UTC offset")
        );
        assert!(parse_timestamptz("2024-01-05 13:45:00 UTC").is_err());
        assert!(parse_timestamptz("2024-01-05 13:45:00+0530").is_err());
    }

    #[test]
    fn intervals() {
        let iv = |m, d, us| {
            Ok(Interval {
                micros: us,
                days: d,
                months: m,
            })
        };
        assert_eq!(
            parse_interval("1 year 2 mons 3 days 04:05:06.789"),
            iv(14, 3, 14_706_789_000)
        );
        assert_eq!(
            parse_interval("-1 days +02:03:00"),
            iv(0, -1, 7_380_000_000)
        );
        assert_eq!(parse_interval("00:00:00"), iv(0, 0, 0));
        assert_eq!(parse_interval("-00:00:01"), iv(0, 0, -1_000_000));
        assert_eq!(parse_interval("1 mon"), iv(1, 0, 0));
        assert_eq!(parse_interval("2 years"), iv(24, 0, 0));
        assert_eq!(parse_interval("100:00:00"), iv(0, 0, 360_000_000_000));
        assert_eq!(parse_interval("-1 years -2 mons"), iv(-14, 0, 0));
        assert_eq!(parse_interval("1 year -2 mons +3 days"), iv(10, 3, 0));
        assert_eq!(
            parse_interval("-2562047788:00:54.775808"),
            iv(0, 0, i64::MIN)
        );
        assert_eq!(
            parse_interval("2562047788:00:54.775807"),
            iv(0, 0, i64::MAX)
        );
        assert_eq!(
            parse_interval("-178956970 years -8 mons"),
            iv(i32::MIN, 0, 0)
        );
        assert_eq!(parse_interval("2147483647 days"), iv(0, i32::MAX, 0));
        for bad in [
            "",
            "1 hour",
            "@ 1 year",
            "1 year 2",
            "P1Y",
            "1:2:3",
            "00:00:00 1 day",
            "2562047788:00:54.775808",
            "178956971 years",
            "2147483648 days",
            "01:00:00.1234567",
            "1  day",
        ] {
            let e = parse_interval(bad).unwrap_err();
            assert!(e.contains("IntervalStyle postgres"), "{bad}: {e}");
        }
        assert!(parse_interval("infinity").unwrap_err().contains("infinite"));
    }
}
