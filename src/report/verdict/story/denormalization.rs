//! "Product details stored in each order line; a price change takes 2 hours for 1M orders."
//! Along the `orders` sweep: what a `change_price` takes on `denormalized` (which rewrites
//! every historical order line of the product) and on `cqrs-sync` (whose read models keep the
//! order's price at placement) at the most orders tried — its median, which a handful of
//! slow commits cannot move, with the p99 beside it — how each median grew per 10× orders
//! from the fewest (a backend **grows** when that factor is at least [`GROWS_FACTOR`] and the
//! difference is above the harness's floor), and what readers of the rewritten lines saw:
//! their read p99, and how many reads saw a product half-rewritten.
//!
//! The figures are computed first (`figures`), the sentence from them (`answer`).

use super::super::{below_floor, floor_of, p50, p99, saturated_in};
use super::{sentence, Answer};
use crate::backend::{registry, BackendKind};
use crate::domain::CommandKind;
use crate::format::fmt_ms;
use crate::metrics::rewrite_reads::RewriteReads;
use crate::metrics::{MetricKey, Stat};
use crate::report::Level;
use crate::results::{BackendRun, SweepPoint};

/// How many times per 10× orders a backend's `change_price` median must grow to count as
/// growing with the history.
pub const GROWS_FACTOR: f64 = 1.5;

/// The plot the answer shows.
pub const PLOT: &str = "price-change";

fn change_price() -> MetricKey {
    MetricKey::write(CommandKind::ChangePrice)
}

/// One backend's price changes at one order count.
#[derive(Debug, Clone, Copy, PartialEq)]
struct At {
    orders: i64,
    p50_us: u64,
    p99_us: u64,
    /// Whether the writes fell behind their rate there.
    saturated: bool,
    /// Whether the driver fell behind (an invalid run).
    driver_behind: bool,
}

/// How one backend's `change_price` p99 went along the sweep.
#[derive(Debug, Clone, PartialEq)]
struct Curve {
    kind: BackendKind,
    /// At the fewest orders (with a price change measured).
    first: At,
    /// At the most orders.
    last: At,
    /// The median's factor per 10× orders between the two, if they differ in orders (and
    /// the fewer is not 0).
    per_decade: Option<f64>,
    /// Whether it grew: by at least `GROWS_FACTOR` per decade, beyond the harness's floor.
    grows: bool,
}

/// Everything the sentence says, computed from the levels.
#[derive(Debug, Clone, PartialEq)]
struct Figures {
    denormalized: Option<Curve>,
    cqrs_sync: Option<Curve>,
    /// What readers of the rewritten lines saw on `denormalized`, at the most orders.
    readers: Option<RewriteReads>,
    /// Query read p99 at the most orders, `denormalized` and `cqrs-sync`.
    read_p99: (Option<u64>, Option<u64>),
}

fn orders_of(level: &Level) -> Option<i64> {
    match &level.point {
        Some(SweepPoint::Orders(n)) => Some(*n),
        _ => None,
    }
}

fn run_of<'a>(level: &Level<'a>, kind: BackendKind) -> Option<&'a BackendRun> {
    level.runs.iter().copied().find(|r| r.backend == kind)
}

fn curve(levels: &[Level], kind: BackendKind, orders_fallback: i64) -> Option<Curve> {
    let points: Vec<(At, &BackendRun)> = levels
        .iter()
        .filter_map(|l| {
            let run = run_of(l, kind)?;
            let at = At {
                orders: orders_of(l).unwrap_or(orders_fallback),
                p50_us: p50(run, change_price())?,
                p99_us: p99(run, change_price())?,
                saturated: saturated_in(run, MetricKey::Writes),
                driver_behind: run.metrics.driver_behind,
            };
            Some((at, run))
        })
        .collect();
    let (first, first_run) = *points.first()?;
    let (last, last_run) = *points.last()?;
    let per_decade = (first.orders > 0 && last.orders > first.orders).then(|| {
        let decades = (last.orders as f64 / first.orders as f64).log10();
        (last.p50_us.max(1) as f64 / first.p50_us.max(1) as f64).powf(1.0 / decades)
    });
    let floor = floor_of(first_run, last_run, true, Stat::P50);
    let grows = per_decade.is_some_and(|k| k >= GROWS_FACTOR)
        && !below_floor(last.p50_us, first.p50_us, floor);
    Some(Curve {
        kind,
        first,
        last,
        per_decade,
        grows,
    })
}

/// The two backends the story contrasts, from the registry: the one that keeps copies of
/// product details in order lines (`denormalized`) and the one its entry measures it against
/// (`cqrs-sync`).
fn contrasted() -> (BackendKind, BackendKind) {
    registry::BACKENDS
        .iter()
        .find(|e| e.provisions.product_copies)
        .and_then(|e| Some((e.kind, e.measured_against?)))
        .expect("a backend with product copies is registered, with what it is measured against")
}

fn figures(levels: &[Level], orders_fallback: i64) -> Figures {
    let (copies, read_models) = contrasted();
    let last = levels.last();
    let at_last = |kind| last.and_then(|l| run_of(l, kind));
    Figures {
        denormalized: curve(levels, copies, orders_fallback),
        cqrs_sync: curve(levels, read_models, orders_fallback),
        readers: at_last(copies).and_then(|r| r.rewrite_reads.clone()),
        read_p99: (
            at_last(copies).and_then(|r| p99(r, MetricKey::Reads)),
            at_last(read_models).and_then(|r| p99(r, MetricKey::Reads)),
        ),
    }
}

/// `13.5ms (p50; p99 28.2ms, the writes fell behind)`.
fn takes(a: &At) -> String {
    let mut s = format!(
        "**{}** (p50; p99 {}",
        fmt_ms(a.p50_us as f64),
        fmt_ms(a.p99_us as f64)
    );
    if a.saturated {
        s.push_str(", the writes fell behind");
    }
    if a.driver_behind {
        s.push_str(", an invalid run: the driver fell behind");
    }
    s.push(')');
    s
}

/// `growing ~3.2× per 10× orders (from 1.1ms at 1000 orders)`, or that it did not.
fn growth(c: &Curve) -> String {
    let from = format!(
        "{} at {} orders",
        fmt_ms(c.first.p50_us as f64),
        c.first.orders
    );
    match c.per_decade {
        None => "with no smaller dataset to compare with".to_string(),
        Some(k) if c.grows => format!("growing **~{k:.1}× per 10× orders** (from {from})"),
        Some(k) => format!("not growing with the orders (~{k:.1}× per 10×; {from})"),
    }
}

/// What readers of the rewritten lines saw.
fn readers_part(f: &Figures) -> String {
    let Some(r) = &f.readers else {
        return "no reader watched the rewritten lines".to_string();
    };
    if r.reads == 0 {
        return "no read of the rewritten lines was measured".to_string();
    }
    let mut s = format!(
        "readers of a product's order lines (~{:.0} lines each) answered in p99 {} (max {}) over {} reads",
        r.mean_lines,
        fmt_ms(r.latency.p99_us as f64),
        fmt_ms(r.latency.max_us as f64),
        r.reads
    );
    if r.torn == 0 {
        s.push_str(", and none saw a half-rewritten product");
    } else {
        s.push_str(&format!(
            ", and **{} of them saw a product half-rewritten**",
            r.torn
        ));
    }
    if r.errors > 0 {
        s.push_str(&format!(" ({} reads failed)", r.errors));
    }
    if let (Some(d), Some(c)) = f.read_p99 {
        s.push_str(&format!(
            "; the queries' read p99 was {} on denormalized against {} on cqrs-sync",
            fmt_ms(d as f64),
            fmt_ms(c as f64)
        ));
    }
    s
}

pub(super) fn answer(levels: &[Level], orders_fallback: i64) -> Answer {
    let plot = Some(PLOT.to_string());
    if levels.is_empty() {
        return Answer {
            sentence: "No run was recorded, so there is nothing to answer from.".into(),
            plot: None,
        };
    }
    let f = figures(levels, orders_fallback);
    let Some(d) = &f.denormalized else {
        return Answer {
            sentence: "No price change was measured on denormalized, so this run cannot say \
                       what a price change costs there."
                .into(),
            plot,
        };
    };
    let mut s = format!(
        "at **{} orders** a price change takes {} on **denormalized**",
        d.last.orders,
        takes(&d.last)
    );
    match &f.cqrs_sync {
        Some(c) => {
            s.push_str(&format!(" against {} on **cqrs-sync**", takes(&c.last)));
            s.push_str(&format!(", {}", growth(d)));
            s.push_str(&format!(
                "; cqrs-sync's {}",
                match c.per_decade {
                    Some(_) if c.grows => growth(c).replacen("growing", "grows too,", 1),
                    _ => format!(
                        "stays flat ({} at {} orders)",
                        fmt_ms(c.first.p50_us as f64),
                        c.first.orders
                    ),
                }
            ));
        }
        None => s.push_str(&format!(", {} (cqrs-sync did not run)", growth(d))),
    }
    s.push_str(&format!("; {}", readers_part(&f)));
    Answer {
        sentence: sentence(&s),
        plot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::levels;
    use crate::results::Results;

    /// A recorded run of `scenarios/denormalization.toml` on SQLite, shrunk to 20 products,
    /// `orders = [200, 2000, 20000]`, `duration = "7s"` with a 1 s warm-up, spectra removed,
    /// on a quiet machine, every run sound. Read off the JSON: denormalized's `change_price`
    /// p50 1189/1941/16671 µs (p99 70079 at 20,000 orders, saturated there), so
    /// (16671 / 1189)^(1/2) = 3.7× per 10× orders; cqrs-sync's p50 622/697/675 µs (p99 7039);
    /// 492 reads of ~2512 lines at 20,000 orders, p99 25423 µs, max 105343, none torn; read
    /// p99 560127 µs against 3323.
    fn recorded() -> Results {
        serde_json::from_str(include_str!(
            "../../../../tests/data/denormalization-results.json"
        ))
        .expect("recorded results")
    }

    fn said(r: &Results) -> Answer {
        answer(&levels(r), r.scenario.dataset.orders)
    }

    fn run_at<'a>(r: &'a mut Results, backend: &str, orders: i64) -> &'a mut BackendRun {
        r.runs
            .iter_mut()
            .find(|x| {
                x.backend.name() == backend && x.sweep_point == Some(SweepPoint::Orders(orders))
            })
            .unwrap()
    }

    fn set_p50(run: &mut BackendRun, us: u64) {
        let key = change_price().to_string();
        run.metrics.ops.get_mut(&key).unwrap().latency.p50_us = us;
    }

    fn points(r: &Results) -> Vec<i64> {
        match &r.scenario.sweep {
            Some(crate::scenario::Sweep::Orders(n)) => n.clone(),
            other => panic!("not an orders sweep: {other:?}"),
        }
    }

    fn ends(r: &Results) -> (i64, i64) {
        let p = points(r);
        (p[0], *p.last().unwrap())
    }

    #[test]
    fn recorded_run_names_both_costs_the_growth_and_what_readers_saw() {
        let a = said(&recorded());
        assert_eq!(a.plot.as_deref(), Some(PLOT));
        assert_eq!(
            a.sentence,
            "At **20000 orders** a price change takes **16.7ms** (p50; p99 70.1ms, the writes \
             fell behind) on **denormalized** against **675µs** (p50; p99 7.0ms) on \
             **cqrs-sync**, growing **~3.7× per 10× orders** (from 1.2ms at 200 orders); \
             cqrs-sync's stays flat (622µs at 200 orders); readers of a product's order lines \
             (~2512 lines each) answered in p99 25.4ms (max 105.3ms) over 492 reads, and none \
             saw a half-rewritten product; the queries' read p99 was 560.1ms on denormalized \
             against 3.3ms on cqrs-sync."
        );
    }

    #[test]
    fn growth_is_the_median_factor_per_decade_of_orders() {
        let mut r = recorded();
        let (lo, hi) = ends(&r);
        set_p50(run_at(&mut r, "denormalized", lo), 1_000);
        set_p50(run_at(&mut r, "denormalized", hi), 1_000 * (hi / lo) as u64);
        let s = said(&r).sentence;
        // Linear in the orders: 10× per 10×.
        assert!(
            s.contains("growing **~10.0× per 10× orders** (from 1.0ms at 200 orders)"),
            "{s}"
        );
    }

    #[test]
    fn no_growth_says_so_for_both() {
        let mut r = recorded();
        for backend in ["denormalized", "cqrs-sync"] {
            for n in points(&r) {
                set_p50(run_at(&mut r, backend, n), 2_000);
            }
        }
        let s = said(&r).sentence;
        assert!(s.contains("takes **2.0ms** (p50; p99 70.1ms, the writes fell behind) on **denormalized** against **2.0ms** (p50; p99 7.0ms) on **cqrs-sync**, not growing with the orders (~1.0× per 10×; 2.0ms at 200 orders)"), "{s}");
        assert!(
            s.contains("; cqrs-sync's stays flat (2.0ms at 200 orders)"),
            "{s}"
        );
        assert!(!s.contains("growing **"), "{s}");
    }

    #[test]
    fn growth_within_the_harness_floor_is_not_growth() {
        let mut r = recorded();
        let (lo, hi) = ends(&r);
        let floor = [lo, hi]
            .iter()
            .filter_map(|n| {
                run_at(&mut r, "denormalized", *n)
                    .floor
                    .as_ref()
                    .and_then(|f| f.resolution_us(true, Stat::P50))
            })
            .max()
            .expect("a calibrated floor");
        // 3× over the sweep (1.7× per decade), but by less than the floor's resolution.
        let base = (floor / 4).max(1);
        set_p50(run_at(&mut r, "denormalized", lo), base);
        set_p50(run_at(&mut r, "denormalized", hi), base * 3);
        let s = said(&r).sentence;
        assert!(
            s.contains("on **cqrs-sync**, not growing with the orders"),
            "{s}"
        );
        // The same factor above the floor is growth.
        set_p50(run_at(&mut r, "denormalized", lo), floor * 2);
        set_p50(run_at(&mut r, "denormalized", hi), floor * 6);
        let s = said(&r).sentence;
        assert!(
            s.contains("on **cqrs-sync**, growing **~1.7× per 10× orders**"),
            "{s}"
        );
    }

    #[test]
    fn cqrs_sync_growing_too_is_said() {
        let mut r = recorded();
        let (lo, hi) = ends(&r);
        set_p50(run_at(&mut r, "cqrs-sync", lo), 1_000);
        set_p50(run_at(&mut r, "cqrs-sync", hi), 1_000 * (hi / lo) as u64);
        let s = said(&r).sentence;
        assert!(
            s.contains(
                "; cqrs-sync's grows too, **~10.0× per 10× orders** (from 1.0ms at 200 orders)"
            ),
            "{s}"
        );
    }

    #[test]
    fn a_torn_read_is_named() {
        let mut r = recorded();
        let (_, hi) = ends(&r);
        let seen = run_at(&mut r, "denormalized", hi)
            .rewrite_reads
            .as_mut()
            .expect("the recorded run watched its readers");
        seen.torn = 3;
        let s = said(&r).sentence;
        assert!(
            s.contains("over 492 reads, and **3 of them saw a product half-rewritten**"),
            "{s}"
        );
    }

    #[test]
    fn without_price_changes_or_without_cqrs_sync_it_says_what_it_can() {
        let mut r = recorded();
        r.runs
            .retain(|x| x.backend != crate::backend::cqrs_sync::KIND);
        let s = said(&r).sentence;
        assert!(s.contains("(cqrs-sync did not run)"), "{s}");
        assert!(!s.contains("read p99 was"), "{s}");
        let key = change_price().to_string();
        for run in &mut r.runs {
            run.metrics.ops.remove(&key);
        }
        let s = said(&r).sentence;
        assert!(
            s.starts_with("No price change was measured on denormalized"),
            "{s}"
        );
    }
}
