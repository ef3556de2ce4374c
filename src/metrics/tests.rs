use std::time::{Duration, Instant};

use super::*;

const PLACE: OpKey = OpKey::Write(OpName::fixed("place_order"));
const PAGE: OpKey = OpKey::Read(OpName::fixed("product_page"));

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Records an op that started on time and took `took`.
fn op(r: &mut Recorder, key: OpKey, intended: Instant, took: Duration, outcome: Outcome) {
    r.record_op(key, intended, intended, intended + took, outcome);
}

fn all_keys() -> Vec<OpKey> {
    let mut keys: Vec<OpKey> = CommandKind::ALL
        .iter()
        .map(|k| OpKey::Write((*k).into()))
        .collect();
    keys.extend(QueryKind::ALL.iter().map(|k| OpKey::Read((*k).into())));
    keys
}

#[test]
fn op_key_names() {
    assert_eq!(PLACE.name(), "write.place_order");
    assert_eq!(PAGE.name(), "read.product_page");
    assert!(PLACE.is_write() && !PAGE.is_write());
}

#[test]
fn metric_keys_are_the_results_json_strings() {
    let mut keys = vec![MetricKey::Writes, MetricKey::Reads];
    keys.extend(all_keys().into_iter().map(MetricKey::Op));
    for key in keys {
        assert_eq!(key.to_string().parse::<MetricKey>(), Ok(key), "{key}");
    }
    assert_eq!(MetricKey::Writes.to_string(), "write");
    assert_eq!(
        MetricKey::read(QueryKind::Search).to_string(),
        "read.search"
    );
    assert_eq!(MetricKey::Op(PLACE).to_string(), PLACE.name());
    // Any op name parses (a pack's too); whether the workload has it is the scenario's check.
    assert_eq!(
        "write.refund".parse::<MetricKey>(),
        Ok(MetricKey::Op(OpKey::Write(OpName::intern("refund"))))
    );
    assert!("write.re-fund".parse::<MetricKey>().is_err());
    assert!("read.".parse::<MetricKey>().is_err());
    assert!("lag".parse::<MetricKey>().is_err());
}

/// 100 ops/s for 10 s; the op at t = 3 s takes 500 ms and the (closed-loop-blocked) driver
/// starts the following ops late. Latency from the intended start must show the stall;
/// service time must not.
#[test]
fn stall_shows_in_latency_not_in_service_time() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, Duration::ZERO, Duration::from_secs(1));
    let mut prev_finish = t0;
    for i in 0..1000u64 {
        let intended = t0 + ms(10 * i);
        let started = intended.max(prev_finish);
        let service = if i == 300 { ms(500) } else { ms(2) };
        let finished = started + service;
        r.record_op(PLACE, intended, started, finished, Outcome::Ok);
        // One worker, busy until it finished the previous op: the wait is for the worker.
        r.record_start(intended, started, started);
        prev_finish = finished;
    }
    let m = r.finish(t0 + Duration::from_secs(10));
    let s = &m.ops["write.place_order"];
    assert_eq!(s.count, 1000);
    assert!(
        s.latency.p999_us >= 450_000,
        "p99.9 = {}",
        s.latency.p999_us
    );
    assert!(s.latency.max_us >= 500_000);
    // Dozens of ops above 100 ms: the value at some percentile <= 97 already exceeds
    // 100 ms, so more than 3 % (30 ops) lie above it.
    let first_above = s
        .latency
        .spectrum
        .iter()
        .find(|(_, v)| *v > 100_000)
        .map(|(p, _)| *p)
        .expect("some latency above 100 ms");
    assert!(
        first_above <= 97.0,
        "first percentile above 100 ms: {first_above}"
    );
    assert!(s.latency.p99_us > 100_000);

    // Service time only saw the single slow op.
    assert!(
        s.service.p999_us < 50_000,
        "service p99.9 = {}",
        s.service.p999_us
    );
    assert!(s.service.p99_us < 5_000);
    assert!(s.service.max_us >= 500_000);

    // The stall is in interval 3 and only there.
    assert_eq!(m.intervals.len(), 10);
    let iv = &m.intervals[3];
    assert!(iv.write_p99_us >= 400_000, "{iv:?}");
    assert!(iv.write_max_us >= 500_000, "{iv:?}");
    for (i, iv) in m.intervals.iter().enumerate() {
        assert_eq!(iv.writes, 100, "interval {i}");
        if i != 3 {
            assert!(iv.write_max_us < 5_000, "interval {i}: {iv:?}");
        }
    }

    // The system fell behind (max lateness 490 ms, all of it waiting for the busy worker);
    // the driver did not.
    assert!(m.lateness.max_us >= 480_000);
    assert!(m.queue_wait.max_us >= 480_000);
    assert!(m.waited_for_worker >= 49, "{}", m.waited_for_worker);
    assert!(m.saturated);
    assert!(!m.driver_behind);
    assert_eq!(m.dispatch.max_us, 1);
    assert!((s.ops_per_sec - 100.0).abs() < 1e-9);
}

#[test]
fn warmup_is_excluded_but_counted() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, Duration::from_secs(2), Duration::from_secs(1));
    // 10 ops/s over 5 s; warm-up ops are slow and some fail.
    for i in 0..50u64 {
        let intended = t0 + ms(100 * i);
        let warm = i < 20;
        let outcome = if warm && i % 5 == 0 {
            Outcome::Error("db_error")
        } else {
            Outcome::Ok
        };
        let took = if warm { ms(900) } else { ms(3) };
        op(&mut r, PAGE, intended, took, outcome);
        let ready = intended + if warm { ms(500) } else { Duration::ZERO };
        r.record_start(intended, ready, ready);
        r.record_lag(intended, if warm { ms(700) } else { ms(7) });
        r.record_ryw(intended, !warm, if warm { None } else { Some(ms(1)) });
    }
    let m = r.finish(t0 + Duration::from_secs(5));
    assert!((m.measured_seconds - 3.0).abs() < 1e-9);
    assert_eq!(m.warmup.ops, 20);
    assert_eq!(m.warmup.errors, 4);
    assert_eq!(m.warmup.lag_samples, 20);
    assert_eq!(m.warmup.ryw_probes, 20);
    assert!((m.warmup.seconds - 2.0).abs() < 1e-9);

    let read = &m.ops["read"];
    assert_eq!(read.count, 30);
    assert_eq!(read.errors, 0);
    assert!(read.latency.max_us < 10_000, "{:?}", read.latency);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    assert_eq!(m.lag.count, 30);
    assert!(m.lag.max_us < 10_000);
    assert_eq!(m.ryw.probes, 30);
    assert_eq!(m.ryw.misses, 0);
    assert_eq!(m.lateness.max_us, 1);
    assert_eq!(m.waited_for_worker, 0);
    assert!(!m.saturated && !m.driver_behind);
    assert_eq!(m.intervals.len(), 3);
    assert_eq!(m.intervals.iter().map(|i| i.reads).sum::<u64>(), 30);
    assert!(m.intervals.iter().all(|i| i.read_max_us < 10_000));
    assert!((read.ops_per_sec - 10.0).abs() < 1e-9);
}

#[test]
fn interval_series_has_no_gaps_and_adds_up() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, Duration::ZERO, Duration::from_secs(1));
    // Traffic in seconds 0, 1, 4 and 5 only.
    for sec in [0u64, 1, 4, 5] {
        for j in 0..10u64 {
            let at = t0 + Duration::from_secs(sec) + ms(100 * j);
            op(&mut r, PLACE, at, ms(2 + sec), Outcome::Ok);
            let outcome = if j == 0 {
                Outcome::Error("timeout")
            } else if j == 1 {
                Outcome::Rejected("not_found")
            } else {
                Outcome::Ok
            };
            op(&mut r, PAGE, at, ms(1), outcome);
            r.record_lag(at, ms(10 * (sec + 1)));
        }
    }
    let m = r.finish(t0 + secs(6.5));
    assert_eq!(m.intervals.len(), 7);
    for (i, iv) in m.intervals.iter().enumerate() {
        assert!((iv.t_s - i as f64).abs() < 1e-9, "{iv:?}");
        let busy = [0, 1, 4, 5].contains(&i);
        assert_eq!(iv.writes, if busy { 10 } else { 0 }, "interval {i}");
        assert_eq!(iv.reads, if busy { 10 } else { 0 }, "interval {i}");
        if !busy {
            assert_eq!(iv.write_p99_us, 0);
            assert_eq!(iv.lag_max_us, 0);
        }
    }
    assert!((m.intervals[4].lag_p50_us as f64 - 50_000.0).abs() <= 50.0);
    assert!((m.intervals[6].duration_s - 0.5).abs() < 1e-9);
    assert!((m.intervals[5].duration_s - 1.0).abs() < 1e-9);

    let sum = |f: fn(&IntervalStats) -> u64| m.intervals.iter().map(f).sum::<u64>();
    assert_eq!(sum(|i| i.writes), m.ops["write"].count);
    assert_eq!(sum(|i| i.reads), m.ops["read"].count);
    assert_eq!(
        sum(|i| i.errors),
        m.ops["write"].errors + m.ops["read"].errors
    );
    assert_eq!(sum(|i| i.rejected), m.ops["read"].rejected);
    assert_eq!(sum(|i| i.lag_count), m.lag.count);
    assert_eq!(m.ops["read"].errors, 4);
    assert_eq!(m.ops["read"].rejected, 4);
}

#[test]
fn no_interval_after_the_loads_end() {
    // An async backend applies lag samples while it catches up after the load: they count
    // in the lag totals but open no interval past the measured window.
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, Duration::ZERO, Duration::from_secs(1));
    for s in 0..3u64 {
        op(
            &mut r,
            PLACE,
            t0 + Duration::from_secs(s),
            ms(1),
            Outcome::Ok,
        );
    }
    r.record_lag(t0 + secs(2.5), ms(20));
    r.record_lag(t0 + secs(3.4), ms(900));
    r.record_lag(t0 + secs(4.2), ms(1700));
    let m = r.finish(t0 + secs(3.0));
    assert_eq!(m.intervals.len(), 3, "{:?}", m.intervals);
    assert!(m.intervals.iter().all(|i| i.writes == 1));
    assert_eq!(m.lag.count, 3);
    assert_eq!(m.intervals[2].lag_count, 1);
}

#[test]
fn late_samples_within_grace_are_exact_older_ones_touch_counts_and_max_only() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, Duration::ZERO, Duration::from_secs(1));
    let at = |s: f64| t0 + secs(s);
    op(&mut r, PLACE, at(5.5), ms(1), Outcome::Ok);
    // Interval 3 is the previous-but-one: still open, so its histogram takes it.
    op(&mut r, PLACE, at(3.2), ms(300), Outcome::Ok);
    assert!(r.live_histograms() <= MAX_LIVE_HISTOGRAMS);
    assert_eq!(r.open.len(), INTERVAL_GRACE + 1);
    // Interval 9 arrives: intervals up to 6 are closed.
    op(&mut r, PLACE, at(9.1), ms(1), Outcome::Ok);
    assert_eq!(r.closed.len(), 7);
    // Late sample for closed interval 4: counts and max, not percentiles.
    op(&mut r, PLACE, at(4.9), ms(800), Outcome::Error("timeout"));
    r.record_lag(at(4.5), ms(900));
    let m = r.finish(at(10.0));
    assert_eq!(m.intervals.len(), 10);
    let iv3 = &m.intervals[3];
    assert_eq!(iv3.writes, 1);
    assert!(iv3.write_p50_us >= 299_000, "{iv3:?}");
    let iv4 = &m.intervals[4];
    assert_eq!(
        (iv4.writes, iv4.errors, iv4.lag_count),
        (1, 1, 1),
        "{iv4:?}"
    );
    assert_eq!(iv4.write_max_us, 800_000);
    assert_eq!(iv4.write_p99_us, 0);
    assert_eq!(iv4.lag_max_us, 900_000);
    // Totals take everything.
    let w = &m.ops["write"];
    assert_eq!(w.count, 4);
    assert!(w.latency.max_us >= 800_000);
    assert_eq!(m.lag.count, 1);
    assert_eq!(m.errors["error.timeout"], 1);
}

#[test]
fn memory_stays_flat_over_a_long_run() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, Duration::ZERO, Duration::from_secs(1));
    let keys = all_keys();
    let n: u64 = 1_000_000;
    let step = Duration::from_secs(600) / n as u32; // 600 µs
    let mut live_at_60s = 0;
    let mut max_live = 0;
    for i in 0..n {
        let intended = t0 + step * i as u32;
        let key = keys[(i % keys.len() as u64) as usize];
        op(
            &mut r,
            key,
            intended,
            Duration::from_micros(100 + i % 5_000),
            Outcome::Ok,
        );
        if i % 10 == 0 {
            r.record_lag(intended, Duration::from_micros(1_000 + i % 20_000));
        }
        if i % 1_000 == 0 {
            max_live = max_live.max(r.live_histograms());
            assert!(r.open.len() <= INTERVAL_GRACE + 1);
        }
        if i == n / 10 {
            live_at_60s = r.live_histograms();
        }
    }
    assert!(max_live <= MAX_LIVE_HISTOGRAMS, "{max_live}");
    assert_eq!(r.live_histograms(), live_at_60s, "histogram count grew");
    assert_eq!(live_at_60s, MAX_LIVE_HISTOGRAMS);
    // What the recorder keeps per closed interval is a small fixed-size struct.
    assert!(std::mem::size_of::<IntervalStats>() <= 160);
    assert!(r.closed.capacity() * std::mem::size_of::<IntervalStats>() < 256 * 1024);

    let m = r.finish(t0 + Duration::from_secs(600));
    assert_eq!(m.intervals.len(), 600);
    let total: u64 = m.intervals.iter().map(|i| i.writes + i.reads).sum();
    assert_eq!(total, n);
    assert_eq!(m.ops["write"].count + m.ops["read"].count, n);
    assert_eq!(m.ops.len(), keys.len() + 2);
    assert_eq!(
        m.intervals.iter().map(|i| i.lag_count).sum::<u64>(),
        m.lag.count
    );
    assert_eq!(m.lag.count, n / 10);
    assert!(m.intervals.iter().all(|i| i.writes > 0 && i.reads > 0));
}

#[test]
fn ryw_miss_share() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, Duration::ZERO, Duration::from_secs(1));
    let at = t0 + ms(10);
    for _ in 0..6 {
        r.record_ryw(at, true, None);
    }
    r.record_ryw(at, true, Some(ms(999))); // visible at once: the duration is ignored
    r.record_ryw(at, false, Some(ms(5)));
    r.record_ryw(at, false, Some(ms(10)));
    r.record_ryw(at, false, Some(ms(20)));
    r.record_ryw(at, false, None);
    let m = r.finish(t0 + Duration::from_secs(1));
    assert_eq!(m.ryw.probes, 11);
    assert_eq!(m.ryw.misses, 4);
    assert!((m.ryw.miss_share - 4.0 / 11.0).abs() < 1e-11);
    assert_eq!(m.ryw.never_visible, 1);
    assert_eq!(m.ryw.time_to_visible.count, 3);
    assert!(m.ryw.time_to_visible.max_us >= 20_000 && m.ryw.time_to_visible.max_us < 21_000);
}

#[test]
fn no_probes_give_zero_share_not_nan() {
    let t0 = Instant::now();
    let m = Recorder::new(t0, Duration::ZERO, Duration::from_secs(1)).finish(t0);
    assert_eq!(m.ryw.miss_share, 0.0);
    assert_eq!(m.measured_seconds, 0.0);
    assert!(m.intervals.is_empty());
    assert_eq!(m.ops["write"], OpStats::default());
    assert_eq!(m.ops["read"].ops_per_sec, 0.0);
    assert!(!m.saturated && !m.driver_behind);
}

#[test]
fn errors_by_kind_and_counts() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, Duration::ZERO, Duration::from_secs(1));
    let at = t0 + ms(100);
    for _ in 0..5 {
        op(&mut r, PLACE, at, ms(1), Outcome::Ok);
    }
    for _ in 0..3 {
        op(&mut r, PLACE, at, ms(1), Outcome::Rejected("out_of_stock"));
    }
    op(&mut r, PLACE, at, ms(1), Outcome::Error("db_error"));
    op(&mut r, PAGE, at, ms(1), Outcome::Error("db_error"));
    op(&mut r, PAGE, at, ms(1), Outcome::Error("timeout"));
    let m = r.finish(t0 + Duration::from_secs(2));
    let keys: Vec<&str> = m.errors.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["error.db_error", "error.timeout", "rejected.out_of_stock"]
    );
    assert_eq!(m.errors["error.db_error"], 2);
    assert_eq!(m.errors["rejected.out_of_stock"], 3);
    let s = &m.ops["write.place_order"];
    assert_eq!((s.count, s.ok, s.rejected, s.errors), (9, 5, 3, 1));
    // Rejections and errors are answers: they are in the latency histograms.
    assert_eq!(s.latency.count, 9);
    assert_eq!(s.service.count, 9);
    // Completed = ok + rejected, per measured second.
    assert!((s.ops_per_sec - 4.0).abs() < 1e-9);
    assert_eq!(m.ops["read.product_page"].errors, 2);
    assert_eq!(m.ops["read"].ops_per_sec, 0.0);
    assert_eq!(m.intervals[0].errors, 3);
    assert_eq!(m.intervals[0].rejected, 3);
}

#[test]
fn fell_behind_thresholds() {
    let t0 = Instant::now();
    // `waiting`: whether the delay was spent waiting for a busy worker (system) or after a
    // worker was free (driver).
    let run = |late: &[(u64, Duration)], waiting: bool| {
        let mut r = Recorder::new(t0, Duration::ZERO, Duration::from_secs(1));
        for (n, d) in late {
            for _ in 0..*n {
                let ready = if waiting { t0 + *d } else { t0 };
                r.record_start(t0, ready, t0 + *d);
            }
        }
        r.finish(t0 + Duration::from_secs(1))
    };
    for waiting in [true, false] {
        let behind = |m: RunMetrics| {
            // A delay is the system's or the driver's, never both.
            assert!(!(m.saturated && m.driver_behind));
            if waiting {
                m.saturated
            } else {
                m.driver_behind
            }
        };
        // Mostly on time, one hiccup of 50 ms: keeps up.
        assert!(!behind(run(&[(1000, ms(1)), (1, ms(50))], waiting)));
        // One start 150 ms late: max over 100 ms.
        assert!(behind(run(&[(1000, ms(1)), (1, ms(150))], waiting)));
        // 2 % of starts 20 ms late: p99 over 10 ms.
        assert!(behind(run(&[(980, ms(1)), (20, ms(20))], waiting)));
        // Nothing recorded: keeps up.
        assert!(!behind(run(&[], waiting)));
    }
}

#[test]
fn unstarted_ops_make_the_run_saturated() {
    let t0 = Instant::now();
    let mut r = Recorder::new(t0, Duration::ZERO, Duration::from_secs(1));
    r.record_start(t0, t0, t0);
    r.record_unstarted(true, 7);
    r.record_unstarted(false, 2);
    let m = r.finish(t0 + Duration::from_secs(1));
    assert_eq!(
        m.unstarted,
        Unstarted {
            writes: 7,
            reads: 2
        }
    );
    assert!(m.saturated);
    assert!(!m.driver_behind);
}

#[test]
fn merge_of_worker_recorders_matches_one_recorder() {
    let t0 = Instant::now();
    let mut single = Recorder::new(t0, Duration::from_secs(1), Duration::from_secs(1));
    let mut a = single.fork();
    let mut b = a.fork();
    for i in 0..2_000u64 {
        let intended = t0 + ms(5 * i); // 10 s
        let key = if i % 3 == 0 { PAGE } else { PLACE };
        let outcome = if i % 17 == 0 {
            Outcome::Rejected("out_of_stock")
        } else {
            Outcome::Ok
        };
        let took = Duration::from_micros(500 + (i * 7919) % 30_000);
        for r in [&mut single, if i % 2 == 0 { &mut a } else { &mut b }] {
            op(r, key, intended, took, outcome);
            r.record_lag(intended, took * 2);
            r.record_start(intended, intended + took / 20, intended + took / 10);
            r.record_ryw(intended, i % 4 != 0, Some(took));
        }
    }
    a.merge(b);
    let end = t0 + Duration::from_secs(10);
    let (ms_, mm) = (single.finish(end), a.finish(end));
    assert_eq!(ms_.ops, mm.ops);
    assert_eq!(ms_.lag, mm.lag);
    assert_eq!(ms_.ryw, mm.ryw);
    assert_eq!(ms_.lateness, mm.lateness);
    assert_eq!(ms_.queue_wait, mm.queue_wait);
    assert_eq!(ms_.dispatch, mm.dispatch);
    assert_eq!(ms_.waited_for_worker, mm.waited_for_worker);
    assert_eq!(ms_.errors, mm.errors);
    assert_eq!(ms_.warmup, mm.warmup);
    assert_eq!(ms_.intervals.len(), mm.intervals.len());
    for (s, m) in ms_.intervals.iter().zip(&mm.intervals) {
        assert_eq!(
            (s.writes, s.reads, s.rejected, s.lag_count),
            (m.writes, m.reads, m.rejected, m.lag_count)
        );
        assert_eq!(
            (s.write_max_us, s.read_max_us, s.lag_max_us),
            (m.write_max_us, m.read_max_us, m.lag_max_us)
        );
        // Intervals closed on both sides merge to an upper bound.
        assert!(m.write_p99_us >= s.write_p99_us && m.read_p50_us >= s.read_p50_us);
    }
    // The intervals still open on both sides at merge time merged exactly.
    let last = mm.intervals.len() - 1;
    assert_eq!(ms_.intervals[last], mm.intervals[last]);
}

#[test]
fn run_metrics_serde_round_trip() {
    let t0 = Instant::now();
    // Awkward numbers on purpose: 0.3 s intervals, an end that is not on a millisecond.
    let mut r = Recorder::new(t0, ms(500), ms(300));
    for i in 0..3_000u64 {
        let intended = t0 + ms(i);
        let took = Duration::from_micros(100 + (i * 104_729) % 90_000);
        let outcome = match i % 50 {
            0 => Outcome::Error("db_error"),
            1 => Outcome::Rejected("out_of_stock"),
            _ => Outcome::Ok,
        };
        let key = all_keys()[(i % 12) as usize];
        r.record_op(key, intended, intended + took / 3, intended + took, outcome);
        r.record_lag(intended, took);
        r.record_start(intended, intended + took / 6, intended + took / 3);
        r.record_ryw(intended, i % 3 != 0, (i % 2 == 0).then_some(took));
    }
    let m = r.finish(t0 + Duration::from_nanos(3_000_123_457));
    let json = serde_json::to_string_pretty(&m).unwrap();
    for field in [
        "\"measured_seconds\"",
        "\"write.place_order\"",
        "\"read.top_products\"",
        "\"ops_per_sec\"",
        "\"p999_us\"",
        "\"p9999_us\"",
        "\"spectrum\"",
        "\"miss_share\"",
        "\"rejected.out_of_stock\"",
        "\"error.db_error\"",
        "\"saturated\"",
        "\"driver_behind\"",
        "\"queue_wait\"",
        "\"dispatch\"",
        "\"unstarted\"",
        "\"write_p99_us\"",
        "\"lag_count\"",
    ] {
        assert!(json.contains(field), "missing {field}");
    }
    let back: RunMetrics = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
    assert_eq!(serde_json::to_string_pretty(&back).unwrap(), json);
    assert_eq!(back.intervals.len(), 9); // ceil(2.500123457 / 0.3)
    assert_eq!(back.intervals[3].t_s, 0.9);
    assert_eq!(back.measured_seconds, 2.500123457);
    assert_eq!(back.warmup.ops, 500);
}

/// Two segments' metrics (every other op each, recorded by processes of their own) merged from
/// their serialized histograms give the single recorder's numbers exactly: counts, totals'
/// percentiles and every interval's p50/p99/max. Forked recorders keeping histograms merge
/// their interval histograms too.
#[test]
fn segments_merged_from_histograms_match_one_recorder() {
    let t0 = Instant::now();
    let keep =
        || Recorder::new(t0, Duration::from_secs(1), Duration::from_secs(1)).keeping_histograms();
    let (mut single, mut a, mut b) = (keep(), keep(), keep());
    let mut fork_a = keep();
    let mut fork_b = fork_a.fork();
    for i in 0..2_000u64 {
        let intended = t0 + ms(5 * i);
        let key = if i % 3 == 0 { PAGE } else { PLACE };
        let took = Duration::from_micros(500 + (i * 7919) % 30_000);
        let part = if i % 2 == 0 { &mut a } else { &mut b };
        let fork = if i % 2 == 0 { &mut fork_a } else { &mut fork_b };
        for r in [&mut single, part, fork] {
            op(r, key, intended, took, Outcome::Ok);
            r.record_lag(intended, took * 2);
            r.record_start(intended, intended, intended + took / 10);
        }
    }
    let end = t0 + Duration::from_secs(10);
    let one = single.finish(end);
    let merged = merge::merge_metrics(&[&a.finish(end), &b.finish(end)]).unwrap();
    assert_eq!(one.ops, merged.ops);
    assert_eq!(one.lag, merged.lag);
    assert_eq!(one.lateness, merged.lateness);
    assert_eq!(one.queue_wait, merged.queue_wait);
    assert_eq!(one.warmup, merged.warmup);
    assert_eq!(one.intervals, merged.intervals);
    assert!(one.intervals.iter().any(|iv| iv.write_p99_us > 0));

    fork_a.merge(fork_b);
    let forked = fork_a.finish(end);
    let (h1, h2) = (
        one.histograms.as_ref().unwrap(),
        forked.histograms.as_ref().unwrap(),
    );
    assert_eq!(h1.intervals.len(), h2.intervals.len());
    for (x, y) in h1.intervals.iter().zip(&h2.intervals) {
        let d = |t: &str| histograms::decode(t).unwrap();
        assert_eq!(d(&x.write), d(&y.write));
        assert_eq!(d(&x.read), d(&y.read));
        assert_eq!(d(&x.lag), d(&y.lag));
    }
}
