//! The target side: every aggregate, bucket and listing computed by SQL in the target, page by
//! primary-key page ([`crate::pages`]), in a session whose `::text` prints canonical texts.
//!
//! Only built-in functions: `md5`, `decode(.., 'hex')`, `get_byte`, `octet_length`, `coalesce`,
//! `least`/`greatest`, casts to the columns' own types. No `bit` type anywhere: DSQL refuses `bit`
//! columns and some unsupported types even in expressions, so the 64-bit row hash is never cast
//! from hex; SQL sums each of its 8 bytes instead ([`super::rowtext::fold_byte_sums`]).

use super::BUCKETS;
use super::rowtext;
use super::table::{Agg, Entry, StatKind, TablePlan, stat_kind};
use crate::ddl::ident;
use crate::error::{Error, Result};
use crate::pages::{PageSizing, Pager, Reader};
use std::collections::HashMap;

/// Session settings under which `::text` prints canonical texts, each on DSQL's list of
/// supported session parameters. `bytea_output` is not on it (and hex is the default): it is
/// checked instead ([`prepare_session`]).
pub const SESSION: &[(&str, &str)] = &[
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "1"),
];

/// Applies [`SESSION`] (one `SET` at a time, outside any transaction, each checked) and checks
/// that bytea prints as hex.
pub async fn prepare_session(client: &tokio_postgres::Client) -> Result<()> {
    crate::pages::apply_session(client, SESSION).await?;
    check_bytea_hex(client).await
}

/// Checks that bytea values print in hex (`\x01`), which canonical texts assume.
pub async fn check_bytea_hex(client: &tokio_postgres::Client) -> Result<()> {
    let row = client
        .query_one("SELECT decode('01', 'hex')::text", &[])
        .await
        .map_err(|e| Error::db("check bytea output", e))?;
    let text: String = row.get(0);
    if text != "\\x01" {
        return Err(Error::Usage(format!(
            "the target prints bytea as {text:?}, not in hex (\\x01): verify compares hex texts"
        )));
    }
    Ok(())
}

/// SQL of a column's canonical text, on page `p`.
pub fn text_sql(column: &str) -> String {
    format!("p.{}::text", ident(column))
}

/// SQL of a column's row-text piece (`N` or `V<bytes>:<text>`).
pub fn piece_sql(column: &str) -> String {
    let t = text_sql(column);
    format!("coalesce('V' || octet_length({t})::text || ':' || {t}, 'N')")
}

fn concat_sql(cols: &[&str]) -> String {
    cols.iter()
        .map(|c| piece_sql(c))
        .collect::<Vec<_>>()
        .join(" || ")
}

/// The 16 bytes of `md5(text)`.
pub fn digest_sql(text: &str) -> String {
    format!("decode(md5({text}), 'hex')")
}

/// SQL of the bucket (0..255) of a key text.
pub fn bucket_sql(text: &str) -> String {
    format!("get_byte({}, 11)", digest_sql(text))
}

/// The 8 byte sums of the row hashes, over `hh.h`.
fn byte_sums_sql() -> String {
    (0..8)
        .map(|j| format!("sum(get_byte(hh.h, {j}))"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl TablePlan {
    fn row_sql(&self) -> String {
        let names: Vec<&str> = self.cols.iter().map(|c| c.name.as_str()).collect();
        concat_sql(&names)
    }

    fn key_sql(&self) -> String {
        let names: Vec<&str> = self
            .key
            .iter()
            .map(|&k| self.cols[k].name.as_str())
            .collect();
        concat_sql(&names)
    }

    /// The row digest beside each row of `p`, as `hh.h`.
    fn hashed(&self) -> String {
        format!(
            "p CROSS JOIN LATERAL (SELECT {} AS h) AS hh",
            digest_sql(&self.row_sql())
        )
    }

    /// Per page: the count of each column, the 8 byte sums, and per integer column its sum, and
    /// per integer, date and time column min and max, folded with the running min and max
    /// passed as `$1, $2, ...` (two per such column).
    pub fn aggregate_sql(&self) -> String {
        let mut parts: Vec<String> = self
            .cols
            .iter()
            .map(|c| format!("count(p.{})", ident(&c.name)))
            .collect();
        parts.push(byte_sums_sql());
        let mut n = 0;
        for c in &self.cols {
            let col = format!("p.{}", ident(&c.name));
            let ty = c.ty.to_string();
            match stat_kind(&c.ty) {
                Some(StatKind::Int) => parts.push(format!("sum({col})::text")),
                Some(StatKind::Ordered) => {}
                None => continue,
            }
            parts.push(format!(
                "least(min({col}), CAST(${}::text AS {ty}))::text, greatest(max({col}), CAST(${}::text AS {ty}))::text",
                n + 1,
                n + 2
            ));
            n += 2;
        }
        format!("SELECT {} FROM {}", parts.join(", "), self.hashed())
    }

    /// Per page: rows and byte sums per bucket.
    pub fn bucket_sql(&self) -> String {
        format!(
            "SELECT {} AS b, count(*), {} FROM {} GROUP BY 1",
            bucket_sql(&self.key_sql()),
            byte_sums_sql(),
            self.hashed()
        )
    }

    /// Per page: the canonical texts of the rows in `buckets`.
    pub fn list_sql(&self, buckets: &[usize]) -> String {
        let texts: Vec<String> = self.cols.iter().map(|c| text_sql(&c.name)).collect();
        let list: Vec<String> = buckets.iter().map(|b| b.to_string()).collect();
        format!(
            "SELECT {} FROM p WHERE {} IN ({})",
            texts.join(", "),
            bucket_sql(&self.key_sql()),
            list.join(", ")
        )
    }
}

fn byte_sums(row: &crate::pages::PageRow, at: usize, what: &str) -> Result<[i64; 8]> {
    let mut sums = [0i64; 8];
    for (j, s) in sums.iter_mut().enumerate() {
        let v: Option<i64> = row.try_get(at + j, what)?;
        *s = v.unwrap_or(0);
    }
    Ok(sums)
}

/// Running state of the aggregate walk.
struct Running {
    agg: Agg,
    sums: Vec<i128>,
    /// Per stat column: running min and max texts.
    bounds: Vec<[Option<String>; 2]>,
}

/// The aggregates of the rows `pager` walks (the table's, or a key range's), page by page.
pub async fn aggregate(reader: &mut Reader<'_>, plan: &TablePlan, pager: &Pager) -> Result<Agg> {
    let what = format!("verify {}: aggregate scan", plan.target);
    let stat_cols: Vec<usize> = (0..plan.cols.len())
        .filter(|&i| stat_kind(&plan.cols[i].ty).is_some())
        .collect();
    let mut state = Running {
        agg: Agg::new(plan.cols.len()),
        sums: vec![0; plan.cols.len()],
        bounds: vec![[None, None]; stat_cols.len()],
    };
    let sql = plan.aggregate_sql();
    let ncols = plan.cols.len();
    reader
        .pages(
            pager,
            &what,
            Some(&sql),
            &mut state,
            |s| s.bounds.iter().flat_map(|b| b.iter().cloned()).collect(),
            |s, page| {
                let row = page
                    .result
                    .first()
                    .ok_or_else(|| Error::Usage(format!("{what}: no aggregate row")))?;
                s.agg.rows += page.rows;
                for i in 0..ncols {
                    let n: i64 = row.try_get(i, &what)?;
                    s.agg.nulls[i] += page.rows - n as u64;
                }
                s.agg.sum = s
                    .agg
                    .sum
                    .wrapping_add(rowtext::fold_byte_sums(&byte_sums(row, ncols, &what)?));
                let mut at = ncols + 8;
                for (k, &i) in stat_cols.iter().enumerate() {
                    if stat_kind(&plan.cols[i].ty) == Some(StatKind::Int) {
                        let sum: Option<String> = row.try_get(at, &what)?;
                        if let Some(v) = sum {
                            s.sums[i] += v.parse::<i128>().map_err(|_| {
                                Error::Usage(format!("{what}: sum {v:?} is not an integer"))
                            })?;
                        }
                        at += 1;
                    }
                    s.bounds[k] = [row.try_get(at, &what)?, row.try_get(at + 1, &what)?];
                    at += 2;
                }
                Ok(())
            },
        )
        .await?;
    let mut agg = state.agg;
    for (k, &i) in stat_cols.iter().enumerate() {
        let [min, max] = state.bounds[k].clone();
        if min.is_none() {
            continue;
        }
        agg.stat_texts[i] = match stat_kind(&plan.cols[i].ty) {
            Some(StatKind::Int) => [Some(state.sums[i].to_string()), min, max],
            _ => [None, min, max],
        };
    }
    Ok(agg)
}

/// Rows and hash sums per bucket, page by page.
pub async fn buckets(
    reader: &mut Reader<'_>,
    plan: &TablePlan,
    sizing: PageSizing,
) -> Result<Vec<(u64, u64)>> {
    let what = format!("verify {}: per-bucket scan", plan.target);
    let mut out = vec![(0u64, 0u64); BUCKETS];
    let sql = plan.bucket_sql();
    reader
        .pages(
            &plan.pager(sizing),
            &what,
            Some(&sql),
            &mut out,
            |_| Vec::new(),
            |out, page| {
                for r in &page.result {
                    let b: i32 = r.try_get(0, &what)?;
                    let n: i64 = r.try_get(1, &what)?;
                    let sum = rowtext::fold_byte_sums(&byte_sums(r, 2, &what)?);
                    let slot = out
                        .get_mut(b as usize)
                        .ok_or_else(|| Error::Usage(format!("{what}: bucket {b} out of range")))?;
                    slot.0 += n as u64;
                    slot.1 = slot.1.wrapping_add(sum);
                }
                Ok(())
            },
        )
        .await?;
    Ok(out)
}

/// The rows of `buckets`, by key text, page by page.
pub async fn rows(
    reader: &mut Reader<'_>,
    plan: &TablePlan,
    sizing: PageSizing,
    buckets: &[usize],
) -> Result<HashMap<String, Vec<Entry>>> {
    let what = format!("verify {}: rows of differing buckets", plan.target);
    let mut out: HashMap<String, Vec<Entry>> = HashMap::new();
    let sql = plan.list_sql(buckets);
    reader
        .pages(
            &plan.pager(sizing),
            &what,
            Some(&sql),
            &mut out,
            |_| Vec::new(),
            |out, page| {
                let (mut row_text, mut key_text) = (String::new(), String::new());
                for r in &page.result {
                    let texts = (0..plan.cols.len())
                        .map(|i| r.try_get(i, &what))
                        .collect::<Result<Vec<Option<String>>>>()?;
                    plan.texts(&texts, &mut row_text, &mut key_text);
                    let e = Entry {
                        key_display: plan.key_display(&texts),
                        old_key: plan.keep_old.and_then(|i| texts[i].clone()),
                        hash: rowtext::row_hash(&row_text),
                        texts,
                    };
                    out.entry(key_text.clone()).or_default().push(e);
                }
                Ok(())
            },
        )
        .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_and_buckets_use_no_bit_type() {
        assert_eq!(
            piece_sql("c"),
            "coalesce('V' || octet_length(p.\"c\"::text)::text || ':' || p.\"c\"::text, 'N')"
        );
        assert_eq!(bucket_sql("t"), "get_byte(decode(md5(t), 'hex'), 11)");
        assert!(!byte_sums_sql().contains("bit"));
    }
}
