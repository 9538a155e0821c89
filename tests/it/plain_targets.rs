//! No test loads into a plain PostgreSQL: every load, verify and status target is the DSQL
//! stand-in, in the DSQL dialect (issue 15: "No switching to an easier dialect for tests").
//!
//! A scan of the test sources (`tests/**/*.rs`, `cli/tests/*.rs`) for what a plain-PostgreSQL
//! target needs: the removed switches (`--target-dialect`, `plan --dialect`, `Dialect::Postgres`,
//! `with_dialect`, `--guard-dsql-limits`, `install_guard`, `TARGET_DIALECT`), and a database made
//! by `pg().create_db(..)` or `storefront_db(..)` (a direct upstream URL) handed to
//! `Target::parse` or to a command's `--target`. Sources, and checks that read the upstream
//! directly, stay allowed.

use std::path::{Path, PathBuf};

/// Text that only a plain-PostgreSQL target needs.
const FORBIDDEN: &[&str] = &[
    "--target-dialect",
    "\"--dialect\"",
    "Dialect::Postgres",
    "with_dialect(",
    "guard-dsql-limits",
    "install_guard(",
    "TARGET_DIALECT",
];

/// Calls whose result is a direct URL of the test server.
const DIRECT_URL_MAKERS: &[&str] = &["pg().create_db(", "storefront_db("];

/// One violation: `line` (1-based) of the scanned text, and why.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    line: usize,
    why: String,
}

/// The variables `text` binds to a direct URL (`let x = pg().create_db(..)`).
fn direct_url_variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("let ") else {
            continue;
        };
        let Some((name, value)) = rest.split_once('=') else {
            continue;
        };
        let name = name.trim().trim_start_matches("mut ").trim();
        if name.chars().all(|c| c.is_alphanumeric() || c == '_')
            && DIRECT_URL_MAKERS
                .iter()
                .any(|m| value.trim().starts_with(m))
        {
            out.push(name.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `text` with runs of whitespace made one space (so `"--target",\n    &dst` is found), and
/// the line (1-based) each of its bytes came from.
fn squeezed(text: &str) -> (String, Vec<usize>) {
    let (mut flat, mut lines) = (String::new(), Vec::new());
    let (mut line, mut space) = (1, false);
    for c in text.chars() {
        if c.is_whitespace() {
            space = !flat.is_empty();
        } else {
            if space {
                flat.push(' ');
                lines.push(line);
                space = false;
            }
            flat.push(c);
            lines.extend(std::iter::repeat_n(line, c.len_utf8()));
        }
        if c == '\n' {
            line += 1;
        }
    }
    (flat, lines)
}

/// Every violation in one source file's text.
fn scan(text: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for f in FORBIDDEN {
            if line.contains(f) {
                out.push(Violation {
                    line: i + 1,
                    why: format!("{f}: a plain-PostgreSQL target's switch"),
                });
            }
        }
    }
    let (flat, line_at) = squeezed(text);
    let mut uses: Vec<String> = Vec::new();
    for m in DIRECT_URL_MAKERS {
        uses.push(format!("Target::parse(&{m}"));
        uses.push(format!("Target::parse_with(&{m}"));
        uses.push(format!("\"--target\", &{m}"));
    }
    for v in direct_url_variables(text) {
        for pattern in [
            format!("Target::parse(&{v})"),
            format!("Target::parse(&{v},"),
            format!("Target::parse_with(&{v},"),
            format!("\"--target\", &{v},"),
            format!("\"--target\", &{v}]"),
            format!("\"--target\", &{v})"),
            format!("\"--target\".into(), {v}.clone()"),
        ] {
            uses.push(pattern);
        }
    }
    for u in &uses {
        for (at, _) in flat.match_indices(u.as_str()) {
            out.push(Violation {
                line: line_at[at],
                why: format!("`{u}`: a direct upstream URL used as the target"),
            });
        }
    }
    out.sort_by_key(|v| v.line);
    out
}

/// The test sources: `tests/**/*.rs` and `cli/tests/*.rs`, this file excepted.
fn test_sources(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join("tests"), &mut out);
    walk(&root.join("cli/tests"), &mut out);
    let me = root.join("tests/it/plain_targets.rs");
    out.retain(|p| *p != me);
    out.sort();
    out
}

#[test]
fn no_test_loads_into_a_plain_postgresql() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let files = test_sources(root);
    assert!(
        files.iter().any(|f| f.ends_with("tests/it/load.rs"))
            && files.iter().any(|f| f.ends_with("cli/tests/verify_cli.rs")),
        "the scan must see the test sources: {files:?}"
    );
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for v in scan(&text) {
            found.push(format!(
                "{}:{}: {}",
                f.strip_prefix(root).unwrap().display(),
                v.line,
                v.why
            ));
        }
    }
    assert!(
        found.is_empty(),
        "tests that load into a plain PostgreSQL (use snap2dsql_tests::standin):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scanner_finds_planted_violations_and_passes_the_allowed_forms() {
    let planted = r#"
let dst = pg().create_db("clidst");
let src = pg().create_db("clisrc");
snap2dsql(&["run", "--export", e, "--target",
    &dst, "--create-tables"]);
snap2dsql(&["local-export", "--source", &src]);
let t = Target::parse(&pg().create_db("x")).await.unwrap();
let url = storefront_db("p", 1, 2);
let target = Target::parse(&url).await.unwrap();
args.extend(["--target-dialect".into(), "postgres".into()]);
let t = target.with_dialect(Dialect::Postgres);
cmd.args(["--guard-dsql-limits"]);
env.push(("TARGET_DIALECT", "postgres"));
"#;
    let v = scan(planted);
    let lines: Vec<usize> = v.iter().map(|v| v.line).collect();
    // --target &dst (found across the line break, reported where it starts), the inline
    // create_db target, the storefront URL as a target, and each forbidden switch.
    assert!(lines.contains(&4), "{v:#?}");
    assert!(lines.contains(&7), "{v:#?}");
    assert!(lines.contains(&9), "{v:#?}");
    for line in [10, 11, 12, 13] {
        assert!(lines.contains(&line), "line {line}: {v:#?}");
    }
    // Two switches on line 11.
    assert_eq!(lines.iter().filter(|l| **l == 11).count(), 2, "{v:#?}");
    assert!(!lines.contains(&6), "a source is allowed: {v:#?}");

    let allowed = r#"
let direct = storefront_db("p", 1, 2);
let standin = standin::start().await;
let target = Target::parse(&standin.url(db_name(&direct))).await.unwrap();
let dst = standin.db("clidst");
snap2dsql(&["run", "--target", &dst]);
let db = connect(&direct).await; // a check, upstream
let src = pg().create_db("s");
local_export(&connect(&src).await, &root, &opts, &|_, _| {});
"#;
    assert_eq!(scan(allowed), vec![]);
}
