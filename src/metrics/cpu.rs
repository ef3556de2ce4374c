//! CPU time of the tool's own threads, so a run can say what the driver itself costs per op
//! (the database shares the machine: a driver that spins takes cores from it).
//!
//! Read from `/proc/self/task/*/schedstat` (nanoseconds on CPU) and grouped by thread name;
//! on systems without it the figures are absent, never guessed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::latency::round_to;

/// Name of the pacer's thread (see `workload::pacer`).
pub const PACER_THREAD: &str = "cqrs-pacer";
/// Prefix of the threads sqlx runs SQLite on: the embedded database's own work.
const SQLITE_THREAD_PREFIX: &str = "sqlx-sqlite";

/// Which part of the tool a thread does the work of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Pacer,
    /// The embedded database engine (SQLite on sqlx's worker threads).
    Database,
    /// Everything else: the async runtime (driver workers, the client side of the database
    /// protocol, the in-process projector) and the main thread.
    Runtime,
}

fn part_of(name: &str) -> Part {
    if name == PACER_THREAD {
        Part::Pacer
    } else if name.starts_with(SQLITE_THREAD_PREFIX) {
        Part::Database
    } else {
        Part::Runtime
    }
}

/// CPU nanoseconds per live thread at one moment.
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot {
    threads: BTreeMap<u64, (Part, u64)>,
    available: bool,
}

impl CpuSnapshot {
    /// The CPU time of every thread of this process now.
    pub fn take() -> Self {
        let mut snap = CpuSnapshot::default();
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return snap;
        };
        for entry in dir.flatten() {
            let Some(tid) = entry
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let Some(ns) = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            else {
                continue;
            };
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            snap.threads.insert(tid, (part_of(name.trim()), ns));
            snap.available = true;
        }
        snap
    }

    /// CPU used between `self` and the later snapshot `end`, for `ops` ops started in between.
    /// Threads that started in between count from zero; threads that ended are lost (their
    /// time is not in `end`), so the figures are a lower bound when threads come and go.
    pub fn until(&self, end: &CpuSnapshot, ops: u64) -> Option<DriverCpu> {
        if !(self.available && end.available) {
            return None;
        }
        let mut by_part: BTreeMap<Part, u64> = BTreeMap::new();
        for (tid, (part, ns)) in &end.threads {
            let before = self.threads.get(tid).map_or(0, |(_, ns)| *ns);
            *by_part.entry(*part).or_default() += ns.saturating_sub(before);
        }
        let secs = |p: Part| by_part.get(&p).copied().unwrap_or(0) as f64 / 1e9;
        let (pacer, runtime, database) =
            (secs(Part::Pacer), secs(Part::Runtime), secs(Part::Database));
        let per_op = |s: f64| {
            if ops > 0 {
                round_to(s * 1e6 / ops as f64, 1e3)
            } else {
                0.0
            }
        };
        Some(DriverCpu {
            ops,
            pacer_seconds: round_to(pacer, 1e6),
            runtime_seconds: round_to(runtime, 1e6),
            database_seconds: round_to(database, 1e6),
            driver_us_per_op: per_op(pacer + runtime),
            pacer_us_per_op: per_op(pacer),
            process_us_per_op: per_op(pacer + runtime + database),
        })
    }
}

/// CPU nanoseconds a local PostgreSQL server process (`pid`, from `pg_backend_pid()`) has
/// used so far, from `/proc/<pid>/schedstat`; `None` when the server is not on this machine
/// (no such process, or one that is not `postgres`).
pub fn server_process_ns(pid: u32) -> Option<u64> {
    let dir = std::path::Path::new("/proc").join(pid.to_string());
    let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
    if comm.trim() != "postgres" {
        return None;
    }
    std::fs::read_to_string(dir.join("schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time of the tool's threads over a stretch of load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriverCpu {
    /// Writes and reads done in the stretch (read-your-writes probes not counted).
    pub ops: u64,
    /// The pacer thread (the high-resolution timer that starts open-loop ops).
    pub pacer_seconds: f64,
    /// The async runtime's threads: driver workers, the client side of the database protocol,
    /// the in-process projector (`cqrs-async`), the progress display.
    pub runtime_seconds: f64,
    /// sqlx's SQLite threads: the embedded database's own work (0 on PostgreSQL, whose work
    /// is in the server's processes).
    pub database_seconds: f64,
    /// (pacer + runtime) per op, µs: what the harness and the client library cost per op.
    pub driver_us_per_op: f64,
    /// The pacer alone per op, µs.
    pub pacer_us_per_op: f64,
    /// Every thread of the tool per op, µs (on SQLite this includes the database).
    pub process_us_per_op: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_grouped_by_name() {
        assert_eq!(part_of(PACER_THREAD), Part::Pacer);
        assert_eq!(part_of("sqlx-sqlite-wor"), Part::Database);
        assert_eq!(part_of("tokio-runtime-w"), Part::Runtime);
        assert_eq!(part_of("cqrs-bench"), Part::Runtime);
    }

    #[test]
    fn cpu_of_a_busy_stretch_is_seen() {
        let before = CpuSnapshot::take();
        if !before.available {
            // As tests/common's `skip`: where services are required (CI), a skip fails.
            let required = std::env::var("CQRS_BENCH_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
                || std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !required,
                "no /proc/self/task here, and CQRS_BENCH_REQUIRE_SERVICES=1"
            );
            eprintln!("SKIPPED: no /proc/self/task here");
            return;
        }
        // Burn some CPU on this thread (a runtime-group thread by name).
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let cpu = before.until(&CpuSnapshot::take(), 1000).expect("figures");
        assert!(cpu.runtime_seconds > 0.0, "{cpu:?}");
        assert!(cpu.driver_us_per_op > 0.0, "{cpu:?}");
        assert!(cpu.process_us_per_op >= cpu.driver_us_per_op);
    }
}
