//! The pipeline's metrics, as CloudWatch Embedded Metric Format (EMF) lines: one JSON object per
//! line on stdout, whose `_aws` member tells CloudWatch Logs which members are metrics. Lambda
//! sends stdout to the function's log group, and CloudWatch extracts the metrics from it: no
//! `PutMetricData` call, no extra permission, nothing to wait for.
//!
//! | step | line | dimensions | metrics |
//! |---|---|---|---|
//! | `load-chunk` | one per chunk | `Migration, Table` and `Migration` | `RowsWritten`, `RowsAlreadyCommitted`, `Batches`, `BytesWritten`, `Retries`, `Conflicts`, `ConnectionRetries`, `ThrottleRetries`, `ExpiredRetries`, `ChunkSeconds` |
//! | `verify` | one per table | `Migration, Table` | `RowsVerified`, `MissingRows`, `ExtraRows`, `DifferingRows`, `Mismatches`, `TableVerifySeconds` |
//! | `verify` | one per run | `Migration` | `VerifyOk` (1 or 0), `TablesMismatched`, `VerifySeconds` |
//!
//! `Migration` is the mapping's migration id, `Table` the source table (`schema.table`): a few
//! dimension values per migration, never one per chunk or per execution. The chunk and the
//! step are plain members of the line (searchable in Logs Insights, not dimensions).
//!
//! The namespace is `METRICS_NAMESPACE` (the templates set it), [`DEFAULT_NAMESPACE`] otherwise.
//!
//! A chunk that stops with an error prints its line too, without `ChunkSeconds` and with a
//! `stopped` member naming the error: the figures up to the stop, so the conflicts and throttles
//! that exhausted it are counted.
//!
//! Running twice: a retried or redriven chunk prints its line again, with the rows the first run
//! committed under `RowsAlreadyCommitted`, so `RowsWritten` still sums to the rows loaded; a
//! verify run again prints its lines again (a dashboard reads the latest).

use crate::load::ChunkOutcome;
use crate::verify::VerifyReport;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// The namespace when `METRICS_NAMESPACE` is unset or empty.
pub const DEFAULT_NAMESPACE: &str = "snap2dsql";
/// The environment variable naming the namespace.
pub const NAMESPACE_VAR: &str = "METRICS_NAMESPACE";

/// Dimension: the mapping's migration id.
pub const MIGRATION: &str = "Migration";
/// Dimension: the source table, `schema.table`.
pub const TABLE: &str = "Table";

pub const ROWS_WRITTEN: &str = "RowsWritten";
pub const ROWS_ALREADY_COMMITTED: &str = "RowsAlreadyCommitted";
pub const BATCHES: &str = "Batches";
pub const BYTES_WRITTEN: &str = "BytesWritten";
pub const RETRIES: &str = "Retries";
pub const CONFLICTS: &str = "Conflicts";
pub const CONNECTION_RETRIES: &str = "ConnectionRetries";
pub const THROTTLE_RETRIES: &str = "ThrottleRetries";
pub const EXPIRED_RETRIES: &str = "ExpiredRetries";
pub const CHUNK_SECONDS: &str = "ChunkSeconds";
pub const ROWS_VERIFIED: &str = "RowsVerified";
pub const MISSING_ROWS: &str = "MissingRows";
pub const EXTRA_ROWS: &str = "ExtraRows";
pub const DIFFERING_ROWS: &str = "DifferingRows";
pub const MISMATCHES: &str = "Mismatches";
pub const TABLE_VERIFY_SECONDS: &str = "TableVerifySeconds";
pub const VERIFY_OK: &str = "VerifyOk";
pub const TABLES_MISMATCHED: &str = "TablesMismatched";
pub const VERIFY_SECONDS: &str = "VerifySeconds";

/// Every metric name the pipeline emits (the dashboards and alarms name only these).
pub const ALL: [&str; 19] = [
    ROWS_WRITTEN,
    ROWS_ALREADY_COMMITTED,
    BATCHES,
    BYTES_WRITTEN,
    RETRIES,
    CONFLICTS,
    CONNECTION_RETRIES,
    THROTTLE_RETRIES,
    EXPIRED_RETRIES,
    CHUNK_SECONDS,
    ROWS_VERIFIED,
    MISSING_ROWS,
    EXTRA_ROWS,
    DIFFERING_ROWS,
    MISMATCHES,
    TABLE_VERIFY_SECONDS,
    VERIFY_OK,
    TABLES_MISMATCHED,
    VERIFY_SECONDS,
];

/// EMF's limits (the specification): at most 100 metrics per directive, 30 dimensions per
/// dimension set, names of 1 to 255 characters.
pub const MAX_METRICS: usize = 100;
pub const MAX_DIMENSIONS: usize = 30;
pub const MAX_NAME: usize = 255;

/// A CloudWatch unit (the subset the pipeline uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One EMF log line: a namespace, its dimension sets and values, metrics, and plain members.
#[derive(Debug, Clone, PartialEq)]
pub struct EmfLine {
    pub namespace: String,
    /// Milliseconds since the epoch: the metrics' time.
    pub timestamp_ms: u64,
    /// Each set is a list of dimension names; every name has a value in `dimensions`.
    pub dimension_sets: Vec<Vec<&'static str>>,
    pub dimensions: Vec<(&'static str, String)>,
    pub metrics: Vec<(&'static str, Unit, f64)>,
    /// Members that are not metrics (the step, the chunk): searchable, not aggregated.
    pub properties: Vec<(&'static str, Value)>,
}

impl EmfLine {
    /// The line's JSON object: `_aws` with the metric directive, then every dimension, metric
    /// and property as a member of the root.
    pub fn to_json(&self) -> Value {
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": self.timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": self.dimension_sets,
                    "Metrics": self.metrics.iter()
                        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
                        .collect::<Vec<_>>(),
                }],
            }),
        );
        for (k, v) in &self.properties {
            root.insert((*k).into(), v.clone());
        }
        for (k, v) in &self.dimensions {
            root.insert((*k).into(), Value::String(v.clone()));
        }
        for (k, _, v) in &self.metrics {
            root.insert((*k).into(), json!(v));
        }
        Value::Object(root)
    }

    /// Writes the line to stdout, where Lambda's log capture finds it.
    pub fn print(&self) {
        println!("{}", self.to_json());
    }
}

/// Why `namespace` cannot be a CloudWatch namespace of ours, or `Ok`: 1 to 255 ASCII characters,
/// not starting with `AWS/` (AWS's own namespaces).
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    if namespace.is_empty() || namespace.len() > MAX_NAME || !namespace.is_ascii() {
        return Err(format!(
            "namespace {namespace:?} is not 1 to {MAX_NAME} ASCII characters"
        ));
    }
    if namespace.starts_with("AWS/") {
        return Err(format!("namespace {namespace:?}: AWS/ is AWS's own"));
    }
    Ok(())
}

/// The CloudWatch units (`MetricDatum.Unit`); EMF takes no other.
pub const CLOUDWATCH_UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// The namespace of this process's metrics: `METRICS_NAMESPACE`, read once.
pub fn namespace() -> &'static str {
    static NAMESPACE: LazyLock<String> = LazyLock::new(|| {
        std::env::var(NAMESPACE_VAR)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.into())
    });
    &NAMESPACE
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `load-chunk`'s line for one chunk outcome (a chunk is of one table).
pub fn chunk_line(namespace: &str, outcome: &ChunkOutcome, timestamp_ms: u64) -> EmfLine {
    let mut line = figures_line(namespace, outcome, timestamp_ms);
    line.metrics
        .push((CHUNK_SECONDS, Unit::Seconds, outcome.seconds));
    line
}

/// `load-chunk`'s line for a chunk that stopped with an error (`error_type`, the step's error
/// name): what it did before it stopped ([`crate::load::with_stopped_figures`]), so the
/// conflicts and throttles that exhausted it count. No `ChunkSeconds`: the dashboard counts
/// loaded chunks by it. The member `stopped` names the error.
pub fn stopped_chunk_line(
    namespace: &str,
    figures: &ChunkOutcome,
    error_type: &str,
    timestamp_ms: u64,
) -> EmfLine {
    let mut line = figures_line(namespace, figures, timestamp_ms);
    line.properties.push(("stopped", json!(error_type)));
    line
}

/// A chunk's dimensions, its counts and its step and chunk members.
fn figures_line(namespace: &str, outcome: &ChunkOutcome, timestamp_ms: u64) -> EmfLine {
    let r = &outcome.retries_by_class;
    let count = |name, v: u64| (name, Unit::Count, v as f64);
    EmfLine {
        namespace: namespace.into(),
        timestamp_ms,
        dimension_sets: vec![vec![MIGRATION, TABLE], vec![MIGRATION]],
        dimensions: vec![
            (MIGRATION, outcome.migration.clone()),
            (TABLE, outcome.table.clone()),
        ],
        metrics: vec![
            count(ROWS_WRITTEN, outcome.rows_written),
            count(ROWS_ALREADY_COMMITTED, outcome.rows_already_committed),
            count(BATCHES, outcome.batches_written),
            (BYTES_WRITTEN, Unit::Bytes, outcome.bytes_written as f64),
            count(RETRIES, outcome.retries),
            count(CONFLICTS, r.conflict),
            count(CONNECTION_RETRIES, r.connection),
            count(THROTTLE_RETRIES, r.throttled),
            count(EXPIRED_RETRIES, r.expired),
        ],
        properties: vec![
            ("step", json!("load-chunk")),
            ("chunk", json!(outcome.chunk)),
        ],
    }
}

/// What `verify`'s metrics say about a run: the figures of its report, per table. A type of its
/// own so a step that combines partial verifications can build it too.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyFigures {
    pub migration: String,
    pub ok: bool,
    pub seconds: f64,
    pub tables: Vec<TableFigures>,
}

/// One table's verification figures.
#[derive(Debug, Clone, PartialEq)]
pub struct TableFigures {
    /// The source table, `schema.table`.
    pub table: String,
    pub rows_verified: u64,
    pub missing: u64,
    pub extra: u64,
    pub differing: u64,
    pub seconds: f64,
    pub matched: bool,
}

impl VerifyFigures {
    /// The figures of a verification report.
    pub fn of(report: &VerifyReport) -> VerifyFigures {
        VerifyFigures {
            migration: report.migration.clone(),
            ok: report.ok,
            seconds: report.seconds,
            tables: report
                .tables
                .iter()
                .map(|t| TableFigures {
                    table: t.source.clone(),
                    rows_verified: t.rows_in_export,
                    missing: t.missing,
                    extra: t.extra,
                    differing: t.differing,
                    seconds: t.seconds,
                    matched: t.status == crate::verify::Status::Match,
                })
                .collect(),
        }
    }
}

/// `verify`'s lines: one per table, then one for the whole run.
pub fn verify_lines(namespace: &str, run: &VerifyFigures, timestamp_ms: u64) -> Vec<EmfLine> {
    let line = |dimension_sets, dimensions, metrics| EmfLine {
        namespace: namespace.into(),
        timestamp_ms,
        dimension_sets,
        dimensions,
        metrics,
        properties: vec![("step", json!("verify"))],
    };
    let count = |name, v: u64| (name, Unit::Count, v as f64);
    let mut lines: Vec<EmfLine> = run
        .tables
        .iter()
        .map(|t| {
            line(
                vec![vec![MIGRATION, TABLE]],
                vec![(MIGRATION, run.migration.clone()), (TABLE, t.table.clone())],
                vec![
                    count(ROWS_VERIFIED, t.rows_verified),
                    count(MISSING_ROWS, t.missing),
                    count(EXTRA_ROWS, t.extra),
                    count(DIFFERING_ROWS, t.differing),
                    count(MISMATCHES, t.missing + t.extra + t.differing),
                    (TABLE_VERIFY_SECONDS, Unit::Seconds, t.seconds),
                ],
            )
        })
        .collect();
    let mismatched = run.tables.iter().filter(|t| !t.matched).count();
    lines.push(line(
        vec![vec![MIGRATION]],
        vec![(MIGRATION, run.migration.clone())],
        vec![
            count(VERIFY_OK, u64::from(run.ok)),
            count(TABLES_MISMATCHED, mismatched as u64),
            (VERIFY_SECONDS, Unit::Seconds, run.seconds),
        ],
    ));
    lines
}

/// Prints `load-chunk`'s line for `outcome` in this process's namespace.
pub fn emit_chunk(outcome: &ChunkOutcome) {
    chunk_line(namespace(), outcome, now_ms()).print();
}

/// Prints `load-chunk`'s line for a chunk that stopped with `error_type`, in this process's
/// namespace.
pub fn emit_stopped_chunk(figures: &ChunkOutcome, error_type: &str) {
    stopped_chunk_line(namespace(), figures, error_type, now_ms()).print();
}

/// Prints `verify`'s lines for `report` in this process's namespace. Called by
/// [`super::steps::verify`] itself, before a mismatch becomes the step's error, so a run that
/// fails verification still prints its figures (the handler sees only the error then).
pub fn emit_verify(report: &VerifyReport) {
    for line in verify_lines(namespace(), &VerifyFigures::of(report), now_ms()) {
        line.print();
    }
}

/// Checks one JSON object against EMF's required structure: why it is not valid EMF, or `None`.
/// The tests read the functions' output with it.
pub fn emf_violation(v: &Value) -> Option<String> {
    let Some(root) = v.as_object() else {
        return Some(format!("{v} is not a JSON object"));
    };
    let aws = root.get("_aws").and_then(Value::as_object);
    let Some(aws) = aws else {
        return Some("no _aws object".into());
    };
    if !aws.get("Timestamp").is_some_and(Value::is_u64) {
        return Some("_aws.Timestamp is not a whole number of milliseconds".into());
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        return Some("_aws.CloudWatchMetrics is not an array".into());
    };
    for d in directives {
        if let Err(why) = check_namespace(d["Namespace"].as_str().unwrap_or_default()) {
            return Some(why);
        }
        let Some(sets) = d["Dimensions"].as_array() else {
            return Some("Dimensions is not an array".into());
        };
        for set in sets {
            let Some(names) = set.as_array() else {
                return Some(format!("dimension set {set} is not an array"));
            };
            if names.len() > MAX_DIMENSIONS {
                return Some(format!(
                    "dimension set {set} has over {MAX_DIMENSIONS} names"
                ));
            }
            for n in names {
                let name = n.as_str().unwrap_or_default();
                if !root.get(name).is_some_and(Value::is_string) {
                    return Some(format!("dimension {n} has no string value in the root"));
                }
            }
        }
        let Some(metrics) = d["Metrics"].as_array() else {
            return Some("Metrics is not an array".into());
        };
        if metrics.len() > MAX_METRICS {
            return Some(format!("{} metrics, over {MAX_METRICS}", metrics.len()));
        }
        for m in metrics {
            let name = m["Name"].as_str().unwrap_or_default();
            if name.is_empty() || name.len() > MAX_NAME {
                return Some(format!(
                    "metric name {:?} is not 1 to 255 characters",
                    m["Name"]
                ));
            }
            if !root.get(name).is_some_and(Value::is_number) {
                return Some(format!("metric {name} has no numeric value in the root"));
            }
            // Unit is optional (None then), and one of CloudWatch's when given.
            if let Some(unit) = m.get("Unit")
                && !unit.as_str().is_some_and(|u| CLOUDWATCH_UNITS.contains(&u))
            {
                return Some(format!(
                    "metric {name}: unit {unit} is not a CloudWatch unit"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::RetryCounts;

    fn outcome() -> ChunkOutcome {
        ChunkOutcome {
            chunk: "sales.orders/1#0-3".into(),
            table: "sales.orders".into(),
            migration: "storefront".into(),
            rows_written: 2_500,
            rows_already_committed: 500,
            batches_written: 1,
            bytes_written: 123_456,
            retries: 3,
            retries_by_class: RetryCounts {
                conflict: 2,
                connection: 1,
                throttled: 0,
                expired: 0,
            },
            seconds: 1.5,
            ..ChunkOutcome::default()
        }
    }

    #[test]
    fn a_chunk_line_is_emf_with_every_figure_under_its_name() {
        let v = chunk_line("ns1", &outcome(), 1_700_000_000_000).to_json();
        assert_eq!(emf_violation(&v), None, "{v}");
        let d = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "ns1");
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(
            d["Dimensions"],
            json!([["Migration", "Table"], ["Migration"]])
        );
        assert_eq!(v["Migration"], "storefront");
        assert_eq!(v["Table"], "sales.orders");
        assert_eq!(v[ROWS_WRITTEN], 2_500.0);
        assert_eq!(v[ROWS_ALREADY_COMMITTED], 500.0);
        assert_eq!(v[BYTES_WRITTEN], 123_456.0);
        assert_eq!(v[CONFLICTS], 2.0);
        assert_eq!(v[CONNECTION_RETRIES], 1.0);
        assert_eq!(v[RETRIES], 3.0);
        assert_eq!(v[CHUNK_SECONDS], 1.5);
        assert_eq!(v["step"], "load-chunk");
        let units: Vec<(&str, &str)> = d["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
            .collect();
        assert!(units.contains(&(BYTES_WRITTEN, "Bytes")));
        assert!(units.contains(&(CHUNK_SECONDS, "Seconds")));
        assert!(units.contains(&(ROWS_WRITTEN, "Count")));
        // Every metric is a listed name; the line prints as one line.
        assert!(units.iter().all(|(n, _)| ALL.contains(n)));
        assert!(!v.to_string().contains('\n'));
    }

    #[test]
    fn verify_lines_give_each_table_and_the_run() {
        let table = |name: &str, rows, missing, extra, differing, seconds| TableFigures {
            table: name.into(),
            rows_verified: rows,
            missing,
            extra,
            differing,
            seconds,
            matched: missing + extra + differing == 0,
        };
        let report = VerifyFigures {
            migration: "storefront".into(),
            ok: false,
            seconds: 2.0,
            tables: vec![
                table("sales.customers", 10, 0, 0, 0, 0.5),
                table("sales.orders", 20, 1, 2, 3, 1.25),
            ],
        };
        let lines: Vec<Value> = verify_lines("ns", &report, 1)
            .iter()
            .map(EmfLine::to_json)
            .collect();
        assert_eq!(lines.len(), 3);
        for l in &lines {
            assert_eq!(emf_violation(l), None, "{l}");
            assert_eq!(l["step"], "verify");
        }
        assert_eq!(lines[1]["Table"], "sales.orders");
        assert_eq!(lines[1][ROWS_VERIFIED], 20.0);
        assert_eq!(lines[1][MISMATCHES], 6.0);
        assert_eq!(lines[1][TABLE_VERIFY_SECONDS], 1.25);
        assert_eq!(lines[0][MISMATCHES], 0.0);
        let run = &lines[2];
        assert_eq!(
            run["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Migration"]])
        );
        assert!(run.get("Table").is_none());
        assert_eq!(run[VERIFY_OK], 0.0);
        assert_eq!(run[TABLES_MISMATCHED], 1.0);
        assert_eq!(run[VERIFY_SECONDS], 2.0);
    }

    #[test]
    fn the_checker_refuses_what_cloudwatch_would_not_extract() {
        let good = chunk_line("ns", &outcome(), 1).to_json();
        let broken = |f: &dyn Fn(&mut Value)| {
            let mut v = good.clone();
            f(&mut v);
            emf_violation(&v)
        };
        assert!(broken(&|v| v["_aws"]["Timestamp"] = json!("now")).is_some());
        assert!(broken(&|v| v["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("")).is_some());
        assert!(
            broken(&|v| {
                v.as_object_mut().unwrap().remove("Table");
            })
            .is_some()
        );
        assert!(broken(&|v| v[ROWS_WRITTEN] = json!("2500")).is_some());
        assert!(
            broken(&|v| {
                v.as_object_mut().unwrap().remove("_aws");
            })
            .is_some()
        );
        let many: Vec<Value> = (0..31).map(|i| json!(format!("d{i}"))).collect();
        assert!(
            broken(&|v| v["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([many])).is_some()
        );
        assert!(broken(&|v| *v = json!([1, 2])).is_some());
        assert!(broken(&|v| *v = json!("line")).is_some());
        let unit = |u: Value| {
            move |v: &mut Value| v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = u.clone()
        };
        assert!(broken(&unit(json!("Rows"))).is_some());
        assert!(broken(&unit(json!(1))).is_some());
        assert_eq!(broken(&unit(json!("Count/Second"))), None);
        assert!(
            broken(&|v| v["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("AWS/Lambda"))
                .is_some()
        );
    }

    #[test]
    fn the_namespace_is_the_variable_or_snap2dsql() {
        let want = std::env::var(NAMESPACE_VAR)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        assert_eq!(namespace(), want);
        assert_eq!(check_namespace(DEFAULT_NAMESPACE), Ok(()));
        assert!(check_namespace("AWS/Lambda").is_err());
        assert!(check_namespace("").is_err());
        assert!(check_namespace(&"n".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn every_unit_the_pipeline_uses_is_a_cloudwatch_unit() {
        for unit in [Unit::Count, Unit::Bytes, Unit::Seconds] {
            assert!(CLOUDWATCH_UNITS.contains(&unit.as_str()), "{unit:?}");
        }
    }

    #[test]
    fn a_stopped_chunk_line_has_its_figures_no_duration_and_the_error() {
        let v = stopped_chunk_line("ns1", &outcome(), "Snap2dsql.Retryable", 1).to_json();
        assert_eq!(emf_violation(&v), None, "{v}");
        assert_eq!(v["stopped"], "Snap2dsql.Retryable");
        assert_eq!(v[CONFLICTS], 2.0);
        assert_eq!(v[ROWS_WRITTEN], 2_500.0);
        assert!(v.get(CHUNK_SECONDS).is_none());
        let names = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .len();
        let full = chunk_line("ns1", &outcome(), 1).to_json();
        let full_names = full["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(names + 1, full_names);
        assert!(full.get("stopped").is_none());
    }
}
