//! Token-level work on SQL text, with PostgreSQL's own scanner (`pg_query::scan_tokens`): DSQL
//! syntax PostgreSQL cannot parse (`CREATE \[UNIQUE\] INDEX ASYNC`, `ALTER TABLE ASYNC`), and the
//! calls whose answers must be DSQL's rather than PostgreSQL 15's (`version()`,
//! `current_setting(..)`).
//!
//! Tokens carry byte offsets into the text, so rewrites replace exact spans and never touch string
//! literals, quoted identifiers or comments.

/// A token: its byte span in the text.
#[derive(Debug, Clone, Copy)]
pub struct Tok {
    pub start: usize,
    pub end: usize,
}

/// The tokens of `sql`, or None when the scanner fails (an unterminated literal: PostgreSQL will
/// answer the syntax error itself).
pub fn scan(sql: &str) -> Option<Vec<Tok>> {
    let tokens = pg_query::scan_tokens(sql).ok()?;
    Some(
        tokens
            .into_iter()
            .map(|t| Tok {
                start: t.start as usize,
                end: t.end as usize,
            })
            .collect(),
    )
}

fn text<'a>(sql: &'a str, t: &Tok) -> &'a str {
    sql.get(t.start..t.end).unwrap_or("")
}

fn is(sql: &str, t: Option<&Tok>, word: &str) -> bool {
    t.is_some_and(|t| text(sql, t).eq_ignore_ascii_case(word))
}

/// Which DSQL-only ASYNC form a statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncForm {
    /// `CREATE \[UNIQUE\] INDEX ASYNC ...`
    Index,
    /// `ALTER TABLE ASYNC ...`
    AlterTable,
}

/// The ASYNC form of `sql` and the byte span of its `ASYNC` word.
pub fn find_async(sql: &str, toks: &[Tok]) -> Option<(AsyncForm, Tok)> {
    let at = |i: usize| toks.get(i);
    if is(sql, at(0), "create") {
        let mut i = 1;
        if is(sql, at(i), "unique") {
            i += 1;
        }
        if is(sql, at(i), "index") && is(sql, at(i + 1), "async") {
            return Some((AsyncForm::Index, toks[i + 1]));
        }
    }
    if is(sql, at(0), "alter") && is(sql, at(1), "table") && is(sql, at(2), "async") {
        return Some((AsyncForm::AlterTable, toks[2]));
    }
    None
}

/// `sql` with the span `t` replaced by `with`.
pub fn replace(sql: &str, t: Tok, with: &str) -> String {
    let mut out = String::with_capacity(sql.len() + with.len());
    out.push_str(&sql[..t.start]);
    out.push_str(with);
    out.push_str(&sql[t.end..]);
    out
}

/// Whether the statement uses TABLESAMPLE (refused, [REC queries.json]).
pub fn has_tablesample(sql: &str, toks: &[Tok]) -> bool {
    toks.iter()
        .any(|t| text(sql, t).eq_ignore_ascii_case("tablesample"))
}

/// `sql` with `version()` and `current_setting(` calls pointed at the stand-in's functions in
/// schema `sys`, which answer DSQL's values (`PostgreSQL 16`, `16.15`, `160015`, [REC §10]).
/// The output column keeps its name (`version`, `current_setting`): PostgreSQL names a function
/// call's column after the function's last name part. None when there is nothing to rewrite.
pub fn rewrite_environment(sql: &str, toks: &[Tok]) -> Option<String> {
    let mut spans: Vec<(Tok, &str)> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let word = text(sql, t);
        let next = toks.get(i + 1);
        let is_version = word.eq_ignore_ascii_case("version")
            && is(sql, next, "(")
            && is(sql, toks.get(i + 2), ")");
        let is_setting = word.eq_ignore_ascii_case("current_setting") && is(sql, next, "(");
        if !is_version && !is_setting {
            continue;
        }
        // Qualified: only pg_catalog's are PostgreSQL's; a definition's name is left alone.
        let mut start = *t;
        if i >= 2 && is(sql, toks.get(i - 1), ".") {
            if !is(sql, toks.get(i - 2), "pg_catalog") {
                continue;
            }
            start = toks[i - 2];
        } else if i >= 1
            && (is(sql, toks.get(i - 1), "function") || is(sql, toks.get(i - 1), "procedure"))
        {
            continue;
        }
        let span = Tok {
            start: start.start,
            end: t.end,
        };
        spans.push((
            span,
            if is_version {
                "sys.version"
            } else {
                "sys.current_setting"
            },
        ));
    }
    if spans.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(sql.len() + 16 * spans.len());
    let mut at = 0;
    for (span, with) in spans {
        out.push_str(&sql[at..span.start]);
        out.push_str(with);
        at = span.end;
    }
    out.push_str(&sql[at..]);
    Some(out)
}

/// `ALTER TABLE .. ADD COLUMN c type STORAGE x` for PostgreSQL 15, which only knows
/// `ALTER COLUMN c SET STORAGE x` (16 accepts both; DSQL accepts the first [REC §4]): the
/// clause moves to a subcommand of the same statement. `columns` are the added columns that
/// carry one, in order.
pub fn move_add_column_storage(sql: &str, columns: &[(String, String)]) -> Option<String> {
    let toks = scan(sql)?;
    let mut out = String::with_capacity(sql.len() + 48);
    let mut at = 0;
    let mut moved = 0;
    for (i, t) in toks.iter().enumerate() {
        if !text(sql, t).eq_ignore_ascii_case("storage")
            || (i > 0 && is(sql, toks.get(i - 1), "set"))
        {
            continue;
        }
        let Some(arg) = toks.get(i + 1) else {
            continue;
        };
        out.push_str(&sql[at..t.start]);
        at = arg.end;
        moved += 1;
    }
    if moved != columns.len() {
        return None;
    }
    out.push_str(sql[at..].trim_end().trim_end_matches(';'));
    for (column, storage) in columns {
        out.push_str(&format!(
            ", ALTER COLUMN \"{}\" SET STORAGE {storage}",
            column.replace('"', "\"\"")
        ));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(sql: &str) -> Option<String> {
        rewrite_environment(sql, &scan(sql).unwrap())
    }

    #[test]
    fn version_calls_are_pointed_at_sys_and_literals_are_not() {
        assert_eq!(
            env("SELECT version()").as_deref(),
            Some("SELECT sys.version()")
        );
        assert_eq!(
            env("select pg_catalog.version(), 'version()'").as_deref(),
            Some("select sys.version(), 'version()'")
        );
        assert_eq!(
            env("SELECT current_setting('server_version')").as_deref(),
            Some("SELECT sys.current_setting('server_version')")
        );
        assert_eq!(env("SELECT version FROM t"), None);
        assert_eq!(env("SELECT s.version() FROM t"), None);
        assert_eq!(
            env("CREATE FUNCTION version() RETURNS int LANGUAGE sql AS 'select 1'"),
            None
        );
    }

    #[test]
    fn add_column_storage_moves_to_a_subcommand() {
        assert_eq!(
            move_add_column_storage(
                "ALTER TABLE t ADD COLUMN d text STORAGE PLAIN",
                &[("d".into(), "plain".into())]
            )
            .as_deref(),
            Some("ALTER TABLE t ADD COLUMN d text , ALTER COLUMN \"d\" SET STORAGE plain")
        );
    }

    #[test]
    fn async_forms_are_found_with_their_word() {
        let sql = "CREATE UNIQUE INDEX ASYNC i ON t (a)";
        let (form, t) = find_async(sql, &scan(sql).unwrap()).unwrap();
        assert_eq!(form, AsyncForm::Index);
        assert_eq!(
            replace(sql, t, "CONCURRENTLY"),
            "CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)"
        );
        let sql = "alter table async t validate constraint c";
        assert_eq!(
            find_async(sql, &scan(sql).unwrap()).map(|x| x.0),
            Some(AsyncForm::AlterTable)
        );
        let sql = "CREATE INDEX async_idx ON t (a)";
        assert!(find_async(sql, &scan(sql).unwrap()).is_none());
    }
}
