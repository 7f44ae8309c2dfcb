//! The example's figures: line charts drawn by `plotters` straight to SVG (text is SVG text, so
//! no font is loaded).

use plotters::coord::Shift;
use plotters::prelude::*;
use std::error::Error;
use std::ops::Range;
use std::path::Path;

/// One line of a chart.
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    /// Drawn thin and light (e.g. "at initialisation") rather than thick.
    pub faint: bool,
    pub points: Vec<(f64, f64)>,
}

/// One chart of a figure.
pub struct Panel {
    pub title: String,
    pub x_label: &'static str,
    pub y_label: &'static str,
    /// A logarithmic y axis; points with `y <= 0` or not finite are left out.
    pub log_y: bool,
    /// Where the legend goes: where the lines are not.
    pub legend: SeriesLabelPosition,
    pub series: Vec<Series>,
}

/// The colours of the three cells, and of further lines.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// The colour of reference lines.
pub const GRAY: RGBColor = RGBColor(120, 120, 120);

/// Draws `panels` on a `rows x cols` grid into an SVG file of `size` pixels.
pub fn figure(
    path: &Path,
    size: (u32, u32),
    (rows, cols): (usize, usize),
    panels: &[Panel],
) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, panel) in root.split_evenly((rows, cols)).iter().zip(panels) {
        // A log axis is drawn as a linear axis of log10(y), which labels every decade.
        let shown = |points: &[(f64, f64)]| -> Vec<(f64, f64)> {
            let kept = points
                .iter()
                .filter(|&&(_, y)| y.is_finite() && (!panel.log_y || y > 0.0));
            kept.map(|&(x, y)| (x, if panel.log_y { y.log10() } else { y }))
                .collect()
        };
        let all: Vec<(f64, f64)> = panel.series.iter().flat_map(|s| shown(&s.points)).collect();
        let (x, y) = bounds(&all, panel.log_y);
        draw(area, panel, x, y, shown)?;
    }
    root.present()?;
    Ok(())
}

/// The ranges that hold every (transformed) point, with a margin.
fn bounds(points: &[(f64, f64)], log_y: bool) -> (Range<f64>, Range<f64>) {
    let fold = |f: fn(&(f64, f64)) -> f64| {
        let extremes = (f64::INFINITY, f64::NEG_INFINITY);
        points
            .iter()
            .map(f)
            .fold(extremes, |(lo, hi), v| (lo.min(v), hi.max(v)))
    };
    let (x0, x1) = fold(|p| p.0);
    let (y0, y1) = fold(|p| p.1);
    if !x0.is_finite() {
        return (0.0..1.0, 0.0..1.0);
    }
    let x = x0..x1.max(x0 + 1.0);
    let y = match log_y {
        true => y0 - 0.5..(y1 + 0.5).max(y0 + 1.0),
        false => (y0.min(0.0))..(y1 * 1.05).max(y0 + 1e-9),
    };
    (x, y)
}

fn draw(
    area: &DrawingArea<SVGBackend, Shift>,
    panel: &Panel,
    x: Range<f64>,
    y: Range<f64>,
    shown: impl Fn(&[(f64, f64)]) -> Vec<(f64, f64)>,
) -> Result<(), Box<dyn Error>> {
    let log_y = panel.log_y;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label)
        .y_desc(panel.y_label)
        .y_labels(10)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| match log_y {
            true => format!("{:.0e}", 10f64.powf(*v)),
            false => format!("{v:.1}"),
        })
        .light_line_style(WHITE)
        .draw()?;
    for series in &panel.series {
        let points = shown(&series.points);
        let style = match series.faint {
            true => series.color.mix(0.45).stroke_width(1),
            false => series.color.stroke_width(2),
        };
        let legend = style;
        chart
            .draw_series(LineSeries::new(points, style))?
            .label(&series.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], legend));
    }
    chart
        .configure_series_labels()
        .position(panel.legend.clone())
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 12))
        .draw()?;
    Ok(())
}
