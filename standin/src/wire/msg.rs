//! The messages the stand-in parses or builds itself (protocol 3.0).
//!
//! Parsers take a message body and return borrowed views; builders append a whole message to a
//! buffer. Everything else is forwarded as raw bytes and never parsed.

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};

/// Frontend message tags.
pub mod tag {
    pub const QUERY: u8 = b'Q';
    pub const PARSE: u8 = b'P';
    pub const BIND: u8 = b'B';
    pub const DESCRIBE: u8 = b'D';
    pub const EXECUTE: u8 = b'E';
    pub const CLOSE: u8 = b'C';
    pub const SYNC: u8 = b'S';
    pub const FLUSH: u8 = b'H';
    pub const TERMINATE: u8 = b'X';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_FAIL: u8 = b'f';
    pub const FUNCTION_CALL: u8 = b'F';
    pub const PASSWORD: u8 = b'p';
}

/// Backend message tags.
pub mod btag {
    pub const AUTH: u8 = b'R';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const BACKEND_KEY: u8 = b'K';
    pub const READY: u8 = b'Z';
    pub const ERROR: u8 = b'E';
    pub const NOTICE: u8 = b'N';
    pub const NOTIFICATION: u8 = b'A';
    pub const PARSE_COMPLETE: u8 = b'1';
    pub const BIND_COMPLETE: u8 = b'2';
    pub const CLOSE_COMPLETE: u8 = b'3';
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    pub const ROW_DESCRIPTION: u8 = b'T';
    pub const NO_DATA: u8 = b'n';
    pub const DATA_ROW: u8 = b'D';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const EMPTY_QUERY: u8 = b'I';
    pub const PORTAL_SUSPENDED: u8 = b's';
    pub const COPY_IN: u8 = b'G';
    pub const COPY_OUT: u8 = b'H';
    pub const COPY_BOTH: u8 = b'W';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const FUNCTION_RESULT: u8 = b'V';
    pub const NEGOTIATE_VERSION: u8 = b'v';
}

/// A cursor over a message body.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    fn bad(what: &str) -> Error {
        Error::Protocol(format!("malformed message: {what}"))
    }

    /// A NUL-terminated string.
    pub fn cstr(&mut self) -> Result<&'a str> {
        let end = self
            .buf
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| Self::bad("string without its terminating NUL"))?;
        let s = std::str::from_utf8(&self.buf[..end]).map_err(|_| Self::bad("string not UTF-8"))?;
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8> {
        let (&b, rest) = self.buf.split_first().ok_or_else(|| Self::bad("short"))?;
        self.buf = rest;
        Ok(b)
    }

    pub fn i16(&mut self) -> Result<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Self::bad("short"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }
}

/// Parse: statement name, query text, parameter type OIDs.
pub struct Parse<'a> {
    pub name: &'a str,
    pub query: &'a str,
    pub param_types: Vec<u32>,
}

pub fn parse_parse(body: &[u8]) -> Result<Parse<'_>> {
    let mut r = Reader::new(body);
    let name = r.cstr()?;
    let query = r.cstr()?;
    let n = r.i16()?.max(0) as usize;
    let mut param_types = Vec::with_capacity(n);
    for _ in 0..n {
        param_types.push(r.i32()? as u32);
    }
    Ok(Parse {
        name,
        query,
        param_types,
    })
}

/// Bind: portal, statement, and the parameter section kept whole.
pub struct Bind<'a> {
    pub portal: &'a str,
    pub statement: &'a str,
    /// Parameter format codes, values and result format codes, as sent.
    pub rest: &'a [u8],
}

pub fn parse_bind(body: &[u8]) -> Result<Bind<'_>> {
    let mut r = Reader::new(body);
    let portal = r.cstr()?;
    let statement = r.cstr()?;
    Ok(Bind {
        portal,
        statement,
        rest: r.rest(),
    })
}

/// The parameters of a Bind: format codes and values (None is NULL).
pub struct BindParams<'a> {
    pub formats: Vec<i16>,
    pub values: Vec<Option<&'a [u8]>>,
    pub result_formats: Vec<i16>,
}

pub fn parse_bind_params(rest: &[u8]) -> Result<BindParams<'_>> {
    let mut r = Reader::new(rest);
    let nf = r.i16()?.max(0) as usize;
    let mut formats = Vec::with_capacity(nf);
    for _ in 0..nf {
        formats.push(r.i16()?);
    }
    let nv = r.i16()?.max(0) as usize;
    let mut values = Vec::with_capacity(nv);
    for _ in 0..nv {
        let len = r.i32()?;
        values.push(if len < 0 {
            None
        } else {
            Some(r.take(len as usize)?)
        });
    }
    let nr = r.i16()?.max(0) as usize;
    let mut result_formats = Vec::with_capacity(nr);
    for _ in 0..nr {
        result_formats.push(r.i16()?);
    }
    Ok(BindParams {
        formats,
        values,
        result_formats,
    })
}

impl BindParams<'_> {
    /// Total bytes of the parameter values (for the transaction size limit).
    pub fn value_bytes(&self) -> u64 {
        self.values.iter().flatten().map(|v| v.len() as u64).sum()
    }

    /// The format code of parameter `i` (0 text, 1 binary).
    pub fn format_of(&self, i: usize) -> i16 {
        match self.formats.len() {
            0 => 0,
            1 => self.formats[0],
            _ => self.formats.get(i).copied().unwrap_or(0),
        }
    }
}

/// Describe or Close: 'S' (statement) or 'P' (portal), and the name.
pub fn parse_target(body: &[u8]) -> Result<(u8, &str)> {
    let mut r = Reader::new(body);
    let kind = r.u8()?;
    let name = r.cstr()?;
    Ok((kind, name))
}

/// Execute: portal name and the row limit (0: all).
pub fn parse_execute(body: &[u8]) -> Result<(&str, i32)> {
    let mut r = Reader::new(body);
    let portal = r.cstr()?;
    let max = r.i32()?;
    Ok((portal, max))
}

/// Query: the SQL text.
pub fn parse_query(body: &[u8]) -> Result<&str> {
    Reader::new(body).cstr()
}

/// The fields of an ErrorResponse or NoticeResponse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFields {
    pub severity: String,
    pub code: String,
    pub message: String,
    /// Every field as sent, in order (type byte, value).
    pub all: Vec<(u8, String)>,
}

pub fn parse_error(body: &[u8]) -> Result<ErrorFields> {
    let mut r = Reader::new(body);
    let mut out = ErrorFields::default();
    loop {
        let t = r.u8()?;
        if t == 0 {
            break;
        }
        let v = r.cstr()?.to_owned();
        match t {
            b'S' => out.severity = v.clone(),
            b'C' => out.code = v.clone(),
            b'M' => out.message = v.clone(),
            _ => {}
        }
        out.all.push((t, v));
    }
    Ok(out)
}

/// The command tag of a CommandComplete.
pub fn parse_command_complete(body: &[u8]) -> Result<&str> {
    Reader::new(body).cstr()
}

/// The row count at the end of a command tag (`INSERT 0 5`, `UPDATE 3`, `COPY 10`, `SELECT 2`).
pub fn tag_rows(tag: &str) -> Option<u64> {
    tag.rsplit(' ').next()?.parse().ok()
}

/// The first word of a command tag.
pub fn tag_verb(tag: &str) -> &str {
    tag.split(' ').next().unwrap_or(tag)
}

fn begin(buf: &mut BytesMut, tag: u8) -> usize {
    buf.put_u8(tag);
    let at = buf.len();
    buf.put_i32(0);
    at
}

fn end(buf: &mut BytesMut, at: usize) {
    let len = (buf.len() - at) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn cstr(buf: &mut BytesMut, s: &str) {
    buf.put_slice(s.as_bytes());
    buf.put_u8(0);
}

/// An ErrorResponse with severity, SQLSTATE and message.
pub fn error(buf: &mut BytesMut, severity: &str, code: &str, message: &str) {
    let at = begin(buf, btag::ERROR);
    buf.put_u8(b'S');
    cstr(buf, severity);
    buf.put_u8(b'V');
    cstr(buf, severity);
    buf.put_u8(b'C');
    cstr(buf, code);
    buf.put_u8(b'M');
    cstr(buf, message);
    buf.put_u8(0);
    end(buf, at);
}

/// An ErrorResponse rebuilt from parsed fields (a rewritten error keeps its other fields).
pub fn error_from_fields(buf: &mut BytesMut, fields: &[(u8, String)]) {
    let at = begin(buf, btag::ERROR);
    for (t, v) in fields {
        buf.put_u8(*t);
        cstr(buf, v);
    }
    buf.put_u8(0);
    end(buf, at);
}

/// A column of a RowDescription the stand-in answers itself.
pub struct Column<'a> {
    pub name: &'a str,
    pub type_oid: u32,
    pub type_size: i16,
}

/// The OIDs of the types the stand-in answers with.
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const TEXT: u32 = 25;
    pub const INT8: u32 = 20;
}

pub fn row_description(buf: &mut BytesMut, cols: &[Column<'_>], formats: &[i16]) {
    let at = begin(buf, btag::ROW_DESCRIPTION);
    buf.put_i16(cols.len() as i16);
    for (i, c) in cols.iter().enumerate() {
        cstr(buf, c.name);
        buf.put_i32(0);
        buf.put_i16(0);
        buf.put_u32(c.type_oid);
        buf.put_i16(c.type_size);
        buf.put_i32(-1);
        buf.put_i16(result_format(formats, i));
    }
    end(buf, at);
}

/// The result format of column `i` given a Bind's result format codes.
pub fn result_format(formats: &[i16], i: usize) -> i16 {
    match formats.len() {
        0 => 0,
        1 => formats[0],
        _ => formats.get(i).copied().unwrap_or(0),
    }
}

/// A DataRow of already-encoded values (None is NULL).
pub fn data_row(buf: &mut BytesMut, values: &[Option<&[u8]>]) {
    let at = begin(buf, btag::DATA_ROW);
    buf.put_i16(values.len() as i16);
    for v in values {
        match v {
            None => buf.put_i32(-1),
            Some(v) => {
                buf.put_i32(v.len() as i32);
                buf.put_slice(v);
            }
        }
    }
    end(buf, at);
}

pub fn command_complete(buf: &mut BytesMut, tag: &str) {
    let at = begin(buf, btag::COMMAND_COMPLETE);
    cstr(buf, tag);
    end(buf, at);
}

pub fn ready_for_query(buf: &mut BytesMut, status: u8) {
    let at = begin(buf, btag::READY);
    buf.put_u8(status);
    end(buf, at);
}

pub fn parameter_status(buf: &mut BytesMut, name: &str, value: &str) {
    let at = begin(buf, btag::PARAMETER_STATUS);
    cstr(buf, name);
    cstr(buf, value);
    end(buf, at);
}

pub fn auth_ok(buf: &mut BytesMut) {
    let at = begin(buf, btag::AUTH);
    buf.put_i32(0);
    end(buf, at);
}

pub fn backend_key(buf: &mut BytesMut, pid: i32, secret: i32) {
    let at = begin(buf, btag::BACKEND_KEY);
    buf.put_i32(pid);
    buf.put_i32(secret);
    end(buf, at);
}

/// A message with an empty body (ParseComplete, BindComplete, CloseComplete, NoData,
/// EmptyQueryResponse, Sync, Flush, CopyDone, Terminate).
pub fn empty(buf: &mut BytesMut, tag: u8) {
    buf.put_u8(tag);
    buf.put_i32(4);
}

pub fn parameter_description_none(buf: &mut BytesMut) {
    let at = begin(buf, btag::PARAMETER_DESCRIPTION);
    buf.put_i16(0);
    end(buf, at);
}

/// NegotiateProtocolVersion: the newest minor version served, and the options not recognised.
pub fn negotiate_version(buf: &mut BytesMut, minor: i32, unknown: &[&str]) {
    let at = begin(buf, btag::NEGOTIATE_VERSION);
    buf.put_i32(minor);
    buf.put_i32(unknown.len() as i32);
    for o in unknown {
        cstr(buf, o);
    }
    end(buf, at);
}

/// Frontend Parse.
pub fn fe_parse(buf: &mut BytesMut, name: &str, query: &str, types: &[u32]) {
    let at = begin(buf, super::msg::tag::PARSE);
    cstr(buf, name);
    cstr(buf, query);
    buf.put_i16(types.len() as i16);
    for t in types {
        buf.put_u32(*t);
    }
    end(buf, at);
}

/// Frontend Bind with text parameters and text results.
pub fn fe_bind_text(buf: &mut BytesMut, portal: &str, statement: &str, params: &[Option<&str>]) {
    let at = begin(buf, tag::BIND);
    cstr(buf, portal);
    cstr(buf, statement);
    buf.put_i16(0);
    buf.put_i16(params.len() as i16);
    for p in params {
        match p {
            None => buf.put_i32(-1),
            Some(v) => {
                buf.put_i32(v.len() as i32);
                buf.put_slice(v.as_bytes());
            }
        }
    }
    buf.put_i16(0);
    end(buf, at);
}

/// Frontend Bind with a parameter section taken from another Bind, and these result formats.
pub fn fe_bind_raw(
    buf: &mut BytesMut,
    portal: &str,
    statement: &str,
    params: &BindParams<'_>,
    result_formats: &[i16],
) {
    let at = begin(buf, tag::BIND);
    cstr(buf, portal);
    cstr(buf, statement);
    buf.put_i16(params.formats.len() as i16);
    for f in &params.formats {
        buf.put_i16(*f);
    }
    buf.put_i16(params.values.len() as i16);
    for v in &params.values {
        match v {
            None => buf.put_i32(-1),
            Some(v) => {
                buf.put_i32(v.len() as i32);
                buf.put_slice(v);
            }
        }
    }
    buf.put_i16(result_formats.len() as i16);
    for f in result_formats {
        buf.put_i16(*f);
    }
    end(buf, at);
}

/// Frontend Describe or Close of a portal ('P') or statement ('S').
pub fn fe_target(buf: &mut BytesMut, msg_tag: u8, kind: u8, name: &str) {
    let at = begin(buf, msg_tag);
    buf.put_u8(kind);
    cstr(buf, name);
    end(buf, at);
}

pub fn fe_execute(buf: &mut BytesMut, portal: &str, max_rows: i32) {
    let at = begin(buf, tag::EXECUTE);
    cstr(buf, portal);
    buf.put_i32(max_rows);
    end(buf, at);
}

pub fn fe_copy_fail(buf: &mut BytesMut, message: &str) {
    let at = begin(buf, tag::COPY_FAIL);
    cstr(buf, message);
    end(buf, at);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_built_parses_back() {
        let mut buf = BytesMut::new();
        error(
            &mut buf,
            "ERROR",
            "0A000",
            "unsupported statement: Truncate",
        );
        assert_eq!(buf[0], b'E');
        let f = parse_error(&buf[5..]).unwrap();
        assert_eq!(f.code, "0A000");
        assert_eq!(f.message, "unsupported statement: Truncate");
        assert_eq!(f.severity, "ERROR");
    }

    #[test]
    fn tags_give_their_row_counts() {
        assert_eq!(tag_rows("INSERT 0 3000"), Some(3000));
        assert_eq!(tag_rows("UPDATE 1"), Some(1));
        assert_eq!(tag_rows("COPY 12"), Some(12));
        assert_eq!(tag_rows("CREATE TABLE"), None);
        assert_eq!(tag_verb("INSERT 0 1"), "INSERT");
    }

    #[test]
    fn bind_params_round_trip() {
        let mut buf = BytesMut::new();
        fe_bind_text(&mut buf, "p", "s", &[Some("abc"), None]);
        let b = parse_bind(&buf[5..]).unwrap();
        assert_eq!((b.portal, b.statement), ("p", "s"));
        let p = parse_bind_params(b.rest).unwrap();
        assert_eq!(p.values, vec![Some(&b"abc"[..]), None]);
        assert_eq!(p.value_bytes(), 3);
    }
}
