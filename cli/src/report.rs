//! What the command prints: progress while it works, a short report when it is done.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use snap2dsql::local_export::LocalExportSummary;
use snap2dsql::plan::PlanReport;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A spinner with a row count on a terminal; plain log lines (at most every 5 s) otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    last_line: Mutex<(Instant, String)>,
    verb: &'static str,
}

impl Progress {
    pub fn new(verb: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            last_line: Mutex::new((Instant::now(), String::new())),
            verb,
        }
    }

    pub fn update(&self, item: &str, rows: u64) {
        let msg = format!("{} {item}: {rows} rows", self.verb);
        match &self.bar {
            Some(bar) => bar.set_message(msg),
            None => {
                if let Ok(mut last) = self.last_line.lock()
                    && (last.0.elapsed() > Duration::from_secs(5) || last.1 != item)
                {
                    eprintln!("{msg}");
                    *last = (Instant::now(), item.to_string());
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot print the report as JSON: {e}"),
    }
}

pub fn print_local_export(summary: &LocalExportSummary, out: &Path) {
    println!(
        "exported database {} as export {} into {}",
        summary.database,
        summary.export_id,
        out.display()
    );
    println!("{:<40} {:>12} {:>6}", "table", "rows", "files");
    for t in &summary.tables {
        println!("{:<40} {:>12} {:>6}", t.table, t.rows, t.files);
    }
}

fn section(title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    println!("\n{title} ({}):", lines.len());
    for l in lines {
        println!("  - {l}");
    }
}

pub fn print_plan(r: &PlanReport, out: &Path) {
    println!("export {} (database {})", r.export_id, r.database);
    println!(
        "\n{:<36} {:<36} {:>12} {:>6} {:>10}",
        "source table", "target table", "rows", "files", "row groups"
    );
    for t in &r.tables {
        println!(
            "{:<36} {:<36} {:>12} {:>6} {:>10}",
            t.source, t.target, t.rows, t.files, t.row_groups
        );
    }
    section("keys rewritten", &r.keys_rewritten);
    section("references rewritten", &r.references_rewritten);
    section("columns converted", &r.conversions);
    section(
        "guesses (check them: no --source-schema was given for these)",
        &r.guesses,
    );
    section("warnings", &r.warnings);
    let skipped: Vec<String> = r
        .skipped
        .iter()
        .map(|s| format!("{} ({}): {}", s.target, s.status, s.reason))
        .collect();
    section("tables the export skipped (not migrated)", &skipped);
    use snap2dsql::schema::report::Outcome;
    section("schema objects, per kind", &r.schema.summary());
    section(
        "schema objects changed on the way to DSQL",
        &r.schema.lines(Outcome::Changed),
    );
    section(
        "schema objects NOT carried to DSQL (what to do instead in brackets)",
        &r.schema.lines(Outcome::Dropped),
    );
    println!(
        "\nwrote {}, {}, {}, {}",
        out.join("mapping.toml").display(),
        out.join(snap2dsql::plan::SCHEMA_REPORT_FILE).display(),
        out.join("ddl.sql").display(),
        out.join("ddl-post-load.sql").display()
    );
}

/// `table -> (rows done, rows in the export)`.
type RowsPerTable = std::collections::BTreeMap<String, (u64, u64)>;

/// One progress bar per table (length: the table's rows in the export) on a terminal; plain
/// lines every 5 s otherwise.
pub struct TableBars {
    bars: std::collections::BTreeMap<String, ProgressBar>,
    multi: Option<indicatif::MultiProgress>,
    plain: Mutex<(Instant, RowsPerTable)>,
}

impl TableBars {
    pub fn new(mapping: &snap2dsql::mapping::Mapping, chunks: &[snap2dsql::chunk::Chunk]) -> Self {
        let mut totals = std::collections::BTreeMap::new();
        for t in &mapping.tables {
            let n: u64 = chunks
                .iter()
                .filter(|c| c.table == t.source)
                .map(|c| c.rows)
                .sum();
            totals.insert(t.source.clone(), (0u64, n));
        }
        let terminal = std::io::stderr().is_terminal();
        let multi = terminal.then(indicatif::MultiProgress::new);
        let mut bars = std::collections::BTreeMap::new();
        if let Some(m) = &multi {
            let style = ProgressStyle::with_template(
                "{prefix:<32} [{bar:30}] {human_pos:>10}/{human_len:<10} {percent:>3}% eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            for (table, (_, total)) in &totals {
                let bar = m.add(ProgressBar::new(*total));
                bar.set_style(style.clone());
                bar.set_prefix(table.clone());
                bars.insert(table.clone(), bar);
            }
        }
        TableBars {
            bars,
            multi,
            plain: Mutex::new((Instant::now(), totals)),
        }
    }

    pub fn add(&self, table: &str, rows: u64) {
        if let Some(bar) = self.bars.get(table) {
            bar.inc(rows);
            return;
        }
        if let Ok(mut p) = self.plain.lock() {
            if let Some(e) = p.1.get_mut(table) {
                e.0 += rows;
            }
            if p.0.elapsed() > Duration::from_secs(5) {
                for (t, (done, total)) in &p.1 {
                    eprintln!("loading {t}: {done}/{total} rows");
                }
                p.0 = Instant::now();
            }
        }
    }

    pub fn finish(&self) {
        for bar in self.bars.values() {
            bar.finish();
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

pub fn print_run(
    tables: &[snap2dsql::migrate::TableResult],
    seconds: f64,
    written: u64,
    format: &snap2dsql::load::format::FormatReport,
    full: bool,
) {
    println!(
        "\n{:<32} {:<32} {:>10} {:>10} {:>10} {:>10} {:>8} {:>7}  status",
        "source", "target", "export", "target", "written", "skipped", "orphans", "retries"
    );
    for t in tables {
        println!(
            "{:<32} {:<32} {:>10} {:>10} {:>10} {:>10} {:>8} {:>7}  {}",
            t.source,
            t.target,
            t.rows_in_export,
            t.rows_in_target,
            t.rows_written,
            t.rows_already_loaded,
            t.orphans_loaded,
            t.retries,
            t.status
        );
    }
    let rate = if seconds > 0.0 {
        written as f64 / seconds
    } else {
        0.0
    };
    println!(
        "\nloaded {written} rows in {seconds:.1} s ({rate:.0} rows/s){}",
        if full {
            "; post-load indexes built; every row verified (below)"
        } else {
            ""
        }
    );
    if let Some(f) = format.format {
        println!("rows sent as {}", f.describe());
    }
    for why in &format.fallbacks {
        println!("  fell back: {why}");
    }
}

/// The verification summary: one line per table, the listed differences, throughput.
pub fn print_verify(r: &snap2dsql::verify::VerifyReport) {
    use snap2dsql::verify::DiffKind;
    println!(
        "\n{:<32} {:<32} {:>10} {:>10} {:>8}  {:<8}  fingerprints",
        "source", "target", "export", "target", "seconds", "status"
    );
    for t in &r.tables {
        let fp = if t.fingerprint_export == t.fingerprint_target {
            t.fingerprint_export.clone()
        } else {
            format!("{} / {}", t.fingerprint_export, t.fingerprint_target)
        };
        println!(
            "{:<32} {:<32} {:>10} {:>10} {:>8.2}  {:<8}  {fp}",
            t.source, t.target, t.rows_in_export, t.rows_in_target, t.seconds, t.status
        );
    }
    for t in r
        .tables
        .iter()
        .filter(|t| t.status != snap2dsql::verify::Status::Match)
    {
        println!(
            "\n{}: {} missing, {} extra, {} differing rows",
            t.source, t.missing, t.extra, t.differing
        );
        for c in t
            .columns
            .iter()
            .filter(|c| c.nulls_in_export != c.nulls_in_target)
        {
            println!(
                "  column {}: {} NULLs in the export, {} in the target",
                c.name, c.nulls_in_export, c.nulls_in_target
            );
        }
        for c in &t.columns {
            let pairs = [
                ("sum", &c.sum_export, &c.sum_target),
                ("min", &c.min_export, &c.min_target),
                ("max", &c.max_export, &c.max_target),
            ];
            for (what, e, g) in pairs {
                if e != g {
                    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".into());
                    println!(
                        "  column {}: {what} {} in the export, {} in the target",
                        c.name,
                        show(e),
                        show(g)
                    );
                }
            }
        }
        for d in &t.differences {
            let old = d
                .old_key
                .as_ref()
                .map(|o| format!(" (old key {o})"))
                .unwrap_or_default();
            let what = match d.kind {
                DiffKind::Missing => "missing in the target",
                DiffKind::Extra => "extra in the target",
                DiffKind::Differs => "differs",
            };
            println!("  - key {}{old}: {what}", d.key);
            for c in &d.columns {
                let show =
                    |v: &Option<String>| v.clone().map_or("NULL".into(), |v| format!("{v:?}"));
                println!(
                    "      {}: export {}, target {}",
                    c.column,
                    show(&c.export),
                    show(&c.target)
                );
            }
        }
        if t.buckets_listed < t.differing_buckets {
            println!(
                "  (rows of {} of {} differing key buckets compared: too many rows to hold at once)",
                t.buckets_listed, t.differing_buckets
            );
        }
        let listed = t.differences.len() as u64;
        let total = t.missing + t.extra + t.differing;
        if total > listed {
            println!("  ... {} more not listed (--max-listed)", total - listed);
        }
    }
    for t in &r.tables {
        let Some(a) = &t.after_snapshot else { continue };
        if a.changed + a.inserted + a.deleted == 0 {
            continue;
        }
        println!(
            "\n{}: changed in the source after the snapshot (not migration errors): {} updated, {} inserted, {} deleted",
            t.source, a.changed, a.inserted, a.deleted
        );
        for d in &a.rows {
            let what = match d.kind {
                DiffKind::Missing => "inserted in the source",
                DiffKind::Extra => "deleted from the source",
                DiffKind::Differs => "updated in the source",
            };
            let cols: Vec<&str> = d.columns.iter().map(|c| c.column.as_str()).collect();
            println!("  - key {}: {what} {}", d.key, cols.join(", "));
        }
    }
    println!(
        "\nverified {} export rows in {:.1} s ({:.0} rows/s): {}",
        r.rows_in_export,
        r.seconds,
        r.rows_per_second,
        if r.ok {
            "every table matches"
        } else {
            "MISMATCH"
        }
    );
}
