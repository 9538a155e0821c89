//! The broken-input corpus: each case is generated here (a source database, exported as Aurora
//! would, then damaged or edited on purpose), and goes through `snap2dsql plan` and
//! `snap2dsql run` into the DSQL stand-in like a user's export would. Each ends in a correct load
//! or in an error that names what and where; either way the ledger and `status` then say
//! exactly what is in the target.

use super::load::cli;
use snap2dsql::local_export::{LocalExportOptions, local_export};
use snap2dsql::mapping::Mapping;
use snap2dsql_tests::{connect, db_name, parquet_files, pg, standin};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a case must end in.
enum Expect {
    /// `run` exits 0 (every table verified) with this many rows in the target.
    Loads(i64),
    /// Like `Loads`, and `plan`'s report holds every fragment (a warning).
    LoadsWarning(i64, &'static [&'static str]),
    /// `plan` fails; its message holds every fragment.
    PlanFails(&'static [&'static str]),
    /// `plan` works, `run` fails; its message holds every fragment.
    RunFails(&'static [&'static str]),
}

struct Case {
    name: &'static str,
    /// Source tables (schema `public`) and their rows.
    sql: &'static str,
    /// What is done to the export before planning.
    damage: fn(&Path),
    expect: Expect,
}

const ITEMS: &str = "CREATE TABLE items (id serial PRIMARY KEY, name text, qty int, price numeric(10,2), note varchar(10));
INSERT INTO items (name, qty, price, note) SELECT 'item ' || g, g % 7, g / 3.0, 'n' || g FROM generate_series(1, 3000) g;";

fn table_files(root: &Path, table: &str) -> Vec<PathBuf> {
    parquet_files(root)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&format!("/public.{table}/")))
        .collect()
}

/// Edits the `originalTypeMappings` entry of `column` of `public.<table>`.
fn edit_column(root: &Path, table: &str, column: &str, edit: impl Fn(&mut serde_json::Value)) {
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if !p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("export_tables_info_")
        {
            continue;
        }
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        for t in v["perTableStatus"].as_array_mut().unwrap() {
            if !t["target"]
                .as_str()
                .unwrap_or("")
                .ends_with(&format!(".public.{table}"))
            {
                continue;
            }
            for c in t["schemaMetadata"]["originalTypeMappings"]
                .as_array_mut()
                .unwrap()
            {
                if c["columnName"] == column {
                    edit(c);
                }
            }
        }
        std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }
}

/// Writes a Parquet file beside `public.<table>`'s first file: `id` as INT32 and each of
/// `columns` as a UTF8-annotated string column whose bytes are written as given, valid UTF-8 or
/// not (what a broken exporter could leave).
fn write_part(
    root: &Path,
    table: &str,
    file: &str,
    ids: &[i32],
    columns: &[(&str, Vec<Option<Vec<u8>>>)],
) -> PathBuf {
    use arrow::array::{ArrayRef, Int32Array, StringArray};
    use arrow::buffer::{NullBuffer, OffsetBuffer};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let dir = table_files(root, table)[0].parent().unwrap().to_path_buf();
    let mut fields = vec![Field::new("id", DataType::Int32, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(Int32Array::from(ids.to_vec()))];
    for (name, values) in columns {
        fields.push(Field::new(*name, DataType::Utf8, true));
        let lengths = values.iter().map(|v| v.as_ref().map_or(0, Vec::len));
        let bytes: Vec<u8> = values.iter().flatten().flatten().copied().collect();
        let nulls = NullBuffer::from(values.iter().map(Option::is_some).collect::<Vec<_>>());
        // SAFETY: offsets and nulls are consistent; the bytes may be invalid UTF-8 on purpose,
        // which only the reader under test ever sees.
        let array = unsafe {
            StringArray::new_unchecked(
                OffsetBuffer::from_lengths(lengths),
                bytes.into(),
                Some(nulls),
            )
        };
        arrays.push(Arc::new(array));
    }
    let batch =
        arrow::record_batch::RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
    let path = dir.join(file);
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    path
}

fn no_damage(_: &Path) {}

/// Rewrites `public.<table>`'s first part file through `edit`.
fn edit_first_file(root: &Path, table: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    let f = &table_files(root, table)[0];
    let mut data = std::fs::read(f).unwrap();
    edit(&mut data);
    std::fs::write(f, data).unwrap();
}

fn cases() -> Vec<Case> {
    vec![
        Case { name: "healthy export", sql: ITEMS, damage: no_damage, expect: Expect::Loads(3000) },
        Case {
            name: "truncated Parquet",
            sql: ITEMS,
            damage: |root| edit_first_file(root, "items", |data| data.truncate(data.len() / 2)),
            expect: Expect::PlanFails(&["public.items/", ".parquet", "footer"]),
        },
        Case {
            name: "bad magic",
            sql: ITEMS,
            damage: |root| {
                edit_first_file(root, "items", |data| {
                    let n = data.len();
                    data[n - 4..].copy_from_slice(b"XXXX");
                })
            },
            expect: Expect::PlanFails(&["public.items/", ".parquet", "footer"]),
        },
        Case {
            name: "corrupted page",
            sql: ITEMS,
            damage: |root| {
                // Zeroes 64 bytes a third of the way in: inside a data page, the footer intact.
                edit_first_file(root, "items", |data| {
                    let at = data.len() / 3;
                    data[at..at + 64].fill(0);
                })
            },
            expect: Expect::RunFails(&["public.items/", ".parquet", "row group"]),
        },
        Case {
            name: "part files with different schemas",
            sql: ITEMS,
            damage: |root| {
                write_part(root, "items", "part-77777-other-c000.gz.parquet", &[90_001], &[("colour", vec![Some(b"red".to_vec())])]);
            },
            expect: Expect::PlanFails(&["part-77777-other-c000.gz.parquet"]),
        },
        Case {
            name: "Parquet type contradicting the metadata",
            sql: ITEMS,
            damage: |root| edit_column(root, "items", "qty", |c| {
                c["originalType"] = "date".into();
                c["expectedExportedType"] = "binary (UTF8)".into();
            }),
            expect: Expect::PlanFails(&["public.items/", "qty"]),
        },
        Case {
            name: "table in the metadata with no files",
            sql: "CREATE TABLE gone (id serial PRIMARY KEY, v text); INSERT INTO gone (v) VALUES ('a'), ('b');",
            damage: |root| {
                for f in table_files(root, "gone") {
                    std::fs::remove_file(f).unwrap();
                }
            },
            // Loaded as empty, with a warning naming the table (never silently).
            expect: Expect::LoadsWarning(0, &["public.gone", "no .parquet files"]),
        },
        Case {
            name: "files with no table",
            sql: ITEMS,
            damage: |root| {
                let f = &table_files(root, "items")[0];
                let ghost = f.parent().unwrap().parent().unwrap().parent().unwrap().join("public.ghost/1");
                std::fs::create_dir_all(&ghost).unwrap();
                std::fs::copy(f, ghost.join("part-00000-ghost-c000.gz.parquet")).unwrap();
            },
            expect: Expect::Loads(3000),
        },
        Case {
            name: "empty table and zero-row file",
            sql: "CREATE TABLE empty (id serial PRIMARY KEY, v text);
                  CREATE TABLE one_row (id serial PRIMARY KEY, v text); INSERT INTO one_row (v) VALUES ('x');",
            damage: |root| {
                write_part(root, "one_row", "part-00009-zero-c000.gz.parquet", &[], &[("v", vec![])]);
            },
            expect: Expect::Loads(1),
        },
        Case {
            name: "duplicate primary keys in the source",
            sql: "CREATE TABLE dup (id int, v text); INSERT INTO dup VALUES (1, 'a'), (2, 'b'), (1, 'again');",
            damage: no_damage,
            expect: Expect::RunFails(&["public.dup", "rows 0..3", "duplicate key", "Key (id)="]),
        },
        Case {
            name: "NULL in a key",
            sql: "CREATE TABLE nokey (id int, v text); INSERT INTO nokey VALUES (1, 'a'), (NULL, 'b');",
            damage: no_damage,
            expect: Expect::RunFails(&["public.nokey", "id"]),
        },
        Case {
            name: "string longer than its varchar",
            sql: ITEMS,
            damage: |root| edit_column(root, "items", "note", |c| {
                c["originalType"] = "character varying(3)".into();
                c["originalCharMaxLength"] = 3.into();
            }),
            expect: Expect::RunFails(&["public.items/", "row group", "column \"note\"", "more than the 3 of varchar(3)"]),
        },
        Case {
            name: "numeric beyond the target precision",
            sql: "CREATE TABLE money (id serial PRIMARY KEY, amount numeric);
                  INSERT INTO money (amount) VALUES (1.5), (1234567890123456789012345678901.25);",
            damage: no_damage,
            expect: Expect::RunFails(&["public.money/", "row 1", "\"amount\"", "1234567890123456789012345678901.25"]),
        },
        Case {
            name: "invalid UTF-8 in a string column",
            sql: "CREATE TABLE words (id serial PRIMARY KEY, w text); INSERT INTO words (w) VALUES ('fine');",
            damage: |root| {
                write_part(root, "words", "part-00008-bad-utf8-c000.gz.parquet", &[7], &[("w", vec![Some(vec![b'o', 0xff, b'k'])])]);
            },
            expect: Expect::RunFails(&["part-00008-bad-utf8-c000.gz.parquet", "utf-8"]),
        },
        Case {
            name: "a value over 1 MiB",
            sql: "CREATE TABLE blobs (id serial PRIMARY KEY, body text);
                  INSERT INTO blobs (body) VALUES ('small'), (repeat('x', 1100000));",
            damage: no_damage,
            expect: Expect::RunFails(&["public.blobs/", "row 1", "\"body\"", "1048576"]),
        },
        Case {
            name: "a row over 2 MiB",
            sql: "CREATE TABLE wide (id serial PRIMARY KEY, a text, b text, c text);
                  INSERT INTO wide (a, b, c) VALUES ('s', 's', 's'),
                    (repeat('a', 800000), repeat('b', 800000), repeat('c', 800000));",
            damage: no_damage,
            expect: Expect::RunFails(&["public.wide/", "row 1", "2097152"]),
        },
        Case {
            name: "more than 255 columns",
            sql: "DO $$ BEGIN EXECUTE 'CREATE TABLE many (id serial PRIMARY KEY, ' ||
                    (SELECT string_agg('c' || g || ' int', ', ') FROM generate_series(1, 300) g) || ')'; END $$;
                  INSERT INTO many (c1) VALUES (1);",
            damage: no_damage,
            expect: Expect::PlanFails(&["public.many", "255"]),
        },
    ]
}

fn snap2dsql(args: &[&str]) -> (bool, String) {
    let out = Command::new(cli())
        .args(args)
        .env("SNAP2DSQL_LOG", "error")
        .output()
        .expect("run the snap2dsql CLI");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Rows per target table and per the ledger, as `(table, in target, in ledger)`.
async fn target_vs_ledger(target_url: &str, mapping: &Mapping) -> Vec<(String, i64, i64)> {
    let db = connect(target_url).await;
    let mut out = Vec::new();
    for t in &mapping.tables {
        let q = snap2dsql::ddl::qualified(&t.target_schema, &t.target_name);
        let in_target: i64 = match db
            .query_one(&format!("SELECT count(*) FROM {q}"), &[])
            .await
        {
            Ok(row) => row.get(0),
            Err(_) => 0, // never created
        };
        let in_ledger: i64 = match db
            .query_one(
                "SELECT coalesce(sum(rows), 0)::bigint FROM snap2dsql.ledger WHERE table_name = $1",
                &[&t.source],
            )
            .await
        {
            Ok(row) => row.get(0),
            Err(_) => 0,
        };
        out.push((t.source.clone(), in_target, in_ledger));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broken_inputs_load_correctly_or_fail_naming_what_and_where() {
    let mut failures = Vec::new();
    let mut table = Vec::new();
    let standin = standin::start().await;
    for (i, case) in cases().into_iter().enumerate() {
        let source = pg().create_db(&format!("corpus{i}"));
        pg().psql(db_name(&source), case.sql);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("export");
        let mut opts = LocalExportOptions::new("corpus");
        opts.rows_per_file = 2_000;
        opts.rows_per_row_group = 500;
        local_export(&connect(&source).await, &root, &opts, &|_, _| {})
            .await
            .unwrap();
        (case.damage)(&root);
        let plan_dir = dir.path().join("plan");
        let root_s = root.display().to_string();
        let (planned, plan_out) = snap2dsql(&[
            "plan",
            "--export",
            &root_s,
            "--out",
            &plan_dir.display().to_string(),
        ]);
        let check = |text: &str, fragments: &[&str]| -> Option<String> {
            let missing: Vec<&&str> = fragments.iter().filter(|f| !text.contains(**f)).collect();
            (!missing.is_empty()).then(|| format!("message lacks {missing:?}: {text}"))
        };
        let outcome;
        match (&case.expect, planned) {
            (Expect::PlanFails(fragments), false) => {
                outcome = format!("plan refused: {}", plan_out.lines().last().unwrap_or(""));
                if let Some(e) = check(&plan_out, fragments) {
                    failures.push(format!("{}: {e}", case.name));
                }
            }
            (Expect::PlanFails(_), true) => {
                outcome = "planned".into();
                failures.push(format!(
                    "{}: plan should have failed: {plan_out}",
                    case.name
                ));
            }
            (_, false) => {
                outcome = "plan refused".into();
                failures.push(format!("{}: plan failed: {plan_out}", case.name));
            }
            (expect, true) => {
                let target = standin.db(&format!("corpus{i}_dst"));
                let mapping_path = plan_dir.join("mapping.toml");
                let mapping_s = mapping_path.display().to_string();
                let (ran, run_out) = snap2dsql(&[
                    "run",
                    "--export",
                    &root_s,
                    "--mapping",
                    &mapping_s,
                    "--target",
                    &target,
                    "--create-tables",
                ]);
                let mapping = Mapping::load(&mapping_path).unwrap();
                // Counted on the upstream, not through the tool's own reads.
                let counts = target_vs_ledger(&standin.direct_url(&target), &mapping).await;
                let rows: i64 = counts.iter().map(|c| c.1).sum();
                // The ledger says exactly what is in the target, table by table.
                for (t, in_target, in_ledger) in &counts {
                    if in_target != in_ledger {
                        failures.push(format!(
                            "{}: {t}: {in_target} rows in the target, {in_ledger} in the ledger",
                            case.name
                        ));
                    }
                }
                let (complete, status_out) = snap2dsql(&[
                    "status",
                    "--export",
                    &root_s,
                    "--mapping",
                    &mapping_s,
                    "--target",
                    &target,
                ]);
                match expect {
                    Expect::Loads(n) | Expect::LoadsWarning(n, _) => {
                        if let Expect::LoadsWarning(_, fragments) = expect
                            && let Some(e) = check(&plan_out, fragments)
                        {
                            failures.push(format!("{}: plan: {e}", case.name));
                        }
                        outcome = format!("loaded {rows} rows");
                        if !ran || rows != *n || !complete {
                            failures.push(format!("{}: expected {n} rows loaded and verified, got {rows} (run ok: {ran}, status complete: {complete}): {run_out}\n{status_out}", case.name));
                        }
                    }
                    Expect::RunFails(fragments) => {
                        outcome = format!("run refused: {}", run_out.lines().last().unwrap_or(""));
                        if ran {
                            failures
                                .push(format!("{}: run should have failed: {run_out}", case.name));
                        } else if let Some(e) = check(&run_out, fragments) {
                            failures.push(format!("{}: {e}", case.name));
                        }
                        if complete {
                            failures.push(format!(
                                "{}: status says complete after a failed run",
                                case.name
                            ));
                        }
                    }
                    Expect::PlanFails(_) => unreachable!(),
                }
            }
        }
        table.push((case.name, outcome));
    }
    for (name, outcome) in &table {
        let short: String = outcome.chars().take(150).collect();
        println!("{name:<42} {short}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
