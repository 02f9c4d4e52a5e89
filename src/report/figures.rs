//! The report's figures, drawn by `plotters` into SVG strings: overlaid histograms, scatter plots
//! with their least-squares line, and line charts.

use std::ops::Range;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::ReportError;

const WIDTH: u32 = 420;
const HEIGHT: u32 = 280;

/// Okabe-Ito colours, distinguishable with every common colour-vision deficiency.
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
pub const GREY: RGBColor = RGBColor(120, 120, 120);
const GREEN: RGBColor = RGBColor(0, 158, 115);
const PURPLE: RGBColor = RGBColor(204, 121, 167);
const SERIES: [RGBColor; 5] = [BLUE, VERMILLION, GREEN, PURPLE, GREY];

fn draw_error<E: std::error::Error + Send + Sync>(
    error: plotters::drawing::DrawingAreaErrorKind<E>,
) -> ReportError {
    ReportError::Draw(error.to_string())
}

/// Equal-width bins over the pooled range of every group, the last bin closed; each group's
/// counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    pub edges: Vec<f64>,
    pub counts: Vec<Vec<usize>>,
}

pub fn bins(groups: &[&[f64]], bins: usize) -> Bins {
    let values = groups.iter().flat_map(|g| g.iter().copied());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo - 0.5, lo + 0.5)
    } else {
        (0.0, 1.0)
    };
    let width = (hi - lo) / bins as f64;
    // The last edge is the maximum itself, not lo + bins · width rounded.
    let edges: Vec<f64> = (0..bins)
        .map(|k| lo + width * k as f64)
        .chain([hi])
        .collect();
    let counts = groups
        .iter()
        .map(|group| {
            let mut counts = vec![0; bins];
            for &x in group.iter() {
                let k = (((x - lo) / width) as usize).min(bins - 1);
                counts[k] += 1;
            }
            counts
        })
        .collect();
    Bins { edges, counts }
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One chart as an SVG string: the title, the axes over `x` and `y` with their labels, what
/// `draw` adds, and the legend of the labelled series at `legend`.
fn chart(
    title: &str,
    (x_label, y_label): (&str, &str),
    (x, y): (Range<f64>, Range<f64>),
    legend: Option<SeriesLabelPosition>,
    draw: impl FnOnce(&mut Chart<'_, '_>) -> Result<(), ReportError>,
) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 13))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(50)
            .build_cartesian_2d(x, y)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc(x_label)
            .y_desc(y_label)
            .x_labels(6)
            .y_labels(5)
            .draw()
            .map_err(draw_error)?;
        draw(&mut chart)?;
        if let Some(position) = legend {
            chart
                .configure_series_labels()
                .position(position)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .draw()
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

/// Histograms of each group's share of its values per bin, overlaid, with a legend.
pub fn histograms(
    title: &str,
    x_label: &str,
    groups: &[(String, RGBColor)],
    binned: &Bins,
) -> Result<String, ReportError> {
    let shares: Vec<Vec<f64>> = binned
        .counts
        .iter()
        .map(|counts| {
            let total = counts.iter().sum::<usize>().max(1) as f64;
            counts.iter().map(|&c| c as f64 / total).collect()
        })
        .collect();
    let top = shares
        .iter()
        .flatten()
        .copied()
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.1;
    let (lo, hi) = (binned.edges[0], binned.edges[binned.edges.len() - 1]);
    chart(
        title,
        (x_label, "share of the group"),
        (lo..hi, 0.0..top),
        Some(SeriesLabelPosition::UpperLeft),
        |chart| {
            for ((label, colour), shares) in groups.iter().zip(&shares) {
                let colour = *colour;
                chart
                    .draw_series(shares.iter().enumerate().map(|(k, &share)| {
                        Rectangle::new(
                            [(binned.edges[k], 0.0), (binned.edges[k + 1], share)],
                            colour.mix(0.45).filled(),
                        )
                    }))
                    .map_err(draw_error)?
                    .label(label.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.mix(0.6).filled())
                    });
            }
            Ok(())
        },
    )
}

/// The range of `values` padded by 5 % on each side ([−1, 1] when they do not spread).
fn padded(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.05;
        lo - pad..hi + pad
    } else if lo.is_finite() {
        lo - 1.0..lo + 1.0
    } else {
        -1.0..1.0
    }
}

/// Points and the least-squares line (slope, intercept) given for all of them.
pub fn scatter(
    title: &str,
    labels: (&str, &str),
    points: &[(f64, f64)],
    line: Option<(f64, f64)>,
) -> Result<String, ReportError> {
    let x = padded(points.iter().map(|p| p.0));
    let y = padded(points.iter().map(|p| p.1));
    let ends = [x.start, x.end];
    chart(title, labels, (x, y), None, |chart| {
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 2, BLUE.mix(0.35).filled())),
            )
            .map_err(draw_error)?;
        if let Some((slope, intercept)) = line {
            chart
                .draw_series(LineSeries::new(
                    ends.map(|x| (x, intercept + slope * x)),
                    VERMILLION.stroke_width(2),
                ))
                .map_err(draw_error)?;
        }
        Ok(())
    })
}

/// One line per series, its points marked, with a legend.
pub fn lines(
    title: &str,
    labels: (&str, &str),
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<String, ReportError> {
    let x = padded(series.iter().flat_map(|(_, s)| s.iter().map(|p| p.0)));
    let y = padded(series.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)));
    chart(
        title,
        labels,
        (x, y),
        Some(SeriesLabelPosition::LowerRight),
        |chart| {
            for (k, (name, points)) in series.iter().enumerate() {
                let colour = SERIES[k % SERIES.len()];
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(draw_error)?;
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        colour.stroke_width(2),
                    ))
                    .map_err(draw_error)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 14, y)], colour.stroke_width(2))
                    });
            }
            Ok(())
        },
    )
}

/// A diverging colour for a score in [−scale, scale]: vermillion through white to blue (the
/// Okabe-Ito pair, as in the figures), as a CSS `rgb()`.
pub fn diverging(score: f64, scale: f64) -> String {
    let t = if scale > 0.0 {
        (score / scale).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let end = if t >= 0.0 { BLUE } else { VERMILLION };
    let a = t.abs();
    let mix = |c: u8| (255.0 + (f64::from(c) - 255.0) * a).round() as u8;
    format!("rgb({}, {}, {})", mix(end.0), mix(end.1), mix(end.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_count_every_value_once_with_the_maximum_in_the_last_bin() {
        let a = [0.0, 0.5, 1.0, 2.0];
        let b = [4.0, 3.9, 0.1];
        let binned = bins(&[&a, &b], 4);
        assert_eq!(binned.edges, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(binned.counts, vec![vec![2, 1, 1, 0], vec![1, 0, 0, 2]]);
    }

    #[test]
    fn diverging_scale_runs_from_vermillion_through_white_to_blue() {
        assert_eq!(diverging(0.0, 1.0), "rgb(255, 255, 255)");
        assert_eq!(diverging(2.0, 1.0), "rgb(0, 114, 178)");
        assert_eq!(diverging(-1.0, 1.0), "rgb(213, 94, 0)");
    }
}
