//! `plan`: from an export (and, when given, the source schema) to a reviewed mapping.
//!
//! The export has no constraints. With a source schema, keys, references, NOT NULL, unique
//! constraints and indexes come from it; without one, `plan` guesses (`id` is the key,
//! `<name>_id` references `<name>` or its plural) and marks every guess in the mapping and the
//! report. Defaults follow `dsql.md`: a single-column integer primary key becomes a UUID (the old
//! value kept in `old_<name>`), every reference to it is rewritten the same way, types DSQL
//! cannot store get their usual mapping, and secondary indexes wait until after the load.

use crate::error::{Error, Result};
use crate::export::{Export, ExportTable, SkippedTable};
use crate::keys::default_namespace;
use crate::mapping::{
    ColumnMapping, ForeignKeyMapping, IndexMapping, Mapping, Migration, OnOrphan, Rewrite,
    TableMapping,
};
use crate::schema::report::{ReportKind, SchemaReport};
use crate::schema::{SourceSchema, TableSchema, target};
use crate::types::PgType;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// How many footers `plan` reads at once (each is one or two small ranged reads).
pub const FOOTER_READS_IN_FLIGHT: usize = 16;

/// The outcome of `plan`: the mapping to write and what to tell the user.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mapping: Mapping,
    pub report: PlanReport,
}

/// What `plan` found and decided, for the printed report (and JSON).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanReport {
    pub export_id: String,
    pub database: String,
    pub tables: Vec<TableSummary>,
    /// `table.column: from -> to (why)` for every column whose type changes.
    pub conversions: Vec<String>,
    pub keys_rewritten: Vec<String>,
    pub references_rewritten: Vec<String>,
    pub guesses: Vec<String>,
    pub warnings: Vec<String>,
    pub skipped: Vec<SkippedSummary>,
    /// Every source object and what becomes of it (also written as `schema-report.json`).
    pub schema: SchemaReport,
}

/// The file [`write_schema_report`] writes beside the mapping.
pub const SCHEMA_REPORT_FILE: &str = "schema-report.json";

/// Writes the schema report into `dir` as [`SCHEMA_REPORT_FILE`]. Running twice overwrites it.
pub fn write_schema_report(report: &PlanReport, dir: &std::path::Path) -> Result<()> {
    let path = dir.join(SCHEMA_REPORT_FILE);
    let text = serde_json::to_string_pretty(&report.schema).map_err(|e| Error::Mapping {
        file: path.display().to_string(),
        reason: format!("cannot serialise the schema report: {e}"),
    })?;
    std::fs::write(&path, text + "\n").map_err(|e| Error::io(&path, e))
}

/// One table's size, from its footers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableSummary {
    pub source: String,
    pub target: String,
    pub rows: u64,
    pub files: usize,
    pub row_groups: usize,
    pub bytes: u64,
}

/// A table the export left out.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedSummary {
    pub target: String,
    pub status: String,
    pub reason: String,
}

impl From<&SkippedTable> for SkippedSummary {
    fn from(s: &SkippedTable) -> Self {
        SkippedSummary {
            target: s.target.clone(),
            status: s.status.clone(),
            reason: s.reason.clone(),
        }
    }
}

/// Plans the migration of `export`. Reads every part file's footer (row counts, and a check of
/// its columns against the metadata), never the data.
pub async fn plan(export: &Export, schema: Option<&SourceSchema>) -> Result<Plan> {
    let mut report = PlanReport {
        export_id: export.info.export_task_identifier.clone(),
        database: export.database.clone(),
        warnings: export.warnings.clone(),
        skipped: export.skipped.iter().map(SkippedSummary::from).collect(),
        ..Default::default()
    };
    let sizes = footer_sizes(export).await?;
    let mapping = build_mapping(export, schema, &mut report)?;
    for t in &mapping.tables {
        let s = sizes.get(&t.source).cloned().unwrap_or_default();
        report.tables.push(TableSummary {
            source: t.source.clone(),
            target: t.target(),
            ..s
        });
    }
    if let Some(schema) = schema {
        for name in schema.tables.keys() {
            if export.table(name).is_none()
                && !export
                    .skipped
                    .iter()
                    .any(|s| s.target.ends_with(&format!(".{name}")))
            {
                report.warnings.push(format!(
                    "table {name} is in the source schema but not in the export: not migrated"
                ));
                report.schema.dropped(
                    ReportKind::Table,
                    name,
                    "it is not in the export",
                    "export it (or load it another way) if it is needed",
                );
            }
        }
    }
    Ok(Plan { mapping, report })
}

async fn footer_sizes(export: &Export) -> Result<BTreeMap<String, TableSummary>> {
    let jobs: Vec<(&ExportTable, &crate::store::ObjectMeta)> = export
        .tables
        .iter()
        .flat_map(|t| t.files.iter().map(move |f| (t, f)))
        .collect();
    let footers: Vec<(String, u64, usize, u64)> = futures::stream::iter(jobs)
        .map(|(t, f)| async move {
            let footer = export.footer(f).await?;
            crate::export::check_columns(t, &export.store.display(&f.key), &footer)?;
            Ok::<_, Error>((t.qualified(), footer.rows, footer.row_groups.len(), f.size))
        })
        .buffer_unordered(FOOTER_READS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut sizes: BTreeMap<String, TableSummary> = BTreeMap::new();
    for t in &export.tables {
        sizes.insert(t.qualified(), TableSummary::default());
    }
    for (table, rows, groups, bytes) in footers {
        let s = sizes.entry(table).or_default();
        s.rows += rows;
        s.files += 1;
        s.row_groups += groups;
        s.bytes += bytes;
    }
    Ok(sizes)
}

/// The source type of a column: the export's `originalType`, refined by the schema where the
/// export's spelling hides detail (array element type, enum, numeric scale, lengths).
fn source_type(
    export_type: PgType,
    declared: Option<&PgType>,
    where_: &str,
    report: &mut PlanReport,
) -> PgType {
    let Some(declared) = declared else {
        return export_type;
    };
    let vague = matches!(
        export_type,
        PgType::Array(_)
            | PgType::Other(_)
            | PgType::Numeric {
                precision: None,
                ..
            }
            | PgType::Varchar(None)
            | PgType::Char(None)
    );
    if vague || export_type == *declared {
        return declared.clone();
    }
    if std::mem::discriminant(&export_type) != std::mem::discriminant(declared) {
        report.warnings.push(format!(
            "{where_}: the export says {export_type}, the source schema says {declared}: planned from the export"
        ));
    }
    export_type
}

fn default_target(
    source: &PgType,
    where_: &str,
    report: &mut PlanReport,
) -> (PgType, Option<String>) {
    if let PgType::Numeric {
        precision: None, ..
    } = source
    {
        let target = PgType::Numeric {
            precision: Some(38),
            scale: Some(12),
        };
        report.warnings.push(format!(
            "{where_}: numeric without declared precision and scale (Aurora's metadata has no scale: --source-schema gives both); DSQL's bare numeric is numeric(18,6), so it is planned as numeric(38,12): a value that does not fit fails the load naming its row. Set target_type if your data needs more"
        ));
        return (
            target,
            Some("unconstrained numeric -> numeric(38,12)".into()),
        );
    }
    let (t, note) = source.dsql_target();
    (t, note.map(str::to_string))
}

/// A unique, at most 63-byte index name within the schema.
fn index_name(used: &mut BTreeSet<String>, schema: &str, table: &str, cols: &[String]) -> String {
    let base = format!("{table}_{}_idx", cols.join("_"));
    let mut name: String = base.chars().take(59).collect();
    while name.len() > 59 {
        name.pop();
    }
    let mut candidate = name.clone();
    let mut n = 1;
    while !used.insert(format!("{schema}.{candidate}")) {
        n += 1;
        candidate = format!("{name}{n}");
    }
    candidate
}

fn build_mapping(
    export: &Export,
    schema: Option<&SourceSchema>,
    report: &mut PlanReport,
) -> Result<Mapping> {
    let id = export.database.clone();
    let table_schemas: BTreeMap<String, Option<&TableSchema>> = export
        .tables
        .iter()
        .map(|t| (t.qualified(), schema.and_then(|s| s.table(&t.qualified()))))
        .collect();
    if let Some(_s) = schema {
        for (name, ts) in &table_schemas {
            if ts.is_none() {
                report.warnings.push(format!(
                    "table {name} is not in the source schema: its keys and references are guessed"
                ));
            }
        }
    }

    // Pass 1: primary keys, and which tables get their key rewritten.
    struct KeyInfo {
        columns: Vec<String>,
        guessed: bool,
        rewritten: Option<String>,
    }
    let mut keys: BTreeMap<String, KeyInfo> = BTreeMap::new();
    for t in &export.tables {
        let q = t.qualified();
        let (columns, guessed) = match table_schemas[&q] {
            Some(ts) => (ts.primary_key.clone(), false),
            None => {
                let has_id = t.columns.iter().any(|c| {
                    c.column_name == "id" && c.pg_type().map(|p| p.is_integer()).unwrap_or(false)
                });
                if has_id {
                    report
                        .guesses
                        .push(format!("{q}: primary key guessed as (id)"));
                    (vec!["id".to_string()], true)
                } else {
                    (Vec::new(), false)
                }
            }
        };
        let rewritten = match columns.as_slice() {
            [one] => {
                let ty = t
                    .columns
                    .iter()
                    .find(|c| &c.column_name == one)
                    .and_then(|c| c.pg_type().ok());
                ty.filter(PgType::is_integer).map(|_| one.clone())
            }
            _ => None,
        };
        if columns.is_empty() {
            report.warnings.push(format!(
                "{q}: no primary key{}: DSQL adds a hidden one; nothing but the ledger keeps reruns from doubling rows",
                if schema.is_some() { "" } else { " (and none guessed)" }
            ));
        }
        keys.insert(
            q,
            KeyInfo {
                columns,
                guessed,
                rewritten,
            },
        );
    }

    // Pass 2: references (declared, or guessed from names) to rewritten keys.
    // (child table, child column) -> (parent table, guessed)
    let mut references: BTreeMap<(String, String), (String, bool)> = BTreeMap::new();
    let mut declared_fks: BTreeMap<String, Vec<crate::schema::ForeignKey>> = BTreeMap::new();
    for t in &export.tables {
        let q = t.qualified();
        match table_schemas[&q] {
            Some(ts) => {
                for fk in &ts.foreign_keys {
                    declared_fks.entry(q.clone()).or_default().push(fk.clone());
                    for (col, ref_col) in fk.columns.iter().zip(&fk.ref_columns) {
                        let parent_key = keys.get(&fk.ref_table).and_then(|k| k.rewritten.as_ref());
                        if parent_key == Some(ref_col) {
                            references
                                .insert((q.clone(), col.clone()), (fk.ref_table.clone(), false));
                        }
                    }
                }
            }
            None => {
                for c in &t.columns {
                    let Some(stem) = c.column_name.strip_suffix("_id") else {
                        continue;
                    };
                    if !c.pg_type().map(|p| p.is_integer()).unwrap_or(false) {
                        continue;
                    }
                    let candidates = [stem.to_string(), format!("{stem}s"), format!("{stem}es")];
                    let parent = candidates
                        .iter()
                        .map(|n| format!("{}.{n}", t.schema))
                        .find(|p| {
                            keys.get(p)
                                .map(|k| k.rewritten.as_deref() == Some("id"))
                                .unwrap_or(false)
                        });
                    if let Some(parent) = parent {
                        report.guesses.push(format!(
                            "{q}.{}: guessed to reference {parent}(id)",
                            c.column_name
                        ));
                        references.insert((q.clone(), c.column_name.clone()), (parent, true));
                    }
                }
            }
        }
    }

    // Pass 3: the table mappings.
    let mut used_index_names = BTreeSet::new();
    let mut tables = Vec::new();
    for t in &export.tables {
        let q = t.qualified();
        let ts = table_schemas[&q];
        let key = &keys[&q];
        let existing: BTreeSet<&str> = t.columns.iter().map(|c| c.column_name.as_str()).collect();
        let mut columns = Vec::new();
        let mut indexes = Vec::new();
        for c in &t.columns {
            let where_ = format!("{q}.{}", c.column_name);
            let export_type = c.pg_type().map_err(|e| Error::Metadata {
                file: export.store.display("export_tables_info_*.json"),
                reason: format!("{where_}: {e}"),
            })?;
            let declared = ts.and_then(|ts| ts.columns.iter().find(|sc| sc.name == c.column_name));
            let src = source_type(export_type, declared.map(|d| &d.data_type), &where_, report);
            if matches!(src, PgType::Other(_)) {
                report.warnings.push(format!(
                    "{where_}: type {src} is unknown to snap2dsql: loaded as its text form{}",
                    if schema.is_none() {
                        " (give --source-schema to resolve enums and arrays)"
                    } else {
                        ""
                    }
                ));
            }
            if declared.is_none() && c.original_type.trim().eq_ignore_ascii_case("ARRAY") {
                report.guesses.push(format!(
                    "{where_}: the export says ARRAY, not of what: elements guessed to be text (a jsonb array of strings; give --source-schema for the element type)"
                ));
            }
            let not_null = declared.map(|d| d.not_null).unwrap_or(false)
                || key.columns.contains(&c.column_name);
            let mut col = ColumnMapping {
                name: c.column_name.clone(),
                source_type: src.clone(),
                target: c.column_name.clone(),
                target_type: src.clone(),
                not_null,
                drop: false,
                rewrite: Rewrite::None,
                identity: false,
                keep_old: None,
                references: None,
                on_orphan: None,
                guessed: false,
                note: None,
                default: None,
            };
            if key.rewritten.as_ref() == Some(&c.column_name) {
                let mut old = format!("old_{}", c.column_name);
                while existing.contains(old.as_str()) {
                    old = format!("old_{old}");
                }
                col.rewrite = Rewrite::Key;
                col.target_type = PgType::Uuid;
                col.keep_old = Some(old.clone());
                col.guessed = key.guessed;
                col.note = Some(format!(
                    "integer key -> deterministic uuid; old value kept in {old}"
                ));
                report.keys_rewritten.push(format!(
                    "{q}.{} -> uuid (old value in {old})",
                    c.column_name
                ));
                let cols = vec![old];
                indexes.push(IndexMapping {
                    name: index_name(&mut used_index_names, &t.schema, &t.name, &cols),
                    columns: cols,
                    unique: false,
                    reason: Some("old key".into()),
                });
            } else if let Some((parent, guessed)) =
                references.get(&(q.clone(), c.column_name.clone()))
            {
                col.rewrite = Rewrite::Reference;
                col.target_type = PgType::Uuid;
                col.references = Some(parent.clone());
                col.on_orphan = Some(OnOrphan::Fail);
                col.guessed = *guessed;
                col.note = Some(format!("reference to {parent} -> its deterministic uuid"));
                report.references_rewritten.push(format!(
                    "{q}.{} -> uuid of {parent} (on_orphan = \"fail\": a row whose parent is missing stops the load; set \"null\" or \"keep\" in mapping.toml to load it)",
                    c.column_name
                ));
                let cols = vec![c.column_name.clone()];
                indexes.push(IndexMapping {
                    name: index_name(&mut used_index_names, &t.schema, &t.name, &cols),
                    columns: cols,
                    unique: false,
                    reason: Some("foreign key".into()),
                });
            } else {
                let (target, note) = default_target(&src, &where_, report);
                if let Some(n) = &note {
                    report
                        .conversions
                        .push(format!("{where_}: {src} -> {target} ({n})"));
                }
                col.target_type = target;
                col.note = note;
            }
            columns.push(col);
        }

        // Source indexes and unique constraints, on target names; not repeating the key.
        if let Some(ts) = ts {
            let pk = &key.columns;
            let mut seen: BTreeSet<Vec<String>> =
                indexes.iter().map(|i| i.columns.clone()).collect();
            seen.insert(pk.clone());
            for u in &ts.unique {
                if seen.insert(u.clone()) {
                    indexes.push(IndexMapping {
                        name: index_name(&mut used_index_names, &t.schema, &t.name, u),
                        columns: u.clone(),
                        unique: true,
                        reason: Some("unique constraint".into()),
                    });
                }
            }
            for ix in &ts.indexes {
                if !ix.plain {
                    report.warnings.push(format!(
                        "{q}: index {} has expressions, a predicate or a non-btree method: not carried to DSQL",
                        ix.name
                    ));
                    continue;
                }
                if seen.insert(ix.columns.clone()) {
                    indexes.push(IndexMapping {
                        name: index_name(&mut used_index_names, &t.schema, &t.name, &ix.columns),
                        columns: ix.columns.clone(),
                        unique: ix.unique,
                        reason: Some(format!("source index {}", ix.name)),
                    });
                }
            }
        }
        let foreign_keys = declared_fks
            .get(&q)
            .map(|fks| {
                fks.iter()
                    .filter(|fk| export.table(&fk.ref_table).is_some())
                    .map(|fk| ForeignKeyMapping {
                        name: fk.name.clone(),
                        columns: fk.columns.clone(),
                        ref_table: fk.ref_table.clone(),
                        ref_columns: fk.ref_columns.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut table = TableMapping {
            source: q.clone(),
            target_schema: t.schema.clone(),
            target_name: t.name.clone(),
            primary_key: key.columns.clone(),
            primary_key_guessed: key.guessed,
            columns,
            indexes,
            foreign_keys,
            checks: Vec::new(),
        };
        match (schema, ts) {
            (Some(s), Some(ts)) => target::carry_table(
                s,
                ts,
                &mut table,
                crate::mapping::NEW_KEY_DEFAULT,
                &mut report.schema,
            ),
            _ => report.schema.changed(
                ReportKind::Table,
                q.clone(),
                "no source schema: only its columns and types are known (keys guessed, no defaults, checks or indexes)",
            ),
        }
        tables.push(table);
    }
    let views = match schema {
        Some(s) => target::carry_rest(s, &tables, &mut report.schema),
        None => Vec::new(),
    };
    let mapping = Mapping {
        migration: Migration {
            namespace: default_namespace(&id),
            id,
            database: export.database.clone(),
            foreign_keys: false,
            new_key_default: crate::mapping::NEW_KEY_DEFAULT.into(),
        },
        tables,
        views,
    };
    // Not validated here: a mapping DSQL would refuse (say, over 255 columns) is still written,
    // so the user can edit it; the caller validates after writing.
    Ok(mapping)
}
