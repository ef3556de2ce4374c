//! `merge`: the results of the N segments of one scale-out run added into the results of the
//! whole, after checking that they belong together (same scenario, seed and op stream; the
//! segments 1..N each once; the same runs; measured windows that overlap). Counts and
//! histograms add, interval by interval; percentiles are recomputed from the sums
//! (`metrics::merge`). What one process alone did for all (seeding, the projector, the
//! floor, storage) is taken from segment 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::metrics::merge::{merge_metrics, MergeMetricsError};
use crate::metrics::DriverCpu;
use crate::results::{BackendRun, MeasuredWindow, Merged, Outage, Rates, Results, SegmentInfo};

/// Why parts were not merged: which field differs, in which files.
#[derive(Debug, thiserror::Error)]
pub enum MergeRefusal {
    #[error("merge needs at least one results.json")]
    Nothing,
    #[error("{file}: not a segment of a scale-out run (no `segment`: run it with --segment I/N)")]
    NotASegment { file: String },
    #[error("{field} differs: {first} in {first_file}, {other} in {other_file}")]
    Differs {
        field: String,
        first: String,
        first_file: String,
        other: String,
        other_file: String,
    },
    #[error("segment {segment} appears twice: {first_file} and {other_file}")]
    Duplicate {
        segment: String,
        first_file: String,
        other_file: String,
    },
    #[error("segments missing: {missing} (have {have})")]
    Missing { missing: String, have: String },
    #[error(
        "measured windows do not overlap: {late_file} starts measuring at {late_from:.3} (Unix s), \
         after {early_file} stopped at {early_to:.3}"
    )]
    NoOverlap {
        late_file: String,
        late_from: f64,
        early_file: String,
        early_to: f64,
    },
    #[error("{file}: runs[{run}] has no measured_window (written by a tool without scale-out)")]
    NoWindow { file: String, run: usize },
    #[error("runs[{run}] ({label}): {source} (files: {files})")]
    Metrics {
        run: usize,
        label: String,
        files: String,
        #[source]
        source: MergeMetricsError,
    },
}

impl MergeRefusal {
    pub fn exit_code(&self) -> u8 {
        2
    }
}

/// One part: its file and what it holds.
pub struct Part {
    pub file: PathBuf,
    pub results: Results,
}

fn name(p: &Path) -> String {
    p.display().to_string()
}

/// Checks that `parts` are the segments 1..N of one run and adds them.
pub fn merge(mut parts: Vec<Part>) -> Result<Results, MergeRefusal> {
    if parts.is_empty() {
        return Err(MergeRefusal::Nothing);
    }
    let mut segments: Vec<SegmentInfo> = Vec::new();
    for p in &parts {
        match &p.results.segment {
            Some(s) => segments.push(s.clone()),
            None => {
                return Err(MergeRefusal::NotASegment {
                    file: name(&p.file),
                })
            }
        }
    }
    check_same(&parts)?;
    check_segments(&parts)?;
    parts.sort_by_key(|p| p.results.segment.as_ref().map(|s| s.index));
    let files: Vec<String> = parts.iter().map(|p| name(&p.file)).collect();
    let first = &parts[0].results;
    let mut runs = Vec::new();
    for i in 0..first.runs.len() {
        let of_run: Vec<(&Path, &BackendRun)> = parts
            .iter()
            .map(|p| (p.file.as_path(), &p.results.runs[i]))
            .collect();
        runs.push(merge_run(i, &of_run, &files)?);
    }
    let count = segments[0].count;
    Ok(Results {
        format_version: first.format_version,
        tool: first.tool.clone(),
        scenario: first.scenario.clone(),
        seed: first.seed,
        stream_hash: first.stream_hash.clone(),
        started_at: parts
            .iter()
            .map(|p| p.results.started_at.clone())
            .min()
            .unwrap_or_default(),
        environment: first.environment.clone(),
        runs,
        segment: None,
        interrupted: false,
        merged: Some(Merged {
            segments: count,
            files,
        }),
    })
}

/// The same scenario, seed, stream, segment count and runs in every part.
fn check_same(parts: &[Part]) -> Result<(), MergeRefusal> {
    let a = &parts[0];
    let differs = |field: &str, first: String, b: &Part, other: String| MergeRefusal::Differs {
        field: field.to_string(),
        first,
        first_file: name(&a.file),
        other,
        other_file: name(&b.file),
    };
    for b in &parts[1..] {
        let (ra, rb) = (&a.results, &b.results);
        if ra.format_version != rb.format_version {
            return Err(differs(
                "format_version",
                ra.format_version.to_string(),
                b,
                rb.format_version.to_string(),
            ));
        }
        if ra.scenario.name != rb.scenario.name {
            return Err(differs(
                "scenario.name",
                ra.scenario.name.clone(),
                b,
                rb.scenario.name.clone(),
            ));
        }
        if ra.seed != rb.seed {
            return Err(differs("seed", ra.seed.to_string(), b, rb.seed.to_string()));
        }
        if ra.stream_hash != rb.stream_hash {
            return Err(differs(
                "stream_hash",
                ra.stream_hash.clone(),
                b,
                rb.stream_hash.clone(),
            ));
        }
        if let Some(diff) = super::compare::scenario_diffs(ra, rb).into_iter().next() {
            // "scenario.KEY: A vs B"
            let (field, values) = diff.split_once(": ").unwrap_or((&diff, ""));
            let (x, y) = values.split_once(" vs ").unwrap_or((values, ""));
            return Err(differs(field, x.to_string(), b, y.to_string()));
        }
        let (sa, sb) = (ra.segment.as_ref(), rb.segment.as_ref());
        let count = |s: Option<&SegmentInfo>| s.map(|s| s.count).unwrap_or(0);
        if count(sa) != count(sb) {
            return Err(differs(
                "segment.count",
                count(sa).to_string(),
                b,
                count(sb).to_string(),
            ));
        }
        let start = |s: Option<&SegmentInfo>| {
            s.and_then(|s| s.start_at.clone())
                .unwrap_or_else(|| "none".into())
        };
        if start(sa) != start(sb) {
            return Err(differs("segment.start_at", start(sa), b, start(sb)));
        }
        let labels = |r: &Results| r.runs.iter().map(|r| r.label()).collect::<Vec<_>>();
        if labels(ra) != labels(rb) {
            return Err(differs(
                "runs",
                labels(ra).join(", "),
                b,
                labels(rb).join(", "),
            ));
        }
    }
    Ok(())
}

/// Segments 1..N, each once; measured windows that overlap.
fn check_segments(parts: &[Part]) -> Result<(), MergeRefusal> {
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    let mut count = 0;
    for p in parts {
        let s = p
            .results
            .segment
            .as_ref()
            .expect("checked: every part is a segment");
        count = s.count;
        if let Some(earlier) = seen.insert(s.index, &p.file) {
            return Err(MergeRefusal::Duplicate {
                segment: format!("{}/{}", s.index, s.count),
                first_file: name(earlier),
                other_file: name(&p.file),
            });
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(MergeRefusal::Missing {
            missing: missing.join(", "),
            have: seen
                .iter()
                .map(|(i, f)| format!("{i}/{count} in {}", name(f)))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    for run in 0..parts[0].results.runs.len() {
        let mut windows = Vec::new();
        for p in parts {
            let w = p.results.runs[run]
                .measured_window
                .ok_or_else(|| MergeRefusal::NoWindow {
                    file: name(&p.file),
                    run,
                })?;
            windows.push((w, &p.file));
        }
        let late = windows
            .iter()
            .max_by(|a, b| a.0.from_unix_s.total_cmp(&b.0.from_unix_s))
            .expect("at least one part");
        let early = windows
            .iter()
            .min_by(|a, b| a.0.to_unix_s.total_cmp(&b.0.to_unix_s))
            .expect("at least one part");
        if late.0.from_unix_s >= early.0.to_unix_s {
            return Err(MergeRefusal::NoOverlap {
                late_file: name(late.1),
                late_from: late.0.from_unix_s,
                early_file: name(early.1),
                early_to: early.0.to_unix_s,
            });
        }
    }
    Ok(())
}

/// Run `i` of every part (segment 1 first) added into one.
fn merge_run(
    i: usize,
    of_run: &[(&Path, &BackendRun)],
    files: &[String],
) -> Result<BackendRun, MergeRefusal> {
    let (_, first) = of_run[0];
    let metrics = merge_metrics(&of_run.iter().map(|(_, r)| &r.metrics).collect::<Vec<_>>())
        .map_err(|source| MergeRefusal::Metrics {
            run: i,
            label: first.label(),
            files: files.join(", "),
            source,
        })?;
    let sum_target = |get: fn(&Rates) -> Option<f64>| {
        of_run
            .iter()
            .map(|(_, r)| get(&r.rates))
            .sum::<Option<f64>>()
    };
    let rates = Rates::achieved(
        sum_target(|r| r.write_target),
        sum_target(|r| r.read_target),
        &metrics,
    );
    let window = of_run
        .iter()
        .filter_map(|(_, r)| r.measured_window)
        .reduce(|a, b| MeasuredWindow {
            from_unix_s: a.from_unix_s.max(b.from_unix_s),
            to_unix_s: a.to_unix_s.min(b.to_unix_s),
        });
    let mut concurrency: BTreeMap<_, crate::backend::ConcurrencyCounts> = BTreeMap::new();
    for (_, r) in of_run {
        for c in &r.concurrency {
            let e = concurrency
                .entry(c.command)
                .or_insert(crate::backend::ConcurrencyCounts {
                    conflicts: 0,
                    retries: 0,
                    gave_up: 0,
                    ..*c
                });
            e.conflicts += c.conflicts;
            e.retries += c.retries;
            e.gave_up += c.gave_up;
        }
    }
    Ok(BackendRun {
        backend: first.backend,
        sweep_point: first.sweep_point.clone(),
        rates,
        outage: Outage::from_metrics(&metrics),
        metrics,
        floor: first.floor.clone(),
        cpu: sum_cpu(of_run.iter().filter_map(|(_, r)| r.cpu.as_ref())),
        // Segment 1 seeded, unless a --seed-only run did: then no part did.
        seed: first.seed.clone(),
        // A single segment verified its database; with several, none could.
        verify: if of_run.len() == 1 {
            first.verify.clone()
        } else {
            None
        },
        projector: first.projector.clone(),
        storage: first.storage.clone(),
        kept_database: first.kept_database.clone(),
        concurrency: concurrency.into_values().collect(),
        refreshes: first.refreshes.clone(),
        event_store: first.event_store.clone(),
        lag_parts: first.lag_parts.clone(),
        read_store: first.read_store.clone(),
        rewrite_reads: first.rewrite_reads.clone(),
        measured_window: window,
    })
}

/// The processes' CPU together, per op of them all.
fn sum_cpu<'a>(parts: impl Iterator<Item = &'a DriverCpu>) -> Option<DriverCpu> {
    let mut total: Option<DriverCpu> = None;
    for c in parts {
        let t = total.get_or_insert_with(DriverCpu::default);
        t.ops += c.ops;
        t.pacer_seconds += c.pacer_seconds;
        t.runtime_seconds += c.runtime_seconds;
        t.database_seconds += c.database_seconds;
    }
    total.map(|mut t| {
        let per_op = |s: f64| {
            if t.ops > 0 {
                (s / t.ops as f64 * 1e6 * 1e3).round() / 1e3
            } else {
                0.0
            }
        };
        t.driver_us_per_op = per_op(t.pacer_seconds + t.runtime_seconds);
        t.pacer_us_per_op = per_op(t.pacer_seconds);
        t.process_us_per_op = per_op(t.pacer_seconds + t.runtime_seconds + t.database_seconds);
        t
    })
}
