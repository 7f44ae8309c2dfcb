//! The model, the training epochs, the evaluation and the checkpoint.
//!
//! The model (PyTorch's `RNNModel` with `--tied`): for the words `w_t` of a window,
//!
//! ```text
//! e_t    = drop(E[w_t])                            E: V x emsize, the embedding
//! h1_t   = LSTM_1(e_t, h1_{t-1})                   h_0 = the previous window's last state
//! h2_t   = LSTM_2(drop(h1_t), h2_{t-1})            (and so on for more layers)
//! z_t    = W drop(hL_t) + b                        W = E when tied (emsize = hidden)
//! loss   = (1 / (T*B)) sum_{t,b} -log softmax(z_t)[w_{t+1}]
//! ```
//!
//! `drop` zeroes each entry with probability `--dropout` and scales the rest by `1/(1-p)`, a
//! new mask for every entry of every step (`forward_train`; never when evaluating). `E` and
//! `b` start as PyTorch's example starts them: `E` uniform in `[-0.1, 0.1)`, `b = 0`; the LSTM
//! weights uniform in `[-1/sqrt(hidden), 1/sqrt(hidden))`. An update is plain SGD on the
//! gradient clipped to a global norm of `--clip`, through the window only (the carried state is
//! a constant: truncated BPTT):
//!
//! ```text
//! g     <- g * min(1, clip / ||g||_2)
//! theta <- theta - lr * g
//! ```
//!
//! After each epoch the validation loss is the mean of `-log p(w_{t+1})` over every target of
//! the validation text (its own streams, state carried, no dropout); perplexity is its `exp`.
//! When it is not below the best so far, `lr` is multiplied by `--anneal` (PyTorch's example
//! divides by 4): [`ReduceLrOnPlateau`] with patience 0 and threshold 0.

#[path = "../common/progress_bar.rs"]
mod progress_bar;

use crate::Res;
use crate::args::Args;
use crate::text::{Streams, WordVocab};
use indicatif::ProgressBar;
use recurrent::checkpoint::{Checkpoint, Progress};
use recurrent::optim::ReduceLrOnPlateau;
use recurrent::prelude::*;
use recurrent::rand::{RngExt, SeedableRng};
use std::time::Instant;

/// The model of `args` for a vocabulary of `words`, initialised from `--seed`.
pub fn model(args: &Args, backend: Cpu<f32>, words: usize) -> Res<Rnn<Cpu<f32>>> {
    if !args.untied && args.emsize != args.hidden {
        return Err(format!(
            "tied weights need --emsize equal to --hidden (got {} and {}); or --untied",
            args.emsize, args.hidden
        )
        .into());
    }
    let p = args.dropout;
    let config = RnnConfig::lstm(args.emsize, args.hidden)
        .layers(args.layers)
        .embedding(words, args.emsize)
        .output(words)
        .tie_weights(!args.untied)
        .input_dropout(p)
        .dropout(p)
        .output_dropout(p);
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut rnn = Rnn::new(backend, config, &mut rng)?;
    let uniform = |n: usize, rng: &mut StdRng| -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-0.1f32..0.1)).collect()
    };
    rnn.set_parameter("embedding.weight", uniform(words * args.emsize, &mut rng))?;
    if args.untied {
        rnn.set_parameter("out.weight", uniform(words * args.hidden, &mut rng))?;
    }
    rnn.set_parameter("out.bias", vec![0.0; words])?;
    Ok(rnn)
}

/// One epoch's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Epoch {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The learning rate the epoch trained at.
    pub lr: f64,
    /// The mean training loss per target.
    pub train_loss: f64,
    /// The mean validation loss per target.
    pub valid_loss: f64,
    /// Seconds of training (updates only).
    pub train_seconds: f64,
    /// Seconds of the validation pass.
    pub valid_seconds: f64,
}

impl Epoch {
    /// The epoch's line of the printout (PyTorch's script prints the same fields).
    pub fn line(&self) -> String {
        format!(
            "epoch {} lr {} train loss {:.4} ppl {:.2} valid loss {:.4} ppl {:.2} \
             time {:.2} s train {:.2} s valid",
            self.epoch,
            self.lr,
            self.train_loss,
            self.train_loss.exp(),
            self.valid_loss,
            self.valid_loss.exp(),
            self.train_seconds,
            self.valid_seconds
        )
    }
}

/// Trains on `train` for `--epochs`, validating on `valid` after each; saves the best model to
/// `--save` if given. Returns every epoch's figures.
pub fn run(
    args: &Args,
    rnn: &mut Rnn<Cpu<f32>>,
    vocab: &WordVocab,
    train: &Streams,
    valid: &Streams,
) -> Res<Vec<Epoch>> {
    let mut sgd = Sgd::new(args.lr)?;
    let mut plateau = ReduceLrOnPlateau::new(args.lr)?
        .factor(args.anneal)?
        .patience(0)
        .threshold(0.0)?;
    let mut progress = Progress::new(args.seed);
    let windows = train.len(args.bptt);
    let bar = progress_bar::new((args.epochs * windows) as u64, "windows");
    let mut epochs = Vec::with_capacity(args.epochs);
    for epoch in 1..=args.epochs {
        let lr = sgd.lr();
        let start = Instant::now();
        let train_loss = train_epoch(args, rnn, &mut sgd, train, &mut progress, &bar)?;
        let train_seconds = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let valid_loss = evaluate(rnn, valid, args.bptt)?;
        let valid_seconds = start.elapsed().as_secs_f64();
        let figures = Epoch {
            epoch,
            lr,
            train_loss,
            valid_loss,
            train_seconds,
            valid_seconds,
        };
        progress_bar::say(&bar, figures.line());
        epochs.push(figures);
        if progress.record_val_loss(valid_loss)
            && let Some(path) = &args.save
        {
            Checkpoint::new(rnn.clone(), &sgd, progress)
                .with_schedule(&plateau)
                .with_metadata("word_lm.vocab", vocab.words().join(" "))
                .save(path)
                .map_err(|e| format!("--save {}: {e}", path.display()))?;
        }
        plateau.apply(&mut sgd, valid_loss)?;
    }
    bar.finish_and_clear();
    Ok(epochs)
}

/// One pass over `train`, the state carried from window to window; the mean loss per target.
fn train_epoch(
    args: &Args,
    rnn: &mut Rnn<Cpu<f32>>,
    sgd: &mut Sgd<Cpu<f32>>,
    train: &Streams,
    progress: &mut Progress,
    bar: &ProgressBar,
) -> Res<f64> {
    let loss = CrossEntropy::mean();
    let windows = train.len(args.bptt);
    let (mut state, mut total) = (None, 0.0);
    for window in train.windows(args.bptt) {
        let input = Input::ids(window.inputs, train.batch());
        let trace = rnn.forward_train(&input, state.as_ref(), &mut progress.rng())?;
        let (value, d_logits) = loss.forward(rnn.backend(), trace.logits(), &window.targets)?;
        let mut grads = rnn.backward(&trace, &d_logits)?;
        clip::global_norm(&mut grads, args.clip as f32)?;
        sgd.step(rnn, &grads)?;
        state = Some(trace.final_state());
        total += f64::from(value) * window.targets.len() as f64;
        progress.advance(windows);
        bar.inc(1);
    }
    let mean = total / train.targets() as f64;
    if !mean.is_finite() {
        return Err(format!("the training loss of epoch {} is {mean}", progress.epoch).into());
    }
    Ok(mean)
}

/// The mean loss per target of `rnn` over every window of `set` (no dropout, state carried).
pub fn evaluate<B: Kernels<Scalar = f32>>(rnn: &Rnn<B>, set: &Streams, bptt: usize) -> Res<f64> {
    let loss = CrossEntropy::sum();
    let (mut state, mut total) = (None, 0.0);
    for window in set.windows(bptt) {
        let trace = rnn.forward(&Input::ids(window.inputs, set.batch()), state.as_ref())?;
        total += f64::from(loss.value(rnn.backend(), trace.logits(), &window.targets)?);
        state = Some(trace.final_state());
    }
    Ok(total / set.targets() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{EOS, words};

    /// `--quick` with `flags`, 8 units unless they say otherwise.
    fn args(flags: &[&str]) -> Args {
        let mut all = vec!["word_lm", "--quick", "--hidden", "16"];
        if !flags.contains(&"--emsize") {
            all.extend(["--emsize", "16"]);
        }
        crate::args::parse_from(all.iter().chain(flags)).unwrap()
    }

    /// PyTorch's example: the embedding uniform in [-0.1, 0.1), the decoder's bias 0, and with
    /// tied weights one matrix for both.
    #[test]
    fn the_model_starts_as_pytorchs_example() {
        let rnn = model(&args(&[]), Cpu::with_threads(1), 30).unwrap();
        let embedding = rnn
            .backend()
            .to_vec(rnn.parameter("embedding.weight").unwrap());
        assert_eq!(embedding.len(), 30 * 16);
        assert!(embedding.iter().all(|w| (-0.1..0.1).contains(w)));
        assert!(
            embedding.iter().any(|w| w.abs() > 0.09),
            "spread over the range"
        );
        let bias = rnn.backend().to_vec(rnn.parameter("out.bias").unwrap());
        assert!(bias.iter().all(|&b| b == 0.0));
        let names: Vec<String> = rnn.parameters().into_iter().map(|(n, _)| n).collect();
        assert!(!names.iter().any(|n| n == "out.weight"), "{names:?}");
        let untied = model(&args(&["--untied"]), Cpu::with_threads(1), 30).unwrap();
        let untied: Vec<String> = untied.parameters().into_iter().map(|(n, _)| n).collect();
        assert!(untied.iter().any(|n| n == "out.weight"), "{untied:?}");
        assert_eq!(untied.len(), names.len() + 1);
    }

    #[test]
    fn tied_weights_of_two_sizes_are_refused() {
        let e = model(&args(&["--emsize", "4"]), Cpu::with_threads(1), 30).expect_err("sizes");
        let expected = "tied weights need --emsize equal to --hidden (got 4 and 16); or --untied";
        assert_eq!(e.to_string(), expected);
        assert!(
            model(
                &args(&["--emsize", "4", "--untied"]),
                Cpu::with_threads(1),
                30
            )
            .is_ok()
        );
    }

    /// A repetitive text is learnt (the validation loss falls far below the uniform guess's; the
    /// recipe's rate of 20 and its dropout suit a large model, not this one), and the
    /// saved model is the best epoch's: loaded, it scores that epoch's validation loss exactly.
    #[test]
    fn a_short_run_learns_and_saves_its_best_model() {
        let line = "the cat sat on the mat and the dog ran to the cat\n";
        let text = words("t.txt", line.repeat(60).as_bytes()).unwrap();
        let vocab = WordVocab::from_texts([&text[..]]);
        let ids = vocab.encode(&text).unwrap();
        let (train, valid) = (
            Streams::new(&ids, 4).unwrap(),
            Streams::new(&ids, 2).unwrap(),
        );
        let dir = std::env::temp_dir().join(format!("word_lm-best-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        let flags = [
            "--epochs",
            "8",
            "--bptt",
            "10",
            "--lr",
            "3",
            "--dropout",
            "0",
            "--clip",
            "1",
            "--save",
        ];
        let args = args(&[&flags[..], &[path.to_str().unwrap()]].concat());
        let mut rnn = model(&args, Cpu::with_threads(1), vocab.len()).unwrap();
        let uniform = (vocab.len() as f64).ln();
        let epochs = run(&args, &mut rnn, &vocab, &train, &valid).unwrap();
        assert_eq!(epochs.len(), 8);
        let best = epochs
            .iter()
            .map(|e| e.valid_loss)
            .fold(f64::INFINITY, f64::min);
        assert!(best < 0.3 * uniform, "best {best} against {uniform}");
        let saved = Checkpoint::load(Cpu::<f32>::with_threads(1), &path).unwrap();
        assert_eq!(evaluate(&saved.rnn, &valid, args.bptt).unwrap(), best);
        let words = saved.metadata.get("word_lm.vocab").unwrap();
        assert_eq!(words.split(' ').collect::<Vec<_>>(), vocab.words());
        assert!(vocab.words().iter().any(|w| w == EOS));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
