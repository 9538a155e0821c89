//! Decimal texts as PostgreSQL's `numeric_out` prints them, from the texts the export holds
//! (numeric and money output, integers, JSON numbers, shortest float texts).
//!
//! A decimal is kept as digits, never as a binary number: `1.50` stays `1.50` (numeric keeps its
//! display scale), `-0.000` becomes `0.000` (numeric has no negative zero), `1.5E+2` becomes
//! `150`, and a constrained `numeric(p,s)` gets exactly `s` fraction digits. A value that would
//! need rounding to fit is refused: the mapping promises nothing is rounded silently.

/// A parsed decimal: sign, integer digits (no leading zeros), fraction digits (display scale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    pub negative: bool,
    pub int: String,
    pub frac: String,
}

/// What a numeric text can be besides a finite decimal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Num {
    Finite(Decimal),
    NaN,
    Infinity { negative: bool },
}

/// Reads `[+-]digits[.digits][e[+-]digits]`, `NaN`, `[+-]Infinity` (`inf` too).
pub fn parse(text: &str) -> Result<Num, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    match lower.as_str() {
        "nan" => return Ok(Num::NaN),
        "infinity" | "+infinity" | "inf" | "+inf" => return Ok(Num::Infinity { negative: false }),
        "-infinity" | "-inf" => return Ok(Num::Infinity { negative: true }),
        _ => {}
    }
    let bad = || format!("{text:?} is not a decimal number");
    let b = t.as_bytes();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut int = t[start..i].to_string();
    let mut frac = String::new();
    if b.get(i) == Some(&b'.') {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = t[s..i].to_string();
    }
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let mut exp: i64 = 0;
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        let s = i;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let ds = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if ds == i {
            return Err(bad());
        }
        exp = t[s..i].parse().map_err(|_| bad())?;
        if exp.abs() > 100_000 {
            return Err(format!("{text:?}: exponent out of range"));
        }
    }
    if i != b.len() {
        return Err(bad());
    }
    // Move the point by the exponent.
    if exp > 0 {
        let n = exp as usize;
        let moved: String = frac.chars().take(n).collect();
        int.push_str(&moved);
        for _ in moved.len()..n {
            int.push('0');
        }
        frac = frac.chars().skip(n).collect();
    } else if exp < 0 {
        let n = (-exp) as usize;
        let mut lead = String::new();
        if int.len() < n {
            lead = "0".repeat(n - int.len());
        }
        let all = format!("{lead}{int}");
        let cut = all.len() - n;
        frac = format!("{}{frac}", &all[cut..]);
        int = all[..cut].to_string();
    }
    let int = int.trim_start_matches('0').to_string();
    Ok(Num::Finite(Decimal {
        negative,
        int,
        frac,
    }))
}

impl Decimal {
    /// True when every digit is zero.
    pub fn is_zero(&self) -> bool {
        self.int.is_empty() && self.frac.bytes().all(|c| c == b'0')
    }

    /// `numeric_out`: `[-]int[.frac]`, no sign on zero, `0` for an empty integer part.
    pub fn text(&self, out: &mut String) {
        if self.negative && !self.is_zero() {
            out.push('-');
        }
        if self.int.is_empty() {
            out.push('0');
        } else {
            out.push_str(&self.int);
        }
        if !self.frac.is_empty() {
            out.push('.');
            out.push_str(&self.frac);
        }
    }

    /// The value with exactly `scale` fraction digits and at most `precision` digits in all;
    /// refused when a non-zero digit would be dropped or the integer part does not fit.
    pub fn constrain(&self, precision: Option<u32>, scale: Option<u32>) -> Result<Decimal, String> {
        let Some(p) = precision else {
            return Ok(self.clone());
        };
        let s = scale.unwrap_or(0) as usize;
        let mut frac = self.frac.clone();
        if frac.len() > s {
            if frac[s..].bytes().any(|c| c != b'0') {
                return Err(format!(
                    "{} has more than {s} fraction digits: it would be rounded",
                    self.display()
                ));
            }
            frac.truncate(s);
        }
        while frac.len() < s {
            frac.push('0');
        }
        if self.int.len() + s > p as usize {
            return Err(format!("{} does not fit numeric({p},{s})", self.display()));
        }
        Ok(Decimal {
            negative: self.negative,
            int: self.int.clone(),
            frac,
        })
    }

    /// The integer value when the fraction is all zeros.
    pub fn integer(&self) -> Option<i128> {
        if self.frac.bytes().any(|c| c != b'0') || self.int.len() > 38 {
            return None;
        }
        let v: i128 = if self.int.is_empty() {
            0
        } else {
            self.int.parse().ok()?
        };
        Some(if self.negative { -v } else { v })
    }

    fn display(&self) -> String {
        let mut s = String::new();
        self.text(&mut s);
        s
    }
}

/// The canonical text of a numeric value of a column `numeric(precision, scale)` (both `None`:
/// unconstrained, the display scale kept).
pub fn numeric_text(
    text: &str,
    precision: Option<u32>,
    scale: Option<u32>,
    out: &mut String,
) -> Result<(), String> {
    match parse(text)? {
        Num::NaN => out.push_str("NaN"),
        Num::Infinity { .. } => {
            return Err(format!(
                "{text:?}: an infinite numeric is not loaded (the mapping refuses infinities)"
            ));
        }
        Num::Finite(d) => d.constrain(precision, scale)?.text(out),
    }
    Ok(())
}

/// money's output (`$1,234.56`, `-$1,234.56`) as a decimal text.
pub fn money_digits(text: &str) -> String {
    text.trim()
        .chars()
        .filter(|c| !matches!(c, '$' | ',' | ' '))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str, p: Option<u32>, s: Option<u32>) -> Result<String, String> {
        let mut out = String::new();
        numeric_text(text, p, s, &mut out).map(|_| out)
    }

    #[test]
    fn display_scale_and_zeros() {
        assert_eq!(n("1.500", None, None).unwrap(), "1.500");
        assert_eq!(n("-0.000", None, None).unwrap(), "0.000");
        assert_eq!(n("007", None, None).unwrap(), "7");
        assert_eq!(n(".5", None, None).unwrap(), "0.5");
        assert_eq!(n("1.50E+2", None, None).unwrap(), "150");
        assert_eq!(n("1e-5", None, None).unwrap(), "0.00001");
        assert_eq!(n("-12.5e1", None, None).unwrap(), "-125");
        assert_eq!(n("NaN", Some(6), Some(2)).unwrap(), "NaN");
        assert_eq!(n("12.5", Some(6), Some(2)).unwrap(), "12.50");
        assert_eq!(n("12.500", Some(6), Some(2)).unwrap(), "12.50");
        assert!(n("12.505", Some(6), Some(2)).is_err());
        assert!(n("12345.5", Some(6), Some(2)).is_err());
        assert_eq!(n("9999.99", Some(6), Some(2)).unwrap(), "9999.99");
        assert!(n("Infinity", None, None).is_err());
        assert!(n("1.2.3", None, None).is_err());
        assert_eq!(money_digits("-$1,234.56"), "-1234.56");
    }
}
