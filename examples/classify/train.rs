//! The training run: batches of mixed lengths, the updates, the test accuracy, the checkpoint.
//!
//! A batch of `B` utterances of lengths `l_b` is one dense input of `T = max_b l_b` steps
//! (`T*B` rows of 12, time first), utterance `b` in rows `t*B + b` for `t < l_b` and zeros
//! after, with `lengths = [l_b]`: padded steps leave the state as it was, so the classifier
//! reads `h_{l_b}` of each utterance, the state after its last real step. The batch is not
//! sorted by length. An update:
//!
//! ```text
//! z_b   = W_out h_{l_b} + b_out                       (Rnn::last_logits)
//! loss  = (1/B) sum_b CE(z_b, y_b)                     (mean cross-entropy)
//! g     = d loss / d theta through every real step    (Rnn::backward_last)
//! g    <- g * min(1, clip / ||g||_2)                   (clip::global_norm)
//! theta <- Adam(theta, g)    at lr_k = lr (1 + cos(pi k / K)) / 2 for update k of K
//!                              (`--constant-lr`: at lr)
//! ```
//!
//! With `--noise sigma`, every training value of a batch is `x + sigma * n`, `n` a new
//! standard normal draw each time (on the standardised features; never on the padding or the
//! test split), the order's generator drawing it.

#[path = "../common/progress_bar.rs"]
mod progress_bar;

use crate::Res;
use crate::args::{Args, CellArg};
use crate::ts::{Dataset, Standardise};
use recurrent::checkpoint::{Checkpoint, Progress};
use recurrent::optim::{CosineLr, Schedule};
use recurrent::prelude::*;
use recurrent::rand::rngs::StdRng;
use recurrent::rand::seq::SliceRandom;
use recurrent::rand::{RngExt, SeedableRng};
use std::time::{Duration, Instant};

/// What a finished run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Test utterances classified correctly, of `test_total`.
    pub test_right: usize,
    /// Test utterances.
    pub test_total: usize,
    /// Training accuracy after the last epoch.
    pub train_accuracy: f64,
    /// The last epoch's mean training loss.
    pub last_loss: f64,
    /// Time in updates per epoch (mean), evaluations excluded.
    pub seconds_per_epoch: f64,
}

/// The padded dense input and the classes of `set`'s cases `chosen`.
pub fn batch<B: Backend<Scalar = f32>>(
    backend: &B,
    set: &Dataset,
    chosen: &[usize],
) -> Res<(Input<B>, Vec<usize>)> {
    let (b, d) = (chosen.len(), set.dims);
    let lengths: Vec<usize> = chosen.iter().map(|&i| set.steps(i)).collect();
    let steps = lengths.iter().copied().max().ok_or("an empty batch")?;
    let mut x = vec![0.0f32; steps * b * d];
    for (column, &i) in chosen.iter().enumerate() {
        for t in 0..lengths[column] {
            let row = t * b + column;
            x[row * d..][..d].copy_from_slice(&set.series[i][t * d..][..d]);
        }
    }
    let input = Input::dense(backend.from_vec(steps * b, d, x)?, b).with_lengths(lengths);
    Ok((input, chosen.iter().map(|&i| set.labels[i]).collect()))
}

/// The cases `chosen` of `set`, each value plus `sigma` times a standard normal draw (a new
/// draw for every value of every epoch: the augmentation of `--noise`). Padding is added later
/// by [`batch`], so it stays zero.
pub fn with_noise(set: &Dataset, chosen: &[usize], sigma: f64, rng: &mut StdRng) -> Dataset {
    let series = (chosen.iter())
        .map(|&i| {
            (set.series[i].iter())
                .map(|&v| v + (sigma * standard_normal(rng)) as f32)
                .collect()
        })
        .collect();
    Dataset {
        dims: set.dims,
        classes: set.classes.clone(),
        series,
        labels: chosen.iter().map(|&i| set.labels[i]).collect(),
    }
}

/// A standard normal draw (Box-Muller: `sqrt(-2 ln u1) cos(2 pi u2)`, `u1` in `(0, 1]`).
fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The model of `args` for `dims` inputs and `classes` classes, initialised from `--seed`.
pub fn model(args: &Args, backend: Cpu<f32>, dims: usize, classes: usize) -> Res<Rnn<Cpu<f32>>> {
    let config = match args.cell {
        CellArg::Lstm => RnnConfig::lstm(dims, args.hidden),
        CellArg::Gru => RnnConfig::gru(dims, args.hidden),
    }
    .bidirectional(args.bidirectional)
    .output(classes);
    let mut rng = StdRng::seed_from_u64(args.seed);
    Ok(Rnn::new(backend, config, &mut rng)?)
}

/// Trains on `train` for `--epochs`, then classifies `test`; saves to `--save` if given.
pub fn run(
    args: &Args,
    rnn: &mut Rnn<Cpu<f32>>,
    train: &Dataset,
    test: &Dataset,
    stats: &Standardise,
) -> Res<Outcome> {
    let loss = CrossEntropy::mean().label_smoothing(args.label_smoothing)?;
    let mut opt = Adam::new(args.lr)?;
    let batches = train.len().div_ceil(args.batch);
    let cosine = CosineLr::new(args.lr, (args.epochs * batches) as u64)?;
    let mut progress = Progress::new(args.seed);
    // The order of the batches: its own generator, so that it does not depend on the model.
    let mut order_rng = StdRng::seed_from_u64(args.seed ^ 0x006f_7264_6572);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let bar = progress_bar::new(args.epochs as u64, "epochs");
    let (mut training, mut last_loss) = (Duration::ZERO, f64::NAN);
    for epoch in 1..=args.epochs {
        order.shuffle(&mut order_rng);
        let start = Instant::now();
        let mut total = 0.0;
        for chosen in order.chunks(args.batch) {
            let (input, targets) = if args.noise > 0.0 {
                let noisy = with_noise(train, chosen, args.noise, &mut order_rng);
                batch(
                    rnn.backend(),
                    &noisy,
                    &(0..chosen.len()).collect::<Vec<_>>(),
                )?
            } else {
                batch(rnn.backend(), train, chosen)?
            };
            if !args.constant_lr {
                cosine.apply(&mut opt, progress.step)?;
            }
            let trace = rnn.forward(&input, None)?;
            let logits = rnn.last_logits(&trace)?;
            let (value, d_logits) = loss.forward(rnn.backend(), &logits, &targets)?;
            let mut grads = rnn.backward_last(&trace, &d_logits)?;
            clip::global_norm(&mut grads, args.clip as f32)?;
            opt.step(rnn, &grads)?;
            progress.advance(batches);
            total += f64::from(value) * chosen.len() as f64;
        }
        let seconds = start.elapsed();
        training += seconds;
        last_loss = total / train.len() as f64;
        if !last_loss.is_finite() {
            return Err(format!("the training loss of epoch {epoch} is {last_loss}").into());
        }
        let line = format!(
            "epoch {epoch} loss {last_loss:.4} ({:.2} s)",
            seconds.as_secs_f64()
        );
        progress_bar::say(&bar, line);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(path) = &args.save {
        let metadata = serde_json_like(stats);
        Checkpoint::new(rnn.clone(), &opt, progress)
            .with_metadata("classify.standardise", metadata)
            .with_metadata("classify.classes", train.classes.join(" "))
            .save(path)
            .map_err(|e| format!("--save {}: {e}", path.display()))?;
    }
    let (train_right, _) = right(rnn, train)?;
    let (test_right, test_total) = right(rnn, test)?;
    Ok(Outcome {
        test_right,
        test_total,
        train_accuracy: train_right as f64 / train.len() as f64,
        last_loss,
        seconds_per_epoch: training.as_secs_f64() / args.epochs as f64,
    })
}

/// The cases of `set` the model classifies right (the largest logit is the label's), and their
/// number.
pub fn right<B: Kernels<Scalar = f32>>(rnn: &Rnn<B>, set: &Dataset) -> Res<(usize, usize)> {
    let all: Vec<usize> = (0..set.len()).collect();
    let mut right = 0;
    for chosen in all.chunks(64) {
        let (input, targets) = batch(rnn.backend(), set, chosen)?;
        let logits = rnn.last_logits(&rnn.forward(&input, None)?)?;
        let (_, classes) = rnn.backend().shape(&logits);
        let values = rnn.backend().to_vec(&logits);
        for (row, &target) in values.chunks(classes).zip(&targets) {
            let best = (0..classes).fold(0, |best, k| if row[k] > row[best] { k } else { best });
            right += usize::from(best == target);
        }
    }
    Ok((right, set.len()))
}

/// The standardisation's statistics as one line of text: `mean` and `std` lists.
fn serde_json_like(stats: &Standardise) -> String {
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:e}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "{{\"mean\":[{}],\"std\":[{}]}}",
        list(&stats.mean),
        list(&stats.std)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::parse;

    /// A short utterance classified alone and beside a long one in an unsorted batch gets the
    /// same logits: its padding reaches neither its state nor its row of the output.
    #[test]
    fn padding_in_a_mixed_batch_changes_nothing() {
        let text = "@dimensions 2\n@classLabel true a b\n@data\n\
                    1,2,3,4,5,6:6,5,4,3,2,1:a\n0.5,-1:2,0.25:b\n";
        let set = parse("t.ts", text).unwrap();
        let args = crate::args::parse_from(["classify", "--hidden", "5"]).unwrap();
        let rnn = model(&args, Cpu::<f32>::with_threads(1), 2, 2).unwrap();
        let logits = |chosen: &[usize]| {
            let (input, targets) = batch(rnn.backend(), &set, chosen).unwrap();
            let trace = rnn.forward(&input, None).unwrap();
            let values = rnn.backend().to_vec(&rnn.last_logits(&trace).unwrap());
            (values, targets)
        };
        let (alone, _) = logits(&[1]);
        let (mixed, targets) = logits(&[1, 0]);
        assert_eq!(targets, [1, 0]);
        assert_eq!(alone, mixed[..2]);
        let (long, _) = logits(&[0]);
        assert_eq!(long, mixed[2..]);
    }

    /// The batch keeps the order given (no sorting) and each case's own length.
    #[test]
    fn a_batch_keeps_its_order_and_lengths() {
        let text = "@dimensions 1\n@classLabel true a b\n@data\n1,2,3:a\n7:b\n";
        let set = parse("t.ts", text).unwrap();
        let backend = Cpu::<f32>::with_threads(1);
        let (input, targets) = batch(&backend, &set, &[1, 0]).unwrap();
        assert_eq!((input.batch(), input.lengths()), (2, Some(&[1, 3][..])));
        assert_eq!(targets, [1, 0]);
        assert!(batch(&backend, &set, &[]).is_err());
    }
}
