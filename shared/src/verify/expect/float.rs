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
    layout(&format!("{v:e}"), 15, out);
}

/// `float4out` of `v`.
pub fn f32_text(v: f32, out: &mut String) {
    if special(v.is_nan(), v.is_infinite(), v < 0.0, out) {
        return;
    }
    layout(&format!("{v:e}"), 6, out);
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
    }
}
