//! A replayed node's membership view over time, built from the events it
//! output: every member it reported on, in the state its last event gave
//! (a member reaped from the table later is not announced by an event, so
//! it stays counted in its last state, failed or left).

use std::collections::BTreeMap;

use plotters::prelude::*;
use swim_core::{Address, Event, State};

use crate::plot::PlotError;

/// The view, changed by each member event.
#[derive(Debug, Clone)]
pub struct View<A> {
    states: BTreeMap<A, State>,
    counts: [u32; 4],
    pub(super) points: Points,
}

impl<A> Default for View<A> {
    fn default() -> Self {
        View { states: BTreeMap::new(), counts: [0; 4], points: Points::default() }
    }
}

/// The view's counts after each change, for a plot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Points {
    /// The plot's title.
    pub title: String,
    /// One point per change, in order.
    pub points: Vec<Point>,
}

/// Members by state at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Seconds since the node started.
    pub t: f64,
    /// Members alive, suspect, failed and left, in that order (the order of
    /// swim-core's `State`).
    pub counts: [u32; 4],
}

const STATES: [State; 4] = [State::Alive, State::Suspect, State::Dead, State::Left];

impl<A: Address> View<A> {
    /// Take the event `e`, output `t` seconds after the node started: if
    /// it is about a member, the view changes and the line describing the
    /// change is returned (the time, the event and the member, then the
    /// members by state).
    pub fn apply(&mut self, t: f64, e: &Event<A>) -> Option<String> {
        let m = e.member()?;
        if let Some(before) = self.states.insert(m.addr.clone(), m.state) {
            self.counts[before as usize] -= 1;
        }
        self.counts[m.state as usize] += 1;
        self.points.points.push(Point { t, counts: self.counts });
        let by_state: Vec<String> =
            STATES.iter().zip(self.counts).map(|(s, n)| format!("{} {n}", s.as_str())).collect();
        Some(format!(
            "{:>11}  {:<9} {:?} (incarnation {}, {} bytes of metadata)  members: {}",
            format!("+{t:.3} s"),
            e.name(),
            m.addr,
            m.incarnation,
            m.meta.len(),
            by_state.join(", ")
        ))
    }

    /// Members by state now: alive, suspect, failed, left.
    pub fn counts(&self) -> [u32; 4] {
        self.counts
    }
}

/// The view over time as SVG text: members by state, a step line per state.
pub fn svg(view: &Points) -> Result<String, PlotError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 380)).into_drawing_area();
        root.fill(&WHITE)?;
        let t_max = view.points.last().map_or(1.0, |p| p.t).max(1.0);
        let y_max = view.points.iter().flat_map(|p| p.counts).max().unwrap_or(0).max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(&view.title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..t_max * 1.02, 0.0..f64::from(y_max) * 1.1)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the node started")
            .y_desc("members, by the state this node gave them")
            .y_labels((y_max as usize + 1).min(11))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .max_light_lines(1)
            .draw()?;
        let colours = [RGBColor(44, 160, 44), RGBColor(255, 127, 14), RGBColor(214, 39, 40), RGBColor(120, 120, 120)];
        for (i, (state, colour)) in STATES.iter().zip(colours).enumerate() {
            // A step line: each count holds until the next change.
            let mut line = vec![(0.0, 0.0)];
            for p in &view.points {
                let before = line.last().map_or(0.0, |&(_, y)| y);
                line.push((p.t, before));
                line.push((p.t, f64::from(p.counts[i])));
            }
            let last = line.last().map_or(0.0, |&(_, y)| y);
            line.push((t_max, last));
            chart
                .draw_series(LineSeries::new(line, colour.stroke_width(2)))?
                .label(state.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(out)
}
