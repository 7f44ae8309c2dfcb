//! Forecast a time series with a recurrent network and set it against a seasonal-naive
//! baseline: weekly CO2 at Mauna Loa (1958-2001) or yearly sunspots (1700-2008).
//!
//! ```text
//! cargo run --release --example forecast                        # CO2, 20 epochs, seed 1
//! cargo run --release --example forecast -- --series sunspots --svg sunspots.svg
//! cargo run --release --example forecast -- --help              # every setting
//! cargo run --example forecast -- --quick                       # seconds, for CI
//! ```
//!
//! The data (shipped in `examples/data/`, public domain): the CO2 file has 59 empty weeks
//! among its 2284; they are filled by linear interpolation between the nearest known weeks
//! on either side (the rows are evenly spaced weeks; a gap at either end would be dropped, and
//! there is none). The model trains on the first 80% of the series and forecasts the last
//! 20%, one step ahead and `--horizon` steps ahead from its own forecasts; [`model`] has the
//! equations. The recipe (each a flag): a GRU of 32 units reading windows of a season and a
//! half, a linear head on its last state, mean squared error on the normalised series, the
//! global gradient norm clipped to 1, Adam at 3e-3, batches of 32 windows in an order
//! shuffled every epoch, 20 epochs. `benches/tasks/forecast_torch.py` is the same recipe in
//! PyTorch.
//!
//! The modules: [`args`] (the flags), [`csv`] (the reader and the gaps), [`model`] (windows,
//! training, forecasts, errors), [`svg`] (the plot).

mod args;
mod csv;
mod model;
mod svg;

use args::Args;
use recurrent::prelude::*;
use std::path::Path;

/// The example's errors, each a message naming what was expected.
type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The directory of the shipped data.
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data");

fn main() {
    let args = args::parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit());
    if let Err(err) = run(&args) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Res<()> {
    let (file, column, season, window, horizon) = args.series.spec();
    let (w, h) = (
        args.window.unwrap_or(window),
        args.horizon.unwrap_or(horizon),
    );
    let path = args
        .data
        .clone()
        .unwrap_or_else(|| Path::new(DATA).join(file));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let raw = csv::column(&path.display().to_string(), &text, column)?;
    let gaps = raw.iter().filter(|v| v.is_none()).count();
    let y = csv::fill_gaps(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
    if w < season && y.len() <= season {
        return Err(format!(
            "{}: {} values, not more than a season",
            path.display(),
            y.len()
        )
        .into());
    }
    let differenced = (args.difference).unwrap_or(args.series == args::SeriesArg::Co2);
    let series = model::Series::new(&y, w.max(season), differenced)?;
    let backend = match args.threads {
        Some(n) => Cpu::<f32>::with_threads(n),
        None => Cpu::new(),
    };
    let mut rnn = model::model(args, backend)?;
    println!(
        "{} values ({gaps} gaps filled), {} for training, {} to forecast; {:?} of {}, window {w}, \
         horizon {h}, season {season}{}, {} epochs, seed {}",
        y.len(),
        series.split,
        y.len() - series.split,
        rnn.config().kind(),
        args.hidden,
        if differenced { ", differences" } else { "" },
        args.epochs,
        args.seed
    );
    let (loss, seconds) = model::train(args, &mut rnn, &series, w)?;
    let f = model::forecast(&rnn, &series, &y, (w, h, season))?;
    println!(
        "seed {} rmse one-step {:.4}, {h}-step {:.4}, seasonal-naive {:.4}; last loss {loss:.5}, \
         {seconds:.2} s per epoch",
        args.seed, f.rmse_one, f.rmse_horizon, f.rmse_naive
    );
    if let Some(out) = &args.svg {
        write_svg(out, args, &y, series.split, season, &f)?;
    }
    Ok(())
}

/// The plot of the test part and a season before it.
fn write_svg(
    out: &Path,
    args: &Args,
    y: &[f64],
    split: usize,
    season: usize,
    f: &model::Forecasts,
) -> Res<()> {
    let from = split.saturating_sub(season);
    let (name, unit) = match args.series {
        args::SeriesArg::Co2 => ("Mauna Loa CO2 (ppm)", "week"),
        args::SeriesArg::Sunspots => ("yearly sunspots", "year"),
    };
    let lines = [
        svg::Line {
            name: "truth",
            colour: "black",
            start: from,
            values: &y[from..],
        },
        svg::Line {
            name: "one step ahead",
            colour: "#d62728",
            start: split,
            values: &f.one_step,
        },
        svg::Line {
            name: "fed back from the first test step",
            colour: "#1f77b4",
            start: split,
            values: &f.first_path,
        },
    ];
    let title = format!(
        "{name}: the last 20% forecast by a {:?} of {} (seed {})",
        args.cell, args.hidden, args.seed
    );
    let x_label = format!("{unit} (index in the series; training ends at {split})");
    std::fs::write(out, svg::chart(&title, &x_label, &lines))
        .map_err(|e| format!("--svg {}: {e}", out.display()))?;
    Ok(())
}
