//! A backend's role and needs come from its registry entry: outside `src/backend/`, no
//! production line names a backend file's `KIND` (to pick "the baseline", "the async one",
//! "the broker one"); it asks `backend::registry` instead. Test code may name kinds to build
//! its cases: `tests.rs` files, and everything from a file's first `#[cfg(test)]` on (test
//! modules close the crate's files).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `file:line: text` for each production line naming a `…::KIND`.
fn kinds_named(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel.starts_with("backend/") || rel.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or("");
            if code.contains("::KIND") {
                found.push(format!("src/{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn no_production_line_outside_the_backends_names_a_kind() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = kinds_named(&src);
    assert!(
        found.is_empty(),
        "ask backend::registry for the role or need instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_finds_a_kind_where_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("report")).unwrap();
    std::fs::create_dir_all(dir.path().join("backend")).unwrap();
    std::fs::write(
        dir.path().join("report/a.rs"),
        "fn f(k: K) -> bool { k == normalized::KIND }\n#[cfg(test)]\nmod t { const X: K = normalized::KIND; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("backend/b.rs"),
        "const K: K = normalized::KIND;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("report/tests.rs"),
        "const K: K = cqrs_sync::KIND;\n",
    )
    .unwrap();
    assert_eq!(
        kinds_named(dir.path()),
        ["src/report/a.rs:1: fn f(k: K) -> bool { k == normalized::KIND }"]
    );
}
