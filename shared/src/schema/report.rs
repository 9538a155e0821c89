//! The schema report: every source object with what the migration does to it.
//!
//! `plan` prints it and writes it as `schema-report.json` beside the mapping. Each line says
//! `carried`, `changed` (how) or `dropped` (why, and what to do instead); nothing the source
//! holds is left out without a line.

use serde::Serialize;
use std::collections::BTreeMap;

/// The kinds of source object the report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Table,
    ColumnDefault,
    Constraint,
    Index,
    View,
    Sequence,
    Trigger,
    Function,
    Type,
    Extension,
    Comment,
}

impl ReportKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportKind::Table => "table",
            ReportKind::ColumnDefault => "column default",
            ReportKind::Constraint => "constraint",
            ReportKind::Index => "index",
            ReportKind::View => "view",
            ReportKind::Sequence => "sequence",
            ReportKind::Trigger => "trigger",
            ReportKind::Function => "function",
            ReportKind::Type => "type",
            ReportKind::Extension => "extension",
            ReportKind::Comment => "comment",
        }
    }
}

/// What happens to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Carried,
    Changed,
    Dropped,
}

/// One source object and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportLine {
    pub kind: ReportKind,
    /// The object: `sales.orders`, `sales.orders.note DEFAULT ''::text`, `sales.orders_qty_check`.
    pub name: String,
    pub outcome: Outcome,
    /// How it changed, or why it is dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// What the user should do instead (dropped objects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub todo: Option<String>,
}

/// Carried, changed and dropped objects of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub carried: usize,
    pub changed: usize,
    pub dropped: usize,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaReport {
    /// Per kind (`table`, `column default`, ...), how many objects had each outcome.
    pub counts: BTreeMap<String, Counts>,
    pub objects: Vec<ReportLine>,
}

impl SchemaReport {
    pub fn carried(&mut self, kind: ReportKind, name: impl Into<String>) {
        self.push(kind, name, Outcome::Carried, None, None);
    }

    pub fn changed(&mut self, kind: ReportKind, name: impl Into<String>, how: impl Into<String>) {
        self.push(kind, name, Outcome::Changed, Some(how.into()), None);
    }

    pub fn dropped(
        &mut self,
        kind: ReportKind,
        name: impl Into<String>,
        why: impl Into<String>,
        todo: impl Into<String>,
    ) {
        self.push(
            kind,
            name,
            Outcome::Dropped,
            Some(why.into()),
            Some(todo.into()),
        );
    }

    fn push(
        &mut self,
        kind: ReportKind,
        name: impl Into<String>,
        outcome: Outcome,
        why: Option<String>,
        todo: Option<String>,
    ) {
        let c = self.counts.entry(kind.as_str().to_string()).or_default();
        match outcome {
            Outcome::Carried => c.carried += 1,
            Outcome::Changed => c.changed += 1,
            Outcome::Dropped => c.dropped += 1,
        }
        self.objects.push(ReportLine {
            kind,
            name: name.into(),
            outcome,
            why,
            todo,
        });
    }

    /// The lines of one outcome, as the printed report shows them.
    pub fn lines(&self, outcome: Outcome) -> Vec<String> {
        self.objects
            .iter()
            .filter(|l| l.outcome == outcome)
            .map(|l| {
                let mut s = format!("{} {}", l.kind.as_str(), l.name);
                if let Some(why) = &l.why {
                    s.push_str(": ");
                    s.push_str(why);
                }
                if let Some(todo) = &l.todo {
                    s.push_str(" (");
                    s.push_str(todo);
                    s.push(')');
                }
                s
            })
            .collect()
    }

    /// `kind: carried/changed/dropped` per kind, one line each.
    pub fn summary(&self) -> Vec<String> {
        self.counts
            .iter()
            .map(|(kind, c)| {
                format!(
                    "{kind}: {} carried, {} changed, {} dropped",
                    c.carried, c.changed, c.dropped
                )
            })
            .collect()
    }
}
