//! The summary table printed after a run: one line per backend and sweep point, marked when
//! the system saturated or the driver fell behind, then the harness's floor and the tool's CPU
//! per op for each run, then read latency per query.

use std::fmt::Write;

use crate::format::fmt_us;
use crate::metrics::{LatencyStats, MetricKey};
use crate::results::{BackendRun, Results};

fn rate(target: Option<f64>, achieved: f64) -> String {
    crate::format::rate(target, achieved, "/")
}

/// p50, p99, p99.9 and max; `-` for each when nothing was measured (not `0µs`).
fn lat(l: &LatencyStats) -> String {
    if l.count == 0 {
        return format!("{:>8} {:>8} {:>8} {:>8}", "-", "-", "-", "-");
    }
    format!(
        "{:>8} {:>8} {:>8} {:>8}",
        fmt_us(l.p50_us),
        fmt_us(l.p99_us),
        fmt_us(l.p999_us),
        fmt_us(l.max_us)
    )
}

/// `  (saturated; 12 ops never started)`, `  (driver behind — invalid)`, or nothing.
fn load_mark(run: &BackendRun) -> String {
    let m = &run.metrics;
    let mut marks = Vec::new();
    if m.driver_behind {
        marks.push("driver behind — invalid".to_string());
    }
    if m.saturated {
        marks.push("saturated".to_string());
    }
    if m.unstarted.total() > 0 {
        marks.push(format!("{} ops never started", m.unstarted.total()));
    }
    if marks.is_empty() {
        String::new()
    } else {
        format!("  ({})", marks.join("; "))
    }
}

fn opt_us(l: Option<&LatencyStats>, v: fn(&LatencyStats) -> u64) -> String {
    l.filter(|l| l.count > 0)
        .map(|l| fmt_us(v(l)))
        .unwrap_or_else(|| "-".into())
}

fn cpu_us(us: Option<f64>) -> String {
    us.map(crate::format::fmt_ms).unwrap_or_else(|| "-".into())
}

/// Per run: the harness's floor (the run's lanes driving `SELECT 1`), how late free workers
/// started ops, the tool's CPU per op, and how far the system fell behind.
fn harness_block(out: &mut String, results: &Results) {
    if results
        .runs
        .iter()
        .all(|r| r.floor.is_none() && r.cpu.is_none())
    {
        let _ = writeln!(
            out,
            "\nharness floor: not measured (results written by an older version)"
        );
        return;
    }
    let statement = results
        .runs
        .iter()
        .find_map(|r| r.floor.as_ref().map(|f| f.statement.clone()))
        .unwrap_or_else(|| "SELECT 1".into());
    let _ = writeln!(
        out,
        "\nharness floor: `{statement}` at each run's rates and workers (latency from intended start); \
         smaller differences are below the harness's resolution"
    );
    let _ = writeln!(
        out,
        "{:<28} │ {:>9} {:>8} │ {:>9} {:>8} │ {:>8} │ {:>8} {:>8} │ {:>9} {:>7} {:>9}",
        "backend",
        "floor w50",
        "w99",
        "floor r50",
        "r99",
        "disp p99",
        "cpu/op",
        "floor",
        "qwait p99",
        "waited",
        "unstarted"
    );
    for run in &results.runs {
        let f = run.floor.as_ref();
        let m = &run.metrics;
        let _ = writeln!(
            out,
            "{:<28} │ {:>9} {:>8} │ {:>9} {:>8} │ {:>8} │ {:>8} {:>8} │ {:>9} {:>7} {:>9}",
            run.label(),
            opt_us(f.and_then(|f| f.write.as_ref()), |l| l.p50_us),
            opt_us(f.and_then(|f| f.write.as_ref()), |l| l.p99_us),
            opt_us(f.and_then(|f| f.read.as_ref()), |l| l.p50_us),
            opt_us(f.and_then(|f| f.read.as_ref()), |l| l.p99_us),
            opt_us(Some(&m.dispatch), |l| l.p99_us),
            cpu_us(run.cpu.as_ref().map(|c| c.driver_us_per_op)),
            cpu_us(f.and_then(|f| f.cpu.as_ref()).map(|c| c.driver_us_per_op)),
            opt_us(Some(&m.queue_wait), |l| l.p99_us),
            m.waited_for_worker,
            m.unstarted.total()
        );
    }
    let _ = writeln!(
        out,
        "disp: how late free workers started ops (the driver's own delay); cpu/op: CPU of the tool's \
         threads (pacer + runtime) per op during the load and during the floor; qwait: time ops \
         waited for a busy worker (the system falling behind)"
    );
}

/// The whole table as text.
pub fn summary(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario {} · seed {} · stream {} · {} {}",
        results.scenario.name,
        results.seed,
        results.stream_hash,
        results.environment.engine,
        results.environment.server_version
    );
    let _ = writeln!(
        out,
        "\n{:<28} {:>11} {:>11} │ {:>8} {:>8} {:>8} {:>8} │ {:>7} {:>6} │ {:>8} {:>8} {:>8} │ {:>6} │ verify",
        "backend", "writes/s", "reads/s", "w p50", "w p99", "w p99.9", "w max", "errors", "rej", "lag p50", "lag p99", "lag max", "ryw"
    );
    for run in &results.runs {
        let m = &run.metrics;
        let writes = m.op(MetricKey::Writes).cloned().unwrap_or_default();
        let errors = m.errors();
        let lag = if m.lag.count > 0 {
            format!(
                "{:>8} {:>8} {:>8}",
                fmt_us(m.lag.p50_us),
                fmt_us(m.lag.p99_us),
                fmt_us(m.lag.max_us)
            )
        } else {
            format!("{:>8} {:>8} {:>8}", "-", "-", "-")
        };
        let ryw = if m.ryw.probes > 0 {
            format!("{:.1}%", m.ryw.miss_share * 100.0)
        } else {
            "-".into()
        };
        let verify = match &run.verify {
            Some(v) if v.ok() => "ok".to_string(),
            Some(v) => format!("{} MISMATCHES", v.mismatches),
            None => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<28} {:>11} {:>11} │ {} │ {:>7} {:>6} │ {} │ {:>6} │ {}{}",
            run.label(),
            rate(run.rates.write_target, run.rates.write_achieved),
            rate(run.rates.read_target, run.rates.read_achieved),
            lat(&writes.latency),
            errors,
            writes.rejected,
            lag,
            ryw,
            verify,
            load_mark(run)
        );
    }
    harness_block(&mut out, results);
    let _ = writeln!(out, "\nread latency p50 / p99 per query");
    let _ = write!(out, "{:<28}", "backend");
    let queries = crate::metrics::queries_run(results.runs.iter().map(|r| &r.metrics));
    for q in &queries {
        let _ = write!(out, " │ {:^19}", q.as_str());
    }
    let _ = writeln!(out);
    for run in &results.runs {
        let _ = write!(out, "{:<28}", run.label());
        for q in &queries {
            match run.metrics.op(MetricKey::read_named(*q)) {
                Some(o) if o.count > 0 => {
                    let _ = write!(
                        out,
                        " │ {:>9} {:>9}",
                        fmt_us(o.latency.p50_us),
                        fmt_us(o.latency.p99_us)
                    );
                }
                _ => {
                    let _ = write!(out, " │ {:^19}", "-");
                }
            }
        }
        let _ = writeln!(out);
    }
    for run in &results.runs {
        if let Some(o) = &run.outage {
            let _ = writeln!(
                out,
                "\n{}: {} ops failed with database errors between {:.0}s and {:.0}s of the measured time",
                run.label(),
                o.failed_ops,
                o.from_s,
                o.to_s
            );
        }
    }
    let _ = writeln!(
        out,
        "\nlatency is measured from each op's intended start (open loop); rates are achieved/target"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_side_that_sent_nothing_shows_no_figures() {
        // `--write-rate 0`: no target, nothing achieved, no latencies.
        assert_eq!(rate(None, 0.0), "none");
        let none = lat(&LatencyStats::default());
        assert!(!none.contains("0µs"), "{none}");
        assert_eq!(none.split_whitespace().collect::<Vec<_>>(), ["-"; 4]);
        let some = lat(&LatencyStats {
            count: 3,
            p50_us: 850,
            p99_us: 900,
            p999_us: 900,
            max_us: 900,
            ..LatencyStats::default()
        });
        assert!(some.contains("850µs"), "{some}");
    }
}
