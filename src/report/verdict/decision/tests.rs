//! The decision on values. The runs are the committed sample's (normalized, cqrs-sync and
//! cqrs-async, one level, 6 s measured, every run sound), changed by hand where a test needs
//! it; every expected answer is derived from the figures below, not from the code's output:
//!
//! | backend    | write p99 | read p99 | staleness p99 (lag 18.4ms, ryw 5.4ms)     | writes |
//! |------------|-----------|----------|-------------------------------------------|--------|
//! | normalized | 19.4ms    | 152.3ms  | 0 (reads see every write)                 | 600    |
//! | cqrs-sync  | 13.9ms    | 1.6ms    | 0                                         | 600    |
//! | cqrs-async | 11.0ms    | 1.7ms    | 18.4ms                                    | 600    |
//!
//! Floors (write p99): 0.3ms, 0.28ms, 0.24ms.

use super::*;
use crate::backend::normalized;
use crate::results::Results;
use crate::scenario::thresholds::{parse_budget, Budgets};

fn sample() -> Results {
    serde_json::from_str(include_str!("../../../../reports/sample/results.json")).unwrap()
}

fn with_budgets(mut r: Results, budgets: &[(&str, &str)]) -> Results {
    let mut b = Budgets::default();
    for (k, v) in budgets {
        b.insert(k, v, parse_budget(k, v).unwrap());
    }
    r.scenario.budgets = b;
    r
}

fn decide_on(r: &Results) -> Decision {
    decide(r, &crate::report::levels(r))
}

fn run_mut<'a>(r: &'a mut Results, name: &str) -> &'a mut BackendRun {
    r.runs
        .iter_mut()
        .find(|x| x.backend.name() == name)
        .unwrap()
}

#[test]
fn without_budgets_nothing_is_decided_and_costs_are_listed() {
    let d = decide_on(&sample());
    assert_eq!(d.answer, Answer::NoBudgets);
    let costed: Vec<&str> = d.costs.iter().map(|c| c.backend.name()).collect();
    assert_eq!(costed, ["cqrs-sync", "cqrs-async"]);
    let sync = &d.costs[0];
    assert_eq!(sync.write_p99_us, Some((19_359, 13_871)));
    assert_eq!(sync.staleness_p99_us, Some(0));
    assert!(d.headline().contains("No budgets were given"));
}

#[test]
fn generous_budgets_normalized_meets_them_cqrs_does_not_pay_off() {
    let r = with_budgets(sample(), &[("write.p99", "1s"), ("read.p99", "1s")]);
    let d = decide_on(&r);
    assert_eq!(d.answer, Answer::CqrsDoesNotPayOff);
    assert!(d.headline().contains("CQRS does not pay off here"));
    // What CQRS would have cost: both CQRS backends, against normalized.
    let costed: Vec<&str> = d.costs.iter().map(|c| c.backend.name()).collect();
    assert_eq!(costed, ["cqrs-sync", "cqrs-async"]);
    assert_eq!(d.costs[1].staleness_p99_us, Some(18_399));
    // normalized 1,384,448 bytes; cqrs-async 5,287,936.
    assert_eq!(d.costs[1].storage_bytes, Some((1_384_448, 5_287_936)));
    assert!(d.left_out.is_empty());
}

#[test]
fn a_read_budget_normalized_misses_names_the_simplest_cqrs_backend() {
    let r = with_budgets(sample(), &[("write.p99", "50ms"), ("read.p99", "100ms")]);
    let d = decide_on(&r);
    // normalized's 152.3ms misses 100ms; cqrs-sync (simpler than cqrs-async) meets both.
    assert_eq!(
        d.answer,
        Answer::Simplest {
            backend: crate::backend::cqrs_sync::KIND,
            role: Role::Cqrs
        }
    );
    assert_eq!(d.costs.len(), 1);
    assert_eq!(d.costs[0].write_p50_us.map(|p| p.0), {
        let n = &r.runs[0].metrics.op(MetricKey::Writes).unwrap().latency;
        Some(n.p50_us)
    });
    let normalized_fit = &d.points[0].backends[0];
    assert_eq!(normalized_fit.budgets[0].key, "read.p99");
    assert_eq!(normalized_fit.budgets[0].fit, Fit::Missed);
    assert_eq!(normalized_fit.budgets[1].fit, Fit::Met);
}

#[test]
fn staleness_zero_rules_out_the_async_backend() {
    // normalized misses a read budget of 100ms (152.3ms); of the two CQRS backends that
    // meet it, cqrs-async's reads lag by construction, so staleness 0 leaves cqrs-sync.
    let r = with_budgets(sample(), &[("read.p99", "100ms"), ("staleness.p99", "0ms")]);
    let d = decide_on(&r);
    assert_eq!(
        d.answer,
        Answer::Simplest {
            backend: crate::backend::cqrs_sync::KIND,
            role: Role::Cqrs
        }
    );
    let async_fit = d.points[0]
        .backends
        .iter()
        .find(|b| b.backend.name() == "cqrs-async")
        .unwrap();
    let stale = async_fit
        .budgets
        .iter()
        .find(|b| b.key == "staleness.p99")
        .unwrap();
    assert_eq!(stale.fit, Fit::Missed);
    assert_eq!(stale.measured, Some(18_399.0));
}

#[test]
fn an_invalid_run_is_left_out_and_none_meets_says_who_comes_closest() {
    // cqrs-sync, the only backend meeting both budgets, fell behind: it cannot decide.
    let mut r = with_budgets(sample(), &[("read.p99", "100ms"), ("staleness.p99", "0ms")]);
    run_mut(&mut r, "cqrs-sync").metrics.driver_behind = true;
    let d = decide_on(&r);
    // normalized misses read.p99 (152.3ms / 100ms = 1.5×); cqrs-async misses staleness 0
    // (18.4ms over a limit of 0): one miss each, normalized's overshoot is the smaller.
    match &d.answer {
        Answer::NoneMeets {
            out_of_reach,
            not_judged,
            closest,
            closest_misses,
            no_evidence_at,
        } => {
            assert!(no_evidence_at.is_empty());
            // Each budget is met by one of the two sound backends: neither is out of reach.
            assert!(out_of_reach.is_empty(), "{out_of_reach:?}");
            assert!(not_judged.is_empty());
            assert_eq!(*closest, Some(normalized::KIND));
            assert_eq!(closest_misses.len(), 1);
            assert!(
                closest_misses[0].starts_with("read.p99 152"),
                "{closest_misses:?}"
            );
        }
        other => panic!("expected NoneMeets, got {other:?}"),
    }
    assert_eq!(d.left_out.len(), 1);
    assert_eq!(d.left_out[0].what, "cqrs-sync");
    assert!(d.left_out[0].why.contains("driver fell behind"));
    assert!(d.left_out[0].remedy.contains("fewer workers"));
    assert!(d.details().iter().any(|l| l.starts_with("Left out")));
}

#[test]
fn a_budget_every_backend_misses_is_out_of_reach() {
    // 5ms of write p99: 19.4ms, 13.9ms and 11.0ms all miss it.
    let r = with_budgets(sample(), &[("write.p99", "5ms")]);
    let d = decide_on(&r);
    match &d.answer {
        Answer::NoneMeets {
            out_of_reach,
            closest,
            ..
        } => {
            assert_eq!(out_of_reach, &["write.p99 <= 5ms".to_string()]);
            // The smallest overshoot: cqrs-async's 11.0ms.
            assert_eq!(*closest, Some(crate::backend::cqrs_async::KIND));
        }
        other => panic!("expected NoneMeets, got {other:?}"),
    }
}

#[test]
fn a_short_window_decides_nothing_and_says_what_to_change() {
    let mut r = with_budgets(sample(), &[("write.p99", "1s")]);
    for run in &mut r.runs {
        run.metrics.measured_seconds = 1.0;
    }
    let d = decide_on(&r);
    assert_eq!(d.answer, Answer::NoSoundEvidence);
    assert_eq!(d.left_out.len(), 3);
    assert!(d
        .left_out
        .iter()
        .all(|l| l.remedy.contains("longer duration")));
    assert!(d.left_out[0].why.contains("1.0 s"));
}

#[test]
fn too_few_samples_and_a_budget_under_the_floor_are_not_judged() {
    // normalized with 50 writes: its p99 is the largest of 50, not a p99.
    let mut r = with_budgets(sample(), &[("write.p99", "1s")]);
    run_mut(&mut r, "normalized")
        .metrics
        .ops
        .get_mut("write")
        .unwrap()
        .latency
        .count = 50;
    let d = decide_on(&r);
    assert_eq!(d.points[0].backends[0].budgets[0].fit, Fit::NotJudged);
    // So normalized cannot be the answer; cqrs-sync is the simplest that meets it.
    assert_eq!(
        d.answer,
        Answer::Simplest {
            backend: crate::backend::cqrs_sync::KIND,
            role: Role::Cqrs
        }
    );
    assert!(d.left_out[0].why.contains("50 samples"), "{:?}", d.left_out);

    // 100µs of write p99 is below every run's floor (0.24 to 0.30ms): nobody is judged.
    let r = with_budgets(sample(), &[("write.p99", "100us")]);
    let d = decide_on(&r);
    match &d.answer {
        Answer::NoneMeets {
            out_of_reach,
            not_judged,
            closest,
            ..
        } => {
            assert!(out_of_reach.is_empty());
            assert_eq!(not_judged, &["write.p99 <= 100us".to_string()]);
            assert_eq!(*closest, None);
        }
        other => panic!("expected NoneMeets, got {other:?}"),
    }
    assert!(d.left_out.iter().all(|l| l.why.contains("floor")));
}

#[test]
fn along_a_sweep_the_answer_changes_where_normalized_stops_meeting_the_budget() {
    // Two points: at 0 readers normalized reads in 1.0ms; at 4 readers in 152.3ms.
    let base = sample();
    let mut r = base.clone();
    r.runs.clear();
    for (point, normalized_read_p99) in [(0u32, 1_000u64), (4, 152_319)] {
        for run in &base.runs {
            let mut run = run.clone();
            run.sweep_point = Some(SweepPoint::Readers(point));
            if run.backend == normalized::KIND {
                run.metrics.ops.get_mut("read").unwrap().latency.p99_us = normalized_read_p99;
            }
            r.runs.push(run);
        }
    }
    let r = with_budgets(r, &[("read.p99", "100ms")]);
    let d = decide_on(&r);
    assert_eq!(d.points[0].simplest, Some(normalized::KIND));
    assert_eq!(d.points[1].simplest, Some(crate::backend::cqrs_sync::KIND));
    assert_eq!(d.changes.len(), 1);
    assert_eq!(d.changes[0].at, "4 readers");
    assert_eq!(d.changes[0].from, Some(normalized::KIND));
    assert_eq!(d.changes[0].to, Some(crate::backend::cqrs_sync::KIND));
    assert!(d.changes[0].because[0].starts_with("read.p99 152"));
    // Over the whole sweep, cqrs-sync is the simplest that meets it at every point.
    assert_eq!(
        d.answer,
        Answer::Simplest {
            backend: crate::backend::cqrs_sync::KIND,
            role: Role::Cqrs
        }
    );
    assert!(d.details()[0].contains("changes at **4 readers**"));
}

/// A point where every run is unsound says so: no evidence there, not "no backend meets".
#[test]
fn a_point_with_no_sound_run_is_named_as_wanting_evidence_not_as_met_by_no_backend() {
    let base = sample();
    let mut r = base.clone();
    r.runs.clear();
    for point in [0u32, 4] {
        for run in &base.runs {
            let mut run = run.clone();
            run.sweep_point = Some(SweepPoint::Readers(point));
            // Every run at 4 readers fell behind.
            run.metrics.driver_behind = point == 4;
            r.runs.push(run);
        }
    }
    let r = with_budgets(r, &[("write.p99", "1s")]);
    let d = decide_on(&r);
    assert_eq!(d.points[0].simplest, Some(normalized::KIND));
    assert_eq!(d.points[1].simplest, None);
    match &d.answer {
        Answer::NoneMeets { no_evidence_at, .. } => {
            assert_eq!(no_evidence_at, &["4 readers".to_string()])
        }
        other => panic!("expected NoneMeets, got {other:?}"),
    }
    assert!(
        d.headline()
            .contains("at 4 readers no run is sound evidence"),
        "{}",
        d.headline()
    );
    let change = &d.details()[0];
    assert!(
        change.contains("from **normalized** to no sound evidence"),
        "{change}"
    );
    assert!(!change.contains("no backend"), "{change}");
}

#[test]
fn a_story_backend_is_never_the_answer() {
    let mut r = with_budgets(sample(), &[("read.p99", "100ms")]);
    // Make the first run denormalized: a story's backend, however well it does.
    let mut denorm = r.runs[1].clone();
    denorm.backend = crate::backend::denormalized::KIND;
    r.runs.push(denorm);
    r.scenario.backends.push(crate::backend::denormalized::KIND);
    let d = decide_on(&r);
    assert_eq!(
        d.answer,
        Answer::Simplest {
            backend: crate::backend::cqrs_sync::KIND,
            role: Role::Cqrs
        }
    );
}

#[test]
fn a_budget_on_ops_that_did_not_run_does_not_apply() {
    // No reads at this point (as at 0 readers): the read budget has nothing to judge, and
    // normalized meets the rest.
    let mut r = with_budgets(sample(), &[("read.p99", "1ms"), ("write.p99", "1s")]);
    for run in &mut r.runs {
        run.metrics.ops.retain(|k, _| !k.starts_with("read"));
    }
    let d = decide_on(&r);
    assert_eq!(d.points[0].backends[0].budgets[0].fit, Fit::NotExercised);
    assert_eq!(d.answer, Answer::CqrsDoesNotPayOff);
}

#[test]
fn reads_that_came_due_and_never_started_miss_the_read_budget() {
    // normalized saturated: no read finished, 1,257 came due and never started (as in a
    // recorded SQLite run of read-your-writes.toml). Its read budget is missed, not "not
    // exercised", so the simplest backend that meets the budgets is cqrs-sync.
    let mut r = with_budgets(sample(), &[("read.p99", "1s"), ("write.p99", "1s")]);
    let n = run_mut(&mut r, normalized::KIND.name());
    n.metrics.ops.retain(|k, _| !k.starts_with("read"));
    n.metrics.unstarted.reads = 1_257;
    let d = decide_on(&r);
    let fit = &d.points[0].backends[0].budgets[0];
    assert_eq!((fit.key.as_str(), fit.fit), ("read.p99", Fit::Missed));
    assert_eq!(fit.shown, "1257 ops never started");
    assert_ne!(d.answer, Answer::CqrsDoesNotPayOff);
}

#[test]
fn unstarted_ops_decide_a_percentile_only_beyond_its_tail() {
    // p99's tail is 1%: 10 of 1,010 (0.99%) do not reach it, 11 of 1,011 (1.09%) do.
    assert!(!unstarted_decide(Stat::P99, 1_000, 10));
    assert!(unstarted_decide(Stat::P99, 1_000, 11));
    assert!(!unstarted_decide(Stat::P50, 10, 10));
    assert!(unstarted_decide(Stat::P50, 10, 11));
    assert!(unstarted_decide(Stat::Max, 1_000_000, 1));
    assert!(!unstarted_decide(Stat::Max, 5, 0));
}

/// normalized's reads cut to 46 samples (too few for a p99, which needs 100), with p50 and
/// p90 set by hand.
fn few_normalized_reads(p50_us: u64, p90_us: u64) -> Results {
    let mut r = with_budgets(sample(), &[("read.p99", "100ms")]);
    let reads = run_mut(&mut r, "normalized")
        .metrics
        .ops
        .get_mut(&MetricKey::Reads.to_string())
        .unwrap();
    reads.latency.count = 46;
    reads.latency.p50_us = p50_us;
    reads.latency.p90_us = p90_us;
    r
}

fn normalized_read_fit(d: &Decision) -> &BudgetFit {
    &d.points[0].backends[0].budgets[0]
}

#[test]
fn too_few_samples_for_a_p99_still_miss_when_a_lower_percentile_is_over_the_budget() {
    // p90 140ms > 100ms from 46 samples (a p90 needs 20): the p99, at least the p90, misses.
    let d = decide_on(&few_normalized_reads(120_000, 140_000));
    let fit = normalized_read_fit(&d);
    assert_eq!(fit.key, "read.p99");
    assert_eq!(fit.fit, Fit::Missed);
    assert_eq!(fit.measured, Some(140_000.0));
    assert_eq!(fit.shown, "p90 140.0ms (from 46 samples)");
    // cqrs-sync meets it, so it answers, and nothing about normalized is left out.
    assert_eq!(
        d.answer,
        Answer::Simplest {
            backend: crate::backend::cqrs_sync::KIND,
            role: Role::Cqrs
        }
    );
    assert!(d.left_out.iter().all(|l| !l.what.starts_with("normalized")));
}

#[test]
fn too_few_samples_with_lower_percentiles_under_the_budget_cannot_judge() {
    // p50 20ms and p90 40ms are under 100ms: the p99 of 46 samples could be either side.
    let d = decide_on(&few_normalized_reads(20_000, 40_000));
    let fit = normalized_read_fit(&d);
    assert_eq!(fit.fit, Fit::NotJudged);
    assert_eq!(
        fit.why.as_deref(),
        Some("p99 from 46 samples (it needs at least 100)")
    );
    assert!(d
        .left_out
        .iter()
        .any(|l| l.what.starts_with("normalized read.p99 at ")));
}
