//! What the stand-in needs inside each upstream database, installed on the first connection to
//! it: schema `sys` with DSQL's `sys.jobs` [REC §3.3] and procedure `sys.wait_for_job(text)`
//! [REC §3.4], and the stand-in's helpers (`sys.standin_raise`, `sys.version`,
//! `sys.current_setting`).
//!
//! Running twice: every object is `IF NOT EXISTS` or `CREATE OR REPLACE`, inside one transaction
//! that holds an advisory lock, so two stand-ins (or two first connections) install once each
//! without colliding; jobs already recorded stay.

use std::collections::HashSet;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::upstream::Target;

/// Advisory lock key of the install (any constant; "standin" in ASCII).
const LOCK_KEY: i64 = 0x0073_7461_6e64_696e;

const SQL: &str = r#"
CREATE SCHEMA IF NOT EXISTS sys;
CREATE TABLE IF NOT EXISTS sys.jobs (
    job_id text PRIMARY KEY,
    status text NOT NULL,
    details text,
    job_type text NOT NULL,
    class_id oid,
    object_id oid,
    object_name text,
    start_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz
);
CREATE OR REPLACE FUNCTION sys.standin_raise(code text, message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
END
$$;
CREATE OR REPLACE FUNCTION sys.version() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT 'PostgreSQL 16'::text $$;
CREATE OR REPLACE FUNCTION sys.current_setting(name text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE lower(name)
        WHEN 'server_version' THEN '16.15'
        WHEN 'server_version_num' THEN '160015'
        ELSE pg_catalog.current_setting(name)
    END
$$;
CREATE OR REPLACE FUNCTION sys.current_setting(name text, missing_ok boolean) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE lower(name)
        WHEN 'server_version' THEN '16.15'
        WHEN 'server_version_num' THEN '160015'
        ELSE pg_catalog.current_setting(name, missing_ok)
    END
$$;
CREATE OR REPLACE PROCEDURE sys.wait_for_job(job_id text)
LANGUAGE plpgsql AS $$
BEGIN
    -- The stand-in answers CALL sys.wait_for_job('<id>') and CALL sys.wait_for_job($1) itself;
    -- this body only runs for other argument expressions.
    IF job_id IS NULL OR job_id !~ '^[a-z2-7]{26}$' THEN
        RAISE EXCEPTION USING ERRCODE = '22P02', MESSAGE = 'Unable to convert text to UUID';
    END IF;
    RAISE EXCEPTION USING ERRCODE = '0A000',
        MESSAGE = 'the stand-in waits for a job named by a literal or a parameter only';
END
$$;
"#;

/// The databases installed by this process.
#[derive(Default)]
pub struct Installed {
    done: Mutex<HashSet<String>>,
}

impl Installed {
    /// Installs into `db` unless this process already did.
    pub async fn ensure(&self, target: &Target, db: &str) -> Result<()> {
        let mut done = self.done.lock().await;
        if done.contains(db) {
            return Ok(());
        }
        let client = target.admin(db).await?;
        let sql = format!("BEGIN; SELECT pg_advisory_xact_lock({LOCK_KEY}); {SQL}; COMMIT;");
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| Error::upstream(format!("install sys schema into database {db:?}"), e))?;
        done.insert(db.to_owned());
        Ok(())
    }
}
