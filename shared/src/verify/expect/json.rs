//! JSON texts: jsonb's output of JSON text (keys deduplicated, the last wins, and sorted by
//! length then bytes; `": "` and `", "`; numbers as numeric prints them; strings re-escaped as
//! `escape_json` does), a check that json text is JSON (json stores its text verbatim), and
//! array literals (`{1,NULL,"a b"}`) as the JSON the mapping's `array -> json/jsonb` promises.

use super::numeric;
use std::fmt::Write as _;

/// How an array's elements become JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// numbers (integers, floats, numeric): the element's digits as a JSON number.
    Number,
    /// `t`/`f` -> `true`/`false`.
    Bool,
    /// json or jsonb elements, embedded.
    Json,
    /// anything else: a JSON string of the element's text.
    String,
}

/// A parsed JSON value, numbers kept as their text.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("not JSON: {what} at byte {}", self.i)
    }

    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > 1000 {
            return Err(self.err("nested too deep"));
        }
        self.ws();
        let v = match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut pairs: Vec<(String, Value)> = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        if self.b.get(self.i) != Some(&b'"') {
                            return Err(self.err("expected a key"));
                        }
                        let k = self.string()?;
                        self.ws();
                        if self.b.get(self.i) != Some(&b':') {
                            return Err(self.err("expected :"));
                        }
                        self.i += 1;
                        let v = self.value(depth + 1)?;
                        pairs.push((k, v));
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
                Value::Object(pairs)
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value(depth + 1)?);
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
                Value::Array(items)
            }
            Some(b'"') => Value::String(self.string()?),
            Some(b't') => self.word("true", Value::Bool(true))?,
            Some(b'f') => self.word("false", Value::Bool(false))?,
            Some(b'n') => self.word("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => {
                let s = self.i;
                while matches!(
                    self.b.get(self.i),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.i += 1;
                }
                let text = String::from_utf8_lossy(&self.b[s..self.i]).into_owned();
                if !is_number(text.as_bytes()) {
                    return Err(self.err("bad number"));
                }
                Value::Number(text)
            }
            _ => return Err(self.err("unexpected character")),
        };
        Ok(v)
    }

    fn word(&mut self, w: &str, v: Value) -> Result<Value, String> {
        if self.b[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(self.err("unknown literal"))
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .b
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("bad \\u escape"))?;
        self.i += 4;
        Ok(h)
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut s: Vec<u8> = Vec::new();
        loop {
            let c = *self
                .b
                .get(self.i)
                .ok_or_else(|| self.err("unterminated string"))?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.b.get(self.i).ok_or_else(|| self.err("bad escape"))?;
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
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(self.err("lone surrogate"));
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("bad surrogate pair"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            if cp == 0 {
                                return Err(self.err("\\u0000 cannot be stored in jsonb"));
                            }
                            char::from_u32(cp).ok_or_else(|| self.err("bad code point"))?
                        }
                        _ => return Err(self.err("bad escape")),
                    };
                    let mut buf = [0u8; 4];
                    s.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return Err(self.err("control character in a string")),
                c => s.push(c),
            }
        }
        String::from_utf8(s).map_err(|_| self.err("invalid UTF-8"))
    }
}

/// JSON's number grammar.
fn is_number(b: &[u8]) -> bool {
    let mut i = usize::from(b.first() == Some(&b'-'));
    let run = |i: &mut usize| {
        let s = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > s
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            run(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !run(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !run(&mut i) {
            return false;
        }
    }
    i == b.len()
}

fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        b: text.as_bytes(),
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(p.err("text after the value"));
    }
    Ok(v)
}

/// PostgreSQL's `escape_json`.
fn escape(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn jsonb_out(v: &Value, out: &mut String) -> Result<(), String> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => numeric::numeric_text(n, None, None, out)?,
        Value::String(s) => escape(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                jsonb_out(item, out)?;
            }
            out.push(']');
        }
        Value::Object(pairs) => {
            let mut kept: Vec<&(String, Value)> = Vec::new();
            for p in pairs.iter().rev() {
                if !kept.iter().any(|k| k.0 == p.0) {
                    kept.push(p);
                }
            }
            kept.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
            out.push('{');
            for (i, (k, v)) in kept.into_iter().map(|p| (&p.0, &p.1)).enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                escape(k, out);
                out.push_str(": ");
                jsonb_out(v, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// jsonb's canonical text of JSON text.
pub fn jsonb(text: &str, out: &mut String) -> Result<(), String> {
    jsonb_out(&parse(text)?, out)
}

/// json keeps its text as given: checked to be JSON, then copied.
pub fn json(text: &str, out: &mut String) -> Result<(), String> {
    parse(text)?;
    out.push_str(text);
    Ok(())
}

/// An array literal as JSON text without spaces (`array_to_json`'s layout): `{1,NULL}` ->
/// `[1,null]`. `delim` is the element type's delimiter (`,`; `;` for box).
pub fn array(text: &str, element: Element, delim: u8, out: &mut String) -> Result<(), String> {
    let b = text.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'[') {
        // `[lo:hi]=` dimension decoration: dropped, as array_to_json does.
        i = text
            .find('=')
            .ok_or_else(|| format!("{text:?}: bad dimension decoration"))?
            + 1;
    }
    let mut depth = 0usize;
    let bad =
        |what: &str, at: usize| format!("not an array literal: {what} at byte {at} of {text:?}");
    let mut expect_value = true;
    while i < b.len() {
        match b[i] {
            b'{' => {
                depth += 1;
                out.push('[');
                i += 1;
                expect_value = true;
            }
            b'}' => {
                if depth == 0 {
                    return Err(bad("unbalanced }", i));
                }
                depth -= 1;
                out.push(']');
                i += 1;
                expect_value = false;
                if depth == 0 {
                    if text[i..].trim().is_empty() {
                        return Ok(());
                    }
                    return Err(bad("text after the array", i));
                }
            }
            c if c == delim => {
                out.push(',');
                i += 1;
                expect_value = true;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ if depth == 0 || !expect_value => return Err(bad("unexpected character", i)),
            b'"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(bad("unterminated quotes", i)),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            let c = text[i + 1..]
                                .chars()
                                .next()
                                .ok_or_else(|| bad("dangling \\", i))?;
                            s.push(c);
                            i += 1 + c.len_utf8();
                        }
                        Some(_) => {
                            let c = text[i..].chars().next().ok_or_else(|| bad("bad text", i))?;
                            s.push(c);
                            i += c.len_utf8();
                        }
                    }
                }
                i += 1;
                element_json(&s, element, out)?;
                expect_value = false;
            }
            _ => {
                let start = i;
                let mut s = String::new();
                while let Some(&c) = b.get(i) {
                    if c == delim || c == b'}' || c == b'{' || c == b'"' {
                        break;
                    }
                    if c == b'\\' {
                        i += 1;
                    }
                    let ch = text[i..]
                        .chars()
                        .next()
                        .ok_or_else(|| bad("dangling \\", start))?;
                    s.push(ch);
                    i += ch.len_utf8();
                }
                let s = s.trim_end();
                if s.eq_ignore_ascii_case("null") && !text[start..i].contains('\\') {
                    out.push_str("null");
                } else {
                    element_json(s, element, out)?;
                }
                expect_value = false;
            }
        }
    }
    Err(bad("missing }", i))
}

fn element_json(s: &str, element: Element, out: &mut String) -> Result<(), String> {
    match element {
        Element::Number => {
            if !is_number(s.as_bytes()) {
                return Err(format!(
                    "array element {s:?} has no JSON number form (NaN and infinities are refused)"
                ));
            }
            out.push_str(s);
        }
        Element::Bool => out.push_str(match s {
            "t" | "true" => "true",
            "f" | "false" => "false",
            _ => return Err(format!("array element {s:?} is not a boolean")),
        }),
        Element::Json => {
            parse(s)?;
            out.push_str(s);
        }
        Element::String => escape(s, out),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jb(t: &str) -> String {
        let mut s = String::new();
        jsonb(t, &mut s).unwrap();
        s
    }

    fn arr(t: &str, e: Element) -> String {
        let mut s = String::new();
        array(t, e, b',', &mut s).unwrap();
        s
    }

    #[test]
    fn jsonb_orders_dedupes_and_prints_numbers_as_numeric() {
        assert_eq!(
            jb(r#" {"bb": 1.50, "a": [1e2, "x\u00e9\n"], "a": null} "#),
            r#"{"a": null, "bb": 1.50}"#
        );
        assert_eq!(
            jb(r#"{"b":1,"aa":2,"a":3}"#),
            r#"{"a": 3, "b": 1, "aa": 2}"#
        );
        assert_eq!(jb("-0"), "0");
        assert_eq!(jb(r#""\ud83d\ude00\/""#), "\"😀/\"");
        assert!(jsonb(r#""\u0000""#, &mut String::new()).is_err());
        assert!(jsonb("{1:2}", &mut String::new()).is_err());
    }

    #[test]
    fn arrays_become_json() {
        assert_eq!(arr("{1,NULL,-1}", Element::Number), "[1,null,-1]");
        assert_eq!(
            arr(r#"{a1,"with \"quote\"",NULL,"NULL"}"#, Element::String),
            r#"["a1","with \"quote\"",null,"NULL"]"#
        );
        assert_eq!(
            arr("{{t,f},{f,t}}", Element::Bool),
            "[[true,false],[false,true]]"
        );
        assert_eq!(arr("[0:1]={1,2}", Element::Number), "[1,2]");
        assert_eq!(arr("{}", Element::Number), "[]");
        assert!(array("{NaN}", Element::Number, b',', &mut String::new()).is_err());
    }
}
