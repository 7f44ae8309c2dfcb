//! The command line: every flag, its accepted range, and the checks between flags.
//!
//! Each number is checked as it is parsed, so that a bad value is refused before anything
//! runs, with a message that names the flag and what it accepts (`invalid value '-1' for
//! '--lr <LR>': must be a positive number`). Negative numbers are read as values, not as
//! flags, so that `--lr -1` gets that message rather than "unexpected argument".

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

#[path = "../common/flags.rs"]
mod flags;
use flags::{at_least_one, decay_factor, non_negative, positive, probability, whole};

/// The default of `--save`.
pub const DEFAULT_SAVE: &str = "char_rnn.safetensors";

#[derive(Parser, Debug, Clone)]
#[command(
    about = "Train a character-level RNN on a text, or write text with a trained one",
    allow_negative_numbers = true
)]
pub struct Args {
    /// The text to learn (UTF-8) [default: the King James Genesis and Exodus shipped in
    /// examples/data]
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Recurrent cell (a new run's; a resumed run's comes from its checkpoint)
    #[arg(long, value_enum, default_value_t = CellArg::Lstm)]
    pub cell: CellArg,
    /// Hidden units per layer, at least 1 (a new run's)
    #[arg(long, default_value_t = 128, value_parser = at_least_one::<usize>)]
    pub hidden: usize,
    /// Stacked layers, at least 1 (a new run's)
    #[arg(long, default_value_t = 2, value_parser = at_least_one::<usize>)]
    pub layers: usize,
    /// Characters per training window (BPTT length), at least 1
    #[arg(long, default_value_t = 50, value_parser = at_least_one::<usize>)]
    pub seq: usize,
    /// Parallel streams per batch, at least 1
    #[arg(long, default_value_t = 50, value_parser = at_least_one::<usize>)]
    pub batch: usize,
    /// Learning rate, positive
    #[arg(long, default_value_t = 2e-3, value_parser = positive)]
    pub lr: f64,
    /// Optimiser
    #[arg(long, value_enum, default_value_t = OptimizerArg::Rmsprop)]
    pub optimizer: OptimizerArg,
    /// How the learning rate falls: `exponential` multiplies it by `--lr-decay` after every
    /// epoch from `--decay-after` on (char-rnn's); `cosine` anneals it from `--lr` at the first
    /// update to `--lr-min` after the last of `--steps` (PyTorch's CosineAnnealingLR, one value
    /// per update; needs `--steps`)
    #[arg(long, value_enum, default_value_t = ScheduleArg::Exponential)]
    pub schedule: ScheduleArg,
    /// Learning-rate factor per epoch after `--decay-after` epochs, above 0 and at most 1
    /// (char-rnn: 0.97 after 10)
    #[arg(long, default_value_t = 0.97, value_parser = decay_factor)]
    pub lr_decay: f64,
    /// Where `--schedule cosine` ends, at least 0 and below `--lr` (unused by the exponential
    /// decay)
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub lr_min: f64,
    /// Epochs before the learning rate starts to decay
    #[arg(long, default_value_t = 10, value_parser = whole::<u64>)]
    pub decay_after: u64,
    /// Dropout between layers, at least 0 and below 1 (a new run's)
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub dropout: f64,
    /// Dropout on the top layer's output, before the output layer, at least 0 and below 1 (a
    /// new run's; char-rnn's `-dropout` applies there too)
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub output_dropout: f64,
    /// Element-wise gradient clipping threshold, positive
    #[arg(long, default_value_t = 5.0, value_parser = positive)]
    pub clip: f64,
    /// Fraction of the text, at its end, kept for validation: at least 0 and below 1
    #[arg(long, default_value_t = 0.05, value_parser = probability)]
    pub val_fraction: f64,
    /// Stop after this many updates in all, counting a resumed run's (default: stop on time);
    /// 0 saves the initial model without training
    #[arg(long, value_parser = whole::<u64>)]
    pub steps: Option<u64>,
    /// Stop after this many minutes of this run, positive [default: 2 without `--steps`; with
    /// it, no limit]; with both, at whichever comes first
    #[arg(long, value_parser = positive)]
    pub minutes: Option<f64>,
    /// Evaluate, sample and checkpoint every this many updates, at least 1
    #[arg(long, default_value_t = 250, value_parser = at_least_one::<u64>)]
    pub eval_every: u64,
    /// Where the best checkpoint (by validation loss; with `--val-fraction 0`, the last) is
    /// written; the last one goes beside it (`NAME.last.safetensors`) [default:
    /// char_rnn.safetensors; with `--resume`, the files of the run resumed]
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Go on training from this checkpoint, usually `NAME.last.safetensors` (with `--sample`:
    /// the checkpoint to sample from); the corpus, `--batch`, `--seq`, `--val-fraction` and a
    /// cosine schedule must be the run's (checked); the model, its dropout included, comes from
    /// the checkpoint
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Start a new run even if `--save` exists (it is overwritten at the first evaluation)
    #[arg(long)]
    pub force: bool,
    /// Append a CSV row at every evaluation to this file (`step,epoch,update_seconds,
    /// wall_seconds,train_loss,val_loss,best`; the header when the file is new or empty): the log
    /// behind a quality claim
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Write this many characters (at least 1) from a checkpoint (`--resume`, else `--save`)
    /// and exit
    #[arg(long, value_parser = at_least_one::<usize>)]
    pub sample: Option<usize>,
    /// Sampling temperature, at least 0 (0: always the most likely character)
    #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
    pub temperature: f64,
    /// Sample only among the k most likely characters, at least 1
    #[arg(long, value_parser = at_least_one::<usize>)]
    pub top_k: Option<usize>,
    /// Text the model reads before writing (its characters must be in the model's vocabulary)
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub prime: String,
    /// Seed of the initial weights, dropout and sampling (a resumed run keeps its own seed for
    /// dropout; this one then seeds sampling only)
    #[arg(long, default_value_t = 123, value_parser = whole::<u64>)]
    pub seed: u64,
    /// Threads, at least 1 (default: every core)
    #[arg(long, value_parser = at_least_one::<usize>)]
    pub threads: Option<usize>,
    /// The backend: `cpu` (the crate's `Cpu`), or `candle` (candle's tensors on its CPU device;
    /// needs `--features candle`)
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    pub backend: BackendArg,
    /// With `--backend candle`: candle's CUDA device of this ordinal instead of its CPU device
    /// (needs `--features cuda` and the CUDA toolkit)
    #[arg(long, value_parser = whole::<usize>)]
    pub cuda: Option<usize>,
    /// Print every update's training loss in full (`step N loss X`), to compare two runs
    #[arg(long)]
    pub print_losses: bool,
    /// The model flags given on the command line (not defaults), checked against a resumed
    /// checkpoint's model; filled by [`parse_from`].
    #[arg(skip)]
    pub model_flags_given: Vec<ModelFlag>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendArg {
    Cpu,
    Candle,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellArg {
    Rnn,
    Lstm,
    Gru,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleArg {
    Exponential,
    Cosine,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerArg {
    Sgd,
    Adagrad,
    Rmsprop,
    Adam,
}

/// The flags that shape a new model, which a checkpoint decides for a resumed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFlag {
    Cell,
    Hidden,
    Layers,
    Dropout,
    OutputDropout,
}

impl ModelFlag {
    const ALL: [ModelFlag; 5] = [
        ModelFlag::Cell,
        ModelFlag::Hidden,
        ModelFlag::Layers,
        ModelFlag::Dropout,
        ModelFlag::OutputDropout,
    ];

    /// clap's id of the flag (the field's name).
    fn id(self) -> &'static str {
        match self {
            ModelFlag::Cell => "cell",
            ModelFlag::Hidden => "hidden",
            ModelFlag::Layers => "layers",
            ModelFlag::Dropout => "dropout",
            ModelFlag::OutputDropout => "output_dropout",
        }
    }

    /// The flag as the user types it.
    pub fn flag(self) -> String {
        format!("--{}", self.id().replace('_', "-"))
    }
}

/// Parses the command line (the program's name first) and checks the flags against each other.
pub fn parse_from<I, T>(argv: I) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = Args::command();
    let matches = command.try_get_matches_from_mut(argv)?;
    let mut args = Args::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
    args.model_flags_given = given(&matches);
    check_together(&args)
        .map_err(|message| command.error(clap::error::ErrorKind::ArgumentConflict, message))?;
    Ok(args)
}

fn given(matches: &ArgMatches) -> Vec<ModelFlag> {
    ModelFlag::ALL
        .into_iter()
        .filter(|flag| matches.value_source(flag.id()) == Some(ValueSource::CommandLine))
        .collect()
}

/// The checks that involve more than one flag.
fn check_together(args: &Args) -> Result<(), String> {
    if args.schedule == ScheduleArg::Cosine {
        if args.steps.is_none_or(|steps| steps == 0) {
            return Err(
                "--schedule cosine needs --steps of at least 1: the run's length is the cosine's"
                    .into(),
            );
        }
        if args.lr_min >= args.lr {
            return Err(format!(
                "--lr-min must be below --lr ({}) for --schedule cosine, got {}",
                args.lr, args.lr_min
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Result<Args, String> {
        let argv = std::iter::once("char_rnn").chain(flags.iter().copied());
        parse_from(argv).map_err(|e| e.to_string())
    }

    fn refused(flags: &[&str]) -> String {
        parse(flags).expect_err("refused")
    }

    #[test]
    fn the_defaults_parse() {
        let args = parse(&[]).unwrap();
        assert_eq!(
            (args.hidden, args.layers, args.seq, args.batch),
            (128, 2, 50, 50)
        );
        assert_eq!(args.save, None);
        assert!(args.model_flags_given.is_empty());
    }

    /// Every numeric flag, out of its range: the message names the flag, the accepted range
    /// and the value, and is not clap's "unexpected argument" for a negative number.
    #[test]
    fn every_number_out_of_range_is_refused_by_name() {
        const POSITIVE: &str = "a positive number";
        const AT_LEAST_0: &str = "a number of at least 0";
        const BELOW_1: &str = "at least 0 and below 1";
        const ONE_OR_MORE: &str = "a whole number of at least 1";
        const ZERO_OR_MORE: &str = "a whole number of at least 0";
        let cases = [
            ("--lr", "-1", POSITIVE),
            ("--lr", "0", POSITIVE),
            ("--lr", "inf", POSITIVE),
            ("--minutes", "-1", POSITIVE),
            ("--minutes", "0", POSITIVE),
            ("--clip", "-5", POSITIVE),
            ("--lr-min", "-0.1", AT_LEAST_0),
            ("--temperature", "-1", AT_LEAST_0),
            ("--temperature", "NaN", AT_LEAST_0),
            ("--lr-decay", "0", "above 0 and at most 1"),
            ("--lr-decay", "1.5", "above 0 and at most 1"),
            ("--dropout", "1", BELOW_1),
            ("--output-dropout", "-0.5", BELOW_1),
            ("--val-fraction", "1", BELOW_1),
            ("--threads", "0", ONE_OR_MORE),
            ("--threads", "-2", ONE_OR_MORE),
            ("--hidden", "0", ONE_OR_MORE),
            ("--layers", "-1", ONE_OR_MORE),
            ("--seq", "0", ONE_OR_MORE),
            ("--batch", "0", ONE_OR_MORE),
            ("--eval-every", "0", ONE_OR_MORE),
            ("--sample", "0", ONE_OR_MORE),
            ("--top-k", "0", ONE_OR_MORE),
            ("--steps", "-1", ZERO_OR_MORE),
            ("--seed", "-1", ZERO_OR_MORE),
            ("--decay-after", "1.5", ZERO_OR_MORE),
        ];
        for (flag, value, range) in cases {
            let message = refused(&[flag, value]);
            let expected = format!("invalid value '{value}' for '{flag} <");
            assert!(message.contains(&expected), "{flag} {value}: {message}");
            let expected = format!("': must be {range}, got {value}\n");
            assert!(message.contains(&expected), "{flag} {value}: {message}");
            assert!(!message.contains("unexpected argument"), "{message}");
        }
    }

    #[test]
    fn negative_numbers_are_read_as_values() {
        let args = parse(&["--lr-min", "0", "--temperature", "0.5"]).unwrap();
        assert_eq!((args.lr_min, args.temperature), (0.0, 0.5));
        // A prime may start with a hyphen.
        assert_eq!(parse(&["--prime", "-- And"]).unwrap().prime, "-- And");
    }

    #[test]
    fn a_cosine_schedule_needs_steps_and_an_end_below_the_start() {
        let message = refused(&["--schedule", "cosine"]);
        assert!(
            message.contains("--schedule cosine needs --steps"),
            "{message}"
        );
        let message = refused(&["--schedule", "cosine", "--steps", "9", "--lr-min", "0.01"]);
        assert!(
            message.contains("--lr-min must be below --lr (0.002) for --schedule cosine, got 0.01"),
            "{message}"
        );
        let args = parse(&["--schedule", "cosine", "--steps", "9", "--lr-min", "1e-4"]).unwrap();
        assert_eq!(args.steps, Some(9));
    }

    #[test]
    fn the_model_flags_given_are_recorded_and_defaults_are_not() {
        let args = parse(&["--hidden", "512", "--cell", "gru", "--seq", "20"]).unwrap();
        assert_eq!(args.model_flags_given, [ModelFlag::Cell, ModelFlag::Hidden]);
        assert_eq!(ModelFlag::OutputDropout.flag(), "--output-dropout");
        // The default value typed out is still given on the command line.
        let args = parse(&["--layers", "2"]).unwrap();
        assert_eq!(args.model_flags_given, [ModelFlag::Layers]);
    }
}
