//! The command line: every flag and its accepted range, checked as it is parsed, so that a bad
//! value is refused before anything runs with a message naming the flag and what it accepts.

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use std::ffi::OsString;
use std::path::PathBuf;

#[path = "../common/flags.rs"]
mod flags;
use flags::{at_least_one, decay_factor, positive, probability};

#[derive(Parser, Debug, Clone)]
#[command(
    about = "A word-level language model: PyTorch's word_language_model recipe (WikiText-2)",
    allow_negative_numbers = true
)]
pub struct Args {
    /// The training text, words split on whitespace (WikiText-2's test.txt in BENCHMARKS.md;
    /// WikiText-2 is not shipped: see the README). Needed unless --quick
    #[arg(long, required_unless_present = "quick")]
    pub train: Option<PathBuf>,
    /// The validation text, read the same way (WikiText-2's valid.txt). Needed unless --quick
    #[arg(long, required_unless_present = "quick")]
    pub valid: Option<PathBuf>,
    /// Embedding size (with tied weights, also the last layer's size), at least 1
    #[arg(long, default_value_t = 200, value_parser = at_least_one::<usize>)]
    pub emsize: usize,
    /// Hidden units per LSTM layer, at least 1
    #[arg(long, default_value_t = 200, value_parser = at_least_one::<usize>)]
    pub hidden: usize,
    /// LSTM layers, at least 1
    #[arg(long, default_value_t = 2, value_parser = at_least_one::<usize>)]
    pub layers: usize,
    /// Dropout on the embedding's output, between layers and before the decoder, at least 0
    /// and below 1
    #[arg(long, default_value_t = 0.2, value_parser = probability)]
    pub dropout: f64,
    /// Separate input and output word matrices (by default they are one, tied)
    #[arg(long)]
    pub untied: bool,
    /// SGD's initial learning rate, positive
    #[arg(long, default_value_t = 20.0, value_parser = positive)]
    pub lr: f64,
    /// The rate is multiplied by this after an epoch whose validation loss is not below the
    /// best so far, above 0 and at most 1
    #[arg(long, default_value_t = 0.25, value_parser = decay_factor)]
    pub anneal: f64,
    /// The largest global gradient norm, positive (clipped above it)
    #[arg(long, default_value_t = 0.25, value_parser = positive)]
    pub clip: f64,
    /// Passes over the training text, at least 1
    #[arg(long, default_value_t = 40, value_parser = at_least_one::<usize>)]
    pub epochs: usize,
    /// Parallel streams per training batch, at least 1
    #[arg(long, default_value_t = 20, value_parser = at_least_one::<usize>)]
    pub batch: usize,
    /// Steps per window of truncated backpropagation through time, at least 1
    #[arg(long, default_value_t = 35, value_parser = at_least_one::<usize>)]
    pub bptt: usize,
    /// Parallel streams when evaluating the validation text, at least 1
    #[arg(long, default_value_t = 10, value_parser = at_least_one::<usize>)]
    pub eval_batch: usize,
    /// A few seconds' run for CI: 1 epoch of a model of 2 layers of 32 units (unless --epochs,
    /// --emsize or --hidden say otherwise), on the shipped King James text (Genesis and Exodus,
    /// its last 10% of lines validating) unless --train and --valid are given
    #[arg(long)]
    pub quick: bool,
    /// Seed of the initial weights and of the dropout masks
    #[arg(long, default_value_t = 1111)]
    pub seed: u64,
    /// Write the model of the best validation loss here, with its vocabulary
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Threads, at least 1 (default: every core)
    #[arg(long, value_parser = at_least_one::<usize>)]
    pub threads: Option<usize>,
}

/// Parses the command line (the program's name first).
pub fn parse_from<I, T>(argv: I) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Args::command().try_get_matches_from(argv)?;
    let mut args = Args::from_arg_matches(&matches)?;
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    if args.quick {
        for (id, value, size) in [
            ("epochs", 1, &mut args.epochs),
            ("emsize", 32, &mut args.emsize),
            ("hidden", 32, &mut args.hidden),
        ] {
            if !given(id) {
                *size = value;
            }
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Result<Args, String> {
        parse_from(std::iter::once("word_lm").chain(flags.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_recipe_is_the_default_and_quick_shrinks_it() {
        let args = parse(&["--train", "a.txt", "--valid", "b.txt"]).unwrap();
        let sizes = (args.emsize, args.hidden, args.layers, args.batch, args.bptt);
        assert_eq!(sizes, (200, 200, 2, 20, 35));
        assert_eq!(
            (args.lr, args.clip, args.dropout, args.epochs),
            (20.0, 0.25, 0.2, 40)
        );
        assert!(!args.untied);
        let args = parse(&["--quick"]).unwrap();
        assert_eq!((args.emsize, args.hidden, args.epochs), (32, 32, 1));
        let args = parse(&["--quick", "--hidden", "8", "--epochs", "3"]).unwrap();
        assert_eq!((args.emsize, args.hidden, args.epochs), (32, 8, 3));
    }

    #[test]
    fn the_texts_are_needed_unless_quick() {
        let message = parse(&[]).expect_err("refused");
        assert!(message.contains("--train <TRAIN>"), "{message}");
        let message = parse(&["--train", "a.txt"]).expect_err("refused");
        assert!(message.contains("--valid <VALID>"), "{message}");
    }

    #[test]
    fn every_number_out_of_range_is_refused_by_name() {
        let cases = [
            ("--lr", "0", "a positive number"),
            ("--clip", "-1", "a positive number"),
            ("--dropout", "1", "at least 0 and below 1"),
            ("--anneal", "1.5", "above 0 and at most 1"),
            ("--hidden", "0", "a whole number of at least 1"),
            ("--bptt", "-3", "a whole number of at least 1"),
            ("--eval-batch", "0", "a whole number of at least 1"),
            ("--threads", "0", "a whole number of at least 1"),
        ];
        for (flag, value, range) in cases {
            let message = parse(&["--quick", flag, value]).expect_err("refused");
            let expected = format!("invalid value '{value}' for '--");
            assert!(message.contains(&expected), "{flag} {value}: {message}");
            let expected = format!("': must be {range}, got {value}\n");
            assert!(message.contains(&expected), "{flag} {value}: {message}");
        }
    }
}
