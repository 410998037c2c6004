//! The chart of a comparison, as SVG and PNG: wall time (left) and speedup (right) against
//! parallel units on log axes, one colour per series — measured medians with their min-max
//! range, and the fitted USL curve dashed in the same colour.
//!
//! Text is drawn with a TTF shipped in the repository (`cli/assets/DejaVuSans.ttf`) through
//! plotters' `ab_glyph` feature, so no system fontconfig or freetype is needed.

use super::report::CompareReport;
use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// DejaVu Sans (Bitstream Vera licence, see `cli/assets/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The family name plotters looks the font up by.
const FAMILY: &str = "sans-serif";
/// Pixels of the whole chart (two panels side by side).
const SIZE: (u32, u32) = (1400, 620);
/// Points per fitted curve.
const CURVE_POINTS: usize = 80;
/// Tableau 10: distinguishable on white, unlike a rainbow palette's yellows.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// A fitted curve is drawn this far beyond its series' largest measured units, no further:
/// far extrapolations are for the table, with a warning, not for the eye.
const CURVE_REACH: f64 = 2.0;

/// Registers the shipped font with plotters; idempotent.
pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            tracing::warn!("the shipped chart font did not load; chart text may be missing");
        }
    });
}

/// The chart as an SVG document.
///
/// # Errors
/// Drawing failed (plotters reports backend errors).
pub(crate) fn svg(report: &CompareReport) -> anyhow::Result<String> {
    register_font();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        draw(&root, report).map_err(|e| anyhow!("cannot draw the SVG chart: {e}"))?;
        root.present()
            .map_err(|e| anyhow!("cannot draw the SVG chart: {e}"))?;
    }
    Ok(text)
}

/// Writes the chart as a PNG file.
///
/// # Errors
/// Drawing or encoding failed.
pub(crate) fn png(report: &CompareReport, path: &Path) -> anyhow::Result<()> {
    register_font();
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    draw(&root, report).map_err(|e| anyhow!("cannot draw the PNG chart: {e}"))?;
    root.present()
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// One drawable series: colour, label, measured (units, median, min, max, speedup), fit.
struct Line {
    colour: RGBColor,
    label: String,
    cells: Vec<(f64, f64, f64, f64, f64)>,
    fitted: Option<(f64, f64)>,
}

fn lines(report: &CompareReport) -> Vec<Line> {
    report
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| Line {
            colour: COLOURS[i % COLOURS.len()],
            // The fit error beside the name: a curve that misses its points by 10 % or more is
            // a rough guide, and the reader should know it from the chart alone.
            label: match s.fit.usl_rms_error {
                Some(error) => format!("{} (USL fit error {:.0}%)", s.name, error * 100.0),
                None => s.name.clone(),
            },
            cells: s
                .cells
                .iter()
                .filter(|c| c.wall_s_median > 0.0)
                .map(|c| {
                    (
                        f64::from(c.units),
                        c.wall_s_median,
                        c.wall_s_min,
                        c.wall_s_max,
                        c.speedup,
                    )
                })
                .collect(),
            fitted: s.fit.usl_sigma.zip(s.fit.usl_kappa),
        })
        .collect()
}

impl Line {
    /// Where this series' fitted curve is drawn: 1 to a little past its last cell.
    fn reach(&self, max_units: f64) -> f64 {
        let own = self.cells.iter().map(|c| c.0).fold(1.0, f64::max);
        (own * CURVE_REACH).min(max_units * 1.15)
    }
}

fn units_label(units: &f64) -> String {
    format!("{units:.0}")
}

fn seconds_label(seconds: &f64) -> String {
    if *seconds >= 10.0 {
        format!("{seconds:.0}")
    } else if *seconds >= 1.0 {
        format!("{seconds:.1}")
    } else {
        format!("{seconds:.3}")
    }
}

/// 1-2-5 steps (0.01, 0.02, 0.05, 0.1, ...) between `low` and `high`: labels a log axis
/// that spans less than a decade, where plotters would label only powers of ten.
fn one_two_five(low: f64, high: f64) -> Vec<f64> {
    let mut points = Vec::new();
    let mut decade = 10f64.powf(low.log10().floor());
    while decade <= high {
        for step in [1.0, 2.0, 5.0] {
            let value = decade * step;
            if value >= low && value <= high {
                points.push(value);
            }
        }
        decade *= 10.0;
    }
    points
}

/// 1, 2, 4, ... up to `max`: the unit counts people try, labelled on the x axis.
fn powers_of_two(max: f64) -> Vec<f64> {
    std::iter::successors(Some(1.0), |v| Some(v * 2.0))
        .take_while(|v| *v <= max)
        .collect()
}

/// `count` log-spaced values from 1 to `max`.
fn log_space(max: f64, count: usize) -> Vec<f64> {
    (0..count)
        .map(|i| max.powf(i as f64 / (count - 1) as f64))
        .collect()
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &CompareReport,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let title = format!(
        "{} x {} items on {} — baseline 1 process x sequential {:.3} s",
        report.workload, report.items, report.target, report.baseline_wall_s
    );
    let root = root.titled(&title, (FAMILY, 22).into_font())?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    let lines = lines(report);
    let max_units = lines
        .iter()
        .flat_map(|l| l.cells.iter().map(|c| c.0))
        .fold(2.0, f64::max);
    draw_wall(&left, &lines, max_units, report.baseline_wall_s)?;
    draw_speedup(&right, &lines, max_units)
}

fn draw_wall<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lines: &[Line],
    max_units: f64,
    baseline: f64,
) -> DrawResult<DB> {
    let (mut low, mut high) = (f64::INFINITY, 0.0f64);
    for c in lines.iter().flat_map(|l| &l.cells) {
        low = low.min(c.2);
        high = high.max(c.3);
    }
    if !low.is_finite() || low <= 0.0 {
        (low, high) = (0.001, 1.0);
    }
    let mut chart = ChartBuilder::on(area)
        .caption("wall time (median, min-max)", (FAMILY, 18))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (1.0..max_units * 1.15)
                .log_scale()
                .with_key_points(powers_of_two(max_units * 1.15)),
            (low / 1.3..high * 1.3)
                .log_scale()
                .with_key_points(one_two_five(low / 1.3, high * 1.3)),
        )?;
    chart
        .configure_mesh()
        .x_desc("parallel units (processes x concurrency)")
        .y_desc("seconds")
        .x_label_formatter(&units_label)
        .y_label_formatter(&seconds_label)
        .light_line_style(WHITE)
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 15))
        .draw()?;
    for line in lines {
        let style = line.colour.stroke_width(2);
        chart.draw_series(LineSeries::new(
            line.cells.iter().map(|c| (c.0, c.1)),
            style,
        ))?;
        chart.draw_series(
            line.cells
                .iter()
                .map(|c| Circle::new((c.0, c.1), 4, line.colour.filled())),
        )?;
        chart.draw_series(line.cells.iter().filter(|c| c.3 > c.2).map(|c| {
            PathElement::new(vec![(c.0, c.2), (c.0, c.3)], line.colour.stroke_width(1))
        }))?;
        if let Some((sigma, kappa)) = line.fitted {
            let curve: Vec<(f64, f64)> = log_space(line.reach(max_units), CURVE_POINTS)
                .into_iter()
                .map(|n| (n, baseline / concur_core::fit::usl_speedup(sigma, kappa, n)))
                .filter(|(_, wall)| *wall >= low / 1.3 && *wall <= high * 1.3)
                .collect();
            chart.draw_series(DashedLineSeries::new(
                curve,
                6,
                4,
                line.colour.stroke_width(1),
            ))?;
        }
    }
    Ok(())
}

fn draw_speedup<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lines: &[Line],
    max_units: f64,
) -> DrawResult<DB> {
    let top = lines
        .iter()
        .flat_map(|l| l.cells.iter().map(|c| c.4))
        .fold(1.0, f64::max)
        * 1.25;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "speedup over 1 process x sequential (dashed: USL fit)",
            (FAMILY, 18),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(
            (1.0..max_units * 1.15)
                .log_scale()
                .with_key_points(powers_of_two(max_units * 1.15)),
            0.0..top,
        )?;
    chart
        .configure_mesh()
        .x_desc("parallel units (processes x concurrency)")
        .y_desc("speedup")
        .x_label_formatter(&units_label)
        .light_line_style(WHITE)
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 15))
        .draw()?;
    // Perfect scaling, clipped to the plot.
    let ideal: Vec<(f64, f64)> = log_space(max_units.min(top), CURVE_POINTS)
        .into_iter()
        .map(|n| (n, n))
        .collect();
    chart
        .draw_series(DashedLineSeries::new(
            ideal,
            3,
            5,
            BLACK.mix(0.5).stroke_width(1),
        ))?
        .label("ideal (speedup = units)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    for line in lines {
        let colour = line.colour;
        chart
            .draw_series(LineSeries::new(
                line.cells.iter().map(|c| (c.0, c.4)),
                colour.stroke_width(2),
            ))?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(
            line.cells
                .iter()
                .map(|c| Circle::new((c.0, c.4), 4, colour.filled())),
        )?;
        if let Some((sigma, kappa)) = line.fitted {
            let curve: Vec<(f64, f64)> = log_space(line.reach(max_units), CURVE_POINTS)
                .into_iter()
                .map(|n| (n, concur_core::fit::usl_speedup(sigma, kappa, n)))
                .filter(|(_, s)| *s <= top)
                .collect();
            chart.draw_series(DashedLineSeries::new(curve, 6, 4, colour.stroke_width(1)))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FAMILY, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
}
