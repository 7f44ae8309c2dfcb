//! A small SVG line chart written by hand: the truth, the one-step forecasts and the fed-back
//! forecast from the first test origin, over the test part and a season of context before it.

use std::fmt::Write;

/// One line of the chart: its name, colour, first x index and values.
pub struct Line<'a> {
    /// The legend's text.
    pub name: &'a str,
    /// An SVG colour.
    pub colour: &'a str,
    /// The index of the first value on the x axis.
    pub start: usize,
    /// The values.
    pub values: &'a [f64],
}

/// The SVG text of `lines` under `title`, 720 x 360, y from the values' range.
pub fn chart(title: &str, x_label: &str, lines: &[Line]) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 360.0, 60.0, 20.0, 30.0, 40.0);
    let x_min = lines.iter().map(|l| l.start).min().unwrap_or(0) as f64;
    let x_max = (lines
        .iter()
        .map(|l| l.start + l.values.len())
        .max()
        .unwrap_or(1) as f64
        - 1.0)
        .max(x_min + 1.0);
    let all = lines.iter().flat_map(|l| l.values.iter().copied());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, lo + 1.0)
    };
    let px = |x: f64| left + (x - x_min) / (x_max - x_min) * (w - left - right);
    let py = |y: f64| top + (hi - y) / (hi - lo) * (h - top - bottom);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"18\" font-size=\"14\">{title}</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text>\n",
        w / 2.0,
        h - 8.0
    );
    let (x0, x1, y0, y1) = (px(x_min), px(x_max), py(lo), py(hi));
    let _ = writeln!(
        svg,
        "<path d=\"M{x0:.1},{y1:.1}V{y0:.1}H{x1:.1}\" stroke=\"black\" fill=\"none\"/>"
    );
    for (value, y) in [(lo, y0), (hi, y1), ((lo + hi) / 2.0, (y0 + y1) / 2.0)] {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{value:.1}</text>",
            left - 4.0,
            y + 4.0
        );
    }
    for (k, line) in lines.iter().enumerate() {
        let points: Vec<String> = (line.values.iter().enumerate())
            .map(|(i, &v)| format!("{:.1},{:.1}", px((line.start + i) as f64), py(v)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.2\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\">{}</text>",
            points.join(" "),
            line.colour,
            left + 10.0,
            top + 14.0 + 14.0 * k as f64,
            line.colour,
            line.name
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_one_polyline_per_line_inside_the_frame() {
        let values = [1.0, 3.0, 2.0];
        let lines = [
            Line {
                name: "truth",
                colour: "black",
                start: 0,
                values: &values,
            },
            Line {
                name: "model",
                colour: "red",
                start: 1,
                values: &values[..2],
            },
        ];
        let svg = chart("t", "week", &lines);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        // The first point at the left edge and the lowest value at the bottom of the plot.
        assert!(
            svg.contains("points=\"60.0,320.0 380.0,30.0 700.0,175.0\""),
            "{svg}"
        );
    }
}
