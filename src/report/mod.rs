//! Presenting results: the summary table printed after a run, and the report written next to
//! `results.json` — `report.md`, a self-contained `report.html` (plots inline as SVG, no
//! network) and the plots as `plots/*.svg` — with a verdict computed from the numbers, and the
//! comparison of two runs.
//!
//! - [`table`]: the text summary.
//! - [`plot`]: the SVG plots (plotters).
//! - [`verdict`]: who is fastest, what CQRS costs and buys here, thresholds, correctness.
//! - [`compare`]: two runs, metric by metric, with Welch's t-test.
//! - [`stats`]: the statistics behind both; [`event_sourcing`]: the event-sourced backend's
//!   figures (event-store costs, the comparison with `cqrs-async`).

pub mod compare;
pub mod document;
pub mod event_sourcing;
pub mod merge;
pub mod plot;
pub mod stats;
pub mod table;
pub mod verdict;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::backend::BackendKind;
pub use crate::format::{fmt_bytes, fmt_ms, fmt_us};
use crate::metrics::MetricKey;
use crate::results::{BackendRun, Results, SweepPoint};
use plot::{backend_hex, Plot};
use verdict::Verdict;

/// One read level: the runs of every backend at one sweep point (or the only level without a
/// sweep), in the scenario's backend order.
#[derive(Debug, Clone)]
pub struct Level<'a> {
    pub point: Option<SweepPoint>,
    pub runs: Vec<&'a BackendRun>,
}

/// The read levels of a run, lowest read load first.
pub fn levels(results: &Results) -> Vec<Level<'_>> {
    let mut out: Vec<Level> = Vec::new();
    for run in &results.runs {
        match out.iter_mut().find(|l| l.point == run.sweep_point) {
            Some(l) => l.runs.push(run),
            None => out.push(Level {
                point: run.sweep_point.clone(),
                runs: vec![run],
            }),
        }
    }
    out.sort_by(|a, b| {
        let x = |l: &Level| l.point.as_ref().map(|p| p.x()).unwrap_or(0.0);
        x(a).total_cmp(&x(b))
    });
    let order = |k: BackendKind| {
        results
            .scenario
            .backends
            .iter()
            .position(|b| *b == k)
            .unwrap_or(usize::MAX)
    };
    for l in &mut out {
        l.runs.sort_by_key(|r| order(r.backend));
    }
    out
}

/// `reads 200/s`, `4 readers`, or `the one read level` without a sweep.
pub fn level_label(level: &Level) -> String {
    match &level.point {
        Some(p) => p.label(),
        None => match level.runs.first().and_then(|r| r.rates.read_target) {
            Some(r) => format!("reads {r}/s"),
            None => "the one read level".into(),
        },
    }
}

/// The files a report consists of.
#[derive(Debug, Clone)]
pub struct Written {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub plots: Vec<PathBuf>,
}

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct ReportError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// Everything a report shows, computed once.
pub struct Report<'a> {
    pub results: &'a Results,
    pub verdict: Verdict,
    pub plots: Vec<Plot>,
}

impl<'a> Report<'a> {
    pub fn new(results: &'a Results) -> Result<Report<'a>, plot::PlotError> {
        Ok(Report {
            results,
            verdict: verdict::verdict(results),
            plots: plot::plots(results)?,
        })
    }
}

/// The decision on `results` (the simplest architecture that meets the scenario's budgets).
pub fn decide(results: &Results) -> verdict::decision::Decision {
    verdict::decision::decide(results, &levels(results))
}

/// `results.json`: the results with the decision computed from them (`decision`, which
/// loading ignores: it is recomputed from the rest).
pub fn results_json(results: &Results) -> String {
    #[derive(serde::Serialize)]
    struct WithDecision<'a> {
        #[serde(flatten)]
        results: &'a Results,
        decision: verdict::decision::Decision,
    }
    serde_json::to_string_pretty(&WithDecision {
        results,
        decision: decide(results),
    })
    .expect("results serialize")
}

/// Plot file names this tool writes (so a regeneration can remove stale ones, and nothing
/// else).
fn is_our_plot(name: &str) -> bool {
    name.ends_with(".svg")
        && [
            "write-spectrum",
            "read-spectrum",
            "read-latency",
            "lag",
            "throughput",
            "load",
        ]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Writes `report.md`, `report.html` and `plots/*.svg` into `dir`.
pub fn write_report(results: &Results, dir: &Path) -> Result<Written, ReportError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReportError { path, source }
    };
    let report = Report::new(results).map_err(|e| ReportError {
        path: dir.join("plots").display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let plots_dir = dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(io(&plots_dir))?;
    if let Ok(entries) = std::fs::read_dir(&plots_dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_our_plot(&name)
                && !report
                    .plots
                    .iter()
                    .any(|p| format!("{}.svg", p.name) == name)
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let mut plots = Vec::new();
    for p in &report.plots {
        let path = plots_dir.join(format!("{}.svg", p.name));
        std::fs::write(&path, &p.svg).map_err(io(&path))?;
        plots.push(path);
    }
    let markdown = dir.join("report.md");
    std::fs::write(&markdown, render_markdown(&report)).map_err(io(&markdown))?;
    let html = dir.join("report.html");
    std::fs::write(&html, render_html(&report)).map_err(io(&html))?;
    Ok(Written {
        markdown,
        html,
        plots,
    })
}

// ---------------------------------------------------------------------------------------------
// Shared table data.

struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// The table in the document model, which renders it to markdown and HTML alike.
    fn block(&self) -> document::Block {
        document::Block::Table {
            head: self.head.clone(),
            rows: self.rows.clone(),
            kind: document::TableKind::Runs,
        }
    }
}

fn rate(target: Option<f64>, achieved: f64) -> String {
    crate::format::rate(target, achieved, " / ")
}

fn summary_table(results: &Results) -> Table {
    let head = [
        "run",
        "writes/s (got / asked)",
        "reads/s (got / asked)",
        "write p50",
        "write p99",
        "write p99.9",
        "write max",
        "read p50",
        "read p99",
        "lag p50",
        "lag p99",
        "ryw miss",
        "failed",
        "rejected",
        "verify",
        "load",
    ];
    let rows = results
        .runs
        .iter()
        .map(|run| {
            let m = &run.metrics;
            let w = m.op(MetricKey::Writes).cloned().unwrap_or_default();
            let r = m.op(MetricKey::Reads).cloned().unwrap_or_default();
            let lat = |count: u64, v: u64| if count > 0 { fmt_us(v) } else { "-".into() };
            vec![
                run.label(),
                rate(run.rates.write_target, run.rates.write_achieved),
                rate(run.rates.read_target, run.rates.read_achieved),
                lat(w.count, w.latency.p50_us),
                lat(w.count, w.latency.p99_us),
                lat(w.count, w.latency.p999_us),
                lat(w.count, w.latency.max_us),
                lat(r.count, r.latency.p50_us),
                lat(r.count, r.latency.p99_us),
                lat(m.lag.count, m.lag.p50_us),
                lat(m.lag.count, m.lag.p99_us),
                if m.ryw.probes > 0 {
                    format!("{:.1}%", m.ryw.miss_share * 100.0)
                } else {
                    "-".into()
                },
                m.errors().to_string(),
                (w.rejected + r.rejected).to_string(),
                match &run.verify {
                    Some(v) if v.ok() => "ok".into(),
                    Some(v) => format!("{} MISMATCHES", v.mismatches),
                    None => "-".into(),
                },
                load_status(run),
            ]
        })
        .collect();
    Table {
        head: head.iter().map(|s| s.to_string()).collect(),
        rows,
    }
}

/// `kept up`, `**saturated**; 12 ops never started`, `**driver behind — invalid**`.
fn load_status(run: &BackendRun) -> String {
    let m = &run.metrics;
    let mut s = if m.driver_behind {
        "**driver behind — invalid**".to_string()
    } else if m.saturated {
        "**saturated**".to_string()
    } else {
        "kept up".to_string()
    };
    if m.unstarted.total() > 0 {
        s.push_str(&format!("; {} ops never started", m.unstarted.total()));
    }
    s
}

/// Per run: the harness's floor, the driver's delay and CPU, and how far the system fell
/// behind. `None` when no run measured any of it (results from an older version).
fn harness_table(results: &Results) -> Option<Table> {
    if results
        .runs
        .iter()
        .all(|r| r.floor.is_none() && r.cpu.is_none())
    {
        return None;
    }
    let head = [
        "run",
        "floor write p50 / p99",
        "floor read p50 / p99",
        "dispatch p99 (floor)",
        "dispatch p99 (load)",
        "driver CPU per op (floor)",
        "driver CPU per op (load)",
        "queue wait p99",
        "waited for a worker",
        "never started (writes / reads)",
    ];
    let pair = |l: Option<&crate::metrics::LatencyStats>| match l.filter(|l| l.count > 0) {
        Some(l) => format!("{} / {}", fmt_us(l.p50_us), fmt_us(l.p99_us)),
        None => "-".into(),
    };
    let one = |l: Option<&crate::metrics::LatencyStats>| match l.filter(|l| l.count > 0) {
        Some(l) => fmt_us(l.p99_us),
        None => "-".into(),
    };
    let cpu = |c: Option<&crate::metrics::DriverCpu>| match c {
        Some(c) => fmt_ms(c.driver_us_per_op),
        None => "-".into(),
    };
    let rows = results
        .runs
        .iter()
        .map(|run| {
            let f = run.floor.as_ref();
            let m = &run.metrics;
            vec![
                run.label(),
                pair(f.and_then(|f| f.write.as_ref())),
                pair(f.and_then(|f| f.read.as_ref())),
                one(f.map(|f| &f.dispatch)),
                one(Some(&m.dispatch)),
                cpu(f.and_then(|f| f.cpu.as_ref())),
                cpu(run.cpu.as_ref()),
                one(Some(&m.queue_wait)),
                m.waited_for_worker.to_string(),
                format!("{} / {}", m.unstarted.writes, m.unstarted.reads),
            ]
        })
        .collect();
    Some(Table {
        head: head.iter().map(|s| s.to_string()).collect(),
        rows,
    })
}

/// What the harness table shows, in words.
fn harness_note(results: &Results) -> String {
    let statement = results
        .runs
        .iter()
        .find_map(|r| r.floor.as_ref().map(|f| f.statement.clone()))
        .unwrap_or_else(|| "SELECT 1".into());
    format!(
        "Before each run's load the tool drives the same lanes (same rates, workers and sessions) \
         with `{statement}` instead of the backend's work: that latency, from intended start, is \
         the harness's floor, and differences smaller than it are reported as below the \
         harness's resolution, never ranked. Dispatch: how late free workers started ops (the \
         driver's own delay; when it falls behind the run is invalid). Driver CPU: the tool's \
         threads (pacer and async runtime) per op. Queue wait: time ops waited for a busy \
         worker (the system falling behind: saturation, a finding)."
    )
}

fn query_table(results: &Results) -> Table {
    let queries = crate::metrics::queries_run(results.runs.iter().map(|r| &r.metrics));
    let mut head = vec!["run".to_string()];
    head.extend(queries.iter().map(|q| format!("`{q}` p50 / p99")));
    let rows = results
        .runs
        .iter()
        .map(|run| {
            let mut row = vec![run.label()];
            for q in &queries {
                row.push(match run.metrics.op(MetricKey::read_named(*q)) {
                    Some(o) if o.count > 0 => format!(
                        "{} / {}",
                        fmt_us(o.latency.p50_us),
                        fmt_us(o.latency.p99_us)
                    ),
                    _ => "-".into(),
                });
            }
            row
        })
        .collect();
    Table { head, rows }
}

/// One row per refreshed view of each `matview` run; `None` when no run refreshed views.
fn refresh_table(results: &Results) -> Option<Table> {
    let head = [
        "run",
        "view",
        "every",
        "refreshes",
        "failed",
        "duration p50",
        "p99",
        "max",
        "server CPU",
    ];
    let rows: Vec<Vec<String>> = results
        .runs
        .iter()
        .flat_map(|run| {
            run.refreshes.iter().map(move |v| {
                vec![
                    run.label(),
                    v.view.clone(),
                    fmt_ms(v.interval_ms as f64 * 1000.0),
                    v.refreshes.to_string(),
                    v.failed.to_string(),
                    fmt_ms(v.duration.p50_us as f64),
                    fmt_ms(v.duration.p99_us as f64),
                    fmt_ms(v.duration.max_us as f64),
                    v.server_cpu_seconds
                        .map(|c| format!("{c:.2} s"))
                        .unwrap_or_else(|| "not measured".into()),
                ]
            })
        })
        .collect();
    (!rows.is_empty()).then(|| Table {
        head: head.iter().map(|h| h.to_string()).collect(),
        rows,
    })
}

/// What the refresh table's figures are.
const REFRESH_NOTE: &str = "A view's staleness (its lag) runs from a write's commit to the end of the first refresh that started after it; the duration is one `REFRESH MATERIALIZED VIEW CONCURRENTLY`, the CPU that of the server process running the refreshes (measured only when the server runs on this machine). The schedule waits `every` after each refresh ends.";

/// Per event-sourced run: what its appends and rehydrations cost, its conflicts and store
/// size; `None` when no run recorded event-store costs.
fn event_store_table(results: &Results) -> Option<Table> {
    let head = [
        "run",
        "append p50 / p99",
        "rehydration p50 / p99",
        "events read per stream p50 / p99 / max",
        "snapshots (every / loads from one)",
        "conflict rate",
        "gave up",
        "event-store size",
    ];
    let rows: Vec<Vec<String>> = results
        .runs
        .iter()
        .filter_map(|run| {
            let f = event_sourcing::figures(run)?;
            Some(vec![
                run.label(),
                format!("{} / {}", fmt_us(f.append_p50_us), fmt_us(f.append_p99_us)),
                format!(
                    "{} / {}",
                    fmt_us(f.rehydration_p50_us),
                    fmt_us(f.rehydration_p99_us)
                ),
                format!(
                    "{} / {} / {}",
                    f.events_read_p50, f.events_read_p99, f.events_read_max
                ),
                if f.snapshot_every > 0 {
                    format!(
                        "{} / {:.0}%",
                        f.snapshot_every,
                        f.from_snapshot_share * 100.0
                    )
                } else {
                    "off".into()
                },
                format!("{:.2}%", f.conflict_rate * 100.0),
                f.gave_up.to_string(),
                f.store_bytes
                    .map(fmt_bytes)
                    .unwrap_or_else(|| "not measured".into()),
            ])
        })
        .collect();
    (!rows.is_empty()).then(|| Table {
        head: head.iter().map(|s| s.to_string()).collect(),
        rows,
    })
}

/// Lag in parts of the broker runs, next to the lag of the other runs whose read side lags
/// (the in-database outbox); `None` without a broker run.
fn lag_parts_table(results: &Results) -> Option<Table> {
    if results.runs.iter().all(|r| r.lag_parts.is_empty()) {
        return None;
    }
    let cell = |s: &crate::metrics::LatencyStats| {
        if s.count == 0 {
            "-".to_string()
        } else {
            format!("{} / {}", fmt_us(s.p50_us), fmt_us(s.p99_us))
        }
    };
    let rows = results
        .runs
        .iter()
        .filter(|r| {
            !r.lag_parts.is_empty() || (r.backend.read_side_lags() && r.metrics.lag.count > 0)
        })
        .map(|run| {
            let part = |name: &str| {
                run.lag_parts
                    .iter()
                    .find(|p| p.part == name)
                    .map(|p| cell(&p.lag))
                    .unwrap_or_else(|| "-".into())
            };
            if run.lag_parts.is_empty() {
                vec![
                    run.label(),
                    "-".into(),
                    "-".into(),
                    cell(&run.metrics.lag),
                    cell(&run.metrics.lag),
                ]
            } else {
                vec![
                    run.label(),
                    part("published"),
                    part("delivered"),
                    part("end_to_end"),
                    cell(&run.metrics.lag),
                ]
            }
        })
        .collect();
    Some(Table {
        head: [
            "run",
            "commit → published p50 / p99",
            "published → applied p50 / p99",
            "commit → applied p50 / p99 (all events)",
            "lag p50 / p99 (measured, after warm-up)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows,
    })
}

/// The search index's freshness and its skew against the SQL read models, per run that kept
/// one; `None` without such a run.
fn search_table(results: &Results) -> Option<Table> {
    let runs: Vec<_> = results
        .runs
        .iter()
        .filter(|r| r.metrics.search_freshness.count > 0 || r.metrics.search_skew.samples > 0)
        .collect();
    if runs.is_empty() {
        return None;
    }
    let us = |s: &crate::metrics::LatencyStats| {
        if s.count == 0 {
            "-".to_string()
        } else {
            format!("{} / {}", fmt_us(s.p50_us), fmt_us(s.p99_us))
        }
    };
    let rows = runs
        .iter()
        .map(|run| {
            let k = &run.metrics.search_skew;
            vec![
                run.label(),
                us(&run.metrics.lag),
                us(&run.metrics.search_freshness),
                format!("{} of {}", k.apart, k.samples),
                format!("{} … {}", k.min_events, k.max_events),
                k.p99_abs_events.to_string(),
            ]
        })
        .collect();
    Some(Table {
        head: [
            "run",
            "SQL read models: lag p50 / p99",
            "search index: commit → searchable p50 / p99",
            "samples apart",
            "index behind by (events, min … max)",
            "|skew| p99 (events)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows,
    })
}

/// What the search table shows, in words.
const SEARCH_NOTE: &str = "The search index is a read model outside the database: its own \
projector applies the log and commits the index with its checkpoint, then reloads the reader. \
Freshness is the writer's commit to the moment a search can find the write. Skew samples the \
difference of the two read sides' checkpoints every 250 ms (positive: the index is behind).";

/// What the event-store table shows, in words.
const EVENT_STORE_NOTE: &str = "Over the whole run, warm-up included. Append: a successful \
attempt's insert into the store, its snapshots and the commit. Rehydration: loading one stream \
a command touches (its latest snapshot, if any, then the events after it, folded). Conflict \
rate: version conflicts per command attempt (each is retried on fresh state after a back-off). \
Event-store size: the store, its snapshots and the projector's bookkeeping.";

/// What the lag-parts table shows, in words.
const LAG_PARTS_NOTE: &str = "The broker's events go commit → relay publish \
     (acknowledged by the stream) → projector commit; the parts cover every event of the run, \
     warm-up included. Runs without a broker read the outbox in their own database: their lag \
     is one hop.";

fn storage_table(results: &Results) -> Table {
    let head = [
        "run",
        "write tables",
        "read models",
        "event log",
        "total",
        "read models + log vs write tables",
    ];
    let rows = results
        .runs
        .iter()
        .map(|run| match &run.storage {
            Some(s) => {
                let extra = s.read_tables_bytes + s.event_log_bytes;
                vec![
                    run.label(),
                    fmt_bytes(s.write_tables_bytes),
                    fmt_bytes(s.read_tables_bytes),
                    fmt_bytes(s.event_log_bytes),
                    fmt_bytes(s.write_tables_bytes + extra),
                    if s.write_tables_bytes > 0 {
                        format!("{:.0}%", extra as f64 / s.write_tables_bytes as f64 * 100.0)
                    } else {
                        "-".into()
                    },
                ]
            }
            None => vec![
                run.label(),
                "not measured".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ],
        })
        .collect();
    Table {
        head: head.iter().map(|s| s.to_string()).collect(),
        rows,
    }
}

fn facts(results: &Results) -> Vec<(String, String)> {
    let s = &results.scenario;
    let e = &results.environment;
    let d = &s.dataset;
    let side = |rate: &crate::scenario::Rate, workers: u32| format!("{rate} ({workers} workers)");
    let mut v = vec![
        ("started".to_string(), results.started_at.clone()),
        (
            "engine".into(),
            format!("{} {} — `{}`", e.engine, e.server_version, e.database),
        ),
        (
            "seed · stream hash".into(),
            format!("{} · `{}`", results.seed, results.stream_hash),
        ),
        (
            "duration".into(),
            format!(
                "{} per run, the first {} warm-up (not measured)",
                crate::scenario::format_duration(s.duration),
                crate::scenario::format_duration(s.warmup)
            ),
        ),
        (
            "load".into(),
            format!(
                "writes {}, reads {}{}; read-your-writes probes after {:.0}% of writes",
                side(&s.writes.rate, s.writes.workers),
                side(&s.reads.rate, s.reads.workers),
                match &s.sweep {
                    Some(crate::scenario::Sweep::ReadRates(r)) => format!(
                        "; sweep of read rates {}",
                        r.iter().map(|x| format!("{x}/s")).collect::<Vec<_>>().join(", ")
                    ),
                    Some(crate::scenario::Sweep::Readers(n)) => format!(
                        "; sweep of closed-loop readers {}",
                        n.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                    Some(crate::scenario::Sweep::Orders(n)) => format!(
                        "; sweep of the dataset's orders {}",
                        n.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                    Some(crate::scenario::Sweep::Size { size, values }) => format!(
                        "; sweep of the dataset's {size} {}",
                        values
                            .iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None => String::new(),
                },
                s.ryw_share * 100.0
            ),
        ),
        (
            "dataset".into(),
            format!(
                "{} categories, {} products, {} users, {} orders, {} reviews, {} price changes over {} days",
                d.categories, d.products, d.users, d.orders, d.reviews, d.price_changes, d.days
            ),
        ),
        (
            "machine".into(),
            format!(
                "{} CPUs, {}; pool {} connections; projector {:?}; {} {}",
                e.cpus, e.os, e.pool_size, e.projector_mode, results.tool.name, results.tool.version
            ),
        ),
    ];
    if !e.settings.is_empty() {
        v.push((
            "settings".into(),
            e.settings
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    let stores: Vec<String> = results
        .runs
        .iter()
        .filter_map(|r| {
            r.read_store
                .as_ref()
                .map(|at| format!("{}: `{at}`", r.backend))
        })
        .collect();
    if !stores.is_empty() {
        v.push(("read models in".into(), stores.join(", ")));
    }
    v
}

const LATENCY_NOTE: &str =
    "Latency runs from each op's intended start (open loop, no coordinated omission); \
    warm-up is excluded. p-values come from Welch's t-test over the per-second values.";

const HARNESS_NOT_MEASURED: &str =
    "Not measured: these results were written by a version without floor calibration.";

// ---------------------------------------------------------------------------------------------
// Markdown.

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// A measurement table as markdown, through the document model.
fn md_table(out: &mut String, t: &Table) {
    out.push_str(&document::markdown(&[t.block()]));
}

/// The plot a story's answer shows, if it has one and it was drawn.
fn answer_plot<'r>(report: &'r Report) -> Option<&'r Plot> {
    let name = report.verdict.answer.as_ref()?.plot.as_ref()?;
    report.plots.iter().find(|p| &p.name == name)
}

/// The plots after the answer's own.
fn other_plots<'r>(report: &'r Report) -> impl Iterator<Item = &'r Plot> {
    let shown = answer_plot(report).map(|p| p.name.clone());
    report
        .plots
        .iter()
        .filter(move |p| Some(&p.name) != shown.as_ref())
}

/// `report.md`.
pub fn render_markdown(report: &Report) -> String {
    let r = report.results;
    let mut out = String::new();
    let _ = writeln!(out, "# cqrs-bench report: {}\n", r.scenario.name);
    let _ = writeln!(out, "> {}\n", r.scenario.description);
    out.push_str(&document::markdown(&report.verdict.decision.document()));
    if let Some(a) = &report.verdict.answer {
        let _ = writeln!(out, "## Answer\n\n{}\n", a.sentence);
        if let Some(p) = answer_plot(report) {
            let _ = writeln!(out, "![{}](plots/{}.svg)\n", p.title, p.name);
            let _ = writeln!(out, "{}\n", p.caption);
        }
    }
    let _ = writeln!(out, "| | |\n|---|---|");
    for (k, v) in facts(r) {
        let _ = writeln!(out, "| {k} | {} |", md_cell(&v));
    }
    out.push('\n');
    out.push_str(&document::markdown(&report.verdict.document()));
    let _ = writeln!(out, "## Summary\n");
    md_table(&mut out, &summary_table(r));
    let _ = writeln!(out, "{LATENCY_NOTE}\n");
    let _ = writeln!(out, "## Harness floor and load\n");
    match harness_table(r) {
        Some(t) => {
            md_table(&mut out, &t);
            let _ = writeln!(out, "{}\n", harness_note(r));
        }
        None => {
            let _ = writeln!(out, "{HARNESS_NOT_MEASURED}\n");
        }
    }
    if let Some(t) = lag_parts_table(r) {
        let _ = writeln!(out, "## Lag in parts (broker)\n");
        md_table(&mut out, &t);
        let _ = writeln!(out, "{LAG_PARTS_NOTE}\n");
    }
    if let Some(t) = search_table(r) {
        let _ = writeln!(out, "## Search index: freshness and skew\n");
        md_table(&mut out, &t);
        let _ = writeln!(out, "{SEARCH_NOTE}\n");
    }
    let _ = writeln!(out, "## Read latency per query\n");
    md_table(&mut out, &query_table(r));
    let _ = writeln!(
        out,
        "## Storage (measured from the database, indexes included)\n"
    );
    md_table(&mut out, &storage_table(r));
    if let Some(t) = refresh_table(r) {
        let _ = writeln!(out, "## Materialized-view refreshes\n");
        md_table(&mut out, &t);
        let _ = writeln!(out, "{REFRESH_NOTE}\n");
    }
    if let Some(t) = event_store_table(r) {
        let _ = writeln!(out, "## Event store\n");
        md_table(&mut out, &t);
        let _ = writeln!(out, "{EVENT_STORE_NOTE}\n");
    }
    let _ = writeln!(out, "## Plots\n");
    let colours = BackendKind::all()
        .iter()
        .map(|k| format!("{k} `{}`", backend_hex(*k)))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(out, "Colours in every plot: {colours}.\n");
    for p in other_plots(report) {
        let _ = writeln!(out, "### {}\n", p.title);
        let _ = writeln!(out, "![{}](plots/{}.svg)\n", p.title, p.name);
        let _ = writeln!(out, "{}\n", p.caption);
    }
    let _ = writeln!(
        out,
        "---\nRegenerate: `cqrs-bench report results.json --out DIR` · compare with another run: \
         `cqrs-bench compare BASE.json results.json`"
    );
    out
}

// ---------------------------------------------------------------------------------------------
// HTML.

pub fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Escapes `s` and turns `**bold**` and `` `code` `` into HTML.
fn inline_html(s: &str) -> String {
    let e = html_escape(s);
    let mut out = String::new();
    let mut rest = e.as_str();
    let mut bold = false;
    let mut code = false;
    while !rest.is_empty() {
        if !code && rest.starts_with("**") {
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
            rest = &rest[2..];
        } else if rest.starts_with('`') {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = &rest[1..];
        } else {
            let c = rest.chars().next().expect("non-empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if code {
        out.push_str("</code>");
    }
    if bold {
        out.push_str("</strong>");
    }
    out
}

/// A measurement table as HTML, through the document model.
fn html_table(out: &mut String, t: &Table) {
    out.push_str(&document::html(&[t.block()]));
}

/// Strips an XML declaration so the SVG can sit inline in HTML.
fn inline_svg(svg: &str) -> &str {
    let s = svg.trim_start();
    match (s.starts_with("<?xml"), s.find("?>")) {
        (true, Some(end)) => s[end + 2..].trim_start(),
        _ => s,
    }
}

const CSS: &str = r#"
:root { color-scheme: light; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0 auto; max-width: 1280px; padding: 24px 32px 64px; color: #1d1d1f; background: #fff;
       line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.3rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 0.4rem; }
.description { color: #444; font-size: 1.05rem; margin-top: 0; }
.answer { font-size: 1.15rem; border-left: 4px solid #0072B2; padding: 0.4rem 0.8rem; background: #f4f8fb; }
.facts { border-collapse: collapse; font-size: 0.9rem; }
.facts th { text-align: left; padding: 2px 16px 2px 0; color: #555; font-weight: 600; white-space: nowrap; vertical-align: top; }
.facts td { padding: 2px 0; text-align: left; white-space: normal; border: 0; }
.verdict { background: #f6f8fa; border-left: 5px solid #0072B2; padding: 12px 20px; border-radius: 4px; }
.verdict.unfair { border-left-color: #D55E00; }
.headline { font-size: 1.1rem; margin: 0.2rem 0 0.6rem; }
.verdict ul { margin: 0.2rem 0 0.6rem; padding-left: 1.3rem; }
.verdict li { margin: 0.15rem 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85rem; font-variant-numeric: tabular-nums; }
thead th { background: #f0f0f0; text-align: right; padding: 4px 8px; border-bottom: 1px solid #ccc; }
tbody td { text-align: right; padding: 3px 8px; border-bottom: 1px solid #eee; white-space: nowrap; }
td.run, thead th:first-child { text-align: left; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.legend span.item { margin-right: 18px; white-space: nowrap; }
figure { margin: 1.2rem 0 2rem; }
figure svg { max-width: 100%; height: auto; border: 1px solid #e4e4e4; border-radius: 4px; }
figcaption { color: #444; font-size: 0.9rem; margin-top: 0.3rem; max-width: 75em; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.88em;
       background: #f0f0f0; padding: 0 3px; border-radius: 3px; }
.note { color: #555; font-size: 0.85rem; }
footer { margin-top: 3rem; color: #666; font-size: 0.85rem; }
"#;

/// `report.html`: one file, no network (inline CSS and SVG, no scripts).
fn html_figure(out: &mut String, p: &Plot) {
    let _ = writeln!(
        out,
        "<figure id=\"plot-{name}\" data-plot=\"{name}\">\n<h3>{title}</h3>\n{svg}\n<figcaption>{caption}</figcaption>\n</figure>",
        name = html_escape(&p.name),
        title = html_escape(&p.title),
        svg = inline_svg(&p.svg),
        caption = inline_html(&p.caption)
    );
}

pub fn render_html(report: &Report) -> String {
    let r = report.results;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>cqrs-bench report: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        html_escape(&r.scenario.name)
    );
    let _ = writeln!(
        out,
        "<h1>cqrs-bench report: {}</h1>\n<p class=\"description\">{}</p>",
        html_escape(&r.scenario.name),
        html_escape(&r.scenario.description)
    );
    let _ = writeln!(
        out,
        "<div class=\"decision\">\n{}</div>",
        document::html(&report.verdict.decision.document())
    );
    if let Some(a) = &report.verdict.answer {
        let _ = writeln!(
            out,
            "<h2 id=\"answer\">Answer</h2>\n<p class=\"answer\">{}</p>",
            inline_html(&a.sentence)
        );
        if let Some(p) = answer_plot(report) {
            html_figure(&mut out, p);
        }
    }
    out.push_str("<table class=\"facts\">\n");
    for (k, v) in facts(r) {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            html_escape(&k),
            inline_html(&v)
        );
    }
    out.push_str("</table>\n");

    let _ = writeln!(
        out,
        "<div class=\"verdict{}\">\n{}</div>",
        if report.verdict.fair { "" } else { " unfair" },
        document::html(&report.verdict.document())
    );

    out.push_str("<h2 id=\"summary\">Summary</h2>\n");
    html_table(&mut out, &summary_table(r));
    let _ = writeln!(out, "<p class=\"note\">{}</p>", html_escape(LATENCY_NOTE));
    out.push_str("<h2 id=\"harness\">Harness floor and load</h2>\n");
    match harness_table(r) {
        Some(t) => {
            html_table(&mut out, &t);
            let _ = writeln!(
                out,
                "<p class=\"note\">{}</p>",
                inline_html(&harness_note(r))
            );
        }
        None => {
            let _ = writeln!(
                out,
                "<p class=\"note\">{}</p>",
                html_escape(HARNESS_NOT_MEASURED)
            );
        }
    }
    if let Some(t) = lag_parts_table(r) {
        out.push_str("<h2 id=\"lag-parts\">Lag in parts (broker)</h2>\n");
        html_table(&mut out, &t);
        let _ = writeln!(out, "<p>{}</p>", html_escape(LAG_PARTS_NOTE));
    }
    if let Some(t) = search_table(r) {
        out.push_str("<h2 id=\"search\">Search index: freshness and skew</h2>\n");
        html_table(&mut out, &t);
        let _ = writeln!(out, "<p>{}</p>", html_escape(SEARCH_NOTE));
    }
    out.push_str("<h2 id=\"queries\">Read latency per query</h2>\n");
    html_table(&mut out, &query_table(r));
    out.push_str("<h2 id=\"storage\">Storage <span class=\"note\">(measured from the database, indexes included)</span></h2>\n");
    html_table(&mut out, &storage_table(r));
    if let Some(t) = refresh_table(r) {
        out.push_str("<h2 id=\"refreshes\">Materialized-view refreshes</h2>\n");
        html_table(&mut out, &t);
        let _ = writeln!(out, "<p class=\"note\">{}</p>", html_escape(REFRESH_NOTE));
    }
    if let Some(t) = event_store_table(r) {
        out.push_str("<h2 id=\"event-store\">Event store</h2>\n");
        html_table(&mut out, &t);
        let _ = writeln!(
            out,
            "<p class=\"note\">{}</p>",
            html_escape(EVENT_STORE_NOTE)
        );
    }

    out.push_str("<h2 id=\"plots\">Plots</h2>\n<p class=\"legend\">");
    for k in &r.scenario.backends {
        let _ = write!(
            out,
            "<span class=\"item\"><span class=\"swatch\" style=\"background:{}\"></span>{}</span>",
            backend_hex(*k),
            html_escape(k.name())
        );
    }
    out.push_str("— the same colour in every plot.</p>\n");
    for p in other_plots(report) {
        html_figure(&mut out, p);
    }
    let _ = writeln!(
        out,
        "<footer>Written by {} {} from <code>results.json</code>. Regenerate: \
         <code>cqrs-bench report results.json --out DIR</code>; compare with another run: \
         <code>cqrs-bench compare BASE.json results.json</code>.</footer>\n</body>\n</html>",
        html_escape(&r.tool.name),
        html_escape(&r.tool.version)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup() {
        assert_eq!(
            inline_html("**a** <b> `x<y`"),
            "<strong>a</strong> &lt;b&gt; <code>x&lt;y</code>"
        );
        assert_eq!(inline_html("**open"), "<strong>open</strong>");
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_ms(850.0), "850µs");
        assert_eq!(fmt_ms(12_345.0), "12.3ms");
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(4096), "4.0 KiB");
        assert_eq!(fmt_bytes(3 * 1024 * 1024), "3.00 MiB");
    }

    #[test]
    fn strips_xml_declaration() {
        assert_eq!(inline_svg("<?xml version=\"1.0\"?>\n<svg/>"), "<svg/>");
        assert_eq!(inline_svg("<svg/>"), "<svg/>");
    }
}
