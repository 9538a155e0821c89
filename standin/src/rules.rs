//! What DSQL answers, in one place: every SQLSTATE and message the stand-in produces, each with
//! its source.
//!
//! Sources: `[REC §n]` is a probe a real cluster answered (dsql-recorded.md, section n); `\[DOCS\]`
//! is AWS's documentation; `\[CHOSEN\]` is wording the record does not give, chosen to read like
//! PostgreSQL or like DSQL's recorded messages, for a behaviour that is documented or switchable.

/// A refusal: the SQLSTATE and message a statement gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub message: String,
}

impl Refusal {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Refusal {
        Refusal {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// 0A000 feature_not_supported: DSQL's code for every dialect refusal [REC §2-§9].
pub const UNSUPPORTED: &str = "0A000";
/// 54000 program_limit_exceeded: rows, size and age limits [REC §5.1; DOCS quotas].
pub const LIMIT: &str = "54000";
/// 40001 serialization_failure: optimistic conflicts [REC §6].
pub const CONFLICT: &str = "40001";
/// 25P02 in_failed_sql_transaction [REC §5.4] (PostgreSQL's own answer, kept).
pub const ABORTED: &str = "25P02";
/// 42704 undefined_object [REC §2, §7, §8].
pub const UNDEFINED_OBJECT: &str = "42704";
/// 42601 syntax_error [REC §3.2].
pub const SYNTAX: &str = "42601";
/// 22P02 invalid_text_representation [REC §3.4].
pub const INVALID_TEXT: &str = "22P02";
/// 55000 object_not_in_prerequisite_state [REC §3.2, §4].
pub const NOT_READY: &str = "55000";
/// 42804 datatype_mismatch [REC §7].
pub const DATATYPE_MISMATCH: &str = "42804";
/// 53300 too_many_connections [DOCS quotas].
pub const TOO_MANY_CONNECTIONS: &str = "53300";
/// 53400 configuration_limit_exceeded [DOCS quotas].
pub const RATE_EXCEEDED: &str = "53400";
/// 57P01 admin_shutdown: the stand-in's code for a connection closed at its maximum age
/// [CHOSEN: the record has no lifetime probe; PostgreSQL uses 57P01 when it ends a session].
pub const CONNECTION_AGE: &str = "57P01";

/// `[REC §5.1]`
pub const ROW_LIMIT: &str = "transaction row limit exceeded";
/// `[DOCS quotas]` (the quotas table; no probe reached it).
pub const SIZE_LIMIT: &str = "transaction size limit 10mb exceeded";
/// `[REC §6]` The record's wording (the docs say `data has been updated by another transaction,
/// please retry: (OC000)`; clients classify by 40001 and `(OC000)`, which both carry).
pub const CONFLICT_MESSAGE: &str = "change conflicts with another transaction (OC000)";
/// `[REC §5.3]`
pub const MULTIPLE_DDL: &str = "multiple ddl statements not supported in a transaction";
/// `[REC §5.3]`
pub const DDL_AND_DML: &str = "ddl and dml are not supported in the same transaction";
/// `[REC §5.4]` PostgreSQL's text, which DSQL keeps.
pub const ABORTED_MESSAGE: &str =
    "current transaction is aborted, commands ignored until end of transaction block";
/// `[REC §3.2]`
pub const PLAIN_INDEX: &str = "unsupported mode. please use CREATE INDEX ASYNC.";
/// `[REC §3.4]`
pub const JOB_ID_NOT_UUID: &str = "Unable to convert text to UUID";
/// `[REC §4]`
pub const ADD_CONSTRAINT: &str = "unsupported ALTER TABLE ADD CONSTRAINT statement";
/// `[REC §4]`
pub const VALIDATE_SYNC: &str = "unsupported ALTER TABLE VALIDATE CONSTRAINT statement";
/// `[REC §4]` A DEFAULT alone counts as a constraint.
pub const ADD_COLUMN_CONSTRAINT: &str = "ALTER TABLE ADD COLUMN with constraint not supported";
/// `[REC §4]`
pub const ALTER_COLUMN_TYPE: &str =
    "unsupported ALTER TABLE ALTER COLUMN ... SET DATA TYPE statement";
/// `\[CHOSEN\]` ALTER TABLE ASYNC other than VALIDATE CONSTRAINT (the documented form).
pub const ALTER_ASYNC_OTHER: &str = "unsupported ALTER TABLE ASYNC statement";
/// `[REC §8]`
pub const IDENTITY_CACHE: &str = "identity column is not supported without an explicit cache size. please define CACHE greater than or equal to 65536 or equal to 1";
/// `[REC §8]`
pub const SEQUENCE_CACHE: &str = "CREATE SEQUENCE is not supported without an explicit cache size. please define CACHE greater than or equal to 65536 or equal to 1";
/// `[REC §6]`
pub const LOCKING_CLAUSE: &str =
    "locking clauses other than FOR UPDATE/FOR KEY SHARE are not supported";
/// `[REC queries.json q_tablesample]`
pub const TABLESAMPLE: &str = "TABLESAMPLE clause not supported";
/// `[REC §9]`
pub const MERGE: &str = "unsupported statement type: MERGE";
/// `[REC §9]`
pub const VACUUM: &str = "unsupported VACUUM statement";
/// `[REC §9]`
pub const TRIGGER: &str = "CREATE TRIGGER not supported";
/// `[REC §8]`
pub const CREATE_TYPE: &str = "CREATE TYPE not supported";
/// `[REC §8]`
pub const ALTER_TYPE: &str = "ALTER TYPE not supported";
/// `[REC §8]`
pub const RENAME_TYPE: &str = "unsupported object in RENAME statement";
/// `[REC §8]`
pub const DROP_TYPE: &str = "unsupported object in DROP statement";
/// `[REC §3.1]`
pub const TEMPORARY_TABLE: &str = "TEMPORARY or TEMP table not supported for CREATE TABLE";
/// `[REC §3.1]`
pub const UNLOGGED_TABLE: &str = "UNLOGGED table not supported for CREATE TABLE";
/// `\[CHOSEN\]` DSQL documents INHERITS and PARTITION as unsupported; the wording follows the
/// recorded TEMPORARY/UNLOGGED refusals.
pub const INHERITS: &str = "INHERITS not supported for CREATE TABLE";
pub const PARTITION: &str = "PARTITION not supported for CREATE TABLE";
/// `\[CHOSEN\]` DSQL documents COPY to or from a server file as unsupported ("Only STDIN/STDOUT").
pub const COPY_FILE: &str = "COPY to or from a file not supported, use STDIN or STDOUT";
/// `\[CHOSEN\]` The answer to binary COPY under `--binary-copy refuse`: the record never probed it
/// (§1); 0A000 like every other dialect refusal.
pub const BINARY_COPY_REFUSED: &str = "COPY with FORMAT binary not supported";

/// `[REC §5.4]` SAVEPOINT, RELEASE, ROLLBACK TO, and (CHOSEN) the two-phase commands.
pub fn transaction_statement(what: &str) -> String {
    format!("unsupported transaction statement: {what}")
}

/// `[REC §2, §5.4]` BEGIN/SET TRANSACTION with any isolation level but REPEATABLE READ.
pub fn isolation_level(level: &str) -> String {
    format!("Unsupported isolation level: {}", level.to_uppercase())
}

/// `[REC §2]` A SET off the allow-list; `name` as PostgreSQL spells it after parsing.
pub fn setting(name: &str) -> String {
    format!("setting configuration parameter \"{name}\" not supported")
}

/// `[REC §9, §8, §3.1]` A statement DSQL does not run at all, named after PostgreSQL's node tag
/// without `Stmt` (`Truncate`, `CreateExtension`, `Createdb`, `Listen`, `AlterSystem`, ...).
pub fn statement(node: &str) -> String {
    format!("unsupported statement: {node}")
}

/// `[REC §8]` `X` as PostgreSQL displays the type (`integer[]`, `bit varying`).
pub fn datatype(display: &str) -> String {
    format!("datatype {display} not supported")
}

/// `[REC §8]`
pub fn identity_type(display: &str) -> String {
    format!("datatype {display} not supported, identity column type must be bigint")
}

/// `[REC §9]`
pub fn function_language(language: &str) -> String {
    format!("CREATE FUNCTION with language {language} not supported")
}

/// `[REC §4]`
pub fn drop_primary_key_column(column: &str) -> String {
    format!("cannot drop primary key column {column}")
}

/// `[REC §3.2, §4]`
pub fn index_not_valid(index: &str) -> String {
    format!("index \"{index}\" is not valid")
}

/// `[REC §7]`
pub fn text_search_configuration(name: &str) -> String {
    format!("text search configuration \"{name}\" does not exist")
}

/// `[REC §2]` SHOW of a parameter DSQL does not have (lc_collate; lc_ctype likewise, CHOSEN).
pub fn unrecognized_parameter(name: &str) -> String {
    format!("unrecognized configuration parameter \"{name}\"")
}

/// `[REC §7]` A suspected DSQL planner defect, emulated because it is recorded.
pub fn lateral_attribute(position: usize, relation: &str) -> String {
    format!("attribute {position} of type {relation} has wrong type")
}

/// `[DOCS quotas]` with the configured limit (whole seconds as DSQL writes them, `300s`; a
/// fraction when a test configures one).
pub fn age_limit(limit: std::time::Duration) -> String {
    let seconds = if limit.subsec_millis() == 0 {
        limit.as_secs().to_string()
    } else {
        format!("{}", limit.as_millis() as f64 / 1000.0)
    };
    format!("transaction age limit of {seconds}s exceeded")
}

/// `\[CHOSEN\]` PostgreSQL's own wording for a full server.
pub const TOO_MANY_CONNECTIONS_MESSAGE: &str = "sorry, too many clients already";

/// `\[CHOSEN\]` PostgreSQL has no connection rate; DSQL's text is not recorded.
pub fn rate_exceeded(per_second: u32) -> String {
    format!("too many connection attempts: more than {per_second} new connections per second")
}

/// `\[CHOSEN\]` PostgreSQL-like, with the limit in seconds.
pub fn connection_age(seconds: u64) -> String {
    format!("terminating connection: maximum connection age of {seconds}s reached")
}

/// DSQL's session parameters that `SET` accepts [DOCS "Supported session parameters", page
/// "Accessing Aurora DSQL with PostgreSQL-compatible clients"; TimeZone, DateStyle, IntervalStyle
/// and extra_float_digits are on it, bytea_output is not]. Lower case, as PostgreSQL's parser
/// spells a parameter name. `transaction_isolation`, `default_transaction_isolation` [REC §2]
/// and `TRANSACTION` [REC §2] are refused.
pub const SETTABLE: &[&str] = &[
    "application_name",
    "client_encoding",
    "client_min_messages",
    "datestyle",
    "extra_float_digits",
    "idle_in_transaction_session_timeout",
    "intervalstyle",
    "search_path",
    "standard_conforming_strings",
    "statement_timeout",
    "timezone",
];

/// Whether `SET name` is accepted (`extra` comes from the configuration).
pub fn settable(name: &str, extra: &[String]) -> bool {
    let name = name.to_ascii_lowercase();
    SETTABLE.contains(&name.as_str()) || extra.iter().any(|e| e.eq_ignore_ascii_case(&name))
}
