//! The crate's main job: train a character-level language model on a text and write text with
//! it, as Karpathy's char-rnn does.
//!
//! ```text
//! cargo run --release --example char_rnn                     # train ~2 minutes on the shipped text
//! cargo run --release --example char_rnn -- --help           # every setting
//! cargo run --release --example char_rnn -- --corpus tinyshakespeare.txt --minutes 15
//! cargo run --release --example char_rnn -- --resume char_rnn.last.safetensors   # go on
//! cargo run --release --example char_rnn -- --sample 500 --prime "And God said" --temperature 0.8
//! cargo run --release --features candle --example char_rnn -- --backend candle   # on candle
//! ```
//!
//! With no arguments it trains char-rnn's default model (a 2-layer LSTM of 128 units, sequences
//! of 50 characters, batches of 50, RMSprop at 2e-3 with alpha 0.95, gradients clipped to
//! [-5, 5], the last 5% of the text for validation) on `examples/data/kjv_genesis_exodus.txt`
//! for about two minutes. A progress bar shows the loss, the validation loss, characters per
//! second and the time left; a sample is printed at every evaluation; the checkpoint with the
//! best validation loss is kept in `--save` (default `char_rnn.safetensors`), and the last one
//! next to it (`char_rnn.last.safetensors`), from which `--resume` goes on exactly as if never
//! stopped (with the same corpus, `--batch`, `--seq` and `--val-fraction`, and for `--schedule
//! cosine` the same `--lr`, `--lr-min` and `--steps`, which it checks; the model, `--dropout`
//! and `--output-dropout` included, comes from the checkpoint, and a model flag that differs
//! from it is refused). A resumed run saves into the files it resumed from unless `--save` names
//! others. Ctrl-C saves the last checkpoint at the step reached and stops (a second Ctrl-C
//! stops at once).
//!
//! The modules: [`args`] (the flags and their ranges), [`checkpoints`] (the files, loading,
//! what a resumed run must share), [`train`] (the loop), [`report`] (what the run prints).

mod args;
mod checkpoints;
mod report;
mod train;

use args::{Args, BackendArg};
use recurrent::prelude::*;
use recurrent::rand::SeedableRng;
use recurrent::rand::rngs::StdRng;
use recurrent::sample::{Sampler, generate};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use train::Outcome;

/// The text shipped with the crate (public domain: see `examples/data/README.md`).
const DEFAULT_CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/data/kjv_genesis_exodus.txt"
);

/// The example's errors: the library's, and its own messages in terms of the flags.
type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED: i32 = 130;

fn main() {
    let args = args::parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit());
    match run(&args) {
        Ok(Outcome::Finished) => {}
        Ok(Outcome::Interrupted) => std::process::exit(INTERRUPTED),
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    }
}

fn run(args: &Args) -> Res<Outcome> {
    if args.backend == BackendArg::Candle {
        return run_on_candle(args);
    }
    if args.cuda.is_some() {
        return Err("--cuda chooses candle's device: it needs --backend candle".into());
    }
    let backend = match args.threads {
        Some(n) => Cpu::<f32>::with_threads(n),
        None => Cpu::new(),
    };
    let engine = format!("{} threads", backend.threads());
    match args.sample {
        Some(length) => sample_only(args, backend, length),
        None => train::train(args, backend, &engine, &*stop_on_ctrl_c()?),
    }
}

#[cfg(feature = "candle")]
fn run_on_candle(args: &Args) -> Res<Outcome> {
    let (backend, engine) = match args.cuda {
        None => (
            recurrent::Candle::<f32>::cpu(),
            "candle, CPU device".to_owned(),
        ),
        Some(ordinal) => (
            candle_cuda(ordinal)?,
            format!("candle, CUDA device {ordinal}"),
        ),
    };
    match args.sample {
        Some(length) => sample_only(args, backend, length),
        None => train::train(args, backend, &engine, &*stop_on_ctrl_c()?),
    }
}

/// candle's CUDA device `ordinal`, or why not.
#[cfg(feature = "cuda")]
fn candle_cuda(ordinal: usize) -> Res<recurrent::Candle<f32>> {
    Ok(recurrent::Candle::cuda(ordinal)?)
}

#[cfg(all(feature = "candle", not(feature = "cuda")))]
fn candle_cuda(_: usize) -> Res<recurrent::Candle<f32>> {
    Err(
        "--cuda needs the crate's feature `cuda` (and the CUDA toolkit): \
         cargo run --release --features cuda --example char_rnn -- --backend candle --cuda 0"
            .into(),
    )
}

#[cfg(not(feature = "candle"))]
fn run_on_candle(_: &Args) -> Res<Outcome> {
    Err("--backend candle needs the crate's feature `candle`: \
         cargo run --features candle --example char_rnn -- --backend candle"
        .into())
}

/// A flag that Ctrl-C (SIGINT) sets: the training loop checks it after every update, saves the
/// last checkpoint and stops. A second Ctrl-C, the flag already set, exits at once.
fn stop_on_ctrl_c() -> Res<Arc<AtomicBool>> {
    use signal_hook::consts::SIGINT;
    let stop = Arc::new(AtomicBool::new(false));
    // Registered first, so it runs first: it exits only if an earlier Ctrl-C set the flag.
    signal_hook::flag::register_conditional_shutdown(SIGINT, INTERRUPTED, Arc::clone(&stop))?;
    signal_hook::flag::register(SIGINT, Arc::clone(&stop))?;
    Ok(stop)
}

/// `--sample N`: text from a saved model, no training.
fn sample_only<B: Kernels<Scalar = f32>>(args: &Args, backend: B, length: usize) -> Res<Outcome> {
    let (flag, path) = match (&args.resume, &args.save) {
        (Some(resume), _) => ("--resume", resume.as_path()),
        (None, Some(save)) => ("--save", save.as_path()),
        (None, None) => ("--save", Path::new(args::DEFAULT_SAVE)),
    };
    let checkpoint = checkpoints::load(backend, flag, path)?;
    checkpoints::check_model_flags(args, checkpoint.rnn.config())?;
    let vocab = (checkpoint.vocab.as_ref()).ok_or_else(|| {
        format!(
            "{flag} {}: the checkpoint holds no vocabulary",
            path.display()
        )
    })?;
    let mut sampler = sampler(args)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let prime = &args.prime;
    let text = generate(
        &checkpoint.rnn,
        vocab,
        prime,
        length,
        &mut sampler,
        &mut rng,
    )
    .map_err(|e| -> Box<dyn std::error::Error> {
        match e {
            Error::UnknownChar { character, .. } => format!(
                "--prime: character {character:?} is not in the model's vocabulary (the \
                     characters of the text it was trained on)"
            )
            .into(),
            other => other.into(),
        }
    })?;
    println!("{text}"); // the prime and what follows it
    Ok(Outcome::Finished)
}

/// The sampler of `--temperature` (0: the most likely character) and `--top-k`.
fn sampler(args: &Args) -> Res<Sampler> {
    let sampler = if args.temperature == 0.0 {
        Sampler::greedy()
    } else {
        Sampler::new(args.temperature)?
    };
    Ok(match args.top_k {
        Some(k) => sampler.top_k(k)?,
        None => sampler,
    })
}

/// The text of the file given to `flag`.
fn read_text(flag: &str, path: &Path) -> Res<String> {
    std::fs::read_to_string(path).map_err(|e| format!("{flag} {}: {e}", path.display()).into())
}
