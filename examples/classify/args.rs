//! The command line: every flag and its accepted range, checked as it is parsed, so that a bad
//! value is refused before anything runs with a message naming the flag and what it accepts.

use clap::{Parser, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

#[path = "../common/flags.rs"]
mod flags;
use flags::{at_least_one, non_negative, positive, probability};

#[derive(Parser, Debug, Clone)]
#[command(
    about = "Classify the speaker of Japanese Vowels utterances with a many-to-one LSTM or GRU",
    allow_negative_numbers = true
)]
pub struct Args {
    /// The training split, a UEA `.ts` file [default: examples/data/japanese_vowels/
    /// JapaneseVowels_TRAIN.ts]
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// The test split, a UEA `.ts` file with the training split's dimensions and labels
    /// [default: examples/data/japanese_vowels/JapaneseVowels_TEST.ts]
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Recurrent cell
    #[arg(long, value_enum, default_value_t = CellArg::Gru)]
    pub cell: CellArg,
    /// Hidden units, at least 1
    #[arg(long, default_value_t = 64, value_parser = at_least_one::<usize>)]
    pub hidden: usize,
    /// A bidirectional model (the classifier reads both directions' final states)
    #[arg(long)]
    pub bidirectional: bool,
    /// Utterances per batch, at least 1 (mixed lengths, padded to the longest)
    #[arg(long, default_value_t = 16, value_parser = at_least_one::<usize>)]
    pub batch: usize,
    /// Adam's learning rate, positive
    #[arg(long, default_value_t = 3e-3, value_parser = positive)]
    pub lr: f64,
    /// Keep the learning rate at `--lr` instead of annealing it to 0 over the run's updates on
    /// a cosine (PyTorch's CosineAnnealingLR stepped every update)
    #[arg(long)]
    pub constant_lr: bool,
    /// The largest global gradient norm, positive (clipped above it)
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    pub clip: f64,
    /// Label smoothing of the cross-entropy, at least 0 and below 1
    #[arg(long, default_value_t = 0.1, value_parser = probability)]
    pub label_smoothing: f64,
    /// Gaussian noise of this standard deviation added to every standardised training value
    /// of every batch (augmentation; 0: none), at least 0
    #[arg(long, default_value_t = 0.3, value_parser = non_negative)]
    pub noise: f64,
    /// Passes over the training split, at least 1
    #[arg(long, default_value_t = 30, value_parser = at_least_one::<usize>)]
    pub epochs: usize,
    /// A few seconds' run for CI: 2 epochs of a model of 16 units on every fourth training
    /// utterance (every test utterance is still classified)
    #[arg(long)]
    pub quick: bool,
    /// Seed of the initial weights and of the order of the batches
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the trained model here (a checkpoint with the standardisation's statistics)
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Threads, at least 1 (default: every core)
    #[arg(long, value_parser = at_least_one::<usize>)]
    pub threads: Option<usize>,
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
        args.epochs = 2;
        args.hidden = 16;
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Result<Args, String> {
        parse_from(std::iter::once("classify").chain(flags.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_defaults_and_quick_parse() {
        let args = parse(&[]).unwrap();
        assert_eq!((args.hidden, args.batch, args.epochs), (64, 16, 30));
        let args = parse(&["--quick"]).unwrap();
        assert_eq!((args.hidden, args.epochs), (16, 2));
    }

    #[test]
    fn every_number_out_of_range_is_refused_by_name() {
        let cases = [
            ("--lr", "-1", "a positive number"),
            ("--clip", "0", "a positive number"),
            ("--noise", "-0.1", "a number of at least 0"),
            ("--label-smoothing", "1", "at least 0 and below 1"),
            ("--hidden", "0", "a whole number of at least 1"),
            ("--batch", "-3", "a whole number of at least 1"),
            ("--epochs", "0", "a whole number of at least 1"),
            ("--threads", "0", "a whole number of at least 1"),
        ];
        for (flag, value, range) in cases {
            let message = parse(&[flag, value]).expect_err("refused");
            let expected = format!("invalid value '{value}' for '{flag} <");
            assert!(message.contains(&expected), "{flag} {value}: {message}");
            let expected = format!("': must be {range}, got {value}\n");
            assert!(message.contains(&expected), "{flag} {value}: {message}");
        }
    }
}
