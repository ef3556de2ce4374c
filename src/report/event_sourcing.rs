//! The event-sourced backend's figures, computed from a run's results (displayed by the
//! report's event-store table and the verdict): what its appends and rehydrations cost, how
//! often optimistic concurrency lost a race, how big the store grew, and how its writes
//! compare with `cqrs-async`'s, which publishes the same events but keeps normalized state.

use crate::backend::{registry, BackendKind};
use crate::metrics::MetricKey;
use crate::results::BackendRun;

/// One event-sourced run's costs.
#[derive(Debug, Clone, PartialEq)]
pub struct EsFigures {
    pub snapshot_every: u32,
    pub append_p50_us: u64,
    pub append_p99_us: u64,
    pub rehydration_p50_us: u64,
    pub rehydration_p99_us: u64,
    pub events_read_p50: u64,
    pub events_read_p99: u64,
    pub events_read_max: u64,
    /// Share of rehydrations that started from a snapshot (0 when none ran).
    pub from_snapshot_share: f64,
    /// Version conflicts per command attempt (0 when no attempt ran).
    pub conflict_rate: f64,
    pub conflicts: u64,
    pub gave_up: u64,
    /// Bytes of the event store (events and snapshots) with the projector's bookkeeping,
    /// when the engine could tell.
    pub store_bytes: Option<u64>,
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The figures of a run that recorded event-store costs; `None` for other backends.
pub fn figures(run: &BackendRun) -> Option<EsFigures> {
    let s = run.event_store.as_ref()?;
    let conflicts = run.concurrency.iter().map(|c| c.conflicts).sum();
    Some(EsFigures {
        snapshot_every: s.snapshot_every,
        append_p50_us: s.append_time.p50_us,
        append_p99_us: s.append_time.p99_us,
        rehydration_p50_us: s.rehydration_time.p50_us,
        rehydration_p99_us: s.rehydration_time.p99_us,
        events_read_p50: s.events_read.p50,
        events_read_p99: s.events_read.p99,
        events_read_max: s.events_read.max,
        from_snapshot_share: share(s.from_snapshot, s.rehydrations),
        conflict_rate: share(conflicts, s.attempts),
        conflicts,
        gave_up: run.concurrency.iter().map(|c| c.gave_up).sum(),
        store_bytes: run.storage.as_ref().map(|st| st.event_log_bytes),
    })
}

/// An event-sourced run beside a `cqrs-async` run at the same read level.
#[derive(Debug, Clone, PartialEq)]
pub struct EsVersusAsync {
    pub es: BackendKind,
    /// What its registry entry says it is measured against (cqrs-async).
    pub against: BackendKind,
    pub figures: EsFigures,
    /// Command latency (from intended start) of all writes, µs.
    pub es_write_p50_us: u64,
    pub es_write_p99_us: u64,
    pub async_write_p50_us: u64,
    pub async_write_p99_us: u64,
    /// event-sourced / cqrs-async (1 when the latter is 0).
    pub p50_ratio: f64,
    pub p99_ratio: f64,
    /// Everything each keeps on disk (write tables, read models, log or store), when both
    /// engines could tell.
    pub es_total_bytes: Option<u64>,
    pub async_total_bytes: Option<u64>,
    /// cqrs-async's write model (normalized tables) and outbox, the part event sourcing
    /// replaces with its store.
    pub async_write_and_log_bytes: Option<u64>,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// The comparison, when `runs` (one read level) hold an event-sourced run with recorded costs
/// and a run of what its registry entry measures it against (`cqrs-async`), both with write
/// latencies.
pub fn versus_async(runs: &[&BackendRun]) -> Option<EsVersusAsync> {
    let es = runs.iter().find(|r| r.event_store.is_some())?;
    let against = registry::entry(es.backend).measured_against?;
    let asy = runs.iter().find(|r| r.backend == against)?;
    let w = |r: &BackendRun| {
        r.metrics
            .op(MetricKey::Writes)
            .filter(|o| o.count > 0)
            .cloned()
    };
    let (ew, aw) = (w(es)?, w(asy)?);
    let total = |r: &BackendRun| {
        r.storage
            .as_ref()
            .map(|s| s.write_tables_bytes + s.read_tables_bytes + s.event_log_bytes)
    };
    Some(EsVersusAsync {
        es: es.backend,
        against,
        figures: figures(es)?,
        es_write_p50_us: ew.latency.p50_us,
        es_write_p99_us: ew.latency.p99_us,
        async_write_p50_us: aw.latency.p50_us,
        async_write_p99_us: aw.latency.p99_us,
        p50_ratio: ratio(ew.latency.p50_us, aw.latency.p50_us),
        p99_ratio: ratio(ew.latency.p99_us, aw.latency.p99_us),
        es_total_bytes: total(es),
        async_total_bytes: total(asy),
        async_write_and_log_bytes: asy
            .storage
            .as_ref()
            .map(|s| s.write_tables_bytes + s.event_log_bytes),
    })
}

#[cfg(test)]
use serde_json::{json, Value};

/// The committed sample run (normalized, cqrs-sync, cqrs-async) plus an event-sourced run
/// made from its cqrs-async run with recorded costs: writes at twice cqrs-async's p50 and
/// p99, 30 conflicts in 1,000 attempts, 2 give-ups, snapshots every 10 versions.
#[cfg(test)]
pub(crate) fn sample_with_event_sourced() -> crate::results::Results {
    let mut v: Value =
        serde_json::from_str(include_str!("../../reports/sample/results.json")).unwrap();
    let runs = v["runs"].as_array_mut().unwrap();
    let mut es = runs
        .iter()
        .find(|r| r["backend"] == "cqrs-async")
        .unwrap()
        .clone();
    es["backend"] = json!("event-sourced");
    let lat = &mut es["metrics"]["ops"]["write"]["latency"];
    assert_eq!(
        (lat["p50_us"].clone(), lat["p99_us"].clone()),
        (json!(687), json!(11023))
    );
    lat["p50_us"] = json!(1374);
    lat["p99_us"] = json!(22046);
    es["concurrency"] = json!([
        { "command": "place_order", "conflicts": 26, "retries": 24, "gave_up": 2 },
        { "command": "restock", "conflicts": 4, "retries": 4, "gave_up": 0 }
    ]);
    let latency = |p50: u64, p99: u64| {
        json!({ "count": 100, "min_us": 1, "mean_us": 1.0, "p50_us": p50, "p90_us": p99,
                "p99_us": p99, "p999_us": p99, "p9999_us": p99, "max_us": p99,
                "spectrum": [] })
    };
    es["event_store"] = json!({
        "snapshot_every": 10, "attempts": 1000, "rehydrations": 2000, "from_snapshot": 500,
        "rehydration_time": latency(120, 900),
        "events_read": { "mean": 3.5, "p50": 3, "p99": 9, "max": 40 },
        "append_time": latency(400, 5000),
        "snapshots_written": 150
    });
    es["storage"] = json!({
        "write_tables_bytes": 0, "read_tables_bytes": 487424, "event_log_bytes": 4194304
    });
    runs.push(es);
    serde_json::from_value(v).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_a_recorded_run() {
        let r = sample_with_event_sourced();
        let es = r.runs.iter().find(|r| r.event_store.is_some()).unwrap();
        let f = figures(es).unwrap();
        assert_eq!(f.conflicts, 30);
        assert_eq!(f.gave_up, 2);
        assert!((f.conflict_rate - 0.03).abs() < 1e-12);
        assert!((f.from_snapshot_share - 0.25).abs() < 1e-12);
        assert_eq!((f.append_p50_us, f.append_p99_us), (400, 5000));
        assert_eq!(f.events_read_p99, 9);
        assert_eq!(f.store_bytes, Some(4194304));
        assert!(r
            .runs
            .iter()
            .filter(|r| r.event_store.is_none())
            .all(|r| figures(r).is_none()));
        let refs: Vec<&BackendRun> = r.runs.iter().collect();
        let v = versus_async(&refs).unwrap();
        assert!((v.p50_ratio - 2.0).abs() < 1e-12 && (v.p99_ratio - 2.0).abs() < 1e-12);
        assert_eq!(v.async_total_bytes, Some(1314816 + 487424 + 3485696));
        assert_eq!(v.es_total_bytes, Some(487424 + 4194304));
        // Without cqrs-async there is nothing to compare with.
        let no_async: Vec<&BackendRun> = r
            .runs
            .iter()
            .filter(|r| r.backend.name() != "cqrs-async")
            .collect();
        assert!(versus_async(&no_async).is_none());
    }
}
