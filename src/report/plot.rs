//! The report's plots, drawn with plotters as SVG text.
//!
//! Every backend has one colour in every plot ([`backend_rgb`]); latency axes are in
//! milliseconds on a log scale, time axes in seconds since the end of the warm-up. Plots that
//! belong to one read level (a sweep point) get the level in their name and title; without a
//! sweep there is one level and no suffix.
//!
//! | name | what |
//! |---|---|
//! | `write-spectrum[-L]` | write latency percentile spectrum per backend (HdrHistogram-style x axis) |
//! | `read-spectrum[-L]` | the same per query (one panel per query, plus all reads) |
//! | `read-latency[-L]` | read p50 and p99 per query per backend (bars) |
//! | `load` | write p99 and read p99 against read load, one line per backend |
//! | `lag[-L]` | projection lag p50/p99 per interval, and its percentile spectrum |
//! | `throughput[-L]` | achieved writes/s and reads/s per interval against the target |

use std::error::Error;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{levels, Level};
use crate::backend::BackendKind;
use crate::metrics::{IntervalStats, LatencyStats, MetricKey, OpName};
use crate::results::{BackendRun, Results, SweepPoint};
use crate::scenario::Sweep;

/// One drawn plot.
#[derive(Debug, Clone)]
pub struct Plot {
    /// File stem: the plot is written to `plots/<name>.svg`.
    pub name: String,
    pub title: String,
    /// One or two sentences saying what the plot shows and how to read it.
    pub caption: String,
    /// The SVG document.
    pub svg: String,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn Error>>;

/// A plot that could not be drawn (a bug: drawing into a string has no I/O to fail).
#[derive(Debug, thiserror::Error)]
#[error("cannot draw plot {name}: {message}")]
pub struct PlotError {
    pub name: String,
    pub message: String,
}

/// Backend colours in registry order (Okabe–Ito palette, safe for colour blindness; yellow,
/// the faintest on white, last of it), then Tol's wine for a ninth backend.
const PALETTE: [RGBColor; 9] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xF0, 0xE4, 0x42),
    RGBColor(0x88, 0x22, 0x55),
];

/// The colour of a backend in every plot: its registry place in the palette.
pub fn backend_rgb(kind: BackendKind) -> RGBColor {
    PALETTE[kind.index() % PALETTE.len()]
}

/// [`backend_rgb`] as `#RRGGBB`, the way it appears in the SVG.
pub fn backend_hex(kind: BackendKind) -> String {
    let RGBColor(r, g, b) = backend_rgb(kind);
    format!("#{r:02X}{g:02X}{b:02X}")
}

const FONT: &str = "sans-serif";
/// Width of the strip right of every chart's plotting area where its legend goes (the
/// longest label, `event-sourced p50`, with its swatch).
const LEGEND_W: u32 = 160;
const TARGET: RGBColor = RGBColor(0x44, 0x44, 0x44);

/// Every plot for these results, in report order.
pub fn plots(results: &Results) -> Result<Vec<Plot>, PlotError> {
    let levels = levels(results);
    let multi = levels.len() > 1;
    let mut out = Vec::new();
    for level in &levels {
        let suffix = level_suffix(level.point.as_ref());
        let at = level_title(level.point.as_ref(), multi);
        if level
            .runs
            .iter()
            .any(|r| op(r, MetricKey::Writes).is_some())
        {
            out.push(plot(
            format!("write-spectrum{suffix}"),
            format!("Write latency percentiles{at}"),
            "Latency of every write (all commands), from its intended start, at each percentile. \
             The x axis stretches the tail like HdrHistogram plots (90 %, 99 %, 99.9 % equally \
             spaced); lower is better."
                .into(),
            (960, 480),
            |root| write_spectrum(root, level),
        )?);
        }
        if level.runs.iter().any(|r| op(r, MetricKey::Reads).is_some()) {
            out.push(plot(
                format!("read-spectrum{suffix}"),
                format!("Read latency percentiles per query{at}"),
                "The same percentile spectrum for each query, one panel per query and one for \
                 all reads together."
                    .into(),
                (1500, 760),
                |root| read_spectra(root, level),
            )?);
            out.push(plot(
                format!("read-latency{suffix}"),
                format!("Read latency per query{at}"),
                "p50 (solid bar) and p99 (light bar) of each query per backend, log scale.".into(),
                (1100, 480),
                |root| read_bars(root, level),
            )?);
        }
        if level.runs.iter().any(|r| r.metrics.lag.count > 0) {
            out.push(plot(
                format!("lag{suffix}"),
                format!("Projection lag{at}"),
                "Left: p99 (solid) and p50 (dashed) of the projection lag in each 1 s interval \
                 — from the writer's commit to the projector's commit of the batch that applied \
                 the event. Right: the lag's percentile spectrum over the whole run."
                    .into(),
                (1200, 460),
                |root| lag(root, level),
            )?);
        }
        out.push(plot(
            format!("throughput{suffix}"),
            format!("Achieved throughput{at}"),
            "Ops per second in each interval (by intended start, every outcome) against the \
             target rate (dashed grey). A line below the target means the system fell behind."
                .into(),
            (1200, 420),
            |root| throughput(root, level),
        )?);
    }
    if let Some(crate::scenario::Sweep::Orders(_)) = &results.scenario.sweep {
        out.push(plot(
            "price-change".into(),
            "Does a price change grow with the shop's history? p99 against orders".into(),
            "change_price p99 (left) and read p99 (right) of each backend at each point of the \
             orders sweep: the same load on a dataset with more and more historical orders. A \
             backend that rewrites every historical order line of a product on its price change \
             climbs on the left."
                .into(),
            (1200, 460),
            |root| price_change(root, results, &levels),
        )?);
    }
    let sweep = results.scenario.sweep.is_some();
    let orders_sweep = matches!(results.scenario.sweep, Some(Sweep::Orders(_)));
    let size_sweep = match &results.scenario.sweep {
        Some(Sweep::Size { size, .. }) => Some(size.as_str()),
        _ => None,
    };
    out.push(plot(
        "load".into(),
        match size_sweep {
            Some(size) => format!("Does a cost grow with the dataset? p99 against {size}"),
            None => "Do reads hurt writes? p99 against read load".into(),
        },
        if let Some(size) = size_sweep {
            format!(
                "Write p99 (left) and read p99 (right) of each backend at each point of the \
                 sweep of the dataset's {size}: the same load on a larger dataset. A backend \
                 whose lines climb as the dataset grows pays for its size on every op."
            )
        } else if orders_sweep {
            "Write p99 (left) and read p99 (right) of each backend at each point of the orders \
             sweep: the same load on a longer order history. A backend whose lines climb as the \
             history grows pays for that history on every op."
                .into()
        } else if sweep {
            "Write p99 (left) and read p99 (right) of each backend at each point of the read-load \
             sweep. A backend whose write line climbs as reads grow pays for its reads with its \
             writes."
                .into()
        } else {
            "Write p99 (left) and read p99 (right) of each backend at the one read level this \
             scenario ran; add a [sweep] (read_rates or readers) to see the curve."
                .into()
        },
        (1200, 460),
        |root| load(root, results, &levels),
    )?);
    Ok(out)
}

fn plot(
    name: String,
    title: String,
    caption: String,
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> DrawResult,
) -> Result<Plot, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let done = root
            .fill(&WHITE)
            .map_err(|e| Box::new(e) as Box<dyn Error>)
            .and_then(|_| draw(&root))
            .and_then(|_| root.present().map_err(|e| Box::new(e) as Box<dyn Error>));
        if let Err(e) = done {
            return Err(PlotError {
                name,
                message: e.to_string(),
            });
        }
    }
    Ok(Plot {
        name,
        title,
        caption,
        svg,
    })
}

/// `-reads-200` / `-readers-4` for a sweep point, `` without one.
pub fn level_suffix(point: Option<&SweepPoint>) -> String {
    match point {
        None => String::new(),
        Some(SweepPoint::ReadRate(r)) => format!("-reads-{}", trim_num(*r)),
        Some(SweepPoint::Readers(n)) => format!("-readers-{n}"),
        Some(SweepPoint::Orders(n)) => format!("-orders-{n}"),
        Some(SweepPoint::Size { size, value }) => format!("-{size}-{value}"),
    }
}

fn level_title(point: Option<&SweepPoint>, multi: bool) -> String {
    match point {
        Some(p) if multi => format!(" at {}", p.label()),
        Some(p) => format!(" ({})", p.label()),
        None => String::new(),
    }
}

fn trim_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn op(run: &BackendRun, key: MetricKey) -> Option<&LatencyStats> {
    run.metrics
        .op(key)
        .filter(|o| o.latency.count > 0)
        .map(|o| &o.latency)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// `(x, ms)` points of a spectrum: x = log10(1 / (1 - p)), the HdrHistogram axis. The
/// `p = 100 %` point (infinitely far right) is dropped, as HdrHistogram's plotter does.
pub fn spectrum_points(s: &LatencyStats) -> Vec<(f64, f64)> {
    s.spectrum
        .iter()
        .filter(|(p, _)| *p < 100.0)
        .map(|&(p, v)| ((1.0 / (1.0 - p / 100.0)).log10(), ms(v).max(0.001)))
        .collect()
}

/// Label of an x position on the percentile axis: 0 → `0%`, 1 → `90%`, 2 → `99%`, ...
fn pct_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    if (x - x.round()).abs() < 1e-9 {
        let k = x.round() as i32;
        if k <= 0 {
            return "0%".into();
        }
        // 90, 99, 99.9, ...
        let decimals = (k - 2).max(0) as usize;
        return format!("{p:.decimals$}%");
    }
    format!("{p:.1}%")
}

/// A short number for axis labels: `0.5`, `2`, `150`, `1.2k`.
fn num_label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        let s = format!("{v:.1}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Log-axis bounds covering `values` (ms): the top is a whole decade at least `headroom` times
/// the largest value, the bottom the largest 1, 2 or 5 × 10^k at or below the smallest value
/// and at most a tenth of the top (so the axis carries at least two labelled decades).
fn log_bounds_with(values: impl IntoIterator<Item = f64>, headroom: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0_f64);
    for v in values {
        if v.is_finite() && v > 0.0 {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() || hi <= 0.0 {
        return (0.1, 10.0);
    }
    // A little room below the smallest value, so points do not sit on the axis.
    let lo = lo / 1.25;
    let decade = 10f64.powf(lo.log10().floor());
    let lo = [5.0, 2.0, 1.0]
        .iter()
        .map(|m| m * decade)
        .find(|b| *b <= lo * (1.0 + 1e-12))
        .unwrap_or(decade);
    let mut hi = 10f64.powf((hi * headroom.max(1.0)).log10().ceil());
    if hi <= lo {
        hi = 10f64.powf(lo.log10().floor() + 1.0);
    }
    // At least a decade, so the axis carries at least two labelled decades, not one label.
    (lo.min(hi / 10.0), hi)
}

fn log_bounds(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    log_bounds_with(values, 1.0)
}

/// Intervals long enough to plot (a last partial interval of a few ms would show as a drop).
fn full_intervals(run: &BackendRun) -> impl Iterator<Item = &IntervalStats> {
    let min = run.metrics.interval_seconds * 0.5;
    run.metrics
        .intervals
        .iter()
        .filter(move |i| i.duration_s >= min && i.duration_s > 0.0)
}

/// Line width of the `j`-th of `n` series drawn: earlier ones wider, so lines lying on top of
/// each other stay visible as stripes.
fn layered_width(j: usize, n: usize) -> u32 {
    2 + 2 * (n.saturating_sub(1).saturating_sub(j)) as u32
}

fn line_style(c: RGBColor, width: u32) -> ShapeStyle {
    ShapeStyle {
        color: c.to_rgba(),
        filled: false,
        stroke_width: width,
    }
}

fn no_data(area: &Area, title: &str, what: &str) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        title.to_string(),
        (12, 8),
        (FONT, 17).into_font().color(&BLACK),
    ))?;
    area.draw(&Text::new(
        what.to_string(),
        (w as i32 / 2 - 60, h as i32 / 2),
        (FONT, 14).into_font().color(&TARGET),
    ))?;
    Ok(())
}

/// The latency charts' frame: x from 0 to `xmax`, a log y axis spanning the series' values,
/// the common caption and margins.
fn log_y_chart<'a, 'b>(
    area: &'a Area<'b>,
    title: &str,
    xmax: f64,
    series: &[&(BackendKind, Vec<(f64, f64)>)],
) -> Result<LogYChart<'a, 'b>, Box<dyn Error>> {
    let (ylo, yhi) = log_bounds(series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)));
    Ok(ChartBuilder::on(area)
        .caption(title, (FONT, 17))
        .margin(10)
        .margin_right(LEGEND_W)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(0f64..xmax, (ylo..yhi).log_scale())?)
}

type LogYChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, LogCoord<f64>>,
>;

/// A percentile-spectrum chart: one line per `(backend, points)`.
fn spectrum_chart(
    area: &Area,
    title: &str,
    series: &[(BackendKind, Vec<(f64, f64)>)],
) -> DrawResult {
    let series: Vec<_> = series.iter().filter(|(_, p)| p.len() >= 2).collect();
    if series.is_empty() {
        return no_data(area, title, "no samples");
    }
    let xmax_data = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(0.0_f64, f64::max);
    let xmax = xmax_data.ceil().clamp(2.0, 6.0);
    let mut chart = log_y_chart(area, title, xmax, &series)?;
    chart
        .configure_mesh()
        .x_labels(xmax as usize + 1)
        .x_label_formatter(&|x| pct_label(*x))
        .y_labels(5)
        .y_label_formatter(&|y| num_label(*y))
        .x_desc("percentile (log scale of 1/(1-p))")
        .y_desc("latency (ms, log scale)")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    let mut legend = Vec::new();
    for (kind, points) in &series {
        let c = backend_rgb(*kind);
        chart.draw_series(LineSeries::new(points.iter().copied(), line_style(c, 2)))?;
        legend.push((kind.name().to_string(), Swatch::Line(c)));
    }
    draw_legend(area, &legend)?;
    Ok(())
}

fn write_spectrum(root: &Area, level: &Level) -> DrawResult {
    let series: Vec<_> = level
        .runs
        .iter()
        .filter_map(|r| op(r, MetricKey::Writes).map(|l| (r.backend, spectrum_points(l))))
        .collect();
    spectrum_chart(root, "all writes", &series)
}

/// The queries that ran at this level, the shop's in their canonical order.
fn queries_run(level: &Level) -> Vec<OpName> {
    crate::metrics::queries_run(level.runs.iter().map(|r| &r.metrics))
}

fn read_spectra(root: &Area, level: &Level) -> DrawResult {
    let mut panels: Vec<(String, MetricKey)> = queries_run(level)
        .into_iter()
        .map(|q| (q.to_string(), MetricKey::read_named(q)))
        .collect();
    panels.push(("all reads".into(), MetricKey::Reads));
    let cols = if panels.len() <= 2 { panels.len() } else { 3 };
    let rows = panels.len().div_ceil(cols);
    let areas = root.split_evenly((rows, cols));
    for ((title, key), area) in panels.iter().zip(areas.iter()) {
        let series: Vec<_> = level
            .runs
            .iter()
            .filter_map(|r| op(r, *key).map(|l| (r.backend, spectrum_points(l))))
            .collect();
        spectrum_chart(area, title, &series)?;
    }
    Ok(())
}

fn read_bars(root: &Area, level: &Level) -> DrawResult {
    let queries = queries_run(level);
    let runs: Vec<&BackendRun> = level.runs.clone();
    let values = runs.iter().flat_map(|r| {
        queries.iter().filter_map(move |q| {
            op(r, MetricKey::read_named(*q)).map(|l| [ms(l.p50_us), ms(l.p99_us)])
        })
    });
    let (ylo, yhi) = log_bounds(values.flatten());
    let nq = queries.len().max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption("p50 (solid) and p99 (light) per query", (FONT, 17))
        .margin(10)
        .margin_right(LEGEND_W)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(0f64..nq, (ylo..yhi).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(5)
        .y_label_formatter(&|y| num_label(*y))
        .x_desc("query")
        .y_desc("latency (ms, log scale)")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    let nb = runs.len().max(1) as f64;
    let slot = 0.8 / nb;
    let mut legend = Vec::new();
    for (j, run) in runs.iter().enumerate() {
        let c = backend_rgb(run.backend);
        let mut p99 = Vec::new();
        let mut p50 = Vec::new();
        for (i, q) in queries.iter().enumerate() {
            let Some(l) = op(run, MetricKey::read_named(*q)) else {
                continue;
            };
            let x0 = i as f64 + 0.1 + j as f64 * slot;
            let x1 = x0 + slot * 0.92;
            p99.push(Rectangle::new(
                [(x0, ylo), (x1, ms(l.p99_us).max(ylo))],
                c.mix(0.35).filled(),
            ));
            let pad = slot * 0.18;
            p50.push(Rectangle::new(
                [(x0 + pad, ylo), (x1 - pad, ms(l.p50_us).max(ylo))],
                c.filled(),
            ));
        }
        chart.draw_series(p99)?;
        chart.draw_series(p50)?;
        legend.push((run.backend.name().to_string(), Swatch::Bar(c)));
    }
    // Query names under their groups.
    let style = TextStyle::from((FONT, 14).into_font()).color(&BLACK).pos(
        plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ),
    );
    let plotting = chart.plotting_area();
    for (i, q) in queries.iter().enumerate() {
        let (px, py) = plotting.map_coordinate(&(i as f64 + 0.5, ylo));
        root.draw(&Text::new(q.to_string(), (px, py + 6), style.clone()))?;
    }
    draw_legend(root, &legend)?;
    Ok(())
}

/// How a legend entry shows its series.
#[derive(Debug, Clone, Copy)]
enum Swatch {
    Line(RGBColor),
    Dashed(RGBColor),
    Bar(RGBColor),
}

/// The legend every chart uses, drawn in the strip right of its plotting area that every
/// chart keeps free ([`LEGEND_W`], its right margin), so it never covers a data point.
/// `area`: what the chart was built on. (plotters' own legend is drawn inside the plotting
/// area: anything placed outside it is clamped to its edge.)
fn draw_legend(area: &Area, entries: &[(String, Swatch)]) -> DrawResult {
    if entries.is_empty() {
        return Ok(());
    }
    let (w, _) = area.dim_in_pixel();
    let (x, top, row) = (w as i32 - LEGEND_W as i32 + 2, 34, 17);
    let bottom = top + 6 + row * entries.len() as i32;
    let frame = [(x, top), (x + LEGEND_W as i32 - 12, bottom)];
    area.draw(&Rectangle::new(frame, WHITE.mix(0.85).filled()))?;
    area.draw(&Rectangle::new(frame, BLACK.mix(0.3)))?;
    let font = (FONT, 11).into_font().color(&BLACK);
    for (i, (label, swatch)) in entries.iter().enumerate() {
        let y = top + 3 + row * i as i32 + row / 2;
        match *swatch {
            Swatch::Line(c) => area.draw(&PathElement::new(
                vec![(x + 6, y), (x + 28, y)],
                line_style(c, 3),
            ))?,
            Swatch::Dashed(c) => {
                for x0 in [x + 6, x + 19] {
                    area.draw(&PathElement::new(
                        vec![(x0, y), (x0 + 9, y)],
                        line_style(c, 2),
                    ))?;
                }
            }
            Swatch::Bar(c) => area.draw(&Rectangle::new(
                [(x + 9, y - 6), (x + 25, y + 6)],
                c.filled(),
            ))?,
        }
        area.draw(&Text::new(label.clone(), (x + 34, y - 6), font.clone()))?;
    }
    Ok(())
}

fn mid(i: &IntervalStats) -> f64 {
    i.t_s + i.duration_s / 2.0
}

fn time_span(level: &Level) -> f64 {
    level
        .runs
        .iter()
        .flat_map(|r| full_intervals(r).map(|i| i.t_s + i.duration_s))
        .fold(1.0_f64, f64::max)
}

fn lag(root: &Area, level: &Level) -> DrawResult {
    let (left, right) = root.split_horizontally(root.dim_in_pixel().0 / 2);
    let runs: Vec<&&BackendRun> = level
        .runs
        .iter()
        .filter(|r| r.metrics.lag.count > 0)
        .collect();
    // Over time.
    // (backend, p99 points, p50 points)
    type Points = Vec<(f64, f64)>;
    let per_run: Vec<(BackendKind, Points, Points)> = runs
        .iter()
        .map(|r| {
            let iv: Vec<&IntervalStats> = full_intervals(r).filter(|i| i.lag_count > 0).collect();
            (
                r.backend,
                iv.iter()
                    .map(|i| (mid(i), ms(i.lag_p99_us).max(0.001)))
                    .collect(),
                iv.iter()
                    .map(|i| (mid(i), ms(i.lag_p50_us).max(0.001)))
                    .collect(),
            )
        })
        .collect();
    let (ylo, yhi) = log_bounds_with(
        per_run
            .iter()
            .flat_map(|(_, a, b)| a.iter().chain(b.iter()).map(|(_, y)| *y)),
        3.0,
    );
    let mut chart = ChartBuilder::on(&left)
        .caption("lag per 1 s interval", (FONT, 17))
        .margin(10)
        .margin_right(LEGEND_W)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(0f64..time_span(level), (ylo..yhi).log_scale())?;
    chart
        .configure_mesh()
        .y_labels(5)
        .y_label_formatter(&|y| num_label(*y))
        .x_label_formatter(&|x| num_label(*x))
        .x_desc("time since warm-up (s)")
        .y_desc("projection lag (ms, log scale)")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    let mut legend = Vec::new();
    for (kind, p99, p50) in &per_run {
        let c = backend_rgb(*kind);
        chart.draw_series(LineSeries::new(p99.iter().copied(), line_style(c, 2)))?;
        legend.push((format!("{} p99", kind.name()), Swatch::Line(c)));
        chart.draw_series(p99.iter().map(|p| Circle::new(*p, 3, c.filled())))?;
        chart.draw_series(DashedLineSeries::new(
            p50.iter().copied(),
            6,
            4,
            line_style(c, 2),
        ))?;
        legend.push((format!("{} p50", kind.name()), Swatch::Dashed(c)));
    }
    draw_legend(&left, &legend)?;
    // Distribution.
    let series: Vec<_> = runs
        .iter()
        .map(|r| (r.backend, spectrum_points(&r.metrics.lag)))
        .collect();
    spectrum_chart(&right, "lag percentiles (whole run)", &series)
}

fn throughput(root: &Area, level: &Level) -> DrawResult {
    let (left, right) = root.split_horizontally(root.dim_in_pixel().0 / 2);
    let span = time_span(level);
    for (area, title, is_write) in [(&left, "writes", true), (&right, "reads", false)] {
        let series: Vec<(BackendKind, Vec<(f64, f64)>)> = level
            .runs
            .iter()
            .map(|r| {
                (
                    r.backend,
                    full_intervals(r)
                        .map(|i| {
                            let n = if is_write { i.writes } else { i.reads };
                            (mid(i), n as f64 / i.duration_s)
                        })
                        .collect(),
                )
            })
            .collect();
        let target = level
            .runs
            .iter()
            .find_map(|r| {
                if is_write {
                    r.rates.write_target
                } else {
                    r.rates.read_target
                }
            })
            .filter(|t| *t > 0.0);
        let ymax = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
            .chain(target)
            .fold(1.0_f64, f64::max)
            * 1.25;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{title} per second"), (FONT, 17))
            .margin(10)
            .margin_right(LEGEND_W)
            .x_label_area_size(42)
            .y_label_area_size(62)
            .build_cartesian_2d(0f64..span, 0f64..ymax)?;
        chart
            .configure_mesh()
            .y_label_formatter(&|y| num_label(*y))
            .x_label_formatter(&|x| num_label(*x))
            .x_desc("time since warm-up (s)")
            .y_desc(format!("{title} (ops/s)"))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()?;
        let mut legend = Vec::new();
        if let Some(t) = target {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, t), (span, t)],
                8,
                5,
                line_style(TARGET, 2),
            ))?;
            legend.push((format!("target {}/s", trim_num(t)), Swatch::Dashed(TARGET)));
        }
        let n = series.len();
        for (j, (kind, points)) in series.iter().enumerate() {
            let c = backend_rgb(*kind);
            let width = layered_width(j, n);
            chart.draw_series(LineSeries::new(
                points.iter().copied(),
                line_style(c, width),
            ))?;
            legend.push((kind.name().to_string(), Swatch::Line(c)));
            chart.draw_series(
                points
                    .iter()
                    .map(|p| Circle::new(*p, 1 + width as i32, c.filled())),
            )?;
        }
        draw_legend(area, &legend)?;
    }
    Ok(())
}

/// x of a level on the load axis: the sweep point, or the achieved read rate without a sweep.
fn load_x(run: &BackendRun) -> f64 {
    match &run.sweep_point {
        Some(p) => p.x(),
        None => run.rates.read_achieved,
    }
}

fn load(root: &Area, results: &Results, levels: &[Level]) -> DrawResult {
    let x_desc = match levels.first().and_then(|l| l.point.as_ref()) {
        Some(SweepPoint::Readers(_)) => "concurrent readers (closed loop)".to_string(),
        Some(SweepPoint::ReadRate(_)) => "read load (target reads/s)".to_string(),
        Some(SweepPoint::Orders(_)) => "orders in the dataset".to_string(),
        Some(SweepPoint::Size { size, .. }) => format!("{size} in the dataset"),
        None => "read load (achieved reads/s)".to_string(),
    };
    p99_panels(
        root,
        results,
        levels,
        [
            (MetricKey::Writes, "write p99"),
            (MetricKey::Reads, "read p99"),
        ],
        &x_desc,
    )
}

/// `change_price` p99 (left) and read p99 (right) against the orders of an orders sweep.
fn price_change(root: &Area, results: &Results, levels: &[Level]) -> DrawResult {
    p99_panels(
        root,
        results,
        levels,
        [
            (
                MetricKey::write(crate::domain::CommandKind::ChangePrice),
                "change_price p99",
            ),
            (MetricKey::Reads, "read p99"),
        ],
        "historical orders in the dataset",
    )
}

/// Two panels, each one p99 per backend against the sweep's x.
fn p99_panels(
    root: &Area,
    results: &Results,
    levels: &[Level],
    panels: [(MetricKey, &str); 2],
    x_desc: &str,
) -> DrawResult {
    let (left, right) = root.split_horizontally(root.dim_in_pixel().0 / 2);
    let whole = matches!(
        levels.first().and_then(|l| l.point.as_ref()),
        Some(SweepPoint::Readers(_) | SweepPoint::Orders(_) | SweepPoint::Size { .. })
    );
    let x_label = move |x: &f64| {
        if whole && (x - x.round()).abs() > 1e-9 {
            String::new()
        } else {
            num_label(*x)
        }
    };
    let [(left_key, left_title), (right_key, right_title)] = panels;
    for (area, key, title) in [
        (&left, left_key, left_title),
        (&right, right_key, right_title),
    ] {
        let mut series: Vec<(BackendKind, Vec<(f64, f64)>)> = Vec::new();
        for kind in &results.scenario.backends {
            let mut points: Vec<(f64, f64)> = results
                .runs
                .iter()
                .filter(|r| r.backend == *kind)
                .filter_map(|r| op(r, key).map(|l| (load_x(r), ms(l.p99_us).max(0.001))))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            if !points.is_empty() {
                series.push((*kind, points));
            }
        }
        if series.is_empty() {
            no_data(area, title, "no samples")?;
            continue;
        }
        let xmax = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
            .fold(1.0_f64, f64::max)
            * 1.15;
        let series: Vec<_> = series.iter().collect();
        let mut chart = log_y_chart(area, title, xmax, &series)?;
        chart
            .configure_mesh()
            .y_labels(5)
            .y_label_formatter(&|y| num_label(*y))
            .x_label_formatter(&x_label)
            .x_desc(x_desc)
            .y_desc(format!("{title} (ms, log scale)"))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()?;
        let mut legend = Vec::new();
        for (kind, points) in &series {
            let c = backend_rgb(*kind);
            chart.draw_series(LineSeries::new(points.iter().copied(), line_style(c, 2)))?;
            legend.push((kind.name().to_string(), Swatch::Line(c)));
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 5, c.filled())))?;
        }
        draw_legend(area, &legend)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(pct_label(0.0), "0%");
        assert_eq!(pct_label(1.0), "90%");
        assert_eq!(pct_label(2.0), "99%");
        assert_eq!(pct_label(3.0), "99.9%");
        assert_eq!(pct_label(4.0), "99.99%");
    }

    #[test]
    fn log_bounds_end_on_a_decade() {
        assert_eq!(log_bounds([1.5, 7.0]), (1.0, 10.0));
        assert_eq!(log_bounds([0.7, 30.0]), (0.5, 100.0));
        assert_eq!(log_bounds([0.3, 30.0]), (0.2, 100.0));
        assert_eq!(log_bounds([2.2, 30.0]), (1.0, 100.0));
        // One value: still a decade, two labels.
        assert_eq!(log_bounds([10.0]), (1.0, 10.0));
        assert_eq!(log_bounds([7.0, 9.0]), (1.0, 10.0));
        assert_eq!(log_bounds_with([1.5, 7.0], 3.0), (1.0, 100.0));
        assert_eq!(log_bounds(std::iter::empty()), (0.1, 10.0));
    }

    /// The x of every `<text>` element of `svg` whose content is `label`.
    fn text_xs(svg: &str, label: &str) -> Vec<i32> {
        let mut xs = Vec::new();
        for (i, _) in svg.match_indices(&format!(">\n{label}\n</text>")) {
            let open = svg[..i].rfind("<text x=\"").expect("a text element");
            let x = &svg[open + 9..];
            xs.push(x[..x.find('"').unwrap()].parse().unwrap());
        }
        xs
    }

    #[test]
    fn legends_sit_outside_the_plotting_area() {
        let results: Results =
            serde_json::from_str(include_str!("../../reports/sample/results.json")).unwrap();
        let plots = plots(&results).unwrap();
        let mut seen = 0;
        for name in ["write-spectrum", "throughput", "load"] {
            let plot = plots.iter().find(|p| p.name == name).unwrap();
            let width: i32 = {
                let w = &plot.svg[plot.svg.find("width=\"").unwrap() + 7..];
                w[..w.find('"').unwrap()].parse().unwrap()
            };
            for run in &results.runs {
                for x in text_xs(&plot.svg, run.backend.name()) {
                    // Right of the plotting area of the chart it labels: in the last
                    // LEGEND_W pixels of that chart (a half of the figure for two panels).
                    let panel = if name == "write-spectrum" {
                        width
                    } else {
                        width / 2
                    };
                    let within = x.rem_euclid(panel);
                    assert!(
                        within >= panel - LEGEND_W as i32 - 10,
                        "{name}: legend label {} at x {x} lies over the plot",
                        run.backend.name()
                    );
                    seen += 1;
                }
            }
        }
        assert!(seen >= 3, "no legend labels found");
    }

    #[test]
    fn backend_colours_are_distinct() {
        let c: std::collections::BTreeSet<String> =
            BackendKind::all().into_iter().map(backend_hex).collect();
        assert_eq!(c.len(), BackendKind::all().len());
    }
}
