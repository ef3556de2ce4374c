//! The dashboard report's verdict fits on one screen: `cqrs-bench report` of the dashboard
//! story's recorded results writes a `report.md` whose lines before its first table (the
//! title, the question and the decision, and the story's answer when it comes before a table)
//! number at most 25.
//! The count is of the rendered file, line by line, blank lines included.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");

/// The most lines a first screen holds.
const SCREEN: usize = 25;

/// Lines before the first markdown table row (a line starting with `|`); all of them when
/// there is none.
fn lines_before_first_table(md: &str) -> usize {
    md.lines()
        .position(|l| l.starts_with('|'))
        .unwrap_or_else(|| md.lines().count())
}

#[test]
fn the_count_stops_at_the_first_table() {
    assert_eq!(lines_before_first_table("# t\n\n> q\n\n| a |\n|---|\n"), 4);
    assert_eq!(lines_before_first_table("a\nb\nc"), 3);
    assert_eq!(lines_before_first_table("| x |\n"), 0);
}

#[test]
fn the_dashboard_verdict_fits_on_one_screen() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dashboard-results.json"),
        &results,
    )
    .unwrap();
    let out = dir.path().join("report");
    let o = Command::new(BIN)
        .arg("report")
        .arg(&results)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run cqrs-bench report");
    assert!(
        o.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let n = lines_before_first_table(&md);
    let head: Vec<&str> = md.lines().take(n).collect();
    assert!(
        n <= SCREEN,
        "{n} lines before the first table (at most {SCREEN}):\n{}",
        head.join("\n")
    );
    // The screen opens with the decision.
    assert!(head.contains(&"## Decision"), "{}", head.join("\n"));
}
