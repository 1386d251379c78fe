//! An SVG picture of a run, drawn with plotters: how many members each
//! live node does not see Alive over time (so 3 crashes of 300 show as a
//! step to 3, not a dent in 0..300), with the fault windows shaded, and the
//! distribution of crash-to-Failed-everywhere latencies.

use std::fmt;
use std::time::Duration;

use plotters::prelude::*;

use crate::checks::{DepartureKind, ViewSample};
use crate::sim::Simulation;
use crate::spec::Fault;

const W: u32 = 900;
const PANEL: u32 = 340;
/// Bins of the detection histogram.
const BINS: usize = 20;

/// Drawing the picture failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotError(String);

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "drawing the plot failed: {}", self.0)
    }
}

impl std::error::Error for PlotError {}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        PlotError(e.to_string())
    }
}

/// A line of the members panel: its name, colour and value.
type Series = (&'static str, RGBColor, fn(&ViewSample) -> f64);

/// The picture of `sim`, as SVG text.
pub fn svg(sim: &Simulation) -> Result<String, PlotError> {
    let samples = sim.checks().samples();
    let latencies: Vec<f64> = sim
        .checks()
        .departures()
        .iter()
        .filter(|d| d.kind == DepartureKind::Crash && !d.restarted)
        .filter_map(|d| d.all_gone.map(|t| (t - d.at).as_secs_f64()))
        .collect();
    let spec = sim.spec();
    let windows: Vec<(&str, Duration, Duration)> = spec
        .partition
        .iter()
        .map(|p| ("partition", p.start, p.end))
        .chain(spec.clog.iter().filter(|c| c.count > 0).map(|c| ("clog", c.start, c.end)))
        .collect();
    let marks: Vec<Duration> = spec
        .plan()
        .iter()
        .filter(|(_, f)| matches!(f, Fault::Crash(_) | Fault::Restart(_) | Fault::Join(_) | Fault::Leave(_)))
        .map(|(t, _)| *t)
        .collect();
    let crashed = sim.checks().departures().iter().any(|d| d.kind == DepartureKind::Crash);
    let height = if crashed { 2 * PANEL } else { PANEL + 40 };
    let title = format!("swim-sim {} seed {}: {} nodes", spec.scenario, spec.seed, spec.nodes);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (W, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(PANEL);
        // The join (everyone unseen at first) would dwarf a few crashes:
        // the panel starts once the join converged.
        let from = sim.convergence().map_or(0.0, |c| c.at.as_nanos() as f64 / 1e9);
        let first = samples.iter().position(|x| x.t >= from).unwrap_or(0);
        members_panel(&top, &samples[first..], &title, &windows, &marks)?;
        if crashed {
            histogram_panel(&bottom, &latencies)?;
        } else {
            bottom.draw(&Text::new(
                "nothing crashed: no detection histogram",
                (60, 12),
                ("sans-serif", 14).into_font().color(&BLACK),
            ))?;
        }
        root.present()?;
    }
    Ok(out)
}

fn members_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    samples: &[ViewSample],
    title: &str,
    windows: &[(&str, Duration, Duration)],
    marks: &[Duration],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let t_min = samples.first().map_or(0.0, |x| x.t);
    let t_max = samples.last().map_or(1.0, |x| x.t).max(t_min + 1.0);
    let series: [Series; 4] = [
        ("really not live", RGBColor(120, 120, 120), |x| f64::from(x.introduced - x.live.min(x.introduced))),
        ("most not seen (an observer)", RGBColor(214, 39, 40), |x| not_seen(x, x.min_alive_seen.into())),
        ("mean not seen", RGBColor(31, 119, 180), |x| not_seen(x, x.mean_alive_seen)),
        ("fewest not seen", RGBColor(44, 160, 44), |x| not_seen(x, x.max_alive_seen.into())),
    ];
    let y_max = samples.iter().flat_map(|x| series.iter().map(move |(_, _, f)| f(x))).fold(1.0_f64, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(t_min..t_max, 0.0..y_max)?;
    let x_desc = if t_min > 0.0 {
        format!("simulated seconds (from {t_min:.0} s, once the join converged)")
    } else {
        "simulated seconds".to_owned()
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("members not seen Alive, per observer")
        .y_labels((y_max.ceil() as usize + 1).min(11))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .max_light_lines(1)
        .draw()?;
    let shade = RGBColor(255, 165, 0).mix(0.25);
    for (i, (name, start, end)) in windows.iter().enumerate() {
        let (a, b) = (start.as_secs_f64().max(t_min), end.as_secs_f64().min(t_max));
        let rect = Rectangle::new([(a, 0.0), (b.max(a), y_max)], shade.filled());
        let drawn = chart.draw_series(std::iter::once(rect))?;
        if i == 0 || windows[..i].iter().all(|(n, _, _)| n != name) {
            drawn
                .label(format!("{name} in force"))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], shade.filled()));
        }
    }
    if !marks.is_empty() {
        let grey = RGBColor(160, 160, 160);
        chart
            .draw_series(
                marks
                    .iter()
                    .map(|t| t.as_secs_f64())
                    .filter(|t| (t_min..=t_max).contains(t))
                    .map(|t| PathElement::new(vec![(t, 0.0), (t, y_max)], grey.stroke_width(1))),
            )?
            .label("crash, restart, join or leave")
            .legend(move |(x, y)| PathElement::new(vec![(x + 10, y - 6), (x + 10, y + 6)], grey));
    }
    for (name, color, f) in series {
        chart
            .draw_series(LineSeries::new(samples.iter().map(|x| (x.t, f(x))), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Members introduced so far that an observer seeing `alive` members Alive does not see so.
fn not_seen(x: &ViewSample, alive: f64) -> f64 {
    (f64::from(x.introduced) - alive).max(0.0)
}

fn histogram_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    latencies: &[f64],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let max = latencies.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let width = max / BINS as f64;
    let mut counts = [0u32; BINS];
    for &l in latencies {
        counts[((l / width) as usize).min(BINS - 1)] += 1;
    }
    let c_max = counts.iter().copied().max().unwrap_or(0).max(1);
    let title = format!("crash to Failed at every live node: {} crashes", latencies.len());
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..max * 1.02, 0u32..c_max + 1)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("crashes")
        .max_light_lines(1)
        .x_label_formatter(&|v| format!("{v:.1}"))
        .draw()?;
    let blue = RGBColor(31, 119, 180);
    chart.draw_series(counts.iter().enumerate().filter(|(_, &c)| c > 0).map(|(i, &c)| {
        let x0 = width * i as f64;
        Rectangle::new([(x0, 0), (x0 + width, c)], blue.filled())
    }))?;
    Ok(())
}
