//! A word-level language model: the recipe of PyTorch's own `word_language_model` example, an
//! embedding of 200, two LSTM layers of 200, dropout 0.2, tied input and output word matrices,
//! SGD from a rate of 20 divided by 4 whenever an epoch does not improve the validation loss,
//! gradients clipped to a norm of 0.25, 20 streams of 35-step windows.
//!
//! ```text
//! cargo run --release --example word_lm -- --train wikitext-2/test.txt \
//!     --valid wikitext-2/valid.txt --epochs 6 --save wt2.safetensors
//! cargo run --release --example word_lm -- --help     # every setting
//! cargo run --example word_lm -- --quick              # seconds, for CI (the shipped KJV text)
//! ```
//!
//! WikiText-2 (Merity et al. 2016, CC BY-SA 3.0) is not shipped: PyTorch's example keeps a
//! copy in its repository (`word_language_model/data/wikitext-2/`), the files `train.txt`,
//! `valid.txt` and `test.txt`. BENCHMARKS.md trains on `test.txt` and validates on
//! `valid.txt` (the machine it was measured on had no `train.txt`), so its perplexities are
//! not comparable with published WikiText-2 results, which train on the 2-million-word
//! `train.txt`; they are compared with `benches/tasks/word_lm_torch.py`, the same recipe in
//! PyTorch, on the same files.
//!
//! The texts are read as PyTorch's example reads them ([`text`]): words split on whitespace,
//! `<eos>` at the end of every line, the vocabulary every word of both files. The modules:
//! [`args`] (the flags), [`text`] (words, vocabulary, streams and windows), [`train`] (the
//! model's equations, the updates, the evaluation, the checkpoint).

mod args;
mod text;
mod train;

use args::Args;
use recurrent::prelude::*;
use std::path::Path;
use text::{Streams, WordVocab};

/// The example's errors, each a message naming what was expected.
type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The shipped text `--quick` trains on.
const QUICK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/data/kjv_genesis_exodus.txt"
);

fn main() {
    let args = args::parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit());
    if let Err(err) = run(&args) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Res<()> {
    let (train_words, valid_words) = texts(args)?;
    let vocab = WordVocab::from_texts([&train_words[..], &valid_words[..]]);
    let train = Streams::new(&vocab.encode(&train_words)?, args.batch)
        .map_err(|e| format!("the training text: {e}"))?;
    let valid = Streams::new(&vocab.encode(&valid_words)?, args.eval_batch)
        .map_err(|e| format!("the validation text: {e}"))?;
    let backend = match args.threads {
        Some(n) => Cpu::<f32>::with_threads(n),
        None => Cpu::new(),
    };
    let mut rnn = train::model(args, backend, vocab.len())?;
    println!(
        "{} training and {} validation words, vocabulary {}; LSTM {} x {}, embedding {}{}, \
         batch {}, bptt {}, lr {}, {} epochs, seed {}",
        train_words.len(),
        valid_words.len(),
        vocab.len(),
        args.layers,
        args.hidden,
        args.emsize,
        if args.untied { ", untied" } else { ", tied" },
        args.batch,
        args.bptt,
        args.lr,
        args.epochs,
        args.seed
    );
    let epochs = train::run(args, &mut rnn, &vocab, &train, &valid)?;
    let best = (epochs.iter()).min_by(|a, b| a.valid_loss.total_cmp(&b.valid_loss));
    let best = best.ok_or("no epoch ran")?;
    let mean =
        |f: fn(&train::Epoch) -> f64| epochs.iter().map(f).sum::<f64>() / epochs.len() as f64;
    println!(
        "seed {} best valid ppl {:.2} (epoch {}), last valid ppl {:.2}, {:.2} s per epoch \
         training, {:.2} s validating",
        args.seed,
        best.valid_loss.exp(),
        best.epoch,
        epochs[epochs.len() - 1].valid_loss.exp(),
        mean(|e| e.train_seconds),
        mean(|e| e.valid_seconds)
    );
    Ok(())
}

/// The training and validation words: the two files, or for `--quick` the shipped text's
/// first 90% of lines and its last 10%.
fn texts(args: &Args) -> Res<(Vec<String>, Vec<String>)> {
    match (&args.train, &args.valid) {
        (Some(train), Some(valid)) => Ok((text::read_words(train)?, text::read_words(valid)?)),
        _ => {
            let words = text::read_words(Path::new(QUICK))?;
            // The word after the `<eos>` that ends 90% of the lines starts the validation part.
            let lines = words.iter().filter(|w| *w == text::EOS).count();
            let cut = (words.iter().enumerate())
                .filter(|(_, w)| *w == text::EOS)
                .nth(lines * 9 / 10)
                .map_or(words.len(), |(i, _)| i + 1);
            Ok((words[..cut].to_vec(), words[cut..].to_vec()))
        }
    }
}
