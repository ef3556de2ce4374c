//! What the `event-sourced` backend's writes cost inside a command: rehydrating each stream
//! it touches (time, and events read after the snapshot, if any) and the append (the insert,
//! any snapshots and the commit). Recorded by the backend during the whole run, warm-up
//! included (like its concurrency counters), and summarized into `results.json`.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::latency::{duration_us, new_histogram, record_us, round_to, LatencyStats};

/// Highest event count per rehydration told apart (larger ones are clamped to it).
const MOST_EVENTS: u64 = 100_000_000;

/// A distribution of counts (events read per rehydration).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CountStats {
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl CountStats {
    fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        CountStats {
            mean: round_to(h.mean(), 1e3),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }
}

/// The summary in `results.json` (`BackendRun::event_store`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventStoreStats {
    /// The scenario's `[event_sourcing] snapshot_every` (0: no snapshots).
    pub snapshot_every: u32,
    /// Command attempts (first tries and retries after a conflict).
    pub attempts: u64,
    /// Streams loaded to decide a command.
    pub rehydrations: u64,
    /// Of those, how many started from a snapshot.
    pub from_snapshot: u64,
    /// Time to load one stream (snapshot read, tail read, fold).
    pub rehydration_time: LatencyStats,
    /// Events read and folded per rehydration (after the snapshot, if any).
    pub events_read: CountStats,
    /// Time of a successful attempt's append: the insert, any snapshots, the commit.
    pub append_time: LatencyStats,
    /// Snapshots stored.
    pub snapshots_written: u64,
}

struct Inner {
    attempts: u64,
    from_snapshot: u64,
    snapshots_written: u64,
    rehydration: Histogram<u64>,
    events: Histogram<u64>,
    append: Histogram<u64>,
}

/// Thread-safe recorder, one per backend.
pub struct EventStoreRecorder {
    snapshot_every: u32,
    inner: Mutex<Inner>,
}

impl EventStoreRecorder {
    pub fn new(snapshot_every: u32) -> Self {
        EventStoreRecorder {
            snapshot_every,
            inner: Mutex::new(Inner {
                attempts: 0,
                from_snapshot: 0,
                snapshots_written: 0,
                rehydration: new_histogram(),
                // 0 events is a valid sample (a fresh snapshot): lowest 1 still records 0.
                events: Histogram::new_with_bounds(1, MOST_EVENTS, 3)
                    .expect("constant histogram bounds are valid"),
                append: new_histogram(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the counters half-updated in a way that matters.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn attempt(&self) {
        self.lock().attempts += 1;
    }

    /// One stream loaded in `took`, folding `events_read` events, from a snapshot or not.
    pub fn rehydrated(&self, took: Duration, events_read: u64, from_snapshot: bool) {
        let mut g = self.lock();
        record_us(&mut g.rehydration, duration_us(took));
        g.events.saturating_record(events_read.min(MOST_EVENTS));
        g.from_snapshot += u64::from(from_snapshot);
    }

    /// One successful append in `took`, storing `snapshots` snapshots.
    pub fn appended(&self, took: Duration, snapshots: u64) {
        let mut g = self.lock();
        record_us(&mut g.append, duration_us(took));
        g.snapshots_written += snapshots;
    }

    pub fn stats(&self) -> EventStoreStats {
        let g = self.lock();
        EventStoreStats {
            snapshot_every: self.snapshot_every,
            attempts: g.attempts,
            rehydrations: g.rehydration.len(),
            from_snapshot: g.from_snapshot,
            rehydration_time: LatencyStats::from_histogram(&g.rehydration),
            events_read: CountStats::from_histogram(&g.events),
            append_time: LatencyStats::from_histogram(&g.append),
            snapshots_written: g.snapshots_written,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_what_was_recorded() {
        let r = EventStoreRecorder::new(10);
        assert_eq!(r.stats().rehydrations, 0);
        for n in 0..100u64 {
            r.attempt();
            r.rehydrated(Duration::from_micros(100 + n), n % 10, n % 2 == 0);
        }
        r.appended(Duration::from_micros(300), 1);
        r.appended(Duration::from_micros(500), 0);
        let s = r.stats();
        assert_eq!(s.snapshot_every, 10);
        assert_eq!(s.attempts, 100);
        assert_eq!(s.rehydrations, 100);
        assert_eq!(s.from_snapshot, 50);
        assert_eq!(s.events_read.max, 9);
        assert_eq!(s.events_read.p50, 4);
        assert!(
            (s.events_read.mean - 4.5).abs() < 1e-9,
            "{}",
            s.events_read.mean
        );
        assert_eq!(s.rehydration_time.count, 100);
        assert_eq!(s.rehydration_time.min_us, 100);
        assert_eq!(s.append_time.count, 2);
        assert_eq!(s.append_time.max_us, 500);
        assert_eq!(s.snapshots_written, 1);
    }
}
