//! The command line: every flag and its accepted range, checked as it is parsed.

use clap::{Parser, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

#[path = "../common/flags.rs"]
mod flags;
use flags::{at_least_one, positive};

#[derive(Parser, Debug, Clone)]
#[command(
    about = "Forecast weekly Mauna Loa CO2 or yearly sunspots with a GRU or LSTM, against a \
             seasonal-naive baseline",
    allow_negative_numbers = true
)]
pub struct Args {
    /// The series, which sets the file, the column, the season and the defaults of `--window`
    /// and `--horizon`
    #[arg(long, value_enum, default_value_t = SeriesArg::Co2)]
    pub series: SeriesArg,
    /// Another CSV file holding the series' column (`co2` or `SUNACTIVITY`) [default: the
    /// shipped file in examples/data]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Model the differences `y_t - y_{t-1}` instead of the values [default: yes for co2
    /// (its trend), no for sunspots]
    #[arg(long)]
    pub difference: Option<bool>,
    /// Recurrent cell
    #[arg(long, value_enum, default_value_t = CellArg::Gru)]
    pub cell: CellArg,
    /// Hidden units, at least 1
    #[arg(long, default_value_t = 32, value_parser = at_least_one::<usize>)]
    pub hidden: usize,
    /// Past values the model reads per forecast, at least 1 [default: a season and a half,
    /// 78 weeks or 16 years]
    #[arg(long, value_parser = at_least_one::<usize>)]
    pub window: Option<usize>,
    /// Steps forecast ahead, each from the model's own earlier forecasts, at least 1
    /// [default: one season, 52 weeks or 11 years]
    #[arg(long, value_parser = at_least_one::<usize>)]
    pub horizon: Option<usize>,
    /// Windows per batch, at least 1
    #[arg(long, default_value_t = 32, value_parser = at_least_one::<usize>)]
    pub batch: usize,
    /// Adam's learning rate, positive
    #[arg(long, default_value_t = 3e-3, value_parser = positive)]
    pub lr: f64,
    /// The largest global gradient norm, positive
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    pub clip: f64,
    /// Passes over the training windows, at least 1
    #[arg(long, default_value_t = 20, value_parser = at_least_one::<usize>)]
    pub epochs: usize,
    /// A few seconds' run for CI: 1 epoch of a model of 8 units
    #[arg(long)]
    pub quick: bool,
    /// Seed of the initial weights and of the order of the batches
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the trained model here (a checkpoint with the normalisation's mean and deviation)
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Write the SVG plot of the forecasts against the truth here
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Threads, at least 1 (default: every core)
    #[arg(long, value_parser = at_least_one::<usize>)]
    pub threads: Option<usize>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesArg {
    /// Weekly CO2 at Mauna Loa, 1958-2001 (ppm); season 52 weeks
    Co2,
    /// Yearly sunspot activity, 1700-2008; season 11 years (the solar cycle's mean length)
    Sunspots,
}

impl SeriesArg {
    /// The shipped file, the column, the season, and the default window and horizon.
    pub fn spec(self) -> (&'static str, &'static str, usize, usize, usize) {
        match self {
            SeriesArg::Co2 => ("co2_weekly_mauna_loa.csv", "co2", 52, 78, 52),
            SeriesArg::Sunspots => ("sunspots_yearly.csv", "SUNACTIVITY", 11, 16, 11),
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellArg {
    Lstm,
    Gru,
}

/// Parses the command line (the program's name first).
pub fn parse_from<I, T>(argv: I) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut args = Args::try_parse_from(argv)?;
    if args.quick {
        args.epochs = 1;
        args.hidden = 8;
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Result<Args, String> {
        parse_from(std::iter::once("forecast").chain(flags.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_out_of_range_are_refused_by_name() {
        for (flag, value, range) in [
            ("--lr", "0", "a positive number"),
            ("--clip", "-1", "a positive number"),
            ("--window", "0", "a whole number of at least 1"),
            ("--horizon", "-2", "a whole number of at least 1"),
            ("--epochs", "0", "a whole number of at least 1"),
        ] {
            let message = parse(&[flag, value]).expect_err("refused");
            assert!(message.contains(&format!("'{flag} <")), "{message}");
            assert!(
                message.contains(&format!("must be {range}, got {value}")),
                "{message}"
            );
        }
        let args = parse(&["--quick", "--series", "sunspots"]).unwrap();
        assert_eq!((args.epochs, args.hidden, args.series.spec().2), (1, 8, 11));
    }
}
