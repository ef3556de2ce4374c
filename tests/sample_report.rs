//! The committed sample report (`reports/sample/`) is what the `report` command draws from
//! the committed `results.json`, byte for byte: report.md, report.html and every plot. When
//! the report changes, regenerate it with the one line in reports/sample/README.md:
//! `cargo run --release -- report reports/sample/results.json`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const REGENERATE: &str = "cargo run --release -- report reports/sample/results.json";

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_sample_report_is_what_report_draws_from_its_results() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/sample");
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_cqrs-bench"))
        .arg("report")
        .arg(sample.join("results.json"))
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in ["report.md", "report.html"] {
        let committed = std::fs::read_to_string(sample.join(name)).unwrap();
        let drawn = std::fs::read_to_string(dir.path().join(name)).unwrap();
        if committed != drawn {
            let line = committed
                .lines()
                .zip(drawn.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(committed.lines().count().min(drawn.lines().count()));
            panic!(
                "reports/sample/{name} differs from what `report` draws (first at line {}): \
                 regenerate it with `{REGENERATE}`",
                line + 1
            );
        }
    }
    let plots = files(&dir.path().join("plots"));
    assert_eq!(
        files(&sample.join("plots")),
        plots,
        "reports/sample/plots: regenerate with `{REGENERATE}`"
    );
    for p in &plots {
        assert!(
            std::fs::read(sample.join("plots").join(p)).unwrap()
                == std::fs::read(dir.path().join("plots").join(p)).unwrap(),
            "reports/sample/plots/{p} differs: regenerate with `{REGENERATE}`"
        );
    }
}
