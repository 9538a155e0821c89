//! numeric and money text -> PostgreSQL's binary NUMERIC, exactly (no float detour).
//!
//! Binary NUMERIC is `ndigits i16, weight i16, sign u16, dscale u16`, then `ndigits` base-10000
//! digits (i16), most significant first; the value is `sum(digit[i] * 10000^(weight - i))` and
//! dscale is the number of decimal digits after the point to display. Leading and trailing zero
//! base-10000 digits are left out, as PostgreSQL stores them.

use super::R;

const SIGN_POS: u16 = 0x0000;
const SIGN_NEG: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
/// PostgreSQL's largest display scale (NUMERIC_DSCALE_MAX).
const DSCALE_MAX: i64 = 0x3FFF;
/// PostgreSQL refuses exponents beyond +-NUMERIC_MAX_PRECISION in numeric input.
const EXP_MAX: i64 = 1000;

/// Why infinities are refused, shared with the typed float path.
pub(super) fn infinity_reason() -> String {
    "infinite numerics are refused: DSQL cannot be assumed to store numeric Infinity (PostgreSQL 14+ only)".into()
}

/// A finite decimal as written: digits before and after the point, and a power-of-ten exponent.
struct Decimal<'a> {
    neg: bool,
    int: &'a [u8],
    frac: &'a [u8],
    exp: i64,
}

fn syntax(text: &str, what: &str) -> String {
    format!(
        "{text:?} is not a number: {what}; expected digits with an optional sign, decimal point and exponent (e.g. -123.45 or 1.5e3), or NaN"
    )
}

/// Reads `[+-]digits[.digits][e[+-]digits]` (digits on at least one side of the point).
/// `Ok(None)` is NaN.
fn parse(text: &str) -> R<Option<Decimal<'_>>> {
    let b = text.as_bytes();
    if text.eq_ignore_ascii_case("nan") {
        return Ok(None);
    }
    let unsigned = text.trim_start_matches(['+', '-']);
    if unsigned.eq_ignore_ascii_case("infinity") || unsigned.eq_ignore_ascii_case("inf") {
        return Err(infinity_reason());
    }
    if b.is_empty() {
        return Err(syntax(text, "empty"));
    }
    let mut i = 0;
    let neg = match b[0] {
        b'-' => {
            i = 1;
            true
        }
        b'+' => {
            i = 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int = &b[int_start..i];
    let mut frac: &[u8] = &[];
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = &b[s..i];
    }
    if int.is_empty() && frac.is_empty() {
        return Err(syntax(text, "no digits"));
    }
    let mut exp: i64 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let eneg = match b.get(i) {
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
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if exp <= EXP_MAX {
                exp = exp * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == s {
            return Err(syntax(text, "exponent without digits"));
        }
        if exp > EXP_MAX {
            return Err(format!(
                "{text:?} has an exponent beyond +-{EXP_MAX}, which PostgreSQL's numeric does not accept"
            ));
        }
        if eneg {
            exp = -exp;
        }
    }
    if i != b.len() {
        return Err(syntax(
            text,
            &format!("unexpected {:?} at byte {i}", char::from(b[i])),
        ));
    }
    Ok(Some(Decimal {
        neg,
        int,
        frac,
        exp,
    }))
}

/// Numeric text (numeric, float or integer output; exponents accepted) -> binary NUMERIC for
/// `numeric(precision, scale)`, or bare numeric when `precision` is None.
pub(super) fn encode_numeric_text(
    text: &str,
    precision: Option<u32>,
    scale: Option<u32>,
    out: &mut Vec<u8>,
) -> R<()> {
    match parse(text)? {
        None => {
            put_header(out, 0, 0, SIGN_NAN, 0);
            Ok(())
        }
        Some(d) => encode(&d, precision, scale, out),
    }
}

fn put_header(out: &mut Vec<u8>, ndigits: u16, weight: i16, sign: u16, dscale: u16) {
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
}

fn encode(d: &Decimal<'_>, precision: Option<u32>, scale: Option<u32>, out: &mut Vec<u8>) -> R<()> {
    // The digits int ++ frac; digit i stands for 10^(pt - 1 - i).
    let n_int = d.int.len() as i64;
    let len = n_int + d.frac.len() as i64;
    let digit = |i: i64| -> u8 {
        let i = i as usize;
        if i < d.int.len() {
            d.int[i] - b'0'
        } else {
            d.frac[i - d.int.len()] - b'0'
        }
    };
    let pt = n_int + d.exp;
    let written_scale = (d.frac.len() as i64 - d.exp).max(0);
    let typmod = precision.map(|p| (i64::from(p), i64::from(scale.unwrap_or(0))));
    let dscale = match typmod {
        Some((_, s)) => s,
        None => written_scale,
    };
    if dscale > DSCALE_MAX {
        return Err(format!(
            "value has {dscale} digits after the decimal point, more than PostgreSQL's numeric limit of {DSCALE_MAX}"
        ));
    }
    let lo = (0..len).find(|&i| digit(i) != 0);
    let Some(lo) = lo else {
        // Zero: no digits, positive (PostgreSQL has no negative zero numeric).
        put_header(out, 0, 0, SIGN_POS, dscale as u16);
        return Ok(());
    };
    let hi = (lo..len).rev().find(|&i| digit(i) != 0).unwrap_or(lo);
    let lead_exp = pt - 1 - lo;
    let last_exp = pt - 1 - hi;
    if let Some((p, s)) = typmod {
        if last_exp < -s {
            return Err(format!(
                "value has {} significant digits after the decimal point, more than the scale {s} of numeric({p},{s}): refusing to round",
                -last_exp
            ));
        }
        if lead_exp >= p - s {
            let int_digits = lead_exp + 1;
            return Err(if p - s > 0 {
                format!(
                    "value has {int_digits} digits before the decimal point, more than the {} numeric({p},{s}) allows",
                    p - s
                )
            } else {
                format!(
                    "numeric({p},{s}) holds only absolute values below 10^{}",
                    p - s
                )
            });
        }
    }
    let weight = lead_exp.div_euclid(4);
    let last_group = last_exp.div_euclid(4);
    let ndigits = weight - last_group + 1;
    // numeric_recv reads ndigits as an unsigned 16-bit count: the largest numerics need more
    // than i16::MAX base-10000 digits.
    let (Ok(weight16), Ok(ndigits16)) = (i16::try_from(weight), u16::try_from(ndigits)) else {
        return Err("value overflows PostgreSQL's numeric format (too many digits)".into());
    };
    out.reserve(8 + 2 * ndigits as usize);
    put_header(
        out,
        ndigits16,
        weight16,
        if d.neg { SIGN_NEG } else { SIGN_POS },
        dscale as u16,
    );
    for g in (last_group..=weight).rev() {
        let mut v: i16 = 0;
        for k in (0..4).rev() {
            let i = pt - 1 - (4 * g + k);
            let dd = if (lo..=hi).contains(&i) { digit(i) } else { 0 };
            v = v * 10 + i16::from(dd);
        }
        out.extend_from_slice(&v.to_be_bytes());
    }
    Ok(())
}

/// money's text output in the C and en_US locales (`$1,234.56`, `-$1,234.56`, `($1,234.56)`)
/// -> binary NUMERIC, exactly.
pub(super) fn encode_money(
    text: &str,
    precision: Option<u32>,
    scale: Option<u32>,
    out: &mut Vec<u8>,
) -> R<()> {
    let err = |what: &str| {
        format!(
            "{text:?} is not a money amount: {what}; expected the form $1,234.56, -$1,234.56 or ($1,234.56)"
        )
    };
    let (neg, body) = if let Some(b) = text.strip_prefix('-') {
        (true, b)
    } else if let Some(b) = text.strip_prefix('(') {
        (
            true,
            b.strip_suffix(')')
                .ok_or_else(|| err("unbalanced parenthesis"))?,
        )
    } else {
        (false, text)
    };
    let body = body.strip_prefix('$').ok_or_else(|| err("no $ sign"))?;
    let (int_part, frac) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    // Integer digits without group separators, on the stack (money holds at most 19 digits).
    let mut digits = [0u8; 32];
    let mut n = 0;
    for (k, group) in int_part.split(',').enumerate() {
        let ok_len = if k == 0 {
            (1..=3).contains(&group.len()) || !int_part.contains(',')
        } else {
            group.len() == 3
        };
        if !ok_len || group.is_empty() || !group.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err("misplaced digit group separator or non-digit"));
        }
        for c in group.bytes() {
            if n == digits.len() {
                return Err(err("too many digits"));
            }
            digits[n] = c;
            n += 1;
        }
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) || frac.len() > 4 {
        return Err(err("bad fraction"));
    }
    let d = Decimal {
        neg,
        int: &digits[..n],
        frac: frac.as_bytes(),
        exp: 0,
    };
    encode(&d, precision, scale, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(text: &str, p: Option<u32>, s: Option<u32>) -> R<Vec<u8>> {
        let mut out = Vec::new();
        encode_numeric_text(text, p, s, &mut out).map(|_| out)
    }

    /// Builds the expected binary from header values and base-10000 digits.
    fn bin(weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        put_header(&mut v, digits.len() as u16, weight, sign, dscale);
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn encodes_like_postgresql() {
        let cases: &[(&str, Vec<u8>)] = &[
            ("0", bin(0, SIGN_POS, 0, &[])),
            ("-0.00", bin(0, SIGN_POS, 2, &[])),
            ("1", bin(0, SIGN_POS, 0, &[1])),
            ("12345", bin(1, SIGN_POS, 0, &[1, 2345])),
            ("-12345.678", bin(1, SIGN_NEG, 3, &[1, 2345, 6780])),
            ("0.0001", bin(-1, SIGN_POS, 4, &[1])),
            ("0.00001", bin(-2, SIGN_POS, 5, &[1000])),
            ("10000", bin(1, SIGN_POS, 0, &[1])),
            ("1.50", bin(0, SIGN_POS, 2, &[1, 5000])),
            ("NaN", bin(0, SIGN_NAN, 0, &[])),
            ("1.5e3", bin(0, SIGN_POS, 0, &[1500])),
            ("1.5e-3", bin(-1, SIGN_POS, 4, &[15])),
            ("1e+20", bin(5, SIGN_POS, 0, &[1])),
            ("+.5", bin(-1, SIGN_POS, 1, &[5000])),
            ("5.", bin(0, SIGN_POS, 0, &[5])),
            ("00012.3400", bin(0, SIGN_POS, 4, &[12, 3400])),
        ];
        for (text, want) in cases {
            assert_eq!(&enc(text, None, None).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn typmod_sets_dscale_and_refuses_rounding_and_overflow() {
        assert_eq!(
            enc("1.5", Some(5), Some(2)).unwrap(),
            bin(0, SIGN_POS, 2, &[1, 5000])
        );
        // Trailing zeros beyond the scale are not rounding.
        assert_eq!(
            enc("1.5000", Some(5), Some(2)).unwrap(),
            bin(0, SIGN_POS, 2, &[1, 5000])
        );
        assert_eq!(enc("999.99", Some(5), Some(2)).unwrap().len(), 8 + 4);
        let e = enc("1.555", Some(5), Some(2)).unwrap_err();
        assert!(
            e.contains("refusing to round") && e.contains("scale 2"),
            "{e}"
        );
        let e = enc("1000", Some(5), Some(2)).unwrap_err();
        assert!(e.contains("4 digits before the decimal point"), "{e}");
        assert!(e.contains("3 numeric(5,2) allows"), "{e}");
        assert!(enc("-999.99", Some(5), Some(2)).is_ok());
        assert!(enc("NaN", Some(5), Some(2)).is_ok());
        assert!(enc("0.000", Some(1), Some(0)).is_ok());
        // scale > precision: only tiny values fit, and the message says how tiny (PostgreSQL: "must
        // round to an absolute value less than 10^-2"); scale = precision: below 1 = 10^0.
        let e = enc("0.01", Some(2), Some(4)).unwrap_err();
        assert!(
            e.contains("numeric(2,4) holds only absolute values below 10^-2"),
            "{e}"
        );
        let e = enc("1.5", Some(2), Some(2)).unwrap_err();
        assert!(
            e.contains("numeric(2,2) holds only absolute values below 10^0"),
            "{e}"
        );
        assert!(enc("0.99", Some(2), Some(2)).is_ok());
        assert!(enc("0.001", Some(2), Some(4)).is_ok());
        assert!(enc("0.0012", Some(2), Some(4)).is_ok());
        // numeric(p) means scale 0.
        assert!(enc("1.5", Some(3), None).is_err());
        // Bare numeric accepts anything, with its own scale.
        let huge = format!("{}.{}", "9".repeat(1000), "1".repeat(1000));
        assert!(enc(&huge, None, None).is_ok());
        // PostgreSQL's largest numeric needs 36864 base-10000 digits.
        let max = format!("-{}.{}", "9".repeat(131072), "9".repeat(16383));
        let bytes = enc(&max, None, None).unwrap();
        assert_eq!(
            &bytes[..8],
            bin(32767, SIGN_NEG, 16383, &[])
                .get(..8)
                .map(|h| {
                    let mut h = h.to_vec();
                    h[..2].copy_from_slice(&36864u16.to_be_bytes());
                    h
                })
                .unwrap()
        );
        assert!(enc(&format!("1{}", "0".repeat(131072)), None, None).is_err());
    }

    #[test]
    fn refuses_infinity_by_name_and_bad_text() {
        for t in ["Infinity", "-Infinity", "inf", "+infinity"] {
            let e = enc(t, None, None).unwrap_err();
            assert!(e.contains("Infinity") && e.contains("DSQL"), "{t}: {e}");
        }
        for t in [
            "", "-", ".", "1.2.3", "1e", "1e+", "12a", " 1", "1 ", "0x10", "1_000", "--1",
        ] {
            let e = enc(t, None, None).unwrap_err();
            assert!(e.contains("expected digits"), "{t:?}: {e}");
        }
        assert!(enc("1e1001", None, None).unwrap_err().contains("exponent"));
        assert!(
            enc("1e-1000", None, None).is_ok(),
            "dscale 1000 is within limits"
        );
        let e = enc(&format!("0.{}1", "0".repeat(16383)), None, None).unwrap_err();
        assert!(e.contains("16383"), "{e}");
    }

    #[test]
    fn money() {
        let m = |t: &str| {
            let mut out = Vec::new();
            encode_money(t, Some(19), Some(4), &mut out).map(|_| out)
        };
        assert_eq!(
            m("$1,234.56").unwrap(),
            enc("1234.56", Some(19), Some(4)).unwrap()
        );
        assert_eq!(
            m("-$1,234.56").unwrap(),
            enc("-1234.56", Some(19), Some(4)).unwrap()
        );
        assert_eq!(
            m("($1,234.56)").unwrap(),
            enc("-1234.56", Some(19), Some(4)).unwrap()
        );
        assert_eq!(m("$0.00").unwrap(), enc("0", Some(19), Some(4)).unwrap());
        // money's extremes have 17 integer digits: numeric(19,4) cannot hold them.
        assert!(
            m("-$92,233,720,368,547,758.08")
                .unwrap_err()
                .contains("17 digits")
        );
        let mut out = Vec::new();
        encode_money("-$92,233,720,368,547,758.08", None, None, &mut out).unwrap();
        assert_eq!(out, enc("-92233720368547758.08", None, None).unwrap());
        // Without group separators, and with up to 4 fraction digits (hand-derived binaries).
        let bare = |t: &str| {
            let mut out = Vec::new();
            encode_money(t, None, None, &mut out).map(|_| out)
        };
        assert_eq!(
            bare("$1234.56").unwrap(),
            bin(0, SIGN_POS, 2, &[1234, 5600])
        );
        assert_eq!(bare("$1.2345").unwrap(), bin(0, SIGN_POS, 4, &[1, 2345]));
        for bad in ["$1.23456", "$1.234567"] {
            assert!(bare(bad).unwrap_err().contains("bad fraction"), "{bad}");
        }
        for bad in [
            "1.00", "$1,23.00", "$,123", "$1.0x", "€1.00", "($1.00", "$", "$1,2345",
        ] {
            let e = m(bad).unwrap_err();
            assert!(e.contains("$1,234.56"), "{bad}: {e}");
        }
    }
}
