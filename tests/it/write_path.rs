//! The write path through the DSQL stand-in, in the DSQL dialect: every load format loads every
//! type exactly; a COMMIT answered `ROLLBACK` is an error that wrote nothing; a COMMIT that does
//! not answer is cut at its bound and the batch retried (its outcome settled by the ledger);
//! writers replace their connections at the configured age; the post-load statements run twice
//! (foreign keys validated, identities restarted).
//!
//! The stand-in's own faults (silent connections, connection limits, conflicts, switches) are
//! in `dsql_target.rs`; slow commits here are a deferred trigger installed directly upstream.

use crate::load::{Fixture, TARGET, assert_exact, cli, options, scalar, storefront_db};
use snap2dsql::error::{Error, ErrorClass};
use snap2dsql::load::format::LoadFormat;
use snap2dsql::load::{ChunkOutcome, LoadContext, LoadOptions};
use snap2dsql::mapping::Rewrite;
use snap2dsql::migrate;
use snap2dsql::target::Target;
use snap2dsql::types::PgType;
use snap2dsql_tests::{connect, db_name, pg, standin};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Loads `f`'s export (its mapping, or `mapping`) with `options` into the prepared `target`.
async fn load_with(
    f: &Fixture,
    mapping: &snap2dsql::mapping::Mapping,
    target: &Target,
    options: LoadOptions,
) -> snap2dsql::Result<Vec<ChunkOutcome>> {
    let chunks = snap2dsql::chunk::plan_chunks_with(
        &f.export,
        mapping,
        100_000,
        snap2dsql::chunk::CHUNK_MAX_BYTES,
    )
    .await
    .unwrap();
    let (orphans, _) = snap2dsql::load::orphans::scan(&f.export, mapping)
        .await
        .unwrap();
    let ctx = LoadContext::new(
        f.export.clone(),
        Arc::new(mapping.clone()),
        target.clone(),
        orphans,
        options,
    );
    migrate::load_chunks(&ctx, &chunks, 1, &|_, _| {}).await
}

/// Every source type, with the values that make COPY's text format and binary parameters work:
/// tabs, newlines, backslashes, a literal `\N`, empty strings, infinities, NaN, BC dates, -0,
/// char padding, escapes inside JSON, and an all-NULL row.
pub(crate) const KINDS: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE public.kinds (id serial PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, f4 real,
  f8 double precision, n numeric, n_ps numeric(10,3), m money, b boolean, t text, vc varchar(20),
  ch char(4), by bytea, u uuid, d date, tm time, ttz timetz, ts timestamp, tstz timestamptz,
  iv interval, j json, jb jsonb, arr integer[], tags text[], e mood, net inet);
INSERT INTO public.kinds (i2, i4, i8, f4, f8, n, n_ps, m, b, t, vc, ch, by, u, d, tm, ttz, ts,
  tstz, iv, j, jb, arr, tags, e, net)
SELECT (g - 150)::smallint, g * -7919, g::bigint * 922337203685477, 
  CASE g % 5 WHEN 0 THEN 'NaN'::real WHEN 1 THEN '-Infinity'::real ELSE (g / 7.0)::real END,
  CASE g % 4 WHEN 0 THEN '-0'::float8 WHEN 1 THEN 1e308 ELSE g / 3.0 END,
  CASE g % 10 WHEN 0 THEN 'NaN'::numeric ELSE (g * 1234.5678901234)::numeric END,
  round((g * 3.14159)::numeric, 3), (g * 10.25)::money, g % 3 = 0,
  (ARRAY[E'tab\there', E'line\nbreak', E'cr\rhere', E'back\\slash', '\N', '', 'plain ' || g,
         E'\\x41', 'unicode é ☃ 😀'])[1 + g % 9],
  'v' || g, (ARRAY['a', 'bb ', 'ccc', ''])[1 + g % 4],
  CASE g % 3 WHEN 0 THEN ''::bytea WHEN 1 THEN '\x5c0a09'::bytea ELSE decode(md5(g::text), 'hex') END,
  md5('u' || g)::uuid,
  CASE g % 50 WHEN 0 THEN 'infinity'::date WHEN 1 THEN '0044-03-15 BC'::date
       ELSE date '1970-01-01' + g * 97 END,
  time '23:59:59.999999' - g * interval '1 minute 1 microsecond',
  '12:00:00+05:30'::timetz + g * interval '1 second',
  timestamp '2000-02-29 12:34:56.789012' + g * interval '13 hours 1 microsecond',
  CASE WHEN g % 60 = 0 THEN '-infinity'::timestamptz
       ELSE timestamptz '1999-12-31 23:00:00-08' + g * interval '1 day 7 seconds' END,
  make_interval(g % 3, g % 13 - 6, 0, 5 - g % 11, g % 25, g % 59, (g % 1000) / 1000.0),
  json_build_object('s', E'q"\\\t' || g, 'n', g),
  jsonb_build_object('k', g, 'arr', jsonb_build_array(1.50, NULL, E'x\ny')),
  ARRAY[g, NULL], ARRAY[E'a\tb', 'c"d', NULL], (ARRAY['sad', 'ok']::mood[])[1 + g % 2],
  ('192.168.0.' || g % 255)::inet
FROM generate_series(1, 300) g;
INSERT INTO public.kinds (i2) VALUES (NULL);
"#;

/// Source rows whose values differ in the target schema `schema`, for every column whose type
/// the mapping keeps (compared by PostgreSQL, joined on the old key), and the target's rows.
async fn kinds_differing(db: &tokio_postgres::Client, schema: &str) -> (i64, i64) {
    let cols = "i2, i4, i8, f4, f8, n, n_ps, b, t, vc, ch, by, u, d, tm, ttz, ts, tstz, iv, jb";
    let pick = |side: &str| {
        let mut v: Vec<String> = cols.split(", ").map(|c| format!("{side}.{c}")).collect();
        v.push(format!("{side}.j::text"));
        v.join(", ")
    };
    let differing = scalar(
        db,
        &format!(
            "SELECT count(*) FROM public.kinds s LEFT JOIN {schema}.kinds t ON t.old_id = s.id
             WHERE t.old_id IS NULL OR ({}) IS DISTINCT FROM ({})",
            pick("t"),
            pick("s")
        ),
    )
    .await;
    let rows = scalar(db, &format!("SELECT count(*) FROM {schema}.kinds")).await;
    (differing, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_load_format_loads_every_type_exactly() {
    let url = pg().create_db("wp_kinds");
    pg().psql(db_name(&url), KINDS);
    let f = Fixture::new(&url, None, 1_000, 100).await;
    let db = connect(&url).await;
    let source_rows = scalar(&db, "SELECT count(*) FROM public.kinds").await;
    for format in [LoadFormat::Binary, LoadFormat::Text, LoadFormat::Insert] {
        let schema = format!("x_{format}");
        let mut mapping = f.mapping.clone();
        // Its own ledger rows: the three loads share the database's ledger.
        mapping.migration.id = format!("kinds-{format}");
        for t in &mut mapping.tables {
            t.target_schema = schema.clone();
        }
        let target = Target::parse(&f.target_url).await.unwrap();
        migrate::prepare_target(&target, &mapping, true)
            .await
            .unwrap();
        let outcomes = load_with(
            &f,
            &mapping,
            &target,
            LoadOptions {
                first_format: format,
                batch_rows: 70,
                connections: 2,
                ..LoadOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{format}: {e}"));
        assert!(
            outcomes.iter().all(|o| o.format == Some(format)),
            "{format}: {outcomes:?}"
        );
        assert_eq!(
            kinds_differing(&db, &schema).await,
            (0, source_rows),
            "{format}: (source rows missing or differing, target rows)"
        );
        let report = snap2dsql::verify::verify(
            f.export.clone(),
            Arc::new(mapping.clone()),
            &target,
            &snap2dsql::verify::VerifyOptions::default(),
            &|_, _| {},
        )
        .await
        .unwrap();
        assert!(report.ok, "{format}: {:#?}", report.tables);
    }
    // The three targets hold the same rows, byte for byte as PostgreSQL prints them (the
    // columns whose type changed too: money, arrays, the enum, inet).
    for other in ["x_text", "x_insert"] {
        for (a, b) in [("x_binary", other), (other, "x_binary")] {
            let extra = scalar(
                &db,
                &format!(
                    "SELECT count(*) FROM (SELECT k::text FROM {a}.kinds k EXCEPT ALL SELECT k::text FROM {b}.kinds k) x"
                ),
            )
            .await;
            assert_eq!(extra, 0, "rows of {a} not in {b}");
        }
    }
}

/// In a transaction on `target`, a row inserted then `refused_sql` (answered `code`, which
/// aborts the transaction): the COMMIT that follows is answered `ROLLBACK`, which
/// [`snap2dsql::target::commit_checked`] reports as an error of class Conflict, and nothing was
/// written. A clean transaction on the same session commits.
pub(crate) async fn commit_answered_rollback(target: &Target, refused_sql: &str, code: &str) {
    let mut session = target.session().await.unwrap();
    session
        .batch_execute("CREATE TABLE t (v int PRIMARY KEY)")
        .await
        .unwrap();
    let tags = session.tags();
    let tx = session.client.transaction().await.unwrap();
    tx.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap();
    let refused = tx.batch_execute(refused_sql).await.unwrap_err();
    assert_eq!(refused.code().map(|c| c.code()), Some(code));
    let err =
        snap2dsql::target::commit_checked(tx, &tags, Duration::from_secs(5), "commit batch 7")
            .await
            .unwrap_err();
    match &err {
        Error::CommitTag { tag, .. } => assert_eq!(tag, "ROLLBACK"),
        other => panic!("expected a COMMIT tag error, got {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::Conflict);
    assert!(
        err.to_string()
            .starts_with("commit batch 7: COMMIT answered \"ROLLBACK\": "),
        "{err}"
    );
    assert_eq!(scalar(&session, "SELECT count(*) FROM t").await, 0);
    let tx = session.client.transaction().await.unwrap();
    tx.execute("INSERT INTO t VALUES (2)", &[]).await.unwrap();
    snap2dsql::target::commit_checked(tx, &tags, Duration::from_secs(5), "commit batch 8")
        .await
        .unwrap();
    assert_eq!(scalar(&session, "SELECT count(*) FROM t").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_answered_rollback_is_an_error_that_wrote_nothing() {
    // A statement that fails and the client does not stop at: the transaction is aborted, and
    // the COMMIT that follows "succeeds" with the tag ROLLBACK.
    let standin = standin::start().await;
    let target = Target::parse(&standin.db("wp_rollback")).await.unwrap();
    commit_answered_rollback(&target, "SELECT 1 / 0", "22012").await;
}

/// Makes each COMMIT of a batch whose ledger row satisfies `condition` (SQL over `NEW`) take
/// `seconds` longer: a deferred trigger on the ledger sleeps at commit time.
fn slow_commits(url: &str, condition: &str, seconds: f64) {
    pg().psql(
        db_name(url),
        &format!(
            "CREATE FUNCTION snap2dsql.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF {condition} THEN PERFORM pg_sleep({seconds}); END IF; RETURN NULL; END $$;
             CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON snap2dsql.ledger
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION snap2dsql.slow_commit();"
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_without_answer_is_settled_by_the_ledger() {
    let url = storefront_db("wp_slow_commit", 200, 3_000);
    let f = Fixture::new(&url, None, 10_000, 1_000).await;
    let target = f.target(0.0).await;
    // The first batch of each chunk commits after 3 s: its COMMIT is cut at 1 s, the batch is
    // retried while the first COMMIT is still going through.
    slow_commits(&url, "NEW.first_row = 0", 3.0);
    let outcomes = load_with(
        &f,
        &f.mapping,
        &target,
        LoadOptions {
            commit_timeout: Duration::from_secs(1),
            ..options(500, 2)
        },
    )
    .await
    .unwrap();
    let retries: u64 = outcomes.iter().map(|o| o.retries).sum();
    assert!(retries >= 2, "{outcomes:?}");
    let db = connect(&url).await;
    assert_exact(&db, f.ns()).await;
}

/// Distinct writer sessions (backend pid and start) seen while `load` runs.
async fn writer_sessions<F: Future>(url: &str, load: F) -> (F::Output, usize) {
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (done, url) = (done.clone(), url.to_string());
        tokio::spawn(async move {
            let db = connect(&url).await;
            let mut seen = BTreeSet::new();
            while !done.load(Ordering::SeqCst) {
                for r in db
                    .query(
                        "SELECT pid, backend_start::text FROM pg_stat_activity
                         WHERE application_name = 'snap2dsql' AND datname = current_database()
                           AND query NOT LIKE 'SELECT first_row%'",
                        &[],
                    )
                    .await
                    .unwrap()
                {
                    seen.insert((r.get::<_, i32>(0), r.get::<_, String>(1)));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen.len()
        })
    };
    let out = load.await;
    done.store(true, Ordering::SeqCst);
    (out, watcher.await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_replace_connections_at_the_configured_age() {
    let url = storefront_db("wp_age", 100, 3_000);
    let f = Fixture::new(&url, None, 10_000, 1_000).await;
    let target = f.target(0.0).await;
    // Each commit takes 0.15 s: 31 batches of one writer last about 5 s.
    slow_commits(&url, "true", 0.15);
    let young = LoadOptions {
        connection_max_age: Duration::from_secs(1),
        ..options(100, 1)
    };
    let (loaded, sessions) = writer_sessions(&url, load_with(&f, &f.mapping, &target, young)).await;
    loaded.unwrap();
    let db = connect(&url).await;
    assert_exact(&db, f.ns()).await;
    // The same load with the default age (55 minutes), into a fresh copy of the tables.
    pg().psql(
        db_name(&url),
        &format!("TRUNCATE {TARGET}.customers, {TARGET}.orders, snap2dsql.ledger"),
    );
    let (loaded, default_sessions) =
        writer_sessions(&url, load_with(&f, &f.mapping, &target, options(100, 1))).await;
    loaded.unwrap();
    assert_exact(&db, f.ns()).await;
    eprintln!("writer sessions: {sessions} at a 1 s age, {default_sessions} at the default");
    assert!(
        default_sessions <= 2,
        "{default_sessions} (one writer per chunk, 2 chunks)"
    );
    assert!(
        sessions >= 4,
        "only {sessions} writer sessions in ~5 s at a 1 s age"
    );
}

/// Tickets and their notes, keyed by bigint identities, loaded as they are (no key rewrite):
/// the mapping declares the identities and asks for the foreign key.
pub(crate) const TICKETS: &str = "
CREATE TABLE public.tickets (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, note text);
CREATE TABLE public.ticket_notes (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  ticket_id bigint NOT NULL REFERENCES public.tickets (id), body text);
INSERT INTO public.tickets (note) SELECT 'n' || g FROM generate_series(1, 500) g;
DELETE FROM public.tickets WHERE id > 490;
INSERT INTO public.ticket_notes (ticket_id, body) SELECT 1 + g % 490, 'b' || g FROM generate_series(1, 700) g;
";

/// A reviewer's edits of a plan of [`TICKETS`]: the tickets' keys stay bigint identities (no
/// rewrite), and the foreign keys are asked for.
pub(crate) fn tickets_as_identities(mapping: &mut snap2dsql::mapping::Mapping) {
    mapping.migration.foreign_keys = true;
    for t in mapping
        .tables
        .iter_mut()
        .filter(|t| t.source.starts_with("public.ticket"))
    {
        for c in &mut t.columns {
            if c.rewrite != Rewrite::None {
                c.rewrite = Rewrite::None;
                c.keep_old = None;
                c.references = None;
                c.on_orphan = None;
                c.target_type = PgType::BigInt;
            }
            c.identity = c.name == "id";
        }
        t.indexes
            .retain(|ix| !ix.columns.iter().any(|c| c == "old_id"));
    }
    mapping.validate("tickets").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn post_load_validates_foreign_keys_and_restarts_identities_and_runs_twice() {
    let url = pg().create_db("wp_post");
    pg().psql(db_name(&url), TICKETS);
    let f = Fixture::new(&url, None, 10_000, 1_000).await;
    let mut mapping = f.mapping.clone();
    tickets_as_identities(&mut mapping);
    let fk = mapping
        .table("public.ticket_notes")
        .and_then(|t| t.foreign_keys.first())
        .expect("the catalog's foreign key is in the mapping")
        .name
        .clone();
    let target = Target::parse(&f.target_url).await.unwrap();
    migrate::prepare_target(&target, &mapping, true)
        .await
        .unwrap();
    load_with(&f, &mapping, &target, options(300, 2))
        .await
        .unwrap();
    let statements = ddl_statement_count(&mapping);
    for run in 1..=2 {
        let n = migrate::post_load(&target, &mapping)
            .await
            .unwrap_or_else(|e| panic!("post-load run {run}: {e}"));
        assert_eq!(n, statements + 2, "run {run}: statements and two restarts");
    }
    let db = connect(&url).await;
    let validated: bool = db
        .query_one(
            "SELECT convalidated FROM pg_constraint WHERE conname = $1
             AND conrelid = 'public_dsql.ticket_notes'::regclass",
            &[&fk],
        )
        .await
        .unwrap()
        .get(0);
    assert!(validated, "foreign key {fk} is not validated");
    // New rows continue after the largest source key, as they would have in the source.
    for table in ["tickets", "ticket_notes"] {
        let next = scalar(&db, &format!("SELECT max(id) + 1 FROM public.{table}")).await;
        let got = scalar(
            &db,
            &format!(
                "INSERT INTO public_dsql.{table} ({}) VALUES ({}) RETURNING id",
                if table == "tickets" {
                    "note"
                } else {
                    "ticket_id"
                },
                if table == "tickets" { "'new'" } else { "1" }
            ),
        )
        .await;
        assert_eq!(got, next, "{table}: the identity's next value");
    }
    // The foreign key holds for new rows (checked last: a refused INSERT takes a value).
    let refused = db
        .execute(
            "INSERT INTO public_dsql.ticket_notes (ticket_id, body) VALUES (99999, 'x')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code().map(|c| c.code()), Some("23503"));
}

fn ddl_statement_count(mapping: &snap2dsql::mapping::Mapping) -> usize {
    snap2dsql::ddl::post_load_statements(mapping).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_reports_the_load_format() {
    let url = storefront_db("wp_cli_format", 100, 1_000);
    let f = Fixture::new(&url, None, 10_000, 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let mut args = f.args("load");
    args.extend(["--create-tables", "--load-format", "insert", "--report"].map(String::from));
    args.push(report.display().to_string());
    let out = std::process::Command::new(cli())
        .args(&args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rows sent as multi-row INSERT"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["load_format"]["format"], "insert", "{json}");
    assert_eq!(json["load_format"]["fallbacks"], serde_json::json!([]));
    let db = connect(&url).await;
    assert_exact(&db, f.ns()).await;
}
