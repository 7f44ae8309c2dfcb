//! The SVG writer's ticks, labels and output (`cargo test --example vanishing_gradients`).

use super::*;

#[test]
fn linear_ticks_are_round_and_labelled_with_the_decimals_they_need() {
    let (at, step) = super::ticks(&(0.0..0.33), false);
    assert_eq!(step, 0.05);
    let labels: Vec<String> = at.iter().map(|&t| decimal(t, step)).collect();
    assert_eq!(
        labels,
        ["0.00", "0.05", "0.10", "0.15", "0.20", "0.25", "0.30"]
    );
    let (at, step) = super::ticks(&(0.0..101.0), false);
    assert_eq!(
        (at.len(), step, decimal(at[3], step)),
        (6, 20.0, "60".into())
    );
}

#[test]
fn log_ticks_are_decades_or_one_two_five_within_a_short_range() {
    // 1e-17 .. 1e-1: every second decade.
    let (at, step) = super::ticks(&(-17.2..-0.7), true);
    assert_eq!(step, 2.0);
    assert_eq!(at, [-16.0, -14.0, -12.0, -10.0, -8.0, -6.0, -4.0, -2.0]);
    // 0.4 .. 12: 0.5, 1, 2, 5, 10.
    let (at, _) = super::ticks(&(0.4f64.log10()..12f64.log10()), true);
    let values: Vec<String> = at
        .iter()
        .map(|t| format!("{:.0e}", 10f64.powf(*t)))
        .collect();
    assert_eq!(values, ["5e-1", "1e0", "2e0", "5e0", "1e1"]);
}

#[test]
fn a_figure_has_a_line_per_series_its_legend_and_leaves_out_what_a_log_axis_cannot_show() {
    let series = |label: &str, faint, points| Series {
        label: label.to_string(),
        color: PALETTE[0],
        faint,
        points,
    };
    let panel = Panel {
        title: "a <title> & more".to_string(),
        x_label: "t",
        y_label: "||dE/dh_t||",
        log_y: true,
        legend: Corner::LowerRight,
        series: vec![
            series(
                "kept",
                false,
                vec![(0.0, 1e-3), (1.0, 0.0), (2.0, f64::NAN), (3.0, 1.0)],
            ),
            series("faint", true, vec![(0.0, 1e-2), (3.0, 1e-1)]),
        ],
    };
    let path = std::env::temp_dir().join(format!("plot-test-{}.svg", std::process::id()));
    figure(&path, (400, 300), (1, 1), &[panel]).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains(">a &lt;title&gt; &amp; more</text>"));
    let lines: Vec<&str> = svg.lines().filter(|l| l.starts_with("<polyline")).collect();
    assert_eq!(lines.len(), 2);
    // The zero and the NaN are left out: two points remain.
    let points = lines[0].split("points=\"").nth(1).unwrap();
    assert_eq!(points.split(' ').count(), 2, "{}", lines[0]);
    assert!(lines[0].contains("stroke-width=\"2\""));
    assert!(lines[1].contains("stroke-width=\"1\" stroke-opacity=\"0.45\""));
    for label in [
        ">kept</text>",
        ">faint</text>",
        ">1e-3</text>",
        ">1e0</text>",
        ">t</text>",
    ] {
        assert!(svg.contains(label), "no {label}");
    }
}
