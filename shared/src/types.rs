//! PostgreSQL column types: what the source column was, and what the DSQL column becomes.
//!
//! The export keeps a column's PostgreSQL type only as text (`originalType` in the table metadata,
//! or a type name in the source DDL). [`PgType::parse`] turns both spellings (`information_schema`
//! style such as `character varying`, and `format_type` style such as `varchar(50)` or
//! `integer[]`) into one enum, and [`PgType`]'s `Display` writes the SQL type name back. The same
//! enum describes target columns; [`PgType::dsql_supported`] says which of them DSQL can store and
//! [`PgType::dsql_target`] is the default mapping for those it cannot.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A PostgreSQL column type, as far as the migration needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PgType {
    SmallInt,
    Integer,
    BigInt,
    Real,
    Double,
    /// `numeric(p,s)`; `None` where the declaration has no precision or scale.
    Numeric {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    Money,
    Boolean,
    Text,
    Varchar(Option<u32>),
    Char(Option<u32>),
    /// PostgreSQL's internal `name` type (63-byte identifiers).
    Name,
    Bytea,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    Json,
    Jsonb,
    /// One-dimensional or nested array of the element type; text form `{a,b}`.
    Array(Box<PgType>),
    /// A user-defined enum, by type name (schema-qualified where known).
    Enum(String),
    Inet,
    Cidr,
    MacAddr,
    MacAddr8,
    Xml,
    Bit(Option<u32>),
    VarBit(Option<u32>),
    TsVector,
    TsQuery,
    /// Anything else (composite, domain, range, geometric, `USER-DEFINED` of unknown kind):
    /// carried as its text form. The string is the type name as written in the metadata.
    Other(String),
}

/// Why a type name could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unreadable type name {name:?}: {reason}")]
pub struct TypeParseError {
    pub name: String,
    pub reason: String,
}

impl PgType {
    /// Reads a type name in either spelling PostgreSQL uses (`character varying(50)`,
    /// `varchar(50)`, `int4`, `timestamp(3) without time zone`, `integer[]`, `_int4`).
    /// Unknown names become [`PgType::Other`]; only malformed modifiers are errors.
    pub fn parse(name: &str) -> Result<PgType, TypeParseError> {
        let err = |reason: &str| TypeParseError {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = name.trim();
        let lower = trimmed.to_ascii_lowercase();
        let lower = lower
            .strip_prefix("pg_catalog.")
            .unwrap_or(&lower)
            .to_string();
        if let Some(elem) = lower.strip_suffix("[]") {
            return Ok(PgType::Array(Box::new(PgType::parse(elem)?)));
        }
        // `integer ARRAY`, `int[3]` and internal `_int4` spellings.
        if let Some(elem) = lower.strip_suffix(" array") {
            return Ok(PgType::Array(Box::new(PgType::parse(elem)?)));
        }
        if lower.ends_with(']')
            && let Some(open) = lower.rfind('[')
        {
            return Ok(PgType::Array(Box::new(PgType::parse(&lower[..open])?)));
        }
        if let Some(elem) = lower.strip_prefix('_')
            && !elem.is_empty()
        {
            return Ok(PgType::Array(Box::new(PgType::parse(elem)?)));
        }
        // Split `base(mods) rest`: modifiers sit after the first word(s) and before any
        // `with(out) time zone` suffix.
        let (base, mods) = match (lower.find('('), lower.find(')')) {
            (Some(open), Some(close)) if close > open => {
                let mods: Vec<&str> = lower[open + 1..close].split(',').map(str::trim).collect();
                let base = format!("{} {}", lower[..open].trim(), lower[close + 1..].trim());
                (base.trim().to_string(), mods)
            }
            (None, None) => (lower.clone(), Vec::new()),
            _ => return Err(err("unbalanced parentheses")),
        };
        let num = |i: usize| -> Result<Option<u32>, TypeParseError> {
            match mods.get(i) {
                None => Ok(None),
                Some(m) => m
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| err(&format!("type modifier {m:?} is not a number"))),
            }
        };
        let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok(match base.as_str() {
            "smallint" | "int2" | "smallserial" | "serial2" => PgType::SmallInt,
            "integer" | "int" | "int4" | "serial" | "serial4" => PgType::Integer,
            "bigint" | "int8" | "bigserial" | "serial8" => PgType::BigInt,
            "real" | "float4" => PgType::Real,
            "double precision" | "float8" | "float" => PgType::Double,
            "numeric" | "decimal" => PgType::Numeric {
                precision: num(0)?,
                scale: if mods.is_empty() {
                    None
                } else {
                    Some(num(1)?.unwrap_or(0))
                },
            },
            "money" => PgType::Money,
            "boolean" | "bool" => PgType::Boolean,
            "text" => PgType::Text,
            "character varying" | "varchar" => PgType::Varchar(num(0)?),
            "character" | "char" | "bpchar" => PgType::Char(num(0)?),
            "name" => PgType::Name,
            "bytea" => PgType::Bytea,
            "date" => PgType::Date,
            "time" | "time without time zone" => PgType::Time,
            "timetz" | "time with time zone" => PgType::TimeTz,
            "timestamp" | "timestamp without time zone" => PgType::Timestamp,
            "timestamptz" | "timestamp with time zone" => PgType::TimestampTz,
            "interval" => PgType::Interval,
            "uuid" => PgType::Uuid,
            "json" => PgType::Json,
            "jsonb" => PgType::Jsonb,
            "inet" => PgType::Inet,
            "cidr" => PgType::Cidr,
            "macaddr" => PgType::MacAddr,
            "macaddr8" => PgType::MacAddr8,
            "xml" => PgType::Xml,
            "bit" => PgType::Bit(num(0)?),
            "bit varying" | "varbit" => PgType::VarBit(num(0)?),
            "tsvector" => PgType::TsVector,
            "tsquery" => PgType::TsQuery,
            // information_schema spellings that hide the element or enum type: resolved later
            // from the source schema when there is one.
            "array" => PgType::Array(Box::new(PgType::Text)),
            _ => PgType::Other(trimmed.to_string()),
        })
    }

    /// True when DSQL can store this type as a column type (`dsql.md`, September 2026).
    pub fn dsql_supported(&self) -> bool {
        matches!(
            self,
            PgType::SmallInt
                | PgType::Integer
                | PgType::BigInt
                | PgType::Real
                | PgType::Double
                | PgType::Numeric { .. }
                | PgType::Boolean
                | PgType::Text
                | PgType::Varchar(_)
                | PgType::Char(_)
                | PgType::Bytea
                | PgType::Date
                | PgType::Time
                | PgType::TimeTz
                | PgType::Timestamp
                | PgType::TimestampTz
                | PgType::Interval
                | PgType::Uuid
                | PgType::Json
                | PgType::Jsonb
        )
    }

    /// The DSQL column type this source type becomes by default, and why when it changes.
    pub fn dsql_target(&self) -> (PgType, Option<&'static str>) {
        match self {
            t if t.dsql_supported() => (t.clone(), None),
            PgType::Name => (PgType::Varchar(Some(63)), Some("name -> varchar(63)")),
            PgType::Array(_) => (
                PgType::Jsonb,
                Some("arrays are not a DSQL type: array -> jsonb"),
            ),
            PgType::Enum(_) => (
                PgType::Text,
                Some("enums are not a DSQL type: enum -> text"),
            ),
            // money is an int64 count of cents: up to 17 integer digits (92233720368547758.07)
            // in the C/en_US output the export holds; numeric(19,4) refused its upper range.
            PgType::Money => (
                PgType::Numeric {
                    precision: Some(21),
                    scale: Some(4),
                },
                Some("money -> numeric(21,4)"),
            ),
            PgType::Inet | PgType::Cidr | PgType::MacAddr | PgType::MacAddr8 => (
                PgType::Text,
                Some("network types are not DSQL types: -> text"),
            ),
            PgType::Xml => (PgType::Text, Some("xml -> text")),
            PgType::Bit(_) | PgType::VarBit(_) => (PgType::Text, Some("bit strings -> text")),
            PgType::TsVector | PgType::TsQuery => (PgType::Text, Some("text search types -> text")),
            _ => (
                PgType::Text,
                Some("type unknown to DSQL: kept as its text form"),
            ),
        }
    }

    /// True for the integer types a key can be rewritten from.
    pub fn is_integer(&self) -> bool {
        matches!(self, PgType::SmallInt | PgType::Integer | PgType::BigInt)
    }
}

impl fmt::Display for PgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |f: &mut fmt::Formatter<'_>, base: &str, n: &Option<u32>| match n {
            Some(n) => write!(f, "{base}({n})"),
            None => write!(f, "{base}"),
        };
        match self {
            PgType::SmallInt => f.write_str("smallint"),
            PgType::Integer => f.write_str("integer"),
            PgType::BigInt => f.write_str("bigint"),
            PgType::Real => f.write_str("real"),
            PgType::Double => f.write_str("double precision"),
            PgType::Numeric {
                precision: Some(p),
                scale: Some(s),
            } => write!(f, "numeric({p},{s})"),
            PgType::Numeric {
                precision: Some(p),
                scale: None,
            } => write!(f, "numeric({p})"),
            PgType::Numeric { .. } => f.write_str("numeric"),
            PgType::Money => f.write_str("money"),
            PgType::Boolean => f.write_str("boolean"),
            PgType::Text => f.write_str("text"),
            PgType::Varchar(n) => opt(f, "varchar", n),
            PgType::Char(n) => opt(f, "char", n),
            PgType::Name => f.write_str("name"),
            PgType::Bytea => f.write_str("bytea"),
            PgType::Date => f.write_str("date"),
            PgType::Time => f.write_str("time"),
            PgType::TimeTz => f.write_str("timetz"),
            PgType::Timestamp => f.write_str("timestamp"),
            PgType::TimestampTz => f.write_str("timestamptz"),
            PgType::Interval => f.write_str("interval"),
            PgType::Uuid => f.write_str("uuid"),
            PgType::Json => f.write_str("json"),
            PgType::Jsonb => f.write_str("jsonb"),
            PgType::Array(e) => write!(f, "{e}[]"),
            PgType::Enum(name) => f.write_str(name),
            PgType::Inet => f.write_str("inet"),
            PgType::Cidr => f.write_str("cidr"),
            PgType::MacAddr => f.write_str("macaddr"),
            PgType::MacAddr8 => f.write_str("macaddr8"),
            PgType::Xml => f.write_str("xml"),
            PgType::Bit(n) => opt(f, "bit", n),
            PgType::VarBit(n) => opt(f, "varbit", n),
            PgType::TsVector => f.write_str("tsvector"),
            PgType::TsQuery => f.write_str("tsquery"),
            PgType::Other(name) => f.write_str(name),
        }
    }
}

impl Serialize for PgType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PgType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PgType::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_spellings() {
        let cases = [
            ("character varying", PgType::Varchar(None)),
            ("character varying(50)", PgType::Varchar(Some(50))),
            ("varchar(50)", PgType::Varchar(Some(50))),
            (
                "numeric(6,2)",
                PgType::Numeric {
                    precision: Some(6),
                    scale: Some(2),
                },
            ),
            (
                "numeric(6)",
                PgType::Numeric {
                    precision: Some(6),
                    scale: Some(0),
                },
            ),
            (
                "numeric",
                PgType::Numeric {
                    precision: None,
                    scale: None,
                },
            ),
            ("timestamp(3) without time zone", PgType::Timestamp),
            ("timestamp with time zone", PgType::TimestampTz),
            ("time with time zone", PgType::TimeTz),
            ("int4", PgType::Integer),
            ("integer[]", PgType::Array(Box::new(PgType::Integer))),
            ("_text", PgType::Array(Box::new(PgType::Text))),
            (
                "text[][]",
                PgType::Array(Box::new(PgType::Array(Box::new(PgType::Text)))),
            ),
            ("double precision", PgType::Double),
            ("USER-DEFINED", PgType::Other("USER-DEFINED".into())),
            ("bit varying(8)", PgType::VarBit(Some(8))),
        ];
        for (name, want) in cases {
            assert_eq!(PgType::parse(name).unwrap(), want, "{name}");
        }
    }

    #[test]
    fn display_round_trips() {
        for name in [
            "smallint",
            "integer",
            "bigint",
            "real",
            "double precision",
            "numeric(6,2)",
            "numeric",
            "varchar(50)",
            "char(3)",
            "text",
            "bytea",
            "date",
            "time",
            "timetz",
            "timestamp",
            "timestamptz",
            "interval",
            "uuid",
            "json",
            "jsonb",
            "integer[]",
            "boolean",
        ] {
            let t = PgType::parse(name).unwrap();
            assert_eq!(t.to_string(), name);
            assert_eq!(PgType::parse(&t.to_string()).unwrap(), t);
        }
    }

    #[test]
    fn malformed_modifier_is_an_error() {
        let e = PgType::parse("varchar(abc)").unwrap_err();
        assert!(e.reason.contains("\"abc\""), "{e}");
        assert!(PgType::parse("numeric(6,2").is_err());
    }

    #[test]
    fn dsql_mapping_of_unsupported_types() {
        assert_eq!(
            PgType::parse("integer[]").unwrap().dsql_target().0,
            PgType::Jsonb
        );
        assert_eq!(PgType::Enum("mood".into()).dsql_target().0, PgType::Text);
        assert_eq!(
            PgType::Money.dsql_target().0,
            PgType::Numeric {
                precision: Some(21),
                scale: Some(4)
            }
        );
        assert_eq!(PgType::Inet.dsql_target().0, PgType::Text);
        assert_eq!(PgType::Uuid.dsql_target(), (PgType::Uuid, None));
    }
}
