//! SVG plots of a scenario: end-to-end delay over time, buffer level over
//! time against the water marks, and the distribution of end-to-end delay.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

const SIZE: (u32, u32) = (900, 420);
const DELAY: RGBColor = RGBColor(31, 119, 180);
const MARK: RGBColor = RGBColor(214, 39, 40);
const TARGET: RGBColor = RGBColor(44, 160, 44);
const LOW: RGBColor = RGBColor(255, 127, 14);

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e}")
}

/// A range that holds every value with a margin (and is never empty).
fn span(values: impl Iterator<Item = f64>, extra: &[f64]) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for v in values
        .chain(extra.iter().copied())
        .filter(|v| v.is_finite())
    {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(0.05);
    (
        (lo - pad).max(if lo >= 0.0 { 0.0 } else { f64::MIN }),
        hi + pad,
    )
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One chart in the shared look: a white SVG, caption, labelled axes; `draw`
/// adds the series, then the legend is drawn and the file written.
fn plot<F>(
    path: &Path,
    title: &str,
    x: (f64, f64),
    y: (f64, f64),
    axes: (&str, &str),
    draw: F,
) -> Result<()>
where
    F: for<'a, 'b> FnOnce(&mut Chart<'a, 'b>) -> Result<()>,
{
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(axes.0)
        .y_desc(axes.1)
        .draw()
        .map_err(err)?;
    draw(&mut chart)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// A labelled line.
fn line(
    chart: &mut Chart<'_, '_>,
    points: impl IntoIterator<Item = (f64, f64)>,
    color: RGBColor,
    width: u32,
    label: String,
) -> Result<()> {
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(width)))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(width)));
    Ok(())
}

/// End-to-end delay of every frame against time, with the configured
/// latency, or with an adaptive latency's target over time (`targets`:
/// `(s, ms)` samples of `latency_target_us`; empty for a fixed latency).
pub fn delay_over_time(
    path: &Path,
    title: &str,
    points: &[(f64, f64)],
    latency_ms: f64,
    targets: &[(f64, f64)],
) -> Result<()> {
    let x = span(points.iter().map(|p| p.0), &[0.0]);
    let y = if targets.is_empty() {
        span(points.iter().map(|p| p.1), &[latency_ms, 0.0])
    } else {
        span(points.iter().chain(targets).map(|p| p.1), &[0.0])
    };
    let axes = ("time since media start (s)", "end-to-end delay (ms)");
    plot(path, title, x, y, axes, |chart| {
        if targets.is_empty() {
            let target = format!("configured latency {latency_ms} ms");
            line(
                chart,
                [(x.0, latency_ms), (x.1, latency_ms)],
                TARGET,
                1,
                target,
            )?;
        } else {
            line(
                chart,
                targets.iter().copied(),
                TARGET,
                2,
                "adaptive target latency (latency_target_us)".into(),
            )?;
        }
        line(
            chart,
            points.iter().copied(),
            DELAY,
            1,
            "audio frames, in playout order".into(),
        )
    })
}

/// Buffer level against time, with the low and high water marks.
pub fn buffer_over_time(
    path: &Path,
    title: &str,
    points: &[(f64, f64)],
    low_ms: f64,
    high_ms: f64,
) -> Result<()> {
    let x = span(points.iter().map(|p| p.0), &[0.0]);
    let y = span(points.iter().map(|p| p.1), &[0.0, low_ms, high_ms]);
    let axes = ("time since media start (s)", "buffered media (ms)");
    plot(path, title, x, y, axes, |chart| {
        for (v, name, color) in [
            (high_ms, "high-water mark", MARK),
            (low_ms, "low-water mark", LOW),
        ] {
            line(
                chart,
                [(x.0, v), (x.1, v)],
                color,
                1,
                format!("{name} {v} ms"),
            )?;
        }
        line(
            chart,
            points.iter().copied(),
            DELAY,
            2,
            "buffer level".into(),
        )
    })
}

/// Histogram of end-to-end delay (counts of frames per bin).
pub fn delay_histogram(path: &Path, title: &str, values: &[f64], latency_ms: f64) -> Result<()> {
    let (lo, hi) = span(values.iter().copied(), &[latency_ms]);
    let bins = 80usize;
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u64; bins];
    for &v in values.iter().filter(|v| v.is_finite()) {
        let i = (((v - lo) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    plot(
        path,
        title,
        (lo, hi),
        (0.0, top),
        ("end-to-end delay (ms)", "frames"),
        |chart| {
            chart
                .draw_series(
                    counts
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| **c > 0)
                        .map(|(i, &c)| {
                            let x0 = lo + i as f64 * width;
                            Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], DELAY.filled())
                        }),
                )
                .map_err(err)?
                .label(format!("{} frames", values.len()))
                .legend(|(x, y)| Rectangle::new([(x, y - 4), (x + 12, y + 4)], DELAY.filled()));
            let target = format!("configured latency {latency_ms} ms");
            line(
                chart,
                [(latency_ms, 0.0), (latency_ms, top)],
                TARGET,
                1,
                target,
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_svg() {
        let dir = tempfile::tempdir().unwrap();
        let pts: Vec<(f64, f64)> = (0..500)
            .map(|i| (i as f64 / 100.0, 80.1 + (i % 7) as f64 * 0.01))
            .collect();
        let p = dir.path().join("d.svg");
        delay_over_time(&p, "t", &pts, 80.0, &[]).unwrap();
        let targets = [(0.0, 20.0), (5.0, 20.0), (5.5, 90.0), (20.0, 60.0)];
        let auto = dir.path().join("auto.svg");
        delay_over_time(&auto, "t", &pts, 500.0, &targets).unwrap();
        let svg = std::fs::read_to_string(&auto).unwrap();
        assert!(
            svg.contains("adaptive target latency"),
            "the target is drawn"
        );
        buffer_over_time(&dir.path().join("b.svg"), "t", &pts, 40.0, 160.0).unwrap();
        let v: Vec<f64> = pts.iter().map(|p| p.1).collect();
        delay_histogram(&dir.path().join("h.svg"), "t", &v, 80.0).unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(
            s.starts_with("<svg") && s.contains("</svg>"),
            "{}",
            &s[..80]
        );
        delay_histogram(&dir.path().join("e.svg"), "empty", &[], 80.0).unwrap();
    }
}
