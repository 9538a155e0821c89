//! DSQL's asynchronous DDL jobs: their ids, their state in `sys.jobs`, and the wait.
//!
//! What a real cluster answered (dsql-recorded.md §3.2-3.4): `CREATE INDEX ASYNC` and `ALTER
//! TABLE ASYNC .. VALIDATE CONSTRAINT` answer one row with a `job_id` column, 26 lower-case
//! base32 characters; `sys.jobs` lists the job (`status` `submitted` then `completed`, `details`,
//! `object_name` = `schema.object`); `sys.wait_for_job(text)` is a procedure: `CALL` with a
//! literal id (`SELECT` is 42809, a subquery argument 0A000), in autocommit. A job can end
//! `completed` with its error in `details`: a job succeeded only when it is `completed` and its
//! `details` are NULL. What a successful CALL returns is not recorded (AWS documents one boolean
//! row): any row is read, and `sys.jobs` is always read again afterwards.

use crate::error::{Error, Result};

/// A DSQL job id: 26 characters of lower-case RFC 4648 base32 (16 bytes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    /// Checks the shape: an id is later written into SQL as a literal, so nothing else passes.
    pub fn parse(text: &str) -> Result<JobId, String> {
        let ok = text.len() == 26
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
        if ok {
            Ok(JobId(text.to_string()))
        } else {
            Err(format!(
                "job id {text:?} is not 26 lower-case base32 characters"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JobId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        JobId::parse(&s)
    }
}

impl From<JobId> for String {
    fn from(j: JobId) -> String {
        j.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job as `sys.jobs` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum JobState {
    /// Not finished: `submitted` (or any status other than the ones below).
    Pending { status: String },
    /// `completed` with NULL `details`.
    Succeeded,
    /// `completed` with `details` (DSQL's error), or `failed`/`cancelled`.
    Failed { status: String, details: String },
    /// `sys.jobs` has no row for the id.
    Missing,
}

impl JobState {
    /// Reads a `sys.jobs` row's `status` and `details`.
    pub fn from_row(status: &str, details: Option<&str>) -> JobState {
        let status = status.trim().to_ascii_lowercase();
        match (status.as_str(), details) {
            ("completed", None) => JobState::Succeeded,
            ("completed" | "failed" | "cancelled" | "canceled", d) => JobState::Failed {
                details: d.unwrap_or("no details").to_string(),
                status,
            },
            _ => JobState::Pending { status },
        }
    }

    /// True once the job will not change any more.
    pub fn is_final(&self) -> bool {
        !matches!(self, JobState::Pending { .. })
    }
}

/// The job id in the answer of a statement that submits a job: the `job_id` column (or the only
/// column) of its one row. `None` when there is no row (`IF NOT EXISTS` found the object).
pub fn job_in_answer(
    messages: &[tokio_postgres::SimpleQueryMessage],
) -> Result<Option<JobId>, String> {
    for m in messages {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = m {
            let at = row
                .columns()
                .iter()
                .position(|c| c.name() == "job_id")
                .unwrap_or(0);
            return match row.get(at) {
                Some(text) => JobId::parse(text).map(Some),
                None => Err("the answer's job_id is NULL".into()),
            };
        }
    }
    Ok(None)
}

/// `SELECT .. FROM sys.jobs WHERE job_id = '<id>'`: the id is validated base32, so a literal.
pub fn status_sql(job: &JobId) -> String {
    format!(
        "SELECT status::text, details::text FROM sys.jobs WHERE job_id::text = '{}'",
        job.as_str()
    )
}

/// `CALL sys.wait_for_job('<id>')`: a literal, never a bind parameter or a subquery.
pub fn wait_sql(job: &JobId) -> String {
    format!("CALL sys.wait_for_job('{}')", job.as_str())
}

/// The newest job for an object, by the names `sys.jobs.object_name` may give it.
pub const FIND_SQL: &str = "SELECT job_id::text, status::text, details::text FROM sys.jobs \
     WHERE object_name::text IN ($1::text, $2::text) ORDER BY start_time DESC NULLS LAST LIMIT 1";

/// The first row of a simple query's answer, as texts (`None`: the answer has no row).
async fn first_row(
    client: &tokio_postgres::Client,
    sql: &str,
    what: String,
) -> Result<Option<Vec<Option<String>>>> {
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| Error::statement(what, sql, e))?;
    Ok(messages.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => {
            Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
        }
        _ => None,
    }))
}

/// The state of `job` (one short read, no waiting: a poll loop's step).
pub async fn status(client: &tokio_postgres::Client, job: &JobId) -> Result<JobState> {
    let row = first_row(
        client,
        &status_sql(job),
        format!("read the state of job {job}"),
    )
    .await?;
    Ok(match row.as_deref() {
        Some([status, details, ..]) => {
            JobState::from_row(status.as_deref().unwrap_or(""), details.as_deref())
        }
        _ => JobState::Missing,
    })
}

/// The newest job whose object is `schema.object` (unquoted, as recorded, or quoted); `what`
/// names the object in errors.
pub async fn find(
    client: &tokio_postgres::Client,
    what: &str,
    schema: &str,
    object: &str,
) -> Result<Option<(JobId, JobState)>> {
    let plain = format!("{schema}.{object}");
    let quoted = crate::ddl::qualified(schema, object);
    let rows = client
        .query(FIND_SQL, &[&plain, &quoted])
        .await
        .map_err(|e| {
            Error::statement(format!("{what}: look for its job in sys.jobs"), FIND_SQL, e)
        })?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let id: Option<String> = row.get(0);
    let Some(id) = id.and_then(|i| JobId::parse(&i).ok()) else {
        return Ok(None);
    };
    let status: Option<String> = row.get(1);
    let details: Option<String> = row.get(2);
    Ok(Some((
        id,
        JobState::from_row(status.as_deref().unwrap_or(""), details.as_deref()),
    )))
}

/// `CALL sys.wait_for_job('<id>')`: blocks until the job ends. Returns the boolean of its row
/// when it answers one (`t`/`f`), `None` when it answers only the `CALL` tag.
pub async fn call_wait(client: &tokio_postgres::Client, job: &JobId) -> Result<Option<bool>> {
    let row = first_row(client, &wait_sql(job), format!("wait for job {job}")).await?;
    Ok(row
        .and_then(|r| r.into_iter().next().flatten())
        .map(|v| matches!(v.as_str(), "t" | "true" | "1")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_26_lower_case_base32_characters() {
        for ok in ["qfzv5uemkrg2lbczil2fim3o2q", "77e6id3hjbasddybtihl43gega"] {
            assert_eq!(JobId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "no-such-job",
            "QFZV5UEMKRG2LBCZIL2FIM3O2Q",
            "qfzv5uemkrg2lbczil2fim3o2",
            "qfzv5uemkrg2lbczil2fim3o2qq",
            "qfzv5uemkrg2lbczil2fim3o1q",
            "qfzv5uemkrg2lbczil2fim3o'q",
        ] {
            assert!(JobId::parse(bad).is_err(), "{bad:?}");
        }
        let job = JobId::parse("qfzv5uemkrg2lbczil2fim3o2q").unwrap();
        assert_eq!(
            wait_sql(&job),
            "CALL sys.wait_for_job('qfzv5uemkrg2lbczil2fim3o2q')"
        );
    }

    #[test]
    fn completed_is_success_only_without_details() {
        assert_eq!(JobState::from_row("completed", None), JobState::Succeeded);
        assert_eq!(
            JobState::from_row("completed", Some("relation \"public.t\" does not exist")),
            JobState::Failed {
                status: "completed".into(),
                details: "relation \"public.t\" does not exist".into()
            }
        );
        assert!(matches!(
            JobState::from_row("failed", None),
            JobState::Failed { .. }
        ));
        assert_eq!(
            JobState::from_row("submitted", None),
            JobState::Pending {
                status: "submitted".into()
            }
        );
        assert!(!JobState::from_row("processing", None).is_final());
    }
}
