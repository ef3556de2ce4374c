//! The report a run writes: `report.md`, a self-contained `report.html` and `plots/*.svg`.
//!
//! - A real `run` of `scenarios/quick.toml` (shortened) writes the three; the HTML holds one
//!   inline `<svg>` per expected plot, each with data drawn in the backends' colours, and loads
//!   nothing from anywhere (no scripts, links, or URLs other than the SVG namespace).
//! - Headless Chromium renders the page: a screenshot PNG of the given size is written, and a
//!   copy of the page with a probe script (the report itself has no scripts) checks in the
//!   browser that every plot has a non-empty box and data elements that are on top at their own
//!   position — i.e. visible. Without `/usr/bin/chromium` this part prints SKIPPED, or fails where `CQRS_BENCH_REQUIRE_SERVICES=1` (CI installs
//!   it: see `.ci/run`).
//! - `report RESULTS.json` regenerates the same files; a sweep gets per-level plots and a load
//!   curve with one point per level.
//! - The verdict tells the two ways of falling behind apart: a run whose *driver* fell behind is
//!   invalid and no winner is named; a backend whose *system* saturated is a finding, loses the
//!   level to a backend that kept up, and marks the crossover of a sweep. A gap smaller than the
//!   harness's floor is reported as below its resolution, never ranked.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_cqrs-bench");
const CHROMIUM: &str = "/usr/bin/chromium";

const NORMALIZED: &str = "#0072B2";
const SYNC: &str = "#E69F00";
const ASYNC: &str = "#009E73";

/// One real run shared by the tests of this file: (temp dir guard, output folder).
fn run_dir() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("quick");
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quick.toml");
        let o = Command::new(BIN)
            .arg("run")
            .arg(&scenario)
            .args(["--quiet", "--duration", "8s", "--out"])
            .arg(&out)
            .output()
            .expect("run cqrs-bench");
        assert!(
            o.status.success(),
            "run failed: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (dir, out)
    })
    .1
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Attributes of every `<tag ...>` in `svg`.
fn tags<'a>(svg: &'a str, tag: &str) -> Vec<BTreeMap<&'a str, &'a str>> {
    let open = format!("<{tag} ");
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find(&open) {
        let body = &rest[i + open.len()..];
        let end = body.find('>').unwrap_or(body.len());
        let mut attrs = BTreeMap::new();
        let mut s = &body[..end];
        while let Some(eq) = s.find("=\"") {
            let name = s[..eq].trim();
            let after = &s[eq + 2..];
            let close = after.find('"').unwrap_or(after.len());
            attrs.insert(name, &after[..close]);
            s = &after[(close + 1).min(after.len())..];
        }
        out.push(attrs);
        rest = &body[end..];
    }
    out
}

fn num(a: &BTreeMap<&str, &str>, k: &str) -> f64 {
    a.get(k).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// Backend colours used by data (not legend) elements of one SVG: polylines with at least
/// three points, markers, and bars outside any legend box.
fn data_colours(svg: &str) -> BTreeMap<String, usize> {
    let palette = [NORMALIZED, SYNC, ASYNC];
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    for p in tags(svg, "polyline") {
        let c = p.get("stroke").copied().unwrap_or_default();
        let points = p
            .get("points")
            .map(|s| s.split_whitespace().count())
            .unwrap_or(0);
        if palette.contains(&c) && points >= 3 {
            *out.entry(c.to_string()).or_default() += 1;
        }
    }
    for c in tags(svg, "circle") {
        let f = c.get("fill").copied().unwrap_or_default();
        if palette.contains(&f) && num(&c, "r") > 0.0 {
            *out.entry(f.to_string()).or_default() += 1;
        }
    }
    let rects = tags(svg, "rect");
    let legends: Vec<(f64, f64, f64, f64)> = rects
        .iter()
        .filter(|r| r.get("fill") == Some(&"#FFFFFF") && num(r, "opacity") < 1.0)
        .map(|r| (num(r, "x"), num(r, "y"), num(r, "width"), num(r, "height")))
        .collect();
    for r in &rects {
        let f = r.get("fill").copied().unwrap_or_default();
        if !palette.contains(&f) || num(r, "height") <= 0.0 || num(r, "width") <= 0.0 {
            continue;
        }
        let (x, y) = (num(r, "x"), num(r, "y"));
        let in_legend = legends
            .iter()
            .any(|(lx, ly, lw, lh)| x >= *lx && x <= lx + lw && y >= *ly && y <= ly + lh);
        if !in_legend {
            *out.entry(f.to_string()).or_default() += 1;
        }
    }
    out
}

/// The inline `<svg>` of each `<figure data-plot=NAME>` in the HTML.
fn figures(html: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = html;
    while let Some(i) = rest.find("<figure ") {
        let body = &rest[i..];
        let end = body.find("</figure>").expect("closed figure");
        let fig = &body[..end];
        let name = fig
            .split("data-plot=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("data-plot")
            .to_string();
        let svgs = fig.matches("<svg").count();
        assert_eq!(svgs, 1, "figure {name} holds {svgs} <svg> elements");
        let svg_start = fig.find("<svg").unwrap();
        let svg_end = fig.find("</svg>").expect("closed svg") + "</svg>".len();
        out.insert(name, fig[svg_start..svg_end].to_string());
        rest = &body[end..];
    }
    out
}

/// The plots quick.toml must produce, with the backends each one shows.
fn expected_quick() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let all: BTreeSet<&str> = [NORMALIZED, SYNC, ASYNC].into();
    BTreeMap::from([
        ("write-spectrum", all.clone()),
        ("read-spectrum", all.clone()),
        ("read-latency", all.clone()),
        ("lag", [ASYNC].into()),
        ("throughput", all.clone()),
        ("load", all),
    ])
}

fn check_plots(html: &str, expected: &BTreeMap<&str, BTreeSet<&str>>) {
    let figs = figures(html);
    let names: BTreeSet<&str> = figs.keys().map(|s| s.as_str()).collect();
    let want: BTreeSet<&str> = expected.keys().copied().collect();
    assert_eq!(names, want, "plots in report.html");
    for (name, colours) in expected {
        let svg = &figs[*name];
        assert!(svg.contains("viewBox=\""), "{name}: svg without a viewBox");
        let found = data_colours(svg);
        let got: BTreeSet<&str> = found.keys().map(|s| s.as_str()).collect();
        assert_eq!(&got, colours, "{name}: backend colours with data {found:?}");
        // Axes carry their units.
        assert!(
            svg.contains("(ms") || svg.contains("(s)") || svg.contains("(ops/s)"),
            "{name}: no axis with a unit"
        );
    }
}

fn assert_self_contained(html: &str) {
    let lower = html.to_lowercase();
    for bad in [
        "<script", "<link", "<img", "<iframe", "src=", "@import", "url(",
    ] {
        assert!(!lower.contains(bad), "report.html contains {bad}");
    }
    let stripped = lower.replace("http://www.w3.org/2000/svg", "");
    assert!(
        !stripped.contains("http://") && !stripped.contains("https://"),
        "report.html refers to the network"
    );
}

#[test]
fn run_writes_a_self_contained_report_with_every_plot() {
    let dir = run_dir();
    let html = read(&dir.join("report.html"));
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_self_contained(&html);
    let expected = expected_quick();
    check_plots(&html, &expected);
    // The SVG files are the same plots, and report.md shows each of them.
    let md = read(&dir.join("report.md"));
    let figs = figures(&html);
    for name in expected.keys() {
        let file = dir.join("plots").join(format!("{name}.svg"));
        let svg = read(&file);
        assert_eq!(
            svg.trim(),
            figs[*name].trim(),
            "{name}.svg differs from the inline plot"
        );
        assert!(
            md.contains(&format!("(plots/{name}.svg)")),
            "report.md misses {name}"
        );
    }
    // A verdict computed from the numbers: every backend named, a section per question.
    for needle in [
        "## Verdict",
        "### Fastest",
        "### What CQRS costs here",
        "### What CQRS buys here",
        "### Do reads hurt writes?",
        "### Thresholds",
        "### Correctness",
        "projection lag",
        "read-your-writes",
        "of write tables",
    ] {
        assert!(md.contains(needle), "report.md has no {needle:?}");
    }
}

/// Headless Chromium with the flags CI needs as root; returns (success, stdout, stderr).
/// Output goes to files, not pipes: a page's DOM is larger than a pipe's buffer, and a child
/// blocked on a full pipe would never exit.
fn chromium(extra: &[String], url: &str) -> (bool, String, String) {
    let profile = tempfile::tempdir().expect("profile dir");
    let out_path = profile.path().join("stdout.txt");
    let err_path = profile.path().join("stderr.txt");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start chromium");
    let limit = Duration::from_secs(90);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {limit:?}: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (
        status.success(),
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24, "PNG too short");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// Runs in the browser on a copy of the report: for every figure, the size of its SVG and
/// how many palette-coloured data elements are visible (non-empty box, and the topmost
/// element at their own on-screen position).
const PROBE: &str = r##"
<script>
(function () {
  const palette = new Set(["#0072B2", "#E69F00", "#009E73"]);
  const out = [];
  for (const fig of document.querySelectorAll("figure[data-plot]")) {
    const svg = fig.querySelector("svg");
    const r = { name: fig.dataset.plot, width: 0, height: 0, data: 0, visible: 0 };
    if (svg) {
      const box = svg.getBoundingClientRect();
      r.width = box.width; r.height = box.height;
      const legends = [...svg.querySelectorAll("rect")]
        .filter(e => e.getAttribute("fill") === "#FFFFFF" && parseFloat(e.getAttribute("opacity") || "1") < 1)
        .map(e => e.getBBox());
      // In SVG user units (no transforms in these plots), independent of scrolling.
      const inLegend = b => legends.some(l => b.x >= l.x - 1 && b.x + b.width <= l.x + l.width + 1 && b.y >= l.y - 1 && b.y + b.height <= l.y + l.height + 1);
      for (const el of svg.querySelectorAll("polyline, circle, rect")) {
        const c = (el.getAttribute("stroke") !== "none" && el.getAttribute("stroke")) || el.getAttribute("fill") || "";
        if (!palette.has(c.toUpperCase())) continue;
        if (el.tagName === "polyline" && el.points.numberOfItems < 3) continue;
        el.scrollIntoView({ block: "center", inline: "center" });
        const b = el.getBoundingClientRect();
        if (b.width <= 0 && b.height <= 0) continue;
        if (inLegend(el.getBBox())) continue;
        r.data++;
        let x, y;
        if (el.tagName === "polyline") {
          const p = el.points.getItem(Math.floor(el.points.numberOfItems / 2));
          const m = el.getScreenCTM();
          x = m.a * p.x + m.c * p.y + m.e; y = m.b * p.x + m.d * p.y + m.f;
        } else {
          x = (b.left + b.right) / 2; y = (b.top + b.bottom) / 2;
        }
        const hit = document.elementFromPoint(x, y);
        const hc = hit && ((hit.getAttribute("stroke") !== "none" && hit.getAttribute("stroke")) || hit.getAttribute("fill") || "");
        if (hit && palette.has(hc.toUpperCase())) r.visible++;
      }
    }
    out.push(r);
  }
  const pre = document.createElement("pre");
  pre.id = "plot-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"##;

#[test]
fn chromium_renders_every_plot() {
    if !Path::new(CHROMIUM).exists() {
        common::skip(
            "chromium_renders_every_plot",
            &format!("{CHROMIUM} not found (apt-get install -y chromium)"),
        );
        return;
    }
    let dir = run_dir();
    let html_path = dir.join("report.html");

    // 1. The screenshot, exactly as a person would look at it.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_render.png");
    let _ = std::fs::remove_file(&shot);
    let (ok, _, stderr) = chromium(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,6000".into(),
        ],
        &format!("file://{}", html_path.display()),
    );
    assert!(ok && shot.exists(), "chromium screenshot failed: {stderr}");
    let png = std::fs::read(&shot).expect("read screenshot");
    assert_eq!(png_size(&png), (1400, 6000));
    // A blank or error page compresses to a few kB; six plots do not.
    assert!(png.len() > 100_000, "screenshot only {} bytes", png.len());
    println!("screenshot: {}", shot.display());

    // 2. Every plot rendered and visible, checked in the browser.
    let html = read(&html_path);
    let want: BTreeSet<String> = expected_quick().keys().map(|s| s.to_string()).collect();
    let checks = probe(&html, dir, "probe");
    for c in &checks {
        println!("browser: {c}");
    }
    let problems = plot_problems(&checks, &want);
    assert!(problems.is_empty(), "{problems:#?}");

    // 3. The probe can fail: a hidden plot, a plot without data, a plot covered by something
    //    else, and a missing plot are each caught.
    let figure = |name: &str| {
        let start = html.find(&format!("<figure id=\"plot-{name}\"")).unwrap();
        let end = start + html[start..].find("</figure>").unwrap();
        (start, end)
    };
    let mut broken = html.clone();
    let (s, e) = figure("write-spectrum");
    broken.replace_range(
        s..e,
        &html[s..e].replacen("<svg ", "<svg style=\"display:none\" ", 1),
    );
    let (s, e) = figure("lag");
    let no_data = broken[s..e]
        .replace("stroke=\"#009E73\"", "stroke=\"#000000\"")
        .replace("fill=\"#009E73\"", "fill=\"#000000\"");
    broken.replace_range(s..e, &no_data);
    let (s, e) = figure("load");
    let covered = broken[s..e].replacen(
        "</svg>",
        "</svg><div style=\"position:relative;margin-top:-470px;height:470px;background:#fff\"></div>",
        1,
    );
    broken.replace_range(s..e, &covered);
    let (s, e) = figure("read-latency");
    broken.replace_range(s..e + "</figure>".len(), "");
    let problems = plot_problems(&probe(&broken, dir, "probe-broken"), &want);
    let text = problems.join("\n");
    for name in ["write-spectrum", "lag", "load", "read-latency"] {
        assert!(text.contains(name), "{name} not caught: {text}");
    }
    for name in ["read-spectrum", "throughput"] {
        assert!(!text.contains(name), "{name} wrongly flagged: {text}");
    }
}

/// Loads `html` plus the probe script in Chromium and returns the probe's findings.
fn probe(html: &str, dir: &Path, stem: &str) -> Vec<Value> {
    let page = dir.join(format!("{stem}.html"));
    std::fs::write(&page, html.replace("</body>", &format!("{PROBE}</body>")))
        .expect("write probe page");
    let (_, dom, stderr) = chromium(
        &["--dump-dom".into(), "--window-size=1400,1000".into()],
        &format!("file://{}", page.display()),
    );
    let json_text = dom
        .split("<pre id=\"plot-check\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("probe did not run: {stderr}"))
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&json_text).expect("probe JSON")
}

/// What is wrong with the plots the browser saw, one line per problem.
fn plot_problems(checks: &[Value], want: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let seen: BTreeSet<String> = checks
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    for missing in want.difference(&seen) {
        problems.push(format!("{missing}: not in the page"));
    }
    for c in checks {
        let name = c["name"].as_str().unwrap();
        let (w, h) = (c["width"].as_f64().unwrap(), c["height"].as_f64().unwrap());
        let data = c["data"].as_u64().unwrap();
        let visible = c["visible"].as_u64().unwrap();
        if w < 400.0 || h < 250.0 {
            problems.push(format!("{name}: rendered {w}x{h}"));
        }
        if data == 0 {
            problems.push(format!("{name}: no data drawn"));
        }
        // Markers and lines may overlap each other; most data must be on top somewhere.
        if visible * 2 < data {
            problems.push(format!(
                "{name}: only {visible} of {data} data elements visible"
            ));
        }
    }
    problems
}

fn modified(f: impl FnOnce(&mut Value)) -> (tempfile::TempDir, PathBuf) {
    let mut v: Value = serde_json::from_str(&read(&run_dir().join("results.json"))).unwrap();
    f(&mut v);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.json");
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    (dir, p)
}

fn report(results: &Path, out: Option<&Path>) -> Output {
    let mut c = Command::new(BIN);
    c.arg("report").arg(results);
    if let Some(o) = out {
        c.arg("--out").arg(o);
    }
    c.output().expect("run report")
}

#[test]
fn report_subcommand_regenerates_the_same_report() {
    let dir = run_dir();
    let out = tempfile::tempdir().unwrap();
    let o = report(&dir.join("results.json"), Some(out.path()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        read(&out.path().join("report.md")),
        read(&dir.join("report.md")),
        "report.md regenerated from results.json differs from the run's"
    );
    assert_eq!(
        read(&out.path().join("report.html")),
        read(&dir.join("report.html"))
    );
    // Default output folder: next to the results file.
    let (copy_dir, copy) = modified(|_| {});
    let o = report(&copy, None);
    assert!(o.status.success());
    assert!(copy_dir.path().join("report.html").exists());
    assert!(copy_dir.path().join("plots/load.svg").exists());
    // Bad input: exit 2.
    let o = report(Path::new("/nonexistent/results.json"), None);
    assert_eq!(o.status.code(), Some(2));
    let bad = copy_dir.path().join("bad.json");
    std::fs::write(&bad, "{\"not\": \"results\"}").unwrap();
    assert_eq!(report(&bad, None).status.code(), Some(2));
}

#[test]
fn a_sweep_gets_plots_per_level_and_a_load_curve() {
    let (dir, path) = modified(|v| {
        v["scenario"]["sweep"] = json!({ "read_rates": [100.0, 200.0] });
        let runs = v["runs"].as_array().unwrap().clone();
        let mut swept = Vec::new();
        for rate in [100.0, 200.0] {
            for run in &runs {
                let mut r = run.clone();
                r["sweep_point"] = json!({ "read_rate": rate });
                swept.push(r);
            }
        }
        v["runs"] = Value::Array(swept);
    });
    let o = report(&path, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = read(&dir.path().join("report.html"));
    let all: BTreeSet<&str> = [NORMALIZED, SYNC, ASYNC].into();
    let mut expected = BTreeMap::new();
    for level in ["-reads-100", "-reads-200"] {
        for (name, colours) in expected_quick() {
            if name != "load" {
                expected.insert(format!("{name}{level}"), colours);
            }
        }
    }
    expected.insert("load".to_string(), all);
    let expected_ref: BTreeMap<&str, BTreeSet<&str>> = expected
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    check_plots(&html, &expected_ref);
    // The load plot has a line with one point per level for each backend (write and read).
    let load = &figures(&html)["load"];
    let lines: Vec<usize> = tags(load, "polyline")
        .iter()
        .filter(|p| [NORMALIZED, SYNC, ASYNC].contains(p.get("stroke").unwrap_or(&"")))
        .map(|p| p["points"].split_whitespace().count())
        .filter(|n| *n == 2)
        .collect();
    // 3 backends x 2 panels of data lines, plus 3 x 2 legend lines (also 2 points).
    assert_eq!(lines.len(), 12, "load plot lines");
    let md = read(&dir.path().join("report.md"));
    assert!(md.contains("at reads 100/s"), "verdict per level");
    assert!(md.contains("at reads 200/s"));
}

/// Every run valid and keeping up (the real run may have saturated on a busy machine).
fn clear_load_flags(v: &mut Value) {
    for run in v["runs"].as_array_mut().unwrap() {
        run["metrics"]["saturated"] = json!(false);
        run["metrics"]["driver_behind"] = json!(false);
        run["metrics"]["unstarted"] = json!({ "writes": 0, "reads": 0 });
    }
}

/// The `## Verdict` part of a report.md.
fn verdict_of(md: &str) -> &str {
    md.split("## Verdict")
        .nth(1)
        .unwrap()
        .split("## Summary")
        .next()
        .unwrap()
}

/// The verdict line that starts with `prefix` (after the list marker).
fn line_of<'a>(verdict: &'a str, prefix: &str) -> &'a str {
    verdict
        .lines()
        .find(|l| l.trim_start_matches("- ").starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{verdict}"))
}

fn report_md(path: &Path) -> (String, String) {
    let o = report(path, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = path.parent().unwrap();
    (read(&dir.join("report.md")), read(&dir.join("report.html")))
}

#[test]
fn no_winner_when_the_driver_fell_behind() {
    let (_dir, path) = modified(|v| {
        clear_load_flags(v);
        v["runs"][0]["metrics"]["driver_behind"] = json!(true);
    });
    let (md, html) = report_md(&path);
    let verdict = verdict_of(&md);
    assert!(verdict.contains("**No winner**"), "{verdict}");
    assert!(
        verdict.contains("the driver fell behind in 1 of 3 runs (normalized)"),
        "{verdict}"
    );
    assert!(verdict.contains("### Invalid runs"), "{verdict}");
    assert!(verdict.contains("**normalized** is invalid"), "{verdict}");
    assert!(!verdict.contains("lowest is"), "{verdict}");
    assert!(!verdict.contains("Lowest write p99"), "{verdict}");
    assert!(!verdict.contains("**crossover**"), "{verdict}");
    assert!(html.contains("class=\"verdict unfair\""));
    assert!(
        md.contains("**driver behind — invalid**"),
        "summary marks the run"
    );

    // The same run with the system saturated instead is valid: a winner is named.
    let (_dir, path) = modified(|v| {
        clear_load_flags(v);
        v["runs"][0]["metrics"]["saturated"] = json!(true);
    });
    let (md, html) = report_md(&path);
    let verdict = verdict_of(&md);
    assert!(!verdict.contains("No winner"), "{verdict}");
    assert!(!verdict.contains("### Invalid runs"), "{verdict}");
    assert!(verdict.contains("### Saturation"), "{verdict}");
    assert!(verdict.contains("Lowest write p99"), "{verdict}");
    assert!(html.contains("class=\"verdict\""));
}

/// A readers sweep 0, 4 in which every backend has the same numbers (cqrs-sync's); at 4
/// readers normalized is marked saturated (30 writes waited for a worker, 5 never started)
/// when `saturate`.
fn readers_sweep(saturate: bool) -> (tempfile::TempDir, PathBuf) {
    modified(|v| {
        clear_load_flags(v);
        v["scenario"]["sweep"] = json!({ "readers": [0, 4] });
        let runs = v["runs"].as_array().unwrap().clone();
        let template = runs
            .iter()
            .find(|r| r["backend"] == "cqrs-sync")
            .unwrap()
            .clone();
        let mut swept = Vec::new();
        for readers in [0, 4] {
            for run in &runs {
                let mut r = run.clone();
                for k in ["metrics", "floor", "cpu", "rates"] {
                    r[k] = template[k].clone();
                }
                r["rates"]["read_target"] = Value::Null;
                r["sweep_point"] = json!({ "readers": readers });
                if saturate && readers == 4 && r["backend"] == "normalized" {
                    let m = &mut r["metrics"];
                    m["saturated"] = json!(true);
                    let mut qw = m["lateness"].clone();
                    qw["count"] = json!(30);
                    qw["p99_us"] = json!(25_000);
                    qw["max_us"] = json!(40_000);
                    m["queue_wait"] = qw;
                    m["waited_for_worker"] = json!(30);
                    m["unstarted"] = json!({ "writes": 5, "reads": 0 });
                }
                swept.push(r);
            }
        }
        v["runs"] = Value::Array(swept);
    })
}

#[test]
fn a_backend_that_saturates_loses_the_level_and_marks_the_crossover() {
    let (_dir, path) = readers_sweep(true);
    let (md, html) = report_md(&path);
    let verdict = verdict_of(&md);
    assert!(!verdict.contains("No winner"), "{verdict}");
    assert!(html.contains("class=\"verdict\""));
    // The saturated run is listed as a finding, with its numbers.
    assert!(verdict.contains("### Saturation"), "{verdict}");
    let sat = line_of(verdict, "**normalized @ 4 readers** saturated");
    assert!(
        sat.contains("writes waited for workers (queue wait p99 25.0ms, max 40.0ms; 30 ops waited for a worker)"),
        "{sat}"
    );
    assert!(
        sat.contains("5 ops came due and never started (5 writes, 0 reads)"),
        "{sat}"
    );
    // At 4 readers the backends that kept up win; at 0 readers nobody saturated.
    let at4 = line_of(verdict, "at 4 readers: write p99:");
    assert!(
        at4.contains("normalized saturated and **cqrs-sync** and **cqrs-async** kept up, so the ones that kept up win"),
        "{at4}"
    );
    let at0 = line_of(verdict, "at 0 readers: write p99:");
    assert!(!at0.contains("saturated"), "{at0}");
    let headline = verdict.trim_start().lines().next().unwrap();
    assert!(
        headline.contains(
            "lowest write p99 at the highest read level (4 readers): **cqrs-sync** and **cqrs-async**"
        ) && headline.contains("normalized saturated"),
        "{headline}"
    );
    // The crossover is the level where normalized saturates, with what CQRS does there.
    let cross = line_of(verdict, "**crossover**");
    assert!(
        cross.contains("normalized writes fall behind CQRS from **4 readers** on"),
        "{cross}"
    );
    assert!(
        cross.contains("normalized saturated at 4 readers: writes waited for workers"),
        "{cross}"
    );
    assert!(
        cross.contains("There, **cqrs-sync** kept up with write p99"),
        "{cross}"
    );
    assert!(
        cross.contains("**cqrs-async** kept up with write p99"),
        "{cross}"
    );
    assert!(
        headline.starts_with(
            "Normalized writes fall behind CQRS from 4 readers on (normalized saturates while \
             cqrs-sync and cqrs-async keep up)"
        ),
        "{headline}"
    );
    assert!(
        md.contains("**saturated**; 5 ops never started"),
        "summary marks the run"
    );

    // Without the saturation the same numbers give no crossover and no winner by saturation.
    let (_dir, path) = readers_sweep(false);
    let (md, _) = report_md(&path);
    let verdict = verdict_of(&md);
    assert!(!verdict.contains("### Saturation"), "{verdict}");
    assert!(!verdict.contains("**crossover**"), "{verdict}");
    assert!(verdict.contains("no crossover"), "{verdict}");
    assert!(
        !line_of(verdict, "at 4 readers: write p99:").contains("saturated"),
        "{verdict}"
    );
}

/// Every backend's write latencies set to a steady series (so the real run's noise cannot
/// decide the test), normalized's 10× slower than the others (so a ranking would be clear),
/// and every run's floor at `floor_us` on both lanes (the measured floor is the machine's,
/// and on a busy one it can exceed the gap).
fn slow_normalized(floor_us: u64) -> (tempfile::TempDir, PathBuf) {
    modified(|v| {
        clear_load_flags(v);
        for run in v["runs"].as_array_mut().unwrap() {
            let scale = if run["backend"] == "normalized" {
                10
            } else {
                1
            };
            for (j, i) in run["metrics"]["intervals"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .enumerate()
            {
                let p99 = (2_000 + 100 * (j as u64 % 3)) * scale;
                i["write_p50_us"] = json!(p99 / 2);
                i["write_p99_us"] = json!(p99);
                i["write_max_us"] = json!(p99 * 2);
            }
            let l = &mut run["metrics"]["ops"]["write"]["latency"];
            for (k, us) in [
                ("p50_us", 1_000),
                ("p90_us", 1_800),
                ("p99_us", 2_100),
                ("p999_us", 3_000),
                ("max_us", 4_000),
            ] {
                l[k] = json!(us * scale);
            }
            for lane in ["write", "read"] {
                let l = &mut run["floor"][lane];
                for k in ["p50_us", "p90_us", "p99_us"] {
                    l[k] = json!(floor_us);
                }
                l["mean_us"] = json!(floor_us as f64);
            }
        }
    })
}

#[test]
fn a_gap_below_the_floor_is_not_ranked() {
    // With a 100 µs floor: normalized's slow writes are ranked, and read models win reads.
    let (_dir, path) = slow_normalized(100);
    let (md, _) = report_md(&path);
    let verdict = verdict_of(&md);
    let write = line_of(verdict, "write p99:");
    assert!(
        write.contains("significantly higher: normalized"),
        "{write}"
    );
    // (The CQRS backends' own gap may be below the floor; normalized's is not.)
    assert!(
        !write.contains("normalized below the harness's resolution"),
        "{write}"
    );
    assert!(verdict.contains("× faster"), "{verdict}");

    // With a 10 s floor every gap is below the harness's resolution: nothing is ranked.
    let (_dir, path) = slow_normalized(10_000_000);
    let (md, _) = report_md(&path);
    let verdict = verdict_of(&md);
    let write = line_of(verdict, "write p99:");
    assert!(
        write.contains("below the harness's resolution (floor p99 10.00s)"),
        "{write}"
    );
    assert!(write.contains("not ranked"), "{write}");
    assert!(!write.contains("significantly"), "{write}");
    assert!(!write.contains("lowest is"), "{write}");
    let read = line_of(verdict, "read p99:");
    assert!(read.contains("not ranked"), "{read}");
    let gains = line_of(verdict, "read p99 per query");
    assert!(
        gains.contains("below the harness's resolution (floor p99 10.00s)"),
        "{gains}"
    );
    assert!(
        !gains.contains("× faster") && !gains.contains("× slower"),
        "{gains}"
    );
    let overhead = line_of(verdict, "**cqrs-sync** writes vs normalized");
    assert!(
        overhead.contains("below the harness's resolution (floor p50 10.00s)"),
        "{overhead}"
    );
    assert!(
        overhead.contains("no overhead the harness can resolve"),
        "{overhead}"
    );
    let headline = verdict.trim_start().lines().next().unwrap();
    assert!(!headline.contains("read models cut"), "{headline}");
    assert!(
        headline.contains("apart by less than the harness's resolution"),
        "{headline}"
    );
    // The report shows the floor it judged by.
    assert!(md.contains("## Harness floor and load"), "{md}");
    assert!(
        md.contains("10.00s / 10.00s"),
        "floor p50 / p99 in the harness table"
    );
}
