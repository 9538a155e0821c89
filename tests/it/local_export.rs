//! `local-export` against a real PostgreSQL: the files must read back as an Aurora export, with
//! Aurora's physical types, and hold exactly the source rows in PostgreSQL's text output.

use arrow::array::{
    Array, BinaryArray, BooleanArray, Float32Array, Float64Array, Int16Array, Int32Array,
    Int64Array, RecordBatch, RecordBatchReader, StringArray,
};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, LogicalType, Type as PhysicalType};
use parquet::file::reader::{FileReader, SerializedFileReader};
use snap2dsql::export::{Export, ExportTable, TablesInfo};
use snap2dsql::local_export::{LocalExportOptions, LocalExportSummary, local_export};
use snap2dsql_tests::{connect, db_name, pg};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The settings local-export uses, for reading the expected text output on the test's side.
const SESSION: &str = "SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres';
    SET extra_float_digits = 1; SET TimeZone = 'UTC'; SET bytea_output = 'hex';";

async fn export_db(
    url: &str,
    opts: &LocalExportOptions,
) -> (tempfile::TempDir, PathBuf, LocalExportSummary) {
    let client = connect(url).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(&opts.export_id);
    let summary = local_export(&client, &out, opts, &|_, _| {}).await.unwrap();
    (dir, out, summary)
}

async fn open(out: &Path) -> Export {
    Export::open(out.to_str().unwrap(), None).await.unwrap()
}

fn table_path(export: &Export, t: &ExportTable, i: usize) -> PathBuf {
    match &export.store {
        snap2dsql::store::Store::Local(root) => root.join(&t.files[i].key),
        other => panic!("expected a local store, got {other:?}"),
    }
}

/// Every row of every part file of `t`, as one batch.
fn read_table(export: &Export, t: &ExportTable) -> RecordBatch {
    let mut batches = Vec::new();
    let mut schema = None;
    for i in 0..t.files.len() {
        let file = std::fs::File::open(table_path(export, t, i)).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        schema = Some(reader.schema());
        for b in reader {
            batches.push(b.unwrap());
        }
    }
    arrow::compute::concat_batches(&schema.unwrap(), &batches).unwrap()
}

async fn footer_rows(export: &Export, t: &ExportTable) -> u64 {
    let mut rows = 0;
    for f in &t.files {
        rows += export.footer(f).await.unwrap().rows;
    }
    rows
}

fn tables_info(out: &Path) -> TablesInfo {
    let entry = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("export_tables_info_")
        })
        .unwrap();
    serde_json::from_slice(&std::fs::read(entry).unwrap()).unwrap()
}

const EVERY_TYPE_DDL: &str = r#"
CREATE TYPE mood AS ENUM ('happy', 'sad', 'o''k');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN email AS text;
CREATE TABLE every_type (
  id int PRIMARY KEY,
  c_bigint bigint, c_bigserial bigserial, c_integer integer, c_serial serial,
  c_smallint smallint, c_smallserial smallserial,
  c_real real, c_double double precision, c_boolean boolean, c_bytea bytea,
  c_numeric numeric, c_numeric_ps numeric(12,3), c_money money,
  c_date date, c_time time, c_timetz timetz, c_timestamp timestamp, c_timestamp3 timestamp(3),
  c_timestamptz timestamptz, c_interval interval,
  c_uuid uuid, c_json json, c_jsonb jsonb, c_enum mood, c_int_array int[], c_text_array text[],
  c_inet inet, c_cidr cidr, c_macaddr macaddr, c_macaddr8 macaddr8, c_xml xml,
  c_bit bit(4), c_varbit varbit(8), c_tsvector tsvector, c_tsquery tsquery, c_range int4range,
  c_composite pair, c_domain_int posint, c_domain_text email,
  c_char char(5), c_varchar varchar(20), c_text text, c_name name
);
INSERT INTO every_type VALUES
 (1, 9223372036854775807, 9223372036854775807, 2147483647, 2147483647, 32767, 32767,
  '3.4028235e38', '1.7976931348623157e308', true, '\x00ff5c0a22'::bytea,
  '123456789012345678901234567890.123456789012345678901234567890', '123456789.123',
  '92233720368547758.07',
  '5874897-12-31', '24:00:00', '23:59:59.999999+14:59', '294276-12-31 23:59:59.999999',
  '2024-02-29 12:34:56.789', '294276-12-31 23:59:59.999999+00', '178000000 years',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": "v\"q", "n": [1, 2.50]}',
  '{"k": "v\"q", "n": [1, 2.50]}', 'happy', '{1,NULL,-3}', '{"a,b","c\"d","e\\f",NULL,"NULL",""}',
  '2001:db8::1/64', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
  '<a x="1">t&amp;</a>', B'1010', B'101', 'a fat cat', 'fat & rat', '[1,10)', ROW(1, 'x "y"'),
  42, 'a@b.c', 'ab', 'héllo', E'line1\nline2\ttab \\ back ''quote'' "dq"', 'some_name'),
 (2, -9223372036854775808, 1, -2147483648, 1, -32768, 1,
  'NaN', '-Infinity', false, ''::bytea,
  'NaN', '-999999999.999', '-92233720368547758.08',
  '4713-01-01 BC', '00:00', '00:00:00-15:59', '4713-01-01 00:00:00 BC',
  '1970-01-01 00:00:00', '-infinity', '-178000000 years',
  '00000000-0000-0000-0000-000000000000', '"ünïcødé 😀"', '[]', 'o''k', '{}', '{{a,b},{c,d}}',
  '::', '0.0.0.0/0', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00:00:00',
  '<r>ünï &lt;</r>', B'0000', B'', '''quoted'' ünï', '!a', 'empty', ROW(NULL, NULL),
  2147483647, E'back\\slash', 'ü', '', E'😀\r\n"\\', 'Ünï'),
 (3, NULL, DEFAULT, NULL, DEFAULT, NULL, DEFAULT, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 0, 2, 0, 2, 0, 2, '-Infinity', 'NaN', true, '\xdeadbeef'::bytea,
  '0.000000000000000000001', '0', '0', '2000-02-29', '12:00', '12:00+00', 'infinity',
  '2000-01-01 00:00:00.001', 'infinity', '1 mon -2 days 03:04:05.678901',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', '{"a": {"b": [true, null]}}', 'sad',
  '{2147483647}', '{"with space","\\"}', '192.168.0.1', '192.168.0.0/24', '01:02:03:04:05:06',
  '01:02:03:04:05:06:07:08', '', B'1111', B'11111111', '', '', '(,)', ROW(-1, ''),
  1, '', '     ', 'xxxxxxxxxxxxxxxxxxxx', '', '');
"#;

/// (column, originalType, expectedExportedType, Arrow type read back).
const EVERY_TYPE_COLUMNS: &[(&str, &str, &str, DataType)] = &[
    ("id", "integer", "int32", DataType::Int32),
    ("c_bigint", "bigint", "int64", DataType::Int64),
    ("c_bigserial", "bigint", "int64", DataType::Int64),
    ("c_integer", "integer", "int32", DataType::Int32),
    ("c_serial", "integer", "int32", DataType::Int32),
    ("c_smallint", "smallint", "int32", DataType::Int16),
    ("c_smallserial", "smallint", "int32", DataType::Int16),
    ("c_real", "real", "float", DataType::Float32),
    ("c_double", "double precision", "double", DataType::Float64),
    ("c_boolean", "boolean", "boolean", DataType::Boolean),
    ("c_bytea", "bytea", "binary", DataType::Binary),
    ("c_numeric", "numeric", "binary (UTF8)", DataType::Utf8),
    ("c_numeric_ps", "numeric", "binary (UTF8)", DataType::Utf8),
    ("c_money", "money", "binary (UTF8)", DataType::Utf8),
    ("c_date", "date", "binary (UTF8)", DataType::Utf8),
    (
        "c_time",
        "time without time zone",
        "binary (UTF8)",
        DataType::Utf8,
    ),
    (
        "c_timetz",
        "time with time zone",
        "binary (UTF8)",
        DataType::Utf8,
    ),
    (
        "c_timestamp",
        "timestamp without time zone",
        "binary (UTF8)",
        DataType::Utf8,
    ),
    (
        "c_timestamp3",
        "timestamp without time zone",
        "binary (UTF8)",
        DataType::Utf8,
    ),
    (
        "c_timestamptz",
        "timestamp with time zone",
        "binary (UTF8)",
        DataType::Utf8,
    ),
    ("c_interval", "interval", "binary (UTF8)", DataType::Utf8),
    ("c_uuid", "uuid", "binary (UTF8)", DataType::Utf8),
    ("c_json", "json", "binary (UTF8)", DataType::Utf8),
    ("c_jsonb", "jsonb", "binary (UTF8)", DataType::Utf8),
    ("c_enum", "USER-DEFINED", "binary (UTF8)", DataType::Utf8),
    ("c_int_array", "ARRAY", "binary (UTF8)", DataType::Utf8),
    ("c_text_array", "ARRAY", "binary (UTF8)", DataType::Utf8),
    ("c_inet", "inet", "binary (UTF8)", DataType::Utf8),
    ("c_cidr", "cidr", "binary (UTF8)", DataType::Utf8),
    ("c_macaddr", "macaddr", "binary (UTF8)", DataType::Utf8),
    ("c_macaddr8", "macaddr8", "binary (UTF8)", DataType::Utf8),
    ("c_xml", "xml", "binary (UTF8)", DataType::Utf8),
    ("c_bit", "bit", "binary (UTF8)", DataType::Utf8),
    ("c_varbit", "bit varying", "binary (UTF8)", DataType::Utf8),
    ("c_tsvector", "tsvector", "binary (UTF8)", DataType::Utf8),
    ("c_tsquery", "tsquery", "binary (UTF8)", DataType::Utf8),
    ("c_range", "int4range", "binary (UTF8)", DataType::Utf8),
    (
        "c_composite",
        "USER-DEFINED",
        "binary (UTF8)",
        DataType::Utf8,
    ),
    // information_schema gives a domain's base type: the file follows it.
    ("c_domain_int", "integer", "int32", DataType::Int32),
    ("c_domain_text", "text", "binary (UTF8)", DataType::Utf8),
    ("c_char", "character", "binary (UTF8)", DataType::Utf8),
    (
        "c_varchar",
        "character varying",
        "binary (UTF8)",
        DataType::Utf8,
    ),
    ("c_text", "text", "binary (UTF8)", DataType::Utf8),
    ("c_name", "name", "binary (UTF8)", DataType::Utf8),
];

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Compares every value of every column of `batch` (one row per `id`) with what PostgreSQL
/// returns for the same column: typed for native columns, `col::text` for string columns
/// (the output function for `character(n)`, which keeps the padding `::text` strips).
async fn assert_values_match(
    client: &tokio_postgres::Client,
    table_sql: &str,
    batch: &RecordBatch,
    char_columns: &[&str],
) {
    client.batch_execute(SESSION).await.unwrap();
    let ids = batch
        .column_by_name("id")
        .unwrap()
        .as_any()
        .downcast_ref::<Int32Array>()
        .unwrap();
    let row_of: HashMap<i32, usize> = (0..ids.len()).map(|i| (ids.value(i), i)).collect();
    let count: i64 = client
        .query_one(&format!("SELECT count(*) FROM {table_sql}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(row_of.len() as i64, count, "row count of {table_sql}");
    for (ci, field) in batch.schema().fields().iter().enumerate() {
        let name = field.name();
        let col = ident(name);
        let arr = batch.column(ci);
        let expr = match field.data_type() {
            DataType::Utf8 if char_columns.contains(&name.as_str()) => {
                format!("textin(bpcharout({col}))")
            }
            DataType::Utf8 => format!("{col}::text"),
            _ => col.clone(),
        };
        let rows = client
            .query(&format!("SELECT id, {expr} FROM {table_sql}"), &[])
            .await
            .unwrap();
        for r in rows {
            let id: i32 = r.get(0);
            let i = row_of[&id];
            let ctx = format!("column {name:?}, id {id}");
            match field.data_type() {
                DataType::Utf8 => {
                    let a = arr.as_any().downcast_ref::<StringArray>().unwrap();
                    let got = a.is_valid(i).then(|| a.value(i).to_string());
                    assert_eq!(got, r.get::<_, Option<String>>(1), "{ctx}");
                }
                DataType::Int16 => {
                    let a = arr.as_any().downcast_ref::<Int16Array>().unwrap();
                    assert_eq!(a.is_valid(i).then(|| a.value(i)), r.get(1), "{ctx}");
                }
                DataType::Int32 => {
                    let a = arr.as_any().downcast_ref::<Int32Array>().unwrap();
                    assert_eq!(a.is_valid(i).then(|| a.value(i)), r.get(1), "{ctx}");
                }
                DataType::Int64 => {
                    let a = arr.as_any().downcast_ref::<Int64Array>().unwrap();
                    assert_eq!(a.is_valid(i).then(|| a.value(i)), r.get(1), "{ctx}");
                }
                DataType::Float32 => {
                    let a = arr.as_any().downcast_ref::<Float32Array>().unwrap();
                    let want: Option<f32> = r.get(1);
                    let got = a.is_valid(i).then(|| a.value(i));
                    assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits), "{ctx}");
                }
                DataType::Float64 => {
                    let a = arr.as_any().downcast_ref::<Float64Array>().unwrap();
                    let want: Option<f64> = r.get(1);
                    let got = a.is_valid(i).then(|| a.value(i));
                    assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{ctx}");
                }
                DataType::Boolean => {
                    let a = arr.as_any().downcast_ref::<BooleanArray>().unwrap();
                    assert_eq!(a.is_valid(i).then(|| a.value(i)), r.get(1), "{ctx}");
                }
                DataType::Binary => {
                    let a = arr.as_any().downcast_ref::<BinaryArray>().unwrap();
                    let want: Option<Vec<u8>> = r.get(1);
                    assert_eq!(a.is_valid(i).then(|| a.value(i).to_vec()), want, "{ctx}");
                }
                other => panic!("{ctx}: unexpected arrow type {other}"),
            }
        }
    }
}

#[tokio::test]
async fn every_mapped_type_reads_back_with_aurora_types_and_postgres_text() {
    let url = pg().create_db("lx_types");
    let db = db_name(&url);
    pg().psql(db, EVERY_TYPE_DDL);
    let (_dir, out, summary) = export_db(&url, &LocalExportOptions::new("types-export")).await;
    assert_eq!(summary.database, db);
    assert_eq!(summary.tables.len(), 1);
    assert_eq!(summary.tables[0].table, "public.every_type");
    assert_eq!((summary.tables[0].rows, summary.tables[0].files), (4, 1));
    assert!(summary.skipped.is_empty());

    let export = open(&out).await;
    assert_eq!(export.info.status, "COMPLETE");
    assert_eq!(export.info.export_task_identifier, "types-export");
    assert_eq!(export.info.percent_progress, Some(100));
    assert_eq!(
        export.info.source_arn.as_deref(),
        Some(format!("arn:aws:rds:local:000000000000:cluster:{db}").as_str())
    );
    assert!(export.info.task_start_time.is_some() && export.info.task_end_time.is_some());
    assert!(export.info.total_exported_data_in_gb.unwrap() > 0.0);
    assert_eq!(export.database, db);
    assert!(export.skipped.is_empty() && export.warnings.is_empty());
    assert!(
        out.join("export_tables_info_types-export_from_1_to_1.json")
            .exists()
    );
    let t = export.table("public.every_type").unwrap();

    // Metadata: one entry a column, in attnum order, typed like information_schema.
    let got: Vec<(&str, &str, &str)> = t
        .columns
        .iter()
        .map(|c| {
            (
                c.column_name.as_str(),
                c.original_type.as_str(),
                c.expected_exported_type.as_str(),
            )
        })
        .collect();
    let want: Vec<(&str, &str, &str)> = EVERY_TYPE_COLUMNS
        .iter()
        .map(|(n, o, e, _)| (*n, *o, *e))
        .collect();
    assert_eq!(got, want);
    let col = |n: &str| t.columns.iter().find(|c| c.column_name == n).unwrap();
    assert_eq!(col("c_varchar").original_char_max_length, Some(20));
    assert_eq!(col("c_char").original_char_max_length, Some(5));
    assert_eq!(col("c_numeric_ps").original_num_precision, Some(12));
    assert_eq!(col("c_numeric_ps").original_num_scale, Some(3));
    assert_eq!(col("c_numeric").original_num_precision, None);
    assert_eq!(col("c_integer").original_num_precision, Some(32));
    assert_eq!(col("c_timestamp3").original_date_time_precision, Some(3));
    assert_eq!(col("c_timestamp").original_date_time_precision, Some(6));
    assert_eq!(col("c_text").original_char_max_length, None);
    let info = tables_info(&out);
    let stats = info.per_table_status[0].table_statistics.as_ref().unwrap();
    assert_eq!(stats["extractedRowCount"], 4);
    assert!(info.per_table_status[0].size_gb.unwrap() > 0.0);

    // Files: found, named like Aurora's, counted in their footers.
    assert_eq!(t.files.len(), 1);
    let key = &t.files[0].key;
    let prefix = format!("{db}/public.every_type/1/part-00000-");
    assert!(
        key.starts_with(&prefix) && key.ends_with("-c000.gz.parquet"),
        "{key}"
    );
    assert!(out.join(db).join("public.every_type/1/_SUCCESS").exists());
    assert_eq!(footer_rows(&export, t).await, 4);

    // Parquet schema: Aurora's physical types, smallint annotated INT(16), strings UTF8.
    let reader =
        SerializedFileReader::new(std::fs::File::open(table_path(&export, t, 0)).unwrap()).unwrap();
    let meta = reader.metadata();
    let descr = meta.file_metadata().schema_descr();
    assert_eq!(descr.num_columns(), EVERY_TYPE_COLUMNS.len());
    for (i, (name, _, _, arrow)) in EVERY_TYPE_COLUMNS.iter().enumerate() {
        let c = descr.column(i);
        assert_eq!(c.name(), *name);
        let (physical, logical) = match arrow {
            DataType::Int16 => (PhysicalType::INT32, Some(LogicalType::integer(16, true))),
            DataType::Int32 => (PhysicalType::INT32, None),
            DataType::Int64 => (PhysicalType::INT64, None),
            DataType::Float32 => (PhysicalType::FLOAT, None),
            DataType::Float64 => (PhysicalType::DOUBLE, None),
            DataType::Boolean => (PhysicalType::BOOLEAN, None),
            DataType::Binary => (PhysicalType::BYTE_ARRAY, None),
            _ => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
        };
        assert_eq!(c.physical_type(), physical, "{name}");
        if logical.is_some() {
            assert_eq!(c.logical_type_ref(), logical.as_ref(), "{name}");
        } else {
            assert!(
                !matches!(c.logical_type_ref(), Some(LogicalType::String)),
                "{name}"
            );
        }
        assert!(
            matches!(
                meta.row_group(0).column(i).compression(),
                Compression::GZIP(_)
            ),
            "{name}"
        );
    }
    // No Arrow schema in the footer: readers get only what an Aurora file gives them.
    assert!(
        meta.file_metadata()
            .key_value_metadata()
            .is_none_or(|kv| kv.iter().all(|k| k.key != "ARROW:schema"))
    );

    // Values: typed ones equal, strings equal PostgreSQL's text output.
    let batch = read_table(&export, t);
    for (i, (name, _, _, arrow)) in EVERY_TYPE_COLUMNS.iter().enumerate() {
        assert_eq!(batch.schema().field(i).name(), *name);
        assert_eq!(batch.schema().field(i).data_type(), arrow, "{name}");
    }
    let client = connect(&url).await;
    assert_values_match(&client, "every_type", &batch, &["c_char"]).await;
    // A few literal checks, so the comparison above cannot pass by both sides being wrong.
    let strings = |name: &str| {
        batch
            .column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone()
    };
    let ids = batch
        .column_by_name("id")
        .unwrap()
        .as_any()
        .downcast_ref::<Int32Array>()
        .unwrap()
        .clone();
    let at = |id: i32| (0..ids.len()).find(|&i| ids.value(i) == id).unwrap();
    assert_eq!(strings("c_char").value(at(1)), "ab   ");
    assert_eq!(
        strings("c_text").value(at(1)),
        "line1\nline2\ttab \\ back 'quote' \"dq\""
    );
    assert_eq!(strings("c_timestamptz").value(at(4)), "infinity");
    assert_eq!(strings("c_numeric").value(at(2)), "NaN");
    assert_eq!(
        strings("c_numeric").value(at(1)),
        "123456789012345678901234567890.123456789012345678901234567890"
    );
    assert_eq!(
        strings("c_interval").value(at(4)),
        "1 mon -2 days +03:04:05.678901"
    );
    assert_eq!(strings("c_text_array").value(at(2)), "{{a,b},{c,d}}");
    assert!(strings("c_text").is_null(at(3)));
}

#[tokio::test]
async fn session_settings_do_not_leak_into_the_files_or_out_of_the_export() {
    let url = pg().create_db("lx_settings");
    let db = db_name(&url);
    pg().psql(
        db,
        &format!(
            "ALTER DATABASE \"{db}\" SET TimeZone = 'Asia/Tokyo';
             ALTER DATABASE \"{db}\" SET DateStyle = 'SQL, DMY';
             ALTER DATABASE \"{db}\" SET IntervalStyle = 'iso_8601';
             ALTER DATABASE \"{db}\" SET extra_float_digits = 3;"
        ),
    );
    pg().psql(
        db,
        "CREATE TABLE t (id int, ts timestamptz, d date, iv interval, f float8[]);
         INSERT INTO t VALUES (1, '2024-01-02 03:04:05+00', '2024-01-31', '1 day 02:00', '{0.1}');",
    );
    let client = connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    local_export(&client, &out, &LocalExportOptions::new("x"), &|_, _| {})
        .await
        .unwrap();
    let export = open(&out).await;
    let batch = read_table(&export, export.table("public.t").unwrap());
    let s = |n: &str| {
        batch
            .column_by_name(n)
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0)
            .to_string()
    };
    assert_eq!(s("ts"), "2024-01-02 03:04:05+00");
    assert_eq!(s("d"), "2024-01-31");
    assert_eq!(s("iv"), "1 day 02:00:00");
    assert_eq!(s("f"), "{0.1}");
    // SET LOCAL: the caller's session keeps its own settings.
    let tz: String = client.query_one("SHOW TimeZone", &[]).await.unwrap().get(0);
    assert_eq!(tz, "Asia/Tokyo");
    let ds: String = client
        .query_one("SHOW DateStyle", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ds, "SQL, DMY");
}

#[tokio::test]
async fn a_large_table_is_cut_into_files_and_row_groups() {
    let url = pg().create_db("lx_large");
    let db = db_name(&url);
    pg().psql(
        db,
        "CREATE TABLE big (id int PRIMARY KEY, label text, n bigint);
         INSERT INTO big SELECT g, 'row ' || g, g::bigint * 1000003 FROM generate_series(1, 25000) g;",
    );
    let client = connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big-export");
    let opts = LocalExportOptions {
        export_id: "big-export".into(),
        rows_per_file: 10_000,
        rows_per_row_group: 3_000,
    };
    let seen = Mutex::new(Vec::new());
    let summary = local_export(&client, &out, &opts, &|t, n| {
        seen.lock().unwrap().push((t.to_string(), n))
    })
    .await
    .unwrap();
    assert_eq!(summary.tables[0].rows, 25_000);
    assert_eq!(summary.tables[0].files, 3);
    let seen = seen.into_inner().unwrap();
    assert!(seen.len() > 1, "progress reported per batch: {seen:?}");
    assert!(seen.iter().all(|(t, _)| t == "public.big"));
    assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1));
    assert_eq!(seen.last().unwrap().1, 25_000);

    let export = open(&out).await;
    let t = export.table("public.big").unwrap();
    assert_eq!(t.files.len(), 3);
    let uuid = t.files[0].key.split('/').next_back().unwrap()[11..47].to_string();
    for (i, f) in t.files.iter().enumerate() {
        assert_eq!(
            f.key,
            format!("{db}/public.big/1/part-{i:05}-{uuid}-c000.gz.parquet")
        );
    }
    assert!(out.join(db).join("public.big/1/_SUCCESS").exists());
    let mut per_file = Vec::new();
    for f in &t.files {
        let footer = export.footer(f).await.unwrap();
        per_file.push((
            footer.rows,
            footer.row_groups.iter().map(|r| r.rows).collect::<Vec<_>>(),
        ));
    }
    assert_eq!(
        per_file,
        vec![
            (10_000, vec![3_000, 3_000, 3_000, 1_000]),
            (10_000, vec![3_000, 3_000, 3_000, 1_000]),
            (5_000, vec![3_000, 2_000]),
        ]
    );
    let batch = read_table(&export, t);
    let ids = batch
        .column_by_name("id")
        .unwrap()
        .as_any()
        .downcast_ref::<Int32Array>()
        .unwrap();
    let mut all: Vec<i32> = ids.values().to_vec();
    all.sort_unstable();
    assert_eq!(all, (1..=25_000).collect::<Vec<_>>());
    assert_values_match(&client, "big", &batch, &[]).await;
}

#[tokio::test]
async fn an_empty_table_keeps_its_metadata_but_gets_no_files() {
    let url = pg().create_db("lx_empty");
    let db = db_name(&url);
    pg().psql(
        db,
        "CREATE TABLE empty_one (id int, v varchar(3)); CREATE TABLE one (id int); INSERT INTO one VALUES (1);",
    );
    let (_dir, out, summary) = export_db(&url, &LocalExportOptions::new("e")).await;
    let s = summary
        .tables
        .iter()
        .find(|t| t.table == "public.empty_one")
        .unwrap();
    assert_eq!((s.rows, s.files), (0, 0));
    assert!(!out.join(db).join("public.empty_one").exists());
    let export = open(&out).await;
    let t = export.table("public.empty_one").unwrap();
    assert!(t.files.is_empty());
    assert_eq!(t.columns.len(), 2);
    assert_eq!(t.columns[1].original_type, "character varying");
    assert_eq!(t.columns[1].original_char_max_length, Some(3));
    let info = tables_info(&out);
    let entry = info
        .per_table_status
        .iter()
        .find(|e| e.target == format!("{db}.public.empty_one"))
        .unwrap();
    assert_eq!(entry.status, "COMPLETE");
    assert_eq!(
        entry.table_statistics.as_ref().unwrap()["extractedRowCount"],
        0
    );
    assert_eq!(export.table("public.one").unwrap().files.len(), 1);
}

#[tokio::test]
async fn odd_identifiers_survive_and_aurora_skips_are_reported() {
    let url = pg().create_db("lx_idents");
    let db = db_name(&url);
    pg().psql(
        db,
        r#"CREATE SCHEMA "My Schema";
           CREATE TABLE "My Schema"."Odd ""Tab"" Näme" (id int, "MixedCase" text, "quo""te" int, "ünï" bytea, "a'b" bool);
           INSERT INTO "My Schema"."Odd ""Tab"" Näme" VALUES (1, 'x', 2, '\x01', true), (2, NULL, NULL, NULL, NULL);
           CREATE TABLE spaced ("has space" int); INSERT INTO spaced VALUES (1);
           CREATE TABLE "paren(s)" ("a(b)" int);
           CREATE UNLOGGED TABLE scratch (id int); INSERT INTO scratch VALUES (1);
           CREATE TABLE "sla/sh" (id int);
           CREATE TABLE no_columns ();
           CREATE VIEW v AS SELECT 1 AS one;
           CREATE MATERIALIZED VIEW mv AS SELECT 1 AS one;"#,
    );
    let (_dir, out, summary) = export_db(&url, &LocalExportOptions::new("i")).await;
    let names: Vec<&str> = summary.tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(names, vec!["My Schema.Odd \"Tab\" Näme"]);
    let mut skipped: Vec<(String, String)> = summary
        .skipped
        .iter()
        .map(|s| (s.target.clone(), s.status.clone()))
        .collect();
    skipped.sort();
    let skipped_names = |v: &[(String, String)]| {
        v.iter()
            .map(|(t, s)| format!("{}={s}", t.strip_prefix(&format!("{db}.")).unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        skipped_names(&skipped),
        vec![
            "public.no_columns=SKIPPED",
            "public.paren(s)=SKIPPED",
            "public.scratch=SKIPPED",
            "public.sla/sh=SKIPPED",
            "public.spaced=SKIPPED",
        ]
    );
    let reason = |t: &str| {
        summary
            .skipped
            .iter()
            .find(|s| s.target.ends_with(t))
            .unwrap()
            .reason
            .clone()
    };
    assert!(reason(".scratch").contains("unlogged"));
    assert!(reason(".spaced").contains("\"has space\""));

    let export = open(&out).await;
    assert_eq!(export.skipped.len(), 5);
    assert!(
        export
            .skipped
            .iter()
            .any(|s| s.target.ends_with(".scratch") && s.reason.contains("unlogged"))
    );
    let t = export.table("My Schema.Odd \"Tab\" Näme").unwrap();
    assert_eq!(t.schema, "My Schema");
    assert_eq!(t.name, "Odd \"Tab\" Näme");
    let names: Vec<&str> = t.columns.iter().map(|c| c.column_name.as_str()).collect();
    assert_eq!(names, vec!["id", "MixedCase", "quo\"te", "ünï", "a'b"]);
    assert!(
        t.files[0]
            .key
            .starts_with(&format!("{db}/My Schema.Odd \"Tab\" Näme/1/part-00000-"))
    );
    let batch = read_table(&export, t);
    let fields: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(fields, names);
    let client = connect(&url).await;
    assert_values_match(&client, r#""My Schema"."Odd ""Tab"" Näme""#, &batch, &[]).await;
}

#[tokio::test]
async fn a_partitioned_table_is_one_table_with_a_batch_folder_per_partition() {
    let url = pg().create_db("lx_parts");
    let db = db_name(&url);
    pg().psql(
        db,
        "CREATE TABLE m (id int, region text) PARTITION BY LIST (region);
         CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu');
         CREATE TABLE m_us PARTITION OF m FOR VALUES IN ('us');
         CREATE TABLE m_empty PARTITION OF m FOR VALUES IN ('xx');
         INSERT INTO m SELECT g, CASE WHEN g % 3 = 0 THEN 'eu' ELSE 'us' END FROM generate_series(1, 30) g;",
    );
    let (_dir, out, summary) = export_db(&url, &LocalExportOptions::new("p")).await;
    assert_eq!(summary.tables.len(), 1);
    assert_eq!(summary.tables[0].table, "public.m");
    assert_eq!((summary.tables[0].rows, summary.tables[0].files), (30, 2));
    let export = open(&out).await;
    let t = export.table("public.m").unwrap();
    let folders: Vec<&str> = t
        .files
        .iter()
        .map(|f| f.key.split('/').nth(2).unwrap())
        .collect();
    // Leaves in name order: m_empty (no file), m_eu, m_us.
    assert_eq!(folders, vec!["2", "3"]);
    assert!(out.join(db).join("public.m/2/_SUCCESS").exists());
    assert!(!out.join(db).join("public.m/1").exists());
    assert_eq!(footer_rows(&export, t).await, 30);
    let client = connect(&url).await;
    assert_values_match(&client, "m", &read_table(&export, t), &[]).await;
}

#[tokio::test]
async fn a_non_empty_output_directory_is_refused() {
    let url = pg().create_db("lx_refuse");
    pg().psql(db_name(&url), "CREATE TABLE t (id int)");
    let client = connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.parquet"), b"x").unwrap();
    let err = local_export(
        &client,
        dir.path(),
        &LocalExportOptions::new("x"),
        &|_, _| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("is not empty"), "{err}");
    // The connection is still usable: no transaction was left open.
    client
        .batch_execute("CREATE TABLE u (id int)")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_database_without_tables_is_still_a_readable_export() {
    let url = pg().create_db("lx_none");
    let (_dir, out, summary) = export_db(&url, &LocalExportOptions::new("n")).await;
    assert!(summary.tables.is_empty());
    let export = open(&out).await;
    assert!(export.tables.is_empty());
    assert_eq!(export.database, db_name(&url));
}

#[tokio::test]
async fn rows_committed_during_the_export_are_not_in_it() {
    let url = pg().create_db("lx_snapshot");
    let db = db_name(&url).to_string();
    pg().psql(
        &db,
        "CREATE TABLE a (id int); INSERT INTO a SELECT generate_series(1, 10);
         CREATE TABLE b (id int); INSERT INTO b SELECT generate_series(1, 10);",
    );
    let client = connect(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let done = std::sync::atomic::AtomicBool::new(false);
    // Once table a is written and before b is read, another session commits rows into both.
    let summary = local_export(&client, &out, &LocalExportOptions::new("s"), &|t, _| {
        if t == "public.a" && !done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            pg().psql(
                &db,
                "INSERT INTO a VALUES (11); INSERT INTO b VALUES (11); DELETE FROM b WHERE id = 1;",
            );
        }
    })
    .await
    .unwrap();
    assert!(done.into_inner());
    let rows: Vec<(String, u64)> = summary
        .tables
        .iter()
        .map(|t| (t.table.clone(), t.rows))
        .collect();
    assert_eq!(
        rows,
        vec![("public.a".to_string(), 10), ("public.b".to_string(), 10)]
    );
    let export = open(&out).await;
    let batch = read_table(&export, export.table("public.b").unwrap());
    let ids = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int32Array>()
        .unwrap();
    let mut ids: Vec<i32> = ids.values().to_vec();
    ids.sort_unstable();
    assert_eq!(ids, (1..=10).collect::<Vec<_>>());
}

#[tokio::test]
async fn row_level_security_fails_the_export_instead_of_hiding_rows() {
    let url = pg().create_db("lx_rls");
    let db = db_name(&url);
    let role = format!("{db}_reader");
    pg().psql(
        db,
        &format!(
            "CREATE ROLE \"{role}\" LOGIN;
             CREATE TABLE secret (id int, owner text);
             INSERT INTO secret VALUES (1, '{role}'), (2, 'someone else');
             ALTER TABLE secret ENABLE ROW LEVEL SECURITY;
             CREATE POLICY mine ON secret USING (owner = current_user);
             GRANT SELECT ON secret TO \"{role}\";"
        ),
    );
    let reader_url = url.replace("postgres://postgres@", &format!("postgres://{role}@"));
    let client = connect(&reader_url).await;
    let visible: i64 = client
        .query_one("SELECT count(*) FROM secret", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 1, "the policy hides a row from this role");
    let dir = tempfile::tempdir().unwrap();
    let err = local_export(
        &client,
        dir.path(),
        &LocalExportOptions::new("r"),
        &|_, _| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("public.secret"), "{err}");
    assert!(!dir.path().join("export_info_r.json").exists());
}

#[tokio::test]
async fn a_connection_inside_a_transaction_is_refused_and_left_alone() {
    let url = pg().create_db("lx_outer");
    pg().psql(db_name(&url), "CREATE TABLE t (id int)");
    let client = connect(&url).await;
    client
        .batch_execute("BEGIN; CREATE TEMP TABLE mine (id int) ON COMMIT DROP; SELECT 1;")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = local_export(
        &client,
        &dir.path().join("o"),
        &LocalExportOptions::new("o"),
        &|_, _| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("inside a transaction"), "{err}");
    // The caller's transaction is still open and still holds its work.
    client
        .batch_execute("INSERT INTO mine VALUES (1)")
        .await
        .unwrap();
    client.batch_execute("COMMIT").await.unwrap();
}
