//! The example's figures: line charts written as SVG text by hand (a title, axes with labelled
//! ticks and a light grid, one polyline per series, a legend), so that no plotting crate is
//! compiled with every example and test. A logarithmic axis is drawn as a linear axis of
//! `log10(y)` with a tick at every decade.

use std::error::Error;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

/// A colour, as red, green and blue.
#[derive(Clone, Copy)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// A corner of the plotting area, for the legend: where the lines are not.
#[derive(Clone, Copy)]
pub enum Corner {
    UpperLeft,
    UpperRight,
    LowerRight,
}

/// One line of a chart.
pub struct Series {
    pub label: String,
    pub color: Rgb,
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
    pub legend: Corner,
    pub series: Vec<Series>,
}

/// The colours of the three cells, and of further lines.
pub const PALETTE: [Rgb; 6] = [
    Rgb(214, 39, 40),
    Rgb(31, 119, 180),
    Rgb(44, 160, 44),
    Rgb(148, 103, 189),
    Rgb(255, 127, 14),
    Rgb(23, 190, 207),
];

/// The colour of reference lines.
pub const GRAY: Rgb = Rgb(120, 120, 120);

/// Pixels: the panel's margin, the room for the title, for the x and for the y tick labels.
const MARGIN: f64 = 12.0;
const TITLE: f64 = 30.0;
const X_AREA: f64 = 36.0;
const Y_AREA: f64 = 64.0;

/// Draws `panels` on a `rows x cols` grid into an SVG file of `size` pixels.
pub fn figure(
    path: &Path,
    size: (u32, u32),
    (rows, cols): (usize, usize),
    panels: &[Panel],
) -> Result<(), Box<dyn Error>> {
    let (w, h) = (f64::from(size.0), f64::from(size.1));
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\">\n\
         <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n"
    );
    let (cell_w, cell_h) = (w / cols as f64, h / rows as f64);
    for (i, panel) in panels.iter().enumerate() {
        let (x0, y0) = ((i % cols) as f64 * cell_w, (i / cols) as f64 * cell_h);
        // The plotting area inside the panel's cell.
        let area = Rect {
            left: x0 + MARGIN + Y_AREA,
            top: y0 + MARGIN + TITLE,
            right: x0 + cell_w - MARGIN,
            bottom: y0 + cell_h - MARGIN - X_AREA,
        };
        let title = (x0 + cell_w / 2.0, y0 + MARGIN + 18.0);
        text(&mut svg, title, 18, "middle", &panel.title);
        draw_panel(&mut svg, i, panel, &area);
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg)?;
    Ok(())
}

/// A rectangle in pixels, `top < bottom`.
struct Rect {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
}

/// The points of `series` as drawn: finite, and for a log axis positive and as `log10(y)`.
fn shown(series: &Series, log_y: bool) -> Vec<(f64, f64)> {
    let kept = series
        .points
        .iter()
        .filter(|&&(x, y)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0));
    kept.map(|&(x, y)| (x, if log_y { y.log10() } else { y }))
        .collect()
}

/// The axes, grid, lines and legend of one panel (the `index`-th, for its clip path's id).
fn draw_panel(svg: &mut String, index: usize, panel: &Panel, area: &Rect) {
    let lines: Vec<Vec<(f64, f64)>> = panel.series.iter().map(|s| shown(s, panel.log_y)).collect();
    let (x, y) = bounds(lines.iter().flatten(), panel.log_y);
    let map = Map { x, y, area };
    draw_axes(svg, index, panel, &map);
    for (series, points) in panel.series.iter().zip(&lines) {
        let list: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", map.px(x), map.py(y)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline clip-path=\"url(#area{index})\" fill=\"none\" {} points=\"{}\"/>",
            stroke(series),
            list.join(" ")
        );
    }
    legend(svg, panel, area);
}

/// Data coordinates to pixels: the ranges `x` and `y` onto `area`, y upwards.
struct Map<'a> {
    x: Range<f64>,
    y: Range<f64>,
    area: &'a Rect,
}

impl Map<'_> {
    fn px(&self, x: f64) -> f64 {
        let a = self.area;
        a.left + (x - self.x.start) / (self.x.end - self.x.start) * (a.right - a.left)
    }

    fn py(&self, y: f64) -> f64 {
        let a = self.area;
        a.bottom - (y - self.y.start) / (self.y.end - self.y.start) * (a.bottom - a.top)
    }
}

/// The grid with its tick labels, the frame (and its clip path) and the axes' names.
fn draw_axes(svg: &mut String, index: usize, panel: &Panel, map: &Map) {
    let a = map.area;
    let (x_ticks, x_step) = ticks(&map.x, false);
    for x in x_ticks {
        let (label, at) = (decimal(x, x_step), map.px(x));
        grid_line(svg, (at, a.top), (at, a.bottom));
        text(svg, (at, a.bottom + 16.0), 12, "middle", &label);
    }
    let (y_ticks, y_step) = ticks(&map.y, panel.log_y);
    for y in y_ticks {
        let label = match panel.log_y {
            true => format!("{:.0e}", 10f64.powf(y)),
            false => decimal(y, y_step),
        };
        grid_line(svg, (a.left, map.py(y)), (a.right, map.py(y)));
        text(svg, (a.left - 6.0, map.py(y) + 4.0), 12, "end", &label);
    }
    let (x, y, w, h) = (a.left, a.top, a.right - a.left, a.bottom - a.top);
    let rect = format!("x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\"");
    let _ = writeln!(svg, "<rect {rect} fill=\"none\" stroke=\"black\"/>");
    let _ = writeln!(
        svg,
        "<clipPath id=\"area{index}\"><rect {rect}/></clipPath>"
    );
    let below = (x + w / 2.0, a.bottom + 32.0);
    text(svg, below, 12, "middle", panel.x_label);
    let (yx, yy) = (a.left - Y_AREA + 12.0, y + h / 2.0);
    let _ = writeln!(
        svg,
        "<text x=\"{yx:.1}\" y=\"{yy:.1}\" font-size=\"12\" text-anchor=\"middle\" \
         transform=\"rotate(-90 {yx:.1} {yy:.1})\">{}</text>",
        escape(panel.y_label)
    );
}

/// The ranges that hold every (transformed) point, with a margin.
fn bounds<'a>(
    points: impl Iterator<Item = &'a (f64, f64)>,
    log_y: bool,
) -> (Range<f64>, Range<f64>) {
    let all = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    let (x0, x1, y0, y1) = points.fold(all, |(a, b, c, d), &(x, y)| {
        (a.min(x), b.max(x), c.min(y), d.max(y))
    });
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

/// Tick positions in `range`: about ten round numbers, steps of 1, 2 or 5 times a power of
/// ten; on a log axis (`decades`) whole decades, and 1, 2 and 5 in each decade when the range
/// spans less than two. With the step between them (0 for the latter).
fn ticks(range: &Range<f64>, decades: bool) -> (Vec<f64>, f64) {
    let span = range.end - range.start;
    if decades && span < 2.0 {
        let (first, last) = (range.start.floor() as i64, range.end.ceil() as i64);
        let all = (first..=last).flat_map(|k| [1.0, 2.0, 5.0].map(|m| k as f64 + f64::log10(m)));
        return (all.filter(|t| range.contains(t)).collect(), 0.0);
    }
    let raw = span / 10.0;
    let power = 10f64.powf(raw.log10().floor());
    let unit = [1.0, 2.0, 5.0].into_iter().find(|&m| m * power >= raw);
    let step = unit.unwrap_or(10.0) * power;
    let step = if decades { step.max(1.0).round() } else { step };
    let first = (range.start / step).ceil() as i64;
    let last = (range.end / step).floor() as i64;
    ((first..=last).map(|k| k as f64 * step).collect(), step)
}

/// `v` with as many decimals as ticks `step` apart need to differ (none from a step of 1).
fn decimal(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// The legend: a box in the panel's corner with a line sample and the label of each series.
fn legend(svg: &mut String, panel: &Panel, a: &Rect) {
    let rows = panel.series.len() as f64;
    let longest = panel.series.iter().map(|s| s.label.chars().count());
    // About 6.5 pixels a character at 12 pixels, and the line sample before the text.
    let w = 34.0 + 6.5 * longest.max().unwrap_or(0) as f64;
    let h = 8.0 + 16.0 * rows;
    let x = match panel.legend {
        Corner::UpperLeft => a.left + 10.0,
        Corner::UpperRight | Corner::LowerRight => a.right - 10.0 - w,
    };
    let y = match panel.legend {
        Corner::LowerRight => a.bottom - 10.0 - h,
        Corner::UpperLeft | Corner::UpperRight => a.top + 10.0,
    };
    let _ = writeln!(
        svg,
        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"white\" \
         fill-opacity=\"0.85\" stroke=\"black\" stroke-opacity=\"0.4\"/>"
    );
    for (i, series) in panel.series.iter().enumerate() {
        let row = y + 12.0 + 16.0 * i as f64;
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{row:.1}\" x2=\"{:.1}\" y2=\"{row:.1}\" {}/>",
            x + 6.0,
            x + 24.0,
            stroke(series)
        );
        text(svg, (x + 30.0, row + 4.0), 12, "start", &series.label);
    }
}

/// A series' stroke: 2 pixels, or 1 pixel at 45% opacity when faint.
fn stroke(series: &Series) -> String {
    let Rgb(r, g, b) = series.color;
    let (width, opacity) = if series.faint { (1, 0.45) } else { (2, 1.0) };
    format!("stroke=\"rgb({r},{g},{b})\" stroke-width=\"{width}\" stroke-opacity=\"{opacity}\"")
}

fn grid_line(svg: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64)) {
    let _ = writeln!(
        svg,
        "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"rgb(220,220,220)\"/>"
    );
}

fn text(svg: &mut String, (x, y): (f64, f64), size: u32, anchor: &str, content: &str) {
    let _ = writeln!(
        svg,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\">{}</text>",
        escape(content)
    );
}

/// `content` with XML's special characters escaped.
fn escape(content: &str) -> String {
    content
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
#[path = "plot_tests.rs"]
mod tests;
