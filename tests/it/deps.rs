//! The set-up's presence checks (`scripts/deps/probe.sh`): each must say "missing" when only a
//! look-alike is there, and "present" when the real thing is, so `make deps` never skips an
//! install a fresh machine needs.

use snap2dsql_tests::stack::repo_root;
use std::path::Path;
use std::process::Command;

/// Runs one probe against `root` (a fake file system root); true when it says "present".
fn probe(root: &Path, name: &str) -> bool {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/deps/probe.sh"))
        .arg(name)
        .env("DEPS_ROOT", root)
        .env_remove("LIBCLANG_PATH")
        .output()
        .expect("run scripts/deps/probe.sh");
    out.status.success()
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A real libclang on this machine (`make deps` installs libclang-dev), if there is one.
fn real_libclang() -> Option<std::path::PathBuf> {
    let dirs = std::fs::read_dir("/usr/lib").ok()?;
    dirs.flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with("llvm-"))
        .flat_map(|d| {
            std::fs::read_dir(d.path().join("lib"))
                .into_iter()
                .flatten()
        })
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("libclang-") && n.contains(".so.") && !n.contains("-cpp.")
        })
}

#[test]
fn libclang_cpp_alone_is_not_libclang() {
    let root = tempfile::tempdir().unwrap();
    let lib = root.path().join("usr/lib/x86_64-linux-gnu");
    // The file a fresh Debian image ships (package libclang-cpp14): the C++ interface library.
    let cpp = Path::new("/usr/lib/x86_64-linux-gnu/libclang-cpp.so.14");
    let bytes = std::fs::read(cpp).unwrap_or_else(|_| b"\x7fELF fake".to_vec());
    write_file(&lib.join("libclang-cpp.so.14"), &bytes, 0o644);
    assert!(
        !probe(root.path(), "libclang"),
        "libclang-cpp.so.14 alone was taken for libclang"
    );
    // A file with libclang's name that does not load is not libclang either.
    write_file(&lib.join("libclang.so.1"), b"not a library", 0o644);
    write_file(
        &root.path().join("usr/lib/llvm-14/lib/libclang-14.so.1"),
        b"",
        0o644,
    );
    assert!(
        !probe(root.path(), "libclang"),
        "a libclang-named file that does not load was taken for libclang"
    );
}

#[test]
fn a_real_libclang_is_found_under_the_same_rules() {
    // The positive control: the same probe, the same fake root layout, a library that loads.
    let Some(real) = real_libclang() else {
        panic!(
            "no libclang-N.so.* under /usr/lib/llvm-*/lib: run `make deps` (installs libclang-dev)"
        );
    };
    let root = tempfile::tempdir().unwrap();
    let dst = root
        .path()
        .join("usr/lib/llvm-14/lib")
        .join(real.file_name().unwrap());
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(&real, &dst).unwrap();
    assert!(
        probe(root.path(), "libclang"),
        "{} was not found",
        real.display()
    );
}

#[test]
fn server_and_client_tools_count_only_when_they_run() {
    let root = tempfile::tempdir().unwrap();
    assert!(
        !probe(root.path(), "pg_server"),
        "an empty root has no server"
    );
    assert!(!probe(root.path(), "pg_client"));
    assert!(!probe(root.path(), "node"));
    assert!(!probe(root.path(), "openssl"));
    let bin = root.path().join("usr/lib/postgresql/16/bin");
    // Look-alikes: present but not executable, or executable and failing.
    write_file(&bin.join("initdb"), b"#!/bin/sh\nexit 0\n", 0o644);
    write_file(&bin.join("pg_ctl"), b"#!/bin/sh\nexit 1\n", 0o755);
    write_file(&bin.join("postgres"), b"#!/bin/sh\nexit 0\n", 0o755);
    assert!(!probe(root.path(), "pg_server"));
    // Programs that run: present.
    for tool in ["initdb", "pg_ctl", "postgres"] {
        write_file(&bin.join(tool), b"#!/bin/sh\nexit 0\n", 0o755);
    }
    assert!(probe(root.path(), "pg_server"));
    let usr_bin = root.path().join("usr/bin");
    write_file(&usr_bin.join("psql"), b"#!/bin/sh\nexit 0\n", 0o755);
    assert!(!probe(root.path(), "pg_client"), "psql without pg_dump");
    write_file(&usr_bin.join("pg_dump"), b"#!/bin/sh\nexit 0\n", 0o755);
    assert!(probe(root.path(), "pg_client"));
}
