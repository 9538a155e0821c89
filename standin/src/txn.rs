//! A session's transaction as DSQL's rules see it: rows and bytes written, age, whether it ran
//! DDL or DML, and whether a conflict has doomed it.
//!
//! A transaction is an explicit block (BEGIN .. COMMIT/ROLLBACK) or, outside one, the statements
//! up to the next Sync: one autocommit statement, a multi-statement simple query [REC §5.3], or
//! several Executes pipelined before one Sync. Its age runs from its first statement.

use std::time::{Duration, Instant};

use crate::sql::Kind;

/// Counts and flags of the current transaction.
#[derive(Debug, Default)]
pub struct Txn {
    /// When its first statement ran; None: no statement yet.
    pub started: Option<Instant>,
    pub rows: u64,
    pub bytes: u64,
    pub ddl: bool,
    pub wrote: bool,
    pub read: bool,
    /// A write lost a conflict: COMMIT fails with 40001 (OC000) [REC §6].
    pub doomed: bool,
    /// A statement was stopped or refused because the age limit passed.
    pub aged: bool,
}

impl Txn {
    /// Marks the start of a statement (the first one starts the transaction's clock).
    pub fn statement(&mut self, now: Instant) {
        self.started.get_or_insert(now);
    }

    /// Whether the transaction is older than `limit`.
    pub fn expired(&self, limit: Duration, now: Instant) -> bool {
        self.started
            .is_some_and(|s| now.saturating_duration_since(s) > limit)
    }

    /// When the transaction reaches `limit` (for stopping a running statement).
    pub fn deadline(&self, limit: Duration) -> Option<Instant> {
        self.started.map(|s| s + limit)
    }

    /// The refusal a statement of kind `kind` gets from the DDL rules [REC §5.3], if any.
    /// `reads_are_dml`: the switch [`crate::Unknowns::reads_count_as_dml`].
    pub fn ddl_rule(&self, kind: &Kind, reads_are_dml: bool) -> Option<&'static str> {
        let dml_before = self.wrote || (reads_are_dml && self.read);
        if kind.is_ddl() {
            if self.ddl {
                return Some(crate::rules::MULTIPLE_DDL);
            }
            if dml_before {
                return Some(crate::rules::DDL_AND_DML);
            }
        }
        let is_dml =
            kind.is_write() || (reads_are_dml && matches!(kind, Kind::Read | Kind::LockingRead));
        if is_dml && self.ddl {
            return Some(crate::rules::DDL_AND_DML);
        }
        None
    }

    /// Records a statement that ran (not refused).
    pub fn ran(&mut self, kind: &Kind) {
        if kind.is_ddl() {
            self.ddl = true;
        }
        if kind.is_write() {
            self.wrote = true;
        }
        if matches!(kind, Kind::Read | Kind::LockingRead) {
            self.read = true;
        }
    }

    pub fn reset(&mut self) {
        *self = Txn::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Write;

    #[test]
    fn ddl_rules_follow_the_record() {
        let ddl = Kind::Ddl;
        let insert = Kind::Write(Write::Insert {
            values_rows: Some(1),
        });
        let mut t = Txn::default();
        assert_eq!(t.ddl_rule(&ddl, false), None);
        t.ran(&ddl);
        assert_eq!(t.ddl_rule(&ddl, false), Some(crate::rules::MULTIPLE_DDL));
        assert_eq!(t.ddl_rule(&insert, false), Some(crate::rules::DDL_AND_DML));
        let mut t = Txn::default();
        t.ran(&insert);
        assert_eq!(t.ddl_rule(&ddl, false), Some(crate::rules::DDL_AND_DML));
        let mut t = Txn::default();
        t.ran(&Kind::Read);
        assert_eq!(t.ddl_rule(&ddl, false), None);
        assert_eq!(t.ddl_rule(&ddl, true), Some(crate::rules::DDL_AND_DML));
    }
}
