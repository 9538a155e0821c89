//! Long reads of the target split into primary-key ranges, each its own short transaction.
//!
//! DSQL ends every transaction at 300 s, reads included, and AWS documents that a `COUNT(*)` of a
//! large table does not finish. So no read of a whole table is one statement: [`Reader::pages`]
//! walks a table in primary-key order (keyset paging: `(k1, k2) > (last page's last key)`, a row
//! comparison for composite keys), `LIMIT n` rows at a time, and runs the caller's query over
//! each page as one autocommit statement:
//!
//! ```sql
//! WITH p AS (SELECT * FROM t WHERE <filter> AND (k1, k2) > (CAST($a::text AS t1), ...)
//!            ORDER BY k1, k2 LIMIT n)
//! SELECT i.*, x.* FROM (SELECT count(*), (SELECT k1::text FROM p ORDER BY k1 DESC, k2 DESC
//!        LIMIT 1), ... FROM p) AS i LEFT JOIN (SELECT true, * FROM (<caller's query over p>)
//!        AS y) AS x ON true
//! ```
//!
//! The pages partition the key space (each row is in exactly one range), so page results add up
//! to the table's, whatever the page sizes. The last key travels as its `::text`, which reads back
//! to the same value for every type a key can have (integers, uuid, text, numeric, dates and
//! times, with or without a zone offset, bytea in hex).
//!
//! **Page size.** A page is sized by time, not rows: the first has [`PageSizing::first_rows`]
//! rows, and each next one is scaled so a page takes about [`PageSizing::target`] (default 10 s,
//! 1/30 of DSQL's limit), at most doubling, between [`PageSizing::min_rows`] and
//! [`PageSizing::max_rows`]. A page the server ends with 54000 (the age limit: nothing else
//! limits a read; 57014 too, a PostgreSQL `statement_timeout`) is read again at half the rows,
//! and later pages stay at most that large. A lost
//! connection, a conflict or throttling reads the same page again on a new connection.
//!
//! **Tables without a primary key** cannot be paged: without a key there is no order to resume
//! from that an index serves (DSQL's hidden row key is not visible to SQL), so any split would
//! re-read the whole table per page. Such a table is read in one statement; when DSQL ends it at
//! 300 s, the error says the table needs a primary key in the mapping.
//!
//! Running twice: read-only.

use crate::ddl::ident;
use crate::error::{Error, ErrorClass, Result};
use crate::target::{CONNECTION_MAX_AGE, Target};
use std::time::{Duration, Instant};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// How big pages are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageSizing {
    /// Rows of the first page.
    pub first_rows: u64,
    /// Never fewer rows per page (a page the server refuses at this size is an error).
    pub min_rows: u64,
    /// Never more rows per page: bounds memory of listings and the cost of one retry.
    pub max_rows: u64,
    /// Wall time a page aims for.
    pub target: Duration,
}

/// 10 s a page: 1/30 of DSQL's 300 s transaction age limit, so a page several times slower than
/// the one before it still ends far inside the limit; 100,000 rows at most (a listing page holds
/// at most that many rows in memory).
impl Default for PageSizing {
    fn default() -> Self {
        PageSizing {
            first_rows: 2_000,
            min_rows: 10,
            max_rows: 100_000,
            target: Duration::from_secs(10),
        }
    }
}

impl PageSizing {
    /// The next page's rows after a page of `rows` rows took `took`, capped at `ceiling`.
    pub fn next(&self, rows: u64, took: Duration, ceiling: u64) -> u64 {
        let secs = took.as_secs_f64().max(0.001);
        let scaled = (rows as f64 * self.target.as_secs_f64() / secs) as u64;
        scaled
            .min(rows.saturating_mul(2))
            .min(self.max_rows)
            .min(ceiling)
            .max(self.min_rows)
    }
}

/// One column of a table's primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    /// Column name (unquoted).
    pub name: String,
    /// Its SQL type, to read a key text back (`CAST($n::text AS <type>)`).
    pub sql_type: String,
}

/// A table to walk page by page.
#[derive(Debug, Clone)]
pub struct Pager {
    /// What is read: `"schema"."table"`.
    pub from: String,
    /// Primary key columns, in key order; empty: the table is read in one page.
    pub key: Vec<KeyColumn>,
    /// A condition on the table's rows, e.g. `migration = $1` (uses the caller's parameters).
    pub filter: Option<String>,
    pub sizing: PageSizing,
}

/// One page's result.
pub struct Page {
    /// Rows of the table in this page.
    pub rows: u64,
    /// The caller's query's rows (none when it returned none).
    pub result: Vec<PageRow>,
}

/// A row of the caller's query.
pub struct PageRow {
    row: Row,
    offset: usize,
}

impl PageRow {
    /// Column `i` of the caller's query.
    pub fn get<'a, T: tokio_postgres::types::FromSql<'a>>(&'a self, i: usize) -> T {
        self.row.get(self.offset + i)
    }

    /// Column `i`, or a typed error naming `what` when it does not have type `T`.
    pub fn try_get<'a, T: tokio_postgres::types::FromSql<'a>>(
        &'a self,
        i: usize,
        what: &str,
    ) -> Result<T> {
        self.row
            .try_get(self.offset + i)
            .map_err(|e| Error::db(format!("{what}: column {i} of a page"), e))
    }
}

impl Pager {
    /// A pager over `from` by `key`, default sizing, no filter.
    pub fn new(from: String, key: Vec<KeyColumn>) -> Pager {
        Pager {
            from,
            key,
            filter: None,
            sizing: PageSizing::default(),
        }
    }

    /// The SQL of one page of `limit` rows after the key in parameters `$first..`, with the
    /// caller's `select` over `p` (or only the count and last key without one).
    pub fn page_sql(&self, select: Option<&str>, after: bool, first: usize, limit: u64) -> String {
        let keys: Vec<String> = self.key.iter().map(|k| ident(&k.name)).collect();
        let mut conditions = Vec::new();
        if let Some(f) = &self.filter {
            conditions.push(format!("({f})"));
        }
        if after && !keys.is_empty() {
            let bounds: Vec<String> = self
                .key
                .iter()
                .enumerate()
                .map(|(i, k)| format!("CAST(${}::text AS {})", first + i, k.sql_type))
                .collect();
            conditions.push(format!("({}) > ({})", keys.join(", "), bounds.join(", ")));
        }
        let mut page = format!("SELECT * FROM {}", self.from);
        if !conditions.is_empty() {
            page.push_str(" WHERE ");
            page.push_str(&conditions.join(" AND "));
        }
        if !keys.is_empty() {
            page.push_str(&format!(" ORDER BY {} LIMIT {limit}", keys.join(", ")));
        }
        // Qualified: an unqualified `ORDER BY k` would sort by the output column `k::text`.
        let desc: Vec<String> = keys.iter().map(|k| format!("p.{k} DESC")).collect();
        let mut info = vec!["count(*)".to_string()];
        for k in &keys {
            info.push(format!(
                "(SELECT p.{k}::text FROM p ORDER BY {} LIMIT 1)",
                desc.join(", ")
            ));
        }
        let mut sql = format!(
            "WITH p AS ({page}) SELECT i.*{} FROM (SELECT {} FROM p) AS i",
            if select.is_some() { ", x.*" } else { "" },
            info.join(", ")
        );
        if let Some(s) = select {
            sql.push_str(&format!(
                " LEFT JOIN (SELECT true AS present, y.* FROM ({s}) AS y) AS x ON true"
            ));
        }
        sql
    }
}

/// Where a reader connects.
enum To<'a> {
    /// The target (DSQL: a fresh IAM token per connection).
    Target(&'a Target),
    /// A source database URL (TLS when it says `sslmode=require`).
    Source(&'a str),
}

/// Reads pages on one connection (replaced when lost or old), with session settings applied to
/// every new connection.
pub struct Reader<'a> {
    to: To<'a>,
    /// `SET name = 'value'` statements sent on each new connection, one at a time, outside any
    /// transaction.
    session: &'a [(&'a str, &'a str)],
    client: Option<(tokio_postgres::Client, Instant)>,
}

impl<'a> Reader<'a> {
    /// A reader of `target` whose connections get `session`.
    pub fn new(target: &'a Target, session: &'a [(&'a str, &'a str)]) -> Reader<'a> {
        Reader {
            to: To::Target(target),
            session,
            client: None,
        }
    }

    /// A reader of the source database at `url` whose connections get `session`.
    pub fn source(url: &'a str, session: &'a [(&'a str, &'a str)]) -> Reader<'a> {
        Reader {
            to: To::Source(url),
            session,
            client: None,
        }
    }

    /// The current connection, a new one when there is none or it is closed or old.
    pub async fn client(&mut self) -> Result<&tokio_postgres::Client> {
        let stale = match &self.client {
            Some((c, since)) => c.is_closed() || since.elapsed() > CONNECTION_MAX_AGE,
            None => true,
        };
        if stale {
            let client = match self.to {
                To::Target(t) => t.connect().await?,
                To::Source(url) => crate::db::connect_source(url).await?,
            };
            apply_session(&client, self.session).await?;
            self.client = Some((client, Instant::now()));
        }
        match &self.client {
            Some((c, _)) => Ok(c),
            None => Err(Error::Usage("no connection".into())),
        }
    }

    /// Runs a statement that may be retried (a read), on a new connection after a lost one, a
    /// conflict or throttling.
    pub async fn query(
        &mut self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let retry = crate::load::LoadOptions::default();
        let mut attempt = 0;
        loop {
            let result = match self.client().await {
                Ok(c) => c.query(sql, params).await.map_err(|e| Error::db(what, e)),
                Err(e) => Err(e),
            };
            match result {
                Ok(rows) => return Ok(rows),
                Err(e) => {
                    if ended_for_time(&e) {
                        return Err(e);
                    }
                    if e.class() == ErrorClass::Connection {
                        self.client = None;
                    }
                    if !retry.retry_after(&e, &mut attempt).await {
                        return Err(e);
                    }
                    tracing::warn!(step = what, attempt, error = %e, "retrying");
                }
            }
        }
    }

    /// Walks `pager`'s table page by page in key order. Before each page `params(state)` gives
    /// the values of `$1..$m` used by `select` and the filter (as text); after it `f(state,
    /// page)` folds the page in. `what` names the read in errors. Returns the pages read.
    pub async fn pages<S>(
        &mut self,
        pager: &Pager,
        what: &str,
        select: Option<&str>,
        state: &mut S,
        params: impl Fn(&S) -> Vec<Option<String>>,
        mut f: impl FnMut(&mut S, Page) -> Result<()>,
    ) -> Result<u64> {
        let mut cursor = Cursor::new(pager);
        while let Some(page) = self
            .next_page(pager, &mut cursor, what, select, params(state))
            .await?
        {
            f(state, page)?;
        }
        Ok(cursor.pages)
    }

    /// The rows of `pager`'s table: `count(*)` of each page added up.
    pub async fn count(&mut self, pager: &Pager, what: &str) -> Result<u64> {
        let mut n = 0u64;
        self.pages(
            pager,
            what,
            None,
            &mut n,
            |_| Vec::new(),
            |n, page| {
                *n += page.rows;
                Ok(())
            },
        )
        .await?;
        Ok(n)
    }

    /// The next page of `cursor` (None after the last): for callers that do more between pages
    /// than folding, such as reading another database.
    pub async fn next_page(
        &mut self,
        pager: &Pager,
        cursor: &mut Cursor,
        what: &str,
        select: Option<&str>,
        mut values: Vec<Option<String>>,
    ) -> Result<Option<Page>> {
        if cursor.done {
            return Ok(None);
        }
        let sizing = pager.sizing;
        let first = values.len() + 1;
        if let Some(last) = &cursor.after {
            values.extend(last.iter().cloned().map(Some));
        }
        let refs: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let answer = loop {
            let sql = pager.page_sql(select, cursor.after.is_some(), first, cursor.rows);
            let started = Instant::now();
            let result = self.query(what, &sql, &refs).await;
            cursor.took = started.elapsed();
            match result {
                Ok(answer) => break answer,
                Err(e) if ended_for_time(&e) && !pager.key.is_empty() => {
                    if cursor.rows <= sizing.min_rows {
                        return Err(e);
                    }
                    cursor.rows = (cursor.rows / 2).max(sizing.min_rows);
                    cursor.ceiling = cursor.rows;
                    tracing::info!(
                        step = what,
                        rows = cursor.rows,
                        "page ended by the server: halved"
                    );
                }
                Err(e) if ended_for_time(&e) => {
                    return Err(Error::Usage(format!(
                        "{what}: {} has no primary key, so it is read in one transaction, which the target ended ({e}); give it a primary key in the mapping",
                        pager.from
                    )));
                }
                Err(e) => return Err(e),
            }
        };
        cursor.pages += 1;
        let k = pager.key.len();
        let head = answer
            .first()
            .ok_or_else(|| Error::Usage(format!("{what}: a page query returned no row")))?;
        let n: i64 = head
            .try_get(0)
            .map_err(|e| Error::db(format!("{what}: page row count"), e))?;
        let mut last = Vec::with_capacity(k);
        for i in 0..k {
            let v: Option<String> = head
                .try_get(1 + i)
                .map_err(|e| Error::db(format!("{what}: page last key"), e))?;
            last.extend(v);
        }
        let mut result = Vec::with_capacity(answer.len());
        if select.is_some() {
            for row in answer {
                let present: Option<bool> = row
                    .try_get(1 + k)
                    .map_err(|e| Error::db(format!("{what}: page result"), e))?;
                if present.is_some() {
                    result.push(PageRow { row, offset: 2 + k });
                }
            }
        }
        if k == 0 || (n as u64) < cursor.rows || last.len() < k {
            cursor.done = true;
        } else {
            cursor.after = Some(last);
            cursor.rows = sizing.next(cursor.rows, cursor.took, cursor.ceiling);
        }
        Ok(Some(Page {
            rows: n as u64,
            result,
        }))
    }
}

/// Where a walk over a table stands: the last key read and the size of the next page.
#[derive(Debug, Clone)]
pub struct Cursor {
    rows: u64,
    ceiling: u64,
    after: Option<Vec<String>>,
    took: Duration,
    done: bool,
    /// Pages read so far.
    pub pages: u64,
}

impl Cursor {
    /// Before the first page of `pager`'s table.
    pub fn new(pager: &Pager) -> Cursor {
        let s = pager.sizing;
        Cursor {
            rows: s.first_rows.clamp(s.min_rows, s.max_rows),
            ceiling: s.max_rows,
            after: None,
            took: Duration::ZERO,
            done: false,
            pages: 0,
        }
    }
}

/// True when the server ended a read for its duration: DSQL's transaction age limit (54000, the
/// only DSQL limit a read can reach) or PostgreSQL's `statement_timeout` (57014, which a
/// PostgreSQL stand-in can use to rehearse DSQL's limit).
fn ended_for_time(e: &Error) -> bool {
    matches!(e.class(), ErrorClass::Expired | ErrorClass::TooBig) || e.sqlstate() == Some("57014")
}

/// Sends each `SET` alone, outside any transaction (DSQL refuses a SET it does not support, and
/// inside a transaction the refusal would abort it); a refused SET is accepted when `SHOW`
/// already gives the wanted value, else it is an error naming the setting.
pub async fn apply_session(
    client: &tokio_postgres::Client,
    session: &[(&str, &str)],
) -> Result<()> {
    for (name, value) in session {
        let set = client
            .batch_execute(&format!("SET {name} = '{value}'"))
            .await;
        let show = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .map_err(|e| Error::db(format!("session setting {name}"), e));
        let have: String = match (set, show) {
            (_, Ok(row)) => row.get(0),
            (Err(e), Err(_)) => return Err(Error::db(format!("set {name} = {value:?}"), e)),
            (Ok(()), Err(e)) => return Err(e),
        };
        if !have.eq_ignore_ascii_case(value) {
            return Err(Error::Usage(format!(
                "the target's {name} is {have:?} and could not be set to {value:?}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pager(key: &[(&str, &str)]) -> Pager {
        Pager::new(
            "\"s\".\"t\"".into(),
            key.iter()
                .map(|(n, t)| KeyColumn {
                    name: n.to_string(),
                    sql_type: t.to_string(),
                })
                .collect(),
        )
    }

    #[test]
    fn first_and_next_pages_of_a_composite_key() {
        let p = pager(&[("a", "integer"), ("b", "text")]);
        assert_eq!(
            p.page_sql(None, false, 1, 50),
            "WITH p AS (SELECT * FROM \"s\".\"t\" ORDER BY \"a\", \"b\" LIMIT 50) SELECT i.* FROM \
             (SELECT count(*), (SELECT p.\"a\"::text FROM p ORDER BY p.\"a\" DESC, p.\"b\" DESC LIMIT 1), \
             (SELECT p.\"b\"::text FROM p ORDER BY p.\"a\" DESC, p.\"b\" DESC LIMIT 1) FROM p) AS i"
        );
        let next = p.page_sql(Some("SELECT 1 FROM p"), true, 2, 10);
        assert!(
            next.contains(
                "WHERE (\"a\", \"b\") > (CAST($2::text AS integer), CAST($3::text AS text)) ORDER BY \"a\", \"b\" LIMIT 10"
            ),
            "{next}"
        );
        assert!(next.ends_with(
            "LEFT JOIN (SELECT true AS present, y.* FROM (SELECT 1 FROM p) AS y) AS x ON true"
        ));
    }

    #[test]
    fn a_table_without_key_is_one_unlimited_page() {
        let mut p = pager(&[]);
        p.filter = Some("m = $1".into());
        assert_eq!(
            p.page_sql(None, false, 2, 50),
            "WITH p AS (SELECT * FROM \"s\".\"t\" WHERE (m = $1)) SELECT i.* FROM (SELECT count(*) FROM p) AS i"
        );
    }

    #[test]
    fn pages_grow_toward_the_target_time_and_respect_bounds() {
        let s = PageSizing {
            first_rows: 100,
            min_rows: 10,
            max_rows: 1_000,
            target: Duration::from_secs(10),
        };
        // Fast: at most doubling.
        assert_eq!(s.next(100, Duration::from_millis(10), 1_000), 200);
        // Exactly on target: unchanged.
        assert_eq!(s.next(100, Duration::from_secs(10), 1_000), 100);
        // Twice too slow: halved.
        assert_eq!(s.next(100, Duration::from_secs(20), 1_000), 50);
        // Bounds.
        assert_eq!(s.next(800, Duration::from_millis(1), 1_000), 1_000);
        assert_eq!(s.next(800, Duration::from_millis(1), 300), 300);
        assert_eq!(s.next(20, Duration::from_secs(1_000), 1_000), 10);
    }
}
