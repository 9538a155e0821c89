//! Floats as PostgreSQL prints them with `extra_float_digits = 1` (the default since
//! PostgreSQL 12): the shortest decimal that reads back to the same value, in fixed notation
//! when the decimal exponent is in `-4..15` (`-4..6` for real), else `d.ddde±XX`.
//!
//! The digits come from Rust's `{:e}` formatting (shortest round-trip), the layout from
//! `float_to_shortest_decimal_buf`'s rules; nothing is shared with the loader's converter.

/// `float8out` of `v`.
pub fn f64_text(v: f64, out: &mut String) {
    if special(v.is_nan(), v.is_infinite(), v < 0.0, out) {
        return;
    }
    layout(
        &even_ties(&format!("{v:e}"), v, 800, |t| {
            t.parse::<f64>().ok() == Some(v)
        }),
        15,
        out,
    );
}

/// `float4out` of `v`.
pub fn f32_text(v: f32, out: &mut String) {
    if special(v.is_nan(), v.is_infinite(), v < 0.0, out) {
        return;
    }
    let exact = f64::from(v);
    layout(
        &even_ties(&format!("{v:e}"), exact, 160, |t| {
            t.parse::<f32>().ok() == Some(v)
        }),
        6,
        out,
    );
}

/// Rust's shortest digits break an exact tie upwards (`19.9453125` as a real gives `19.945313`);
/// PostgreSQL's (Ryu's) take the even digit (`19.945312`). When the value lies exactly halfway
/// between two shortest candidates (its exact expansion, `exact` digits at most, is the
/// candidate's digits then a single 5), the even candidate is taken, if it reads back.
fn even_ties(sci: &str, v: f64, exact: usize, reads_back: impl Fn(&str) -> bool) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len();
    // Cheap first: n + 4 significant digits end in `5000` only near a tie.
    let quick = format!("{:.*e}", n + 3, v.abs());
    let quick: String = quick
        .split('e')
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if quick.get(n..) != Some("5000") {
        return sci.to_string();
    }
    let full = format!("{:.*e}", exact, v.abs());
    let (fm, fe) = full.split_once('e').unwrap_or((&full, "0"));
    let all: String = fm.chars().filter(char::is_ascii_digit).collect();
    let tail = all.get(n..).unwrap_or("");
    if !(tail.starts_with('5') && tail[1..].bytes().all(|c| c == b'0')) {
        return sci.to_string();
    }
    let low = &all[..n];
    let last = low.as_bytes()[n - 1] - b'0';
    let pick = if last % 2 == 0 {
        low.to_string()
    } else {
        // The upper candidate: low + 1 in the last place.
        let mut b = low.as_bytes().to_vec();
        let mut i = n;
        loop {
            if i == 0 {
                return sci.to_string();
            }
            i -= 1;
            if b[i] == b'9' {
                b[i] = b'0';
            } else {
                b[i] += 1;
                break;
            }
        }
        String::from_utf8(b).unwrap_or_default()
    };
    let fe: i32 = fe.parse().unwrap_or(0);
    let candidate = format!(
        "{}{}{}{}e{fe}",
        if negative { "-" } else { "" },
        &pick[..1],
        if n > 1 { "." } else { "" },
        &pick[1..]
    );
    let _ = exp;
    if reads_back(&candidate) {
        candidate
    } else {
        sci.to_string()
    }
}

fn special(nan: bool, inf: bool, negative: bool, out: &mut String) -> bool {
    if nan {
        out.push_str("NaN");
    } else if inf {
        out.push_str(if negative { "-Infinity" } else { "Infinity" });
    } else {
        return false;
    }
    true
}

/// `sci` is Rust's `[-]d[.ddd]e[-]x`; `digits` is DBL_DIG or FLT_DIG.
fn layout(sci: &str, digits: i32, out: &mut String) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let ds: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        out.push('-');
    }
    if ds == "0" {
        out.push('0');
        return;
    }
    if exp < -4 || exp >= digits {
        out.push_str(&ds[..1]);
        if ds.len() > 1 {
            out.push('.');
            out.push_str(&ds[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&ds);
    } else {
        let point = exp as usize + 1;
        if ds.len() <= point {
            out.push_str(&ds);
            for _ in ds.len()..point {
                out.push('0');
            }
        } else {
            out.push_str(&ds[..point]);
            out.push('.');
            out.push_str(&ds[point..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(v: f64) -> String {
        let mut s = String::new();
        f64_text(v, &mut s);
        s
    }

    fn r(v: f32) -> String {
        let mut s = String::new();
        f32_text(v, &mut s);
        s
    }

    #[test]
    fn postgres_layout() {
        assert_eq!(d(0.1), "0.1");
        assert_eq!(d(-0.0), "-0");
        assert_eq!(d(0.0), "0");
        assert_eq!(d(1e15), "1e+15");
        assert_eq!(d(123456789012345.0), "123456789012345");
        assert_eq!(d(123456789012345680.0), "1.2345678901234568e+17");
        assert_eq!(d(0.0001), "0.0001");
        assert_eq!(d(0.00001), "1e-05");
        assert_eq!(d(5e-324), "5e-324");
        assert_eq!(d(1.7976931348623157e308), "1.7976931348623157e+308");
        assert_eq!(d(f64::NAN), "NaN");
        assert_eq!(d(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(r(100000.0), "100000");
        assert_eq!(r(1e6), "1e+06");
        assert_eq!(r(1234567.0), "1.234567e+06");
        assert_eq!(r(0.1), "0.1");
        assert_eq!(r(1e-45), "1e-45");
        assert_eq!(d(f64::from(0.1f32)), "0.10000000149011612");
        // An exact tie between two shortest candidates takes the even digit, as PostgreSQL does.
        assert_eq!(r(2553.0 / 128.0), "19.945312");
    }
}
