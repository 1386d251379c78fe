//! An SVG picture of a run: the alive-member count nodes saw over time,
//! and the distribution of crash-detection latencies.

use std::fmt::Write as _;

use crate::checks::{DepartureKind, ViewSample};
use crate::sim::Simulation;

const W: f64 = 800.0;
const H: f64 = 300.0;
const PAD: f64 = 50.0;
/// Space above a panel's plot area for its title and y label.
const HEAD: f64 = 45.0;

/// The picture of `sim`, as SVG text.
pub fn svg(sim: &Simulation) -> String {
    let samples = sim.checks().samples();
    let latencies: Vec<f64> = sim
        .checks()
        .departures()
        .iter()
        .filter(|d| d.kind == DepartureKind::Crash && !d.restarted)
        .filter_map(|d| d.all_gone.map(|t| (t - d.at).as_secs_f64()))
        .collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{}" font-family="sans-serif" font-size="12">"#,
        2.0 * H + 20.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = format!("swim-sim {} seed {}: {} nodes", sim.spec().scenario, sim.spec().seed, sim.spec().nodes);
    members_panel(&mut s, samples, &title);
    histogram_panel(&mut s, &latencies, H + 20.0);
    s.push_str("</svg>\n");
    s
}

fn axes(s: &mut String, top: f64, title: &str, x_label: &str, y_label: &str, x_max: f64, y_max: f64) {
    let (x0, y0, x1, y1) = (PAD, top + H - PAD, W - 20.0, top + HEAD);
    let _ = writeln!(s, r#"<text x="{}" y="{}" font-size="14">{}</text>"#, PAD, top + 18.0, escape(title));
    let _ = writeln!(s, r#"<path d="M{x0},{y1} L{x0},{y0} L{x1},{y0}" stroke="black" fill="none"/>"#);
    let _ = writeln!(s, r#"<text x="{x1}" y="{}" text-anchor="end">{x_label} (max {x_max:.1})</text>"#, y0 + 30.0);
    let _ = writeln!(s, r#"<text x="{x0}" y="{}">{y_label} (max {y_max:.0})</text>"#, y1 - 6.0);
}

/// A line of the members panel: its name, colour and value.
type Series = (&'static str, &'static str, fn(&ViewSample) -> f64);

fn members_panel(s: &mut String, samples: &[ViewSample], title: &str) {
    let t_max = samples.last().map_or(1.0, |x| x.t).max(1.0);
    let y_max = samples.iter().map(|x| x.max_alive_seen.max(x.live)).max().unwrap_or(1).max(1) as f64;
    axes(s, 0.0, title, "simulated seconds", "alive members seen", t_max, y_max);
    let px = |t: f64| PAD + (W - 20.0 - PAD) * t / t_max;
    let py = |v: f64| (H - PAD) - (H - PAD - HEAD) * v / y_max;
    let series: [Series; 4] = [
        ("really live", "#999", |x| f64::from(x.live)),
        ("min seen", "#d62728", |x| f64::from(x.min_alive_seen)),
        ("mean seen", "#1f77b4", |x| x.mean_alive_seen),
        ("max seen", "#2ca02c", |x| f64::from(x.max_alive_seen)),
    ];
    for (i, (name, color, f)) in series.iter().enumerate() {
        let mut d = String::new();
        for (j, x) in samples.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1} ", if j == 0 { "M" } else { "L" }, px(x.t), py(f(x)));
        }
        let _ = writeln!(s, r#"<path d="{d}" stroke="{color}" fill="none" stroke-width="1.5"/>"#);
        let ly = HEAD + 15.0 + 15.0 * i as f64;
        let _ = writeln!(s, r#"<text x="{}" y="{ly}" fill="{color}">{name}</text>"#, W - 120.0);
    }
}

fn histogram_panel(s: &mut String, latencies: &[f64], top: f64) {
    let max = latencies.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    const BINS: usize = 20;
    let mut counts = [0u32; BINS];
    for &l in latencies {
        let b = ((l / max) * BINS as f64) as usize;
        counts[b.min(BINS - 1)] += 1;
    }
    let c_max = f64::from(counts.iter().copied().max().unwrap_or(0).max(1));
    let title = format!("crash to Failed at every live node: {} crashes", latencies.len());
    axes(s, top, &title, "seconds", "crashes", max, c_max);
    let bw = (W - 20.0 - PAD) / BINS as f64;
    for (i, &c) in counts.iter().enumerate() {
        let h = (H - PAD - HEAD) * f64::from(c) / c_max;
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#1f77b4"/>"##,
            PAD + bw * i as f64 + 1.0,
            top + H - PAD - h,
            bw - 2.0
        );
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
