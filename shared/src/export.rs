//! The Aurora snapshot export: its metadata files, its tables and their part files.
//!
//! Layout (see `aurora-export.md`): `export_info_<id>.json`, one or more
//! `export_tables_info_<id>_from_<N>_to_<M>.json`, and per table
//! `<database>/<schema>.<table>/[<batch>/]part-*.parquet`. AWS promises no file naming, so every
//! `.parquet` object under a table's folder is a part file, at any depth; `_SUCCESS` markers and
//! other objects are ignored. [`Export::open`] reads the metadata and lists files only;
//! [`Export::footer`] reads one file's footer (row counts, row groups, schema), never its data;
//! [`Export::of_planned_chunks`] lists and reads nothing, for loading chunks planned earlier.

use crate::error::{Error, Result};
use crate::store::{ObjectMeta, Store};
use crate::types::PgType;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::ParquetMetaData;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `export_info_<id>.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportInfo {
    pub export_task_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_only: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_progress: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_end_time: Option<String>,
    #[serde(
        default,
        rename = "totalExportedDataInGB",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_exported_data_in_gb: Option<f64>,
}

/// `export_tables_info_<id>_from_<N>_to_<M>.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TablesInfo {
    pub per_table_status: Vec<TableStatus>,
}

/// One entry of `perTableStatus`: a table (or, with only a database in `target`, a database).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableStatus {
    /// `<database>.<schema>.<table>`, or just `<database>`.
    pub target: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, rename = "sizeGB", skip_serializing_if = "Option::is_none")]
    pub size_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_statistics: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_metadata: Option<SchemaMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning_message: Option<String>,
}

/// `schemaMetadata` of a table entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaMetadata {
    #[serde(default)]
    pub original_type_mappings: Vec<ColumnType>,
}

/// One column of `originalTypeMappings`: the only record of what a string column used to be.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ColumnType {
    pub column_name: String,
    pub original_type: String,
    #[serde(default)]
    pub expected_exported_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_char_max_length: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_num_precision: Option<i64>,
    /// Not in every Aurora export; `local-export` writes it, and `plan` uses it when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_num_scale: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_date_time_precision: Option<i64>,
}

impl ColumnType {
    /// The column's PostgreSQL type, with the length and precision the metadata carries.
    pub fn pg_type(&self) -> std::result::Result<PgType, crate::types::TypeParseError> {
        let t = PgType::parse(&self.original_type)?;
        let n = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
        Ok(match t {
            PgType::Varchar(None) => PgType::Varchar(n(self.original_char_max_length)),
            PgType::Char(None) => PgType::Char(n(self.original_char_max_length)),
            // Aurora records the precision but not the scale: `numeric(p)` would mean scale 0
            // and refuse every fraction, so without a scale the type stays unconstrained (the
            // source schema, when given, then supplies both).
            PgType::Numeric {
                precision: None, ..
            } if self.original_num_precision.is_some() && self.original_num_scale.is_some() => {
                PgType::Numeric {
                    precision: n(self.original_num_precision),
                    scale: n(self.original_num_scale),
                }
            }
            t => t,
        })
    }
}

/// A table the export holds, with its part files.
#[derive(Debug, Clone)]
pub struct ExportTable {
    pub database: String,
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnType>,
    /// Every `.parquet` object under the table's folder, sorted by key.
    pub files: Vec<ObjectMeta>,
}

impl ExportTable {
    /// `schema.table`, the name used in the mapping.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// A table the export left out or could not finish; reported, never silently dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedTable {
    pub target: String,
    pub status: String,
    pub reason: String,
}

/// An opened export: metadata read and files listed, no Parquet data read.
#[derive(Debug, Clone)]
pub struct Export {
    pub store: Store,
    pub info: ExportInfo,
    /// The database chosen from the export.
    pub database: String,
    pub tables: Vec<ExportTable>,
    pub skipped: Vec<SkippedTable>,
    /// Anything odd but not fatal (files with no table, empty tables), for the report.
    pub warnings: Vec<String>,
}

/// Footer facts of one part file: what planning needs.
#[derive(Debug, Clone)]
pub struct Footer {
    pub rows: u64,
    /// Rows and compressed bytes of each row group.
    pub row_groups: Vec<RowGroupInfo>,
    pub metadata: Arc<ParquetMetaData>,
}

/// One row group's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowGroupInfo {
    pub rows: u64,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
}

fn parse_json<T: serde::de::DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Metadata {
        file: name.to_string(),
        reason: format!("not the expected JSON: {e}"),
    })
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

impl Export {
    /// Opens the export at `location` (`s3://bucket/prefix/export-id` or a directory), reads its
    /// metadata and lists each table's part files. `database` picks one database of a
    /// multi-database export; with `None` the only one is used.
    pub async fn open(location: &str, database: Option<&str>) -> Result<Export> {
        let store = Store::open(location).await?;
        Export::open_store(store, database).await
    }

    /// [`Export::open`] on an already opened store.
    pub async fn open_store(store: Store, database: Option<&str>) -> Result<Export> {
        let objects = store.list().await?;
        let infos: Vec<&ObjectMeta> = objects
            .iter()
            .filter(|o| {
                !o.key.contains('/')
                    && o.key.starts_with("export_info_")
                    && o.key.ends_with(".json")
            })
            .collect();
        let info_obj = match infos.as_slice() {
            [one] => *one,
            [] => {
                return Err(Error::Metadata {
                    file: store.display("export_info_<id>.json"),
                    reason: "no export_info_*.json at the export's root: is this the folder of one export (bucket/prefix/export-id)?".into(),
                });
            }
            many => {
                return Err(Error::Metadata {
                    file: store.display(""),
                    reason: format!(
                        "{} export_info_*.json files: point at one export's folder",
                        many.len()
                    ),
                });
            }
        };
        let info: ExportInfo = parse_json(
            &store.display(&info_obj.key),
            &store.get(&info_obj.key).await?,
        )?;
        if !info.status.eq_ignore_ascii_case("COMPLETE") {
            return Err(Error::ExportNotComplete {
                export_id: info.export_task_identifier.clone(),
                status: info.status.clone(),
            });
        }

        let mut statuses = Vec::new();
        let table_infos: Vec<&ObjectMeta> = objects
            .iter()
            .filter(|o| {
                !o.key.contains('/')
                    && o.key.starts_with("export_tables_info_")
                    && o.key.ends_with(".json")
            })
            .collect();
        if table_infos.is_empty() {
            return Err(Error::Metadata {
                file: store.display("export_tables_info_<id>_from_<N>_to_<M>.json"),
                reason: "no export_tables_info_*.json at the export's root".into(),
            });
        }
        for obj in table_infos {
            let t: TablesInfo = parse_json(&store.display(&obj.key), &store.get(&obj.key).await?)?;
            statuses.extend(t.per_table_status);
        }

        // Databases the export holds: those of table entries, plus database-only entries.
        let mut databases: Vec<String> = statuses
            .iter()
            .map(|s| s.target.split('.').next().unwrap_or("").to_string())
            .filter(|d| !d.is_empty())
            .collect();
        databases.sort();
        databases.dedup();
        let database = match database {
            Some(d) if databases.iter().any(|x| x == d) => d.to_string(),
            Some(d) => {
                return Err(Error::Usage(format!(
                    "database {d:?} is not in export {}: it holds {}",
                    info.export_task_identifier,
                    databases.join(", ")
                )));
            }
            None => match databases.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(Error::Metadata {
                        file: store.display("export_tables_info_*.json"),
                        reason: "perTableStatus lists no tables".into(),
                    });
                }
                many => {
                    return Err(Error::Usage(format!(
                        "export {} holds several databases ({}): choose one with --database",
                        info.export_task_identifier,
                        many.join(", ")
                    )));
                }
            },
        };

        let mut tables = Vec::new();
        let mut skipped = Vec::new();
        let mut warnings = Vec::new();
        let mut claimed_folders = BTreeMap::new();
        for st in statuses {
            let mut parts = st.target.splitn(2, '.');
            let db = parts.next().unwrap_or("");
            if db != database {
                continue;
            }
            let Some(rest) = parts.next() else {
                if let Some(w) = &st.warning_message {
                    warnings.push(format!("database {db}: {w}"));
                }
                continue;
            };
            let Some((schema, name)) = rest.split_once('.') else {
                return Err(Error::Metadata {
                    file: store.display("export_tables_info_*.json"),
                    reason: format!("target {:?} is not <database>.<schema>.<table>", st.target),
                });
            };
            if !st.status.eq_ignore_ascii_case("COMPLETE") {
                skipped.push(SkippedTable {
                    target: st.target.clone(),
                    status: st.status.clone(),
                    reason: st
                        .warning_message
                        .clone()
                        .unwrap_or_else(|| "the export did not complete this table".into()),
                });
                continue;
            }
            let columns = st
                .schema_metadata
                .map(|m| m.original_type_mappings)
                .unwrap_or_default();
            if columns.is_empty() {
                return Err(Error::Metadata {
                    file: store.display("export_tables_info_*.json"),
                    reason: format!(
                        "table {} has no schemaMetadata.originalTypeMappings: its columns cannot be typed",
                        st.target
                    ),
                });
            }
            let folder = format!("{db}/{schema}.{name}/");
            let files: Vec<ObjectMeta> = objects
                .iter()
                .filter(|o| o.key.starts_with(&folder) && o.key.ends_with(".parquet"))
                .cloned()
                .collect();
            claimed_folders.insert(folder, ());
            if files.is_empty() {
                warnings.push(format!(
                    "table {schema}.{name}: status COMPLETE but no .parquet files: treated as empty"
                ));
            }
            tables.push(ExportTable {
                database: db.to_string(),
                schema: schema.to_string(),
                name: name.to_string(),
                columns,
                files,
            });
        }
        // Part files that no table claims: never silently ignored.
        let db_prefix = format!("{database}/");
        let mut orphan_folders: Vec<String> = objects
            .iter()
            .filter(|o| o.key.starts_with(&db_prefix) && o.key.ends_with(".parquet"))
            .filter(|o| {
                !claimed_folders
                    .keys()
                    .any(|f| o.key.starts_with(f.as_str()))
            })
            .filter_map(|o| o.key.split('/').nth(1).map(str::to_string))
            .collect();
        orphan_folders.dedup();
        for f in orphan_folders {
            if !skipped
                .iter()
                .any(|s| s.target == format!("{database}.{f}"))
            {
                warnings.push(format!(
                    "folder {database}/{f} holds Parquet files but no table in the metadata names it: not migrated"
                ));
            }
        }
        tables.sort_by_key(|t| t.qualified());
        Ok(Export {
            store,
            info,
            database,
            tables,
            skipped,
            warnings,
        })
    }

    /// The export at `store` as its planned chunks see it, with nothing listed or read: each
    /// [`crate::chunk::Chunk`] names its own part file (key and size) and row groups, and the
    /// fan-out that planned them checked the export was COMPLETE and read every footer. This is
    /// what `load-chunk` opens, so an invocation reads only its own part file (ranged GETs):
    /// no ListObjectsV2 of the whole export per chunk. `tables` is empty and `info` holds only
    /// the export id (the location's last segment): plan with [`Export::open`], never with this.
    pub fn of_planned_chunks(store: Store, database: Option<&str>) -> Export {
        let root = match &store {
            Store::Local(path) => path.to_string_lossy().into_owned(),
            Store::S3 { prefix, .. } => prefix.clone(),
        };
        let id = root.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        Export {
            info: ExportInfo {
                export_task_identifier: id.to_string(),
                status: "COMPLETE".into(),
                ..Default::default()
            },
            store,
            database: database.unwrap_or_default().to_string(),
            tables: Vec::new(),
            skipped: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The table `schema.table`, if the export holds it.
    pub fn table(&self, qualified: &str) -> Option<&ExportTable> {
        self.tables.iter().find(|t| t.qualified() == qualified)
    }

    /// Reads one part file's footer (and nothing else).
    pub async fn footer(&self, file: &ObjectMeta) -> Result<Footer> {
        let name = self.store.display(&file.key);
        let mut reader = self.store.reader(file).await?;
        let metadata = reader
            .get_metadata(None)
            .await
            .map_err(|e| Error::Parquet {
                file: name.clone(),
                reason: format!("unreadable footer (truncated, or not a Parquet file?): {e}"),
            })?;
        let row_groups = metadata
            .row_groups()
            .iter()
            .map(|rg| RowGroupInfo {
                rows: rg.num_rows().max(0) as u64,
                compressed_bytes: rg.compressed_size().max(0) as u64,
                uncompressed_bytes: rg.total_byte_size().max(0) as u64,
            })
            .collect::<Vec<_>>();
        Ok(Footer {
            rows: row_groups.iter().map(|r| r.rows).sum(),
            row_groups,
            metadata,
        })
    }
}

/// The file name part of a key (for messages and chunk ids).
pub fn object_file_name(key: &str) -> &str {
    file_name(key)
}

/// The Parquet physical representation the export uses for a PostgreSQL type
/// (`aurora-export.md`): only integers, floats, booleans and bytea are typed.
pub fn expected_arrow_kind(t: &PgType) -> &'static str {
    match t {
        PgType::SmallInt | PgType::Integer => "int32",
        PgType::BigInt => "int64",
        PgType::Real => "float",
        PgType::Double => "double",
        PgType::Boolean => "boolean",
        PgType::Bytea => "binary",
        _ => "string",
    }
}

/// The kind of an Arrow column as the export writes it, or `None` for anything else.
pub fn arrow_kind(dt: &arrow::datatypes::DataType) -> Option<&'static str> {
    use arrow::datatypes::DataType as D;
    Some(match dt {
        D::Int16 | D::Int32 => "int32",
        D::Int64 => "int64",
        D::Float32 => "float",
        D::Float64 => "double",
        D::Boolean => "boolean",
        D::Binary | D::LargeBinary | D::BinaryView => "binary",
        D::Utf8 | D::LargeUtf8 | D::Utf8View => "string",
        _ => return None,
    })
}

/// Checks one part file's columns against the table's metadata: the same names, and for each
/// the Parquet type the export writes for its `originalType`.
pub fn check_columns(table: &ExportTable, file: &str, footer: &Footer) -> Result<()> {
    let file_meta = footer.metadata.file_metadata();
    let schema = parquet::arrow::parquet_to_arrow_schema(
        file_meta.schema_descr(),
        file_meta.key_value_metadata(),
    )
    .map_err(|e| Error::Parquet {
        file: file.to_string(),
        reason: format!("schema not readable as Arrow: {e}"),
    })?;
    for c in &table.columns {
        let Ok(field) = schema.field_with_name(&c.column_name) else {
            return Err(Error::Parquet {
                file: file.to_string(),
                reason: format!(
                    "column {:?} of table {} is in the metadata but not in this file (file has: {})",
                    c.column_name,
                    table.qualified(),
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        };
        let pg = c.pg_type().map_err(|e| Error::Metadata {
            file: "export_tables_info_*.json".into(),
            reason: format!("{}.{}: {e}", table.qualified(), c.column_name),
        })?;
        let want = expected_arrow_kind(&pg);
        let got = arrow_kind(field.data_type());
        if got != Some(want) {
            return Err(Error::Parquet {
                file: file.to_string(),
                reason: format!(
                    "column {:?} is {} in Parquet, but its originalType {:?} is exported as {want}",
                    c.column_name,
                    field.data_type(),
                    c.original_type
                ),
            });
        }
    }
    for f in schema.fields() {
        if !table.columns.iter().any(|c| &c.column_name == f.name()) {
            return Err(Error::Parquet {
                file: file.to_string(),
                reason: format!(
                    "column {:?} is in this file but not in the metadata of table {}",
                    f.name(),
                    table.qualified()
                ),
            });
        }
    }
    Ok(())
}
