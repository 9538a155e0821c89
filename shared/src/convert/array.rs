//! PostgreSQL array literals (`{a,"b c",NULL,{1,2}}`) -> JSON text, because DSQL has no arrays
//! and the default target of an array column is jsonb.
//!
//! The output matches PostgreSQL's `array_to_json(v)::jsonb` for numbers, booleans, strings and
//! nested arrays. Differences, on purpose: numeric NaN and float infinities are refused (PostgreSQL
//! would turn them into strings, losing the type silently); date and timestamp elements keep their
//! text output (PostgreSQL's `array_to_json` rewrites them to ISO 8601 with a `T`); non-default
//! lower bounds (`[0:1]={1,2}`) are dropped, as `array_to_json` does.

use super::{ConvertError, R, validate_json};
use crate::types::PgType;

/// How an element is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    Number,
    Bool,
    Json,
    String,
}

fn elem_kind(t: &PgType) -> Elem {
    match t {
        PgType::SmallInt
        | PgType::Integer
        | PgType::BigInt
        | PgType::Real
        | PgType::Double
        | PgType::Numeric { .. } => Elem::Number,
        PgType::Boolean => Elem::Bool,
        PgType::Json | PgType::Jsonb => Elem::Json,
        _ => Elem::String,
    }
}

/// A source array literal `{a,b,"c d",NULL,{1,2}}` of element type `elem` as JSON text
/// (`["a","b","c d",null,[1,2]]`): numeric element types become JSON numbers (exact digits
/// kept, NaN/Infinity refused), boolean t/f become true/false, NULL becomes null, json/jsonb
/// elements are embedded as JSON values, everything else becomes JSON strings.
///
/// Exists because DSQL cannot store arrays: array columns become json/jsonb (or text).
pub fn array_to_json(elem: &PgType, text: &str) -> Result<String, ConvertError> {
    to_json(elem, text).map_err(|reason| ConvertError {
        expected: PgType::Array(Box::new(elem.clone())).to_string(),
        reason,
    })
}

pub(super) fn to_json(elem: &PgType, text: &str) -> R<String> {
    let mut base = elem;
    while let PgType::Array(inner) = base {
        base = inner;
    }
    // box is the one built-in type whose array delimiter is not a comma.
    let delim = match base {
        PgType::Other(name) if name.eq_ignore_ascii_case("box") => b';',
        _ => b',',
    };
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        i: 0,
        delim,
        kind: elem_kind(base),
        scratch: String::new(),
    };
    let mut out = String::with_capacity(text.len() + 8);
    p.skip_bounds()?;
    p.skip_ws();
    p.array(&mut out, 1)?;
    p.skip_ws();
    if p.i != p.b.len() {
        return Err(p.err("text after the closing brace"));
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    delim: u8,
    kind: Elem,
    /// Reused buffer for elements with escapes.
    scratch: String,
}

/// PostgreSQL arrays have at most 6 dimensions (MAXDIM).
const MAX_DIMS: usize = 6;

impl<'a> Parser<'a> {
    fn err(&self, what: &str) -> String {
        format!(
            "not an array literal: {what} at byte {}; expected the form {{a,b,\"c d\",NULL,{{1,2}}}}",
            self.i
        )
    }

    fn skip_ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    /// Skips a `[lo:hi][lo:hi]=` dimension decoration.
    fn skip_bounds(&mut self) -> R<()> {
        if self.b.first() != Some(&b'[') {
            return Ok(());
        }
        match self.b.iter().position(|&c| c == b'=') {
            Some(eq)
                if self.b[..eq]
                    .iter()
                    .all(|c| c.is_ascii_digit() || b"[]:-+".contains(c)) =>
            {
                self.i = eq + 1;
                Ok(())
            }
            _ => Err(self.err("malformed dimension decoration")),
        }
    }

    fn array(&mut self, out: &mut String, depth: usize) -> R<()> {
        if depth > MAX_DIMS {
            return Err(self.err("more than 6 dimensions"));
        }
        if self.b.get(self.i) != Some(&b'{') {
            return Err(self.err("missing opening brace"));
        }
        self.i += 1;
        out.push('[');
        self.skip_ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            out.push(']');
            return Ok(());
        }
        let mut nested: Option<bool> = None;
        loop {
            self.skip_ws();
            let is_array = self.b.get(self.i) == Some(&b'{');
            if *nested.get_or_insert(is_array) != is_array {
                return Err(self.err("nested arrays mixed with plain elements"));
            }
            if is_array {
                self.array(out, depth + 1)?;
            } else {
                self.element(out)?;
            }
            self.skip_ws();
            match self.b.get(self.i) {
                Some(&c) if c == self.delim => {
                    self.i += 1;
                    out.push(',');
                }
                Some(b'}') => {
                    self.i += 1;
                    out.push(']');
                    return Ok(());
                }
                Some(_) => return Err(self.err("unexpected character after an element")),
                None => return Err(self.err("missing closing brace")),
            }
        }
    }

    fn element(&mut self, out: &mut String) -> R<()> {
        let src: &'a str = self.s;
        let start = self.i;
        let value: &'a str;
        let quoted = self.b.get(self.i) == Some(&b'"');
        let mut escaped = false;
        if quoted {
            self.i += 1;
            let body = self.i;
            loop {
                match self.b.get(self.i) {
                    None => return Err(self.err("unterminated quoted element")),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        escaped = true;
                        self.i += 2;
                    }
                    Some(_) => self.i += 1,
                }
            }
            value = &src[body..self.i];
            self.i += 1;
        } else {
            while let Some(&c) = self.b.get(self.i) {
                if c == self.delim || c == b'}' || c == b'{' || c == b'"' {
                    break;
                }
                if c == b'\\' {
                    escaped = true;
                    self.i += 1;
                }
                self.i += 1;
            }
            if self.i > self.b.len() {
                return Err(self.err("dangling backslash"));
            }
            value = src[start..self.i].trim_end_matches(|c: char| c.is_ascii_whitespace());
            if value.is_empty() {
                return Err(self.err("empty unquoted element"));
            }
            if value.eq_ignore_ascii_case("null") {
                out.push_str("null");
                return Ok(());
            }
        }
        let value = if escaped {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            let mut chars = value.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        scratch.push(n);
                    }
                } else {
                    scratch.push(c);
                }
            }
            self.scratch = scratch;
            self.scratch.as_str()
        } else {
            value
        };
        match self.kind {
            Elem::Number => {
                if !is_json_number(value.as_bytes()) {
                    return Err(format!(
                        "array element {value:?} is not a JSON number (NaN and infinities have no JSON form)"
                    ));
                }
                out.push_str(value);
            }
            Elem::Bool => match value {
                "t" | "true" => out.push_str("true"),
                "f" | "false" => out.push_str("false"),
                _ => {
                    return Err(format!(
                        "array element {value:?} is not a boolean: expected t or f"
                    ));
                }
            },
            Elem::Json => {
                validate_json(value).map_err(|e| format!("array element: {e}"))?;
                out.push_str(value);
            }
            Elem::String => push_json_string(out, value),
        }
        Ok(())
    }
}

/// JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub(super) fn is_json_number(b: &[u8]) -> bool {
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - s
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Appends `s` as a JSON string, escaping as PostgreSQL's `escape_json` does.
pub(super) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut run = 0;
    for (i, c) in s.bytes().enumerate() {
        let esc: Option<&str> = match c {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[run..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = std::fmt::Write::write_fmt(out, format_args!("\\u{:04x}", c));
            }
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(elem: &PgType, text: &str) -> String {
        array_to_json(elem, text).unwrap()
    }

    #[test]
    fn literals_to_json() {
        let t = PgType::Text;
        assert_eq!(j(&t, "{}"), "[]");
        assert_eq!(
            j(&t, r#"{a,b,"c d",NULL,"NULL","",null}"#),
            r#"["a","b","c d",null,"NULL","",null]"#
        );
        assert_eq!(
            j(
                &t,
                "{\"a\\\"b\",\"c\\\\d\",\"e,f\",\"{g}\",é,\"line\nx\",\"q\\n\"}"
            ),
            r#"["a\"b","c\\d","e,f","{g}","é","line\nx","qn"]"#
        );
        assert_eq!(j(&t, "{\"tab\there\"}"), r#"["tab\there"]"#);
        assert_eq!(j(&t, "{\"\u{1}\"}"), r#"["\u0001"]"#);
        assert_eq!(j(&PgType::Integer, "{{1,2},{3,NULL}}"), "[[1,2],[3,null]]");
        assert_eq!(j(&PgType::Integer, "[0:1]={1,2}"), "[1,2]");
        assert_eq!(j(&PgType::Integer, "{ 1 , 2 }"), "[1,2]");
        assert_eq!(
            j(
                &PgType::Numeric {
                    precision: None,
                    scale: None
                },
                "{1.50,-0.001,100}"
            ),
            "[1.50,-0.001,100]"
        );
        assert_eq!(
            j(&PgType::Double, "{1e+20,-1.5e-05,0}"),
            "[1e+20,-1.5e-05,0]"
        );
        assert_eq!(j(&PgType::Boolean, "{t,f,NULL}"), "[true,false,null]");
        assert_eq!(
            j(&PgType::Jsonb, r#"{"{\"a\": 1}","[1, 2]",NULL}"#),
            r#"[{"a": 1},[1, 2],null]"#
        );
        assert_eq!(
            j(&PgType::Array(Box::new(PgType::Text)), "{{a},{b}}"),
            r#"[["a"],["b"]]"#
        );
        assert_eq!(
            j(&PgType::Other("box".into()), "{(1,1),(0,0);(2,2),(1,1)}"),
            r#"["(1,1),(0,0)","(2,2),(1,1)"]"#
        );
        assert_eq!(
            j(&PgType::Date, "{2024-01-05,infinity}"),
            r#"["2024-01-05","infinity"]"#
        );
    }

    #[test]
    fn refuses_what_json_cannot_hold_and_bad_literals() {
        let num = PgType::Numeric {
            precision: None,
            scale: None,
        };
        for bad in ["{NaN}", "{1,Infinity}", "{-Infinity}"] {
            let e = array_to_json(&num, bad).unwrap_err();
            assert!(e.reason.contains("not a JSON number"), "{e}");
            assert_eq!(e.expected, "numeric[]");
        }
        assert!(array_to_json(&PgType::Double, "{NaN}").is_err());
        assert!(
            array_to_json(&PgType::Boolean, "{yes}")
                .unwrap_err()
                .reason
                .contains("expected t or f")
        );
        assert!(
            array_to_json(&PgType::Jsonb, r#"{"{bad"}"#)
                .unwrap_err()
                .reason
                .contains("JSON")
        );
        for bad in [
            "",
            "{",
            "{1",
            "1,2",
            "{1,2}x",
            "{1,{2}}",
            "{{1},2}",
            "{1,,2}",
            "{\"a}",
            "[1:2]{1,2}",
            "{{{{{{{1}}}}}}}",
        ] {
            let e = array_to_json(&PgType::Integer, bad).unwrap_err();
            assert!(e.reason.contains("array literal"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn json_numbers() {
        for ok in ["0", "-0", "1", "10.5", "1e5", "1E+5", "-1.5e-05"] {
            assert!(is_json_number(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "", "-", "01", ".5", "5.", "1e", "+1", "NaN", "Infinity", "0x1",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }
}
