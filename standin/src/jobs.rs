//! DSQL's asynchronous jobs: `CREATE INDEX ASYNC` and `ALTER TABLE ASYNC .. VALIDATE CONSTRAINT`
//! run in the background on the upstream, are recorded in `sys.jobs`, and are waited for by
//! `CALL sys.wait_for_job`.
//!
//! A job id is 16 random bytes in lower-case RFC 4648 base32 without padding, 26 characters
//! [REC §3.2]. A job is `submitted` until its statement ends upstream and at least
//! `min_job_duration` has passed, then `completed` with `details` NULL, or with the error in
//! `details` (status `completed` as the record shows [REC §3.3], or `failed` under the switch).
//! An index build is `CREATE INDEX CONCURRENTLY` on a connection of its own, so writers are not
//! blocked; a build that fails leaves no invalid index behind (it is dropped), so the statement
//! can be run again. Running a job twice: a second CREATE INDEX ASYNC of an existing name is
//! refused with PostgreSQL's 42P07 unless it says IF NOT EXISTS, which records a job that
//! completes at once.

use rand::RngCore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

use crate::config::{FailedJobStatus, Unknowns};
use crate::rules::{self, Refusal};
use crate::sql::{IndexJob, ValidateJob};
use crate::upstream::Target;

/// Times a job's statement runs when PostgreSQL breaks a deadlock by failing it. Concurrent
/// `CREATE INDEX CONCURRENTLY` builds upstream can deadlock each other (seen under load: two
/// probes' builds, `deadlock detected` in `details`); DSQL's builds do not, so the stand-in runs
/// the build again (its invalid index dropped first) instead of answering PostgreSQL's artefact.
const UPSTREAM_DEADLOCK_ATTEMPTS: u32 = 5;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A fresh job id.
pub fn new_job_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    encode(&bytes)
}

fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(26);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Whether `id` decodes to 16 bytes, as DSQL decodes it [REC §3.4: `22P02 Unable to convert
/// text to UUID`].
pub fn is_job_id(id: &str) -> bool {
    id.len() == 26 && id.bytes().all(|b| ALPHABET.contains(&b))
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed(String),
}

struct Job {
    db: String,
    /// The index a build creates (for `ADD CONSTRAINT .. USING INDEX`, [REC §4]).
    index: Option<String>,
    done: watch::Receiver<Option<Outcome>>,
}

/// The jobs of this stand-in.
pub struct Jobs {
    target: Target,
    unknowns: Unknowns,
    jobs: Mutex<HashMap<String, Job>>,
}

type Db = Arc<tokio_postgres::Client>;

/// A failed admin query as the refusal the statement gets (58000 when it never reached the
/// database).
fn refusal_of(e: &tokio_postgres::Error) -> Refusal {
    match e.as_db_error() {
        Some(d) => Refusal::new(d.code().code(), d.message()),
        None => Refusal::new("58000", e.to_string()),
    }
}

/// The quoted `schema.name` PostgreSQL would resolve (`public` when the schema is unnamed).
fn qualified(schema: Option<&str>, name: &str) -> String {
    format!("{}.{}", quote(schema.unwrap_or("public")), quote(name))
}

pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl Jobs {
    pub fn new(target: Target, unknowns: Unknowns) -> Jobs {
        Jobs {
            target,
            unknowns,
            jobs: Mutex::new(HashMap::new()),
        }
    }

    async fn admin(&self, db: &str) -> Result<Db, Refusal> {
        self.target
            .admin(db)
            .await
            .map(Arc::new)
            .map_err(|e| Refusal::new("58000", e.to_string()))
    }

    /// Starts an index build; answers its job id, or the error DSQL would give at once.
    pub async fn submit_index(
        self: &Arc<Self>,
        db: &str,
        job: &IndexJob,
    ) -> Result<String, Refusal> {
        let admin = self.admin(db).await?;
        let table = qualified(job.schema.as_deref(), &job.table);
        let row = admin
            .query_opt(
                "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.oid = to_regclass($1)",
                &[&table],
            )
            .await
            .map_err(|e| refusal_of(&e))?;
        let Some(row) = row else {
            return Err(Refusal::new(
                "42P01",
                format!("relation \"{}\" does not exist", job.table),
            ));
        };
        let schema: String = row.get(0);
        let (name, exists) = match &job.name {
            Some(n) => (n.clone(), self.exists(&admin, &schema, n).await),
            None => {
                let base = default_index_name(&job.table, &job.columns);
                let mut name = base.clone();
                let mut n = 0;
                while self.exists(&admin, &schema, &name).await {
                    n += 1;
                    name = format!("{base}{n}");
                }
                (name, false)
            }
        };
        if exists && !job.if_not_exists {
            return Err(Refusal::new(
                "42P07",
                format!("relation \"{name}\" already exists"),
            ));
        }
        let build = job.build_sql.replacen(
            "CONCURRENTLY",
            &format!(
                "CONCURRENTLY {}",
                if job.name.is_none() {
                    quote(&name)
                } else {
                    String::new()
                }
            ),
            1,
        );
        let object = format!("{schema}.{name}");
        let statement = (!exists).then_some(build);
        self.start(
            db,
            admin,
            "INDEX_BUILD",
            &object,
            Some(name),
            statement,
            Some(schema),
        )
        .await
    }

    /// Starts a constraint validation; answers its job id.
    pub async fn submit_validate(
        self: &Arc<Self>,
        db: &str,
        job: &ValidateJob,
    ) -> Result<String, Refusal> {
        let admin = self.admin(db).await?;
        let schema = job.schema.clone().unwrap_or_else(|| "public".to_owned());
        let object = format!("{schema}.{}", job.table);
        self.start(
            db,
            admin,
            "VALIDATE_CONSTRAINT",
            &object,
            None,
            Some(job.build_sql.clone()),
            None,
        )
        .await
    }

    async fn exists(&self, admin: &Db, schema: &str, name: &str) -> bool {
        admin
            .query_opt(
                "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&schema, &name],
            )
            .await
            .ok()
            .flatten()
            .is_some()
    }

    #[allow(clippy::too_many_arguments)]
    async fn start(
        self: &Arc<Self>,
        db: &str,
        admin: Db,
        job_type: &str,
        object: &str,
        index: Option<String>,
        statement: Option<String>,
        drop_on_failure: Option<String>,
    ) -> Result<String, Refusal> {
        let id = new_job_id();
        admin
            .execute(
                "INSERT INTO sys.jobs (job_id, status, job_type, class_id, object_name, start_time) \
                 VALUES ($1, 'submitted', $2, 1259, $3, now())",
                &[&id, &job_type, &object],
            )
            .await
            .map_err(|e| refusal_of(&e))?;
        let (tx, rx) = watch::channel(None);
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(
                id.clone(),
                Job {
                    db: db.to_owned(),
                    index: index.clone(),
                    done: rx,
                },
            );
        }
        let this = Arc::clone(self);
        let (db, id2) = (db.to_owned(), id.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let drop = match (&drop_on_failure, &index) {
                (Some(schema), Some(name)) => Some(format!(
                    "DROP INDEX CONCURRENTLY IF EXISTS {}",
                    qualified(Some(schema), name)
                )),
                _ => None,
            };
            let mut outcome = Outcome::Succeeded;
            if let Some(sql) = statement {
                for attempt in 1..=UPSTREAM_DEADLOCK_ATTEMPTS {
                    let (result, deadlock) = this.run(&db, &sql).await;
                    outcome = result;
                    if let (Outcome::Failed(_), Some(drop)) = (&outcome, &drop) {
                        let _ = admin.batch_execute(drop).await;
                    }
                    if !deadlock || attempt == UPSTREAM_DEADLOCK_ATTEMPTS {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
                }
            }
            let min = this.unknowns.min_job_duration;
            if let Some(rest) = min.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
            let (status, details) = match &outcome {
                Outcome::Succeeded => ("completed", None),
                Outcome::Failed(m) => (
                    match this.unknowns.failed_job_status {
                        FailedJobStatus::Completed => "completed",
                        FailedJobStatus::Failed => "failed",
                    },
                    Some(m.clone()),
                ),
            };
            let _ = admin
                .execute(
                    "UPDATE sys.jobs SET status = $2, details = $3, update_time = now(), \
                     object_name = NULL WHERE job_id = $1",
                    &[&id2, &status, &details],
                )
                .await;
            tx.send_replace(Some(outcome));
        });
        Ok(id)
    }

    /// Runs a job's statement upstream; also answers whether it failed on an upstream deadlock.
    async fn run(&self, db: &str, sql: &str) -> (Outcome, bool) {
        match self.target.admin(db).await {
            Err(e) => (Outcome::Failed(e.to_string()), false),
            Ok(c) => match c.batch_execute(sql).await {
                Ok(()) => (Outcome::Succeeded, false),
                Err(e) => {
                    let refusal = refusal_of(&e);
                    let deadlock = refusal.code == "40P01";
                    (Outcome::Failed(refusal.message), deadlock)
                }
            },
        }
    }

    /// Records the DROP job DSQL writes after a DROP TABLE [REC §3.1, §3.3] (completed at
    /// once). A failure to record it is logged, not answered: the DROP itself succeeded.
    pub async fn record_drop(&self, db: &str) {
        let Ok(admin) = self.admin(db).await else {
            return;
        };
        if let Err(e) = admin
            .execute(
                "INSERT INTO sys.jobs (job_id, status, job_type, class_id, start_time, update_time) \
                 VALUES ($1, 'completed', 'DROP', 1259, now(), now())",
                &[&new_job_id()],
            )
            .await
        {
            tracing::warn!("stand-in could not record a DROP job: {e}");
        }
    }

    /// Whether an index of `db` named `index` is still being built.
    pub fn index_pending(&self, db: &str, index: &str) -> bool {
        let Ok(jobs) = self.jobs.lock() else {
            return false;
        };
        jobs.values()
            .any(|j| j.db == db && j.index.as_deref() == Some(index) && j.done.borrow().is_none())
    }

    /// Waits for job `id` of `db`; answers whether it succeeded.
    pub async fn wait(&self, db: &str, id: &str) -> Result<bool, Refusal> {
        if !is_job_id(id) {
            return Err(Refusal::new(rules::INVALID_TEXT, rules::JOB_ID_NOT_UUID));
        }
        let rx = self
            .jobs
            .lock()
            .ok()
            .and_then(|jobs| jobs.get(id).map(|j| j.done.clone()));
        if let Some(mut rx) = rx {
            loop {
                if let Some(o) = rx.borrow_and_update().clone() {
                    return Ok(o == Outcome::Succeeded);
                }
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
        // A job of another stand-in or an earlier run: poll its row.
        let admin = self.admin(db).await?;
        loop {
            let row = admin
                .query_opt(
                    "SELECT status, details FROM sys.jobs WHERE job_id = $1",
                    &[&id],
                )
                .await
                .map_err(|e| refusal_of(&e))?;
            let Some(row) = row else {
                // NOT RECORDED: a well-formed id of no job. CHOSEN: 42704.
                return Err(Refusal::new(
                    rules::UNDEFINED_OBJECT,
                    format!("job \"{id}\" does not exist"),
                ));
            };
            let status: String = row.get(0);
            let details: Option<String> = row.get(1);
            if status != "submitted" && status != "processing" {
                return Ok(status == "completed" && details.is_none());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// PostgreSQL's default index name: `<table>_<col>[_<col>...]_idx`, cut to 63 bytes.
pub fn default_index_name(table: &str, columns: &[String]) -> String {
    let mut name = table.to_owned();
    for c in columns {
        name.push('_');
        name.push_str(c);
    }
    name.push_str("_idx");
    if name.len() > 63 {
        let keep = 63 - "_idx".len();
        let mut cut = keep;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name = format!("{}_idx", &name[..cut]);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_26_lower_case_base32_characters() {
        let id = new_job_id();
        assert_eq!(id.len(), 26);
        assert!(is_job_id(&id), "{id}");
        assert_eq!(encode(&[0u8; 16]), "a".repeat(26));
        assert!(!is_job_id("no-such-job"));
        assert!(is_job_id("qfzv5uemkrg2lbczil2fim3o2q"));
    }

    #[test]
    fn default_names_follow_postgresql() {
        assert_eq!(
            default_index_name("baseline_idx", &["value".into()]),
            "baseline_idx_value_idx"
        );
        let long = default_index_name(&"t".repeat(70), &["c".into()]);
        assert_eq!(long.len(), 63);
        assert!(long.ends_with("_idx"));
    }
}
