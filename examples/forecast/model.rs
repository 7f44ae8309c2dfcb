//! The windows, the training, the forecasts and their errors.
//!
//! The model reads and forecasts `u_t = y_t` (sunspots) or, for a series with a trend, its
//! differences `u_t = y_t - y_{t-1}` (CO2, `--difference`): the trend carries the CO2 of the
//! last 20% above every value of the first 80%, where a bounded recurrent state cannot follow
//! it, while the weekly differences stay in their training range. `u` is normalised with the
//! mean `m` and population deviation `s` of its values in the first 80% (the training part)
//! only: `z_t = (u_t - m) / s`; forecasts of differences are summed back onto the last known
//! level, `yhat_{o+k} = y_{o-1} + sum_{j<=k} uhat_{o+j}`. A window of `W` values predicts the
//! next: the model reads `z_{t-W} .. z_{t-1}` (one input per step) and its linear head on the
//! last state gives `zhat_t`, trained with the mean squared error over a batch of windows whose
//! targets lie in the training part (many-to-one: `Rnn::last_logits`, `Rnn::backward_last`).
//!
//! - One step ahead: for every `t` of the test part (the last 20%), `zhat_t` from the true
//!   `z_{t-W} .. z_{t-1}` (the window may reach back into the training part: those values are
//!   known when `t` is forecast).
//! - `h` steps ahead: from every origin `o` of the test part with `o + h <= n`, the model
//!   forecasts `zhat_o` from the truth, then `zhat_{o+1}` from a window ending in `zhat_o`,
//!   and so on, its own forecasts fed back in place of the truth, up to `zhat_{o+h-1}`.
//! - The seasonal-naive baseline: `yhat_t = y_{t-S}`, the value one season `S` back (52 weeks;
//!   11 years for sunspots, the solar cycle's mean length). For `h <= S` it needs nothing
//!   forecast, so its error is the same one step and `h` steps ahead.
//!
//! Errors are root mean squared errors in the series' own units (levels `yhat`, from
//! `uhat = m + s * zhat`): over
//! every `t` of the test part one step ahead, and over every origin and every step `1..=h`
//! for the horizon.

use crate::Res;
use crate::args::{Args, CellArg};
use indicatif::{ProgressBar, ProgressStyle};
use recurrent::Mse;
use recurrent::checkpoint::{Checkpoint, Progress};
use recurrent::prelude::*;
use recurrent::rand::SeedableRng;
use recurrent::rand::rngs::StdRng;
use recurrent::rand::seq::SliceRandom;
use std::time::{Duration, Instant};

/// The normalised series and where its test part starts.
pub struct Series {
    /// `z_t`: normalised `y_t` or, with `differenced`, normalised `y_t - y_{t-1}` (`z_0 = 0`,
    /// never read).
    pub z: Vec<f64>,
    /// Whether the model reads and forecasts differences.
    pub differenced: bool,
    /// The first index a window may read: 1 for differences, else 0.
    pub first: usize,
    /// The mean of the training part.
    pub mean: f64,
    /// The deviation (population) of the training part, 1 if it is 0.
    pub std: f64,
    /// The first index of the test part: `round(0.8 n)`.
    pub split: usize,
}

impl Series {
    /// Normalises `y`, or its differences with `differenced`, by its first 80%.
    pub fn new(y: &[f64], window: usize, differenced: bool) -> Res<Series> {
        let split = (y.len() as f64 * 0.8).round() as usize;
        if split <= window + 1 || split >= y.len() {
            return Err(format!(
                "a series of {} values is too short for --window {window}: the first 80% \
                 must hold more than one window and the rest at least one value",
                y.len()
            )
            .into());
        }
        let first = usize::from(differenced);
        let u: Vec<f64> = match differenced {
            true => (0..y.len())
                .map(|t| if t == 0 { 0.0 } else { y[t] - y[t - 1] })
                .collect(),
            false => y.to_vec(),
        };
        let train = &u[first..split];
        let count = train.len() as f64;
        let mean = train.iter().sum::<f64>() / count;
        let var = train.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count;
        let std = if var > 0.0 { var.sqrt() } else { 1.0 };
        let z = u.iter().map(|v| (v - mean) / std).collect();
        Ok(Series {
            z,
            differenced,
            first,
            mean,
            std,
            split,
        })
    }

    /// Back to the modelled quantity's units (a value, or a difference).
    pub fn value(&self, z: f64) -> f64 {
        self.mean + self.std * z
    }

    /// The level forecasts of `y_o, y_{o+1}, ...` from the forecasts `zs` of those steps made
    /// at origin `o`: the values, or `y_{o-1}` plus the summed differences.
    pub fn levels(&self, y: &[f64], o: usize, zs: &[f64]) -> Vec<f64> {
        let mut level = if self.differenced { y[o - 1] } else { 0.0 };
        (zs.iter())
            .map(|&z| match self.differenced {
                true => {
                    level += self.value(z);
                    level
                }
                false => self.value(z),
            })
            .collect()
    }
}

/// The model of `args`: one input, one output, initialised from `--seed`.
pub fn model(args: &Args, backend: Cpu<f32>) -> Res<Rnn<Cpu<f32>>> {
    let config = match args.cell {
        CellArg::Lstm => RnnConfig::lstm(1, args.hidden),
        CellArg::Gru => RnnConfig::gru(1, args.hidden),
    }
    .output(1);
    Ok(Rnn::new(
        backend,
        config,
        &mut StdRng::seed_from_u64(args.seed),
    )?)
}

/// The dense input of the windows of `W` values ending before each of `ends` (time first).
fn windows<B: Backend<Scalar = f32>>(
    backend: &B,
    z: &[f64],
    ends: &[usize],
    w: usize,
) -> Res<Input<B>> {
    let b = ends.len();
    let mut x = vec![0.0f32; w * b];
    for (column, &end) in ends.iter().enumerate() {
        for t in 0..w {
            x[t * b + column] = z[end - w + t] as f32;
        }
    }
    Ok(Input::dense(backend.from_vec(w * b, 1, x)?, b))
}

/// The model's forecast of `z[end]` for each of `ends`, from `z[end - W .. end]`.
fn predict<B: Kernels<Scalar = f32>>(
    rnn: &Rnn<B>,
    z: &[f64],
    ends: &[usize],
    w: usize,
) -> Res<Vec<f64>> {
    let trace = rnn.forward(&windows(rnn.backend(), z, ends, w)?, None)?;
    let out = rnn.backend().to_vec(&rnn.last_logits(&trace)?);
    Ok(out.into_iter().map(f64::from).collect())
}

/// Trains for `--epochs` on the windows whose targets lie in the training part; returns the
/// last epoch's mean loss and the mean time per epoch.
pub fn train(args: &Args, rnn: &mut Rnn<Cpu<f32>>, series: &Series, w: usize) -> Res<(f64, f64)> {
    let mut opt = Adam::new(args.lr)?;
    let mut order: Vec<usize> = (w + series.first..series.split).collect();
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x006f_7264_6572);
    let mut progress = Progress::new(args.seed);
    let batches = order.len().div_ceil(args.batch);
    let bar = ProgressBar::new(args.epochs as u64);
    let template = "{bar:30} {pos}/{len} epochs [{elapsed_precise}, eta {eta}]";
    bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
    let (mut spent, mut last) = (Duration::ZERO, f64::NAN);
    for epoch in 1..=args.epochs {
        order.shuffle(&mut rng);
        let start = Instant::now();
        let mut total = 0.0;
        for ends in order.chunks(args.batch) {
            let input = windows(rnn.backend(), &series.z, ends, w)?;
            let targets: Vec<f32> = ends.iter().map(|&e| series.z[e] as f32).collect();
            let target = rnn.backend().from_vec(ends.len(), 1, targets)?;
            let trace = rnn.forward(&input, None)?;
            let (value, d) =
                Mse::mean().forward(rnn.backend(), &rnn.last_logits(&trace)?, &target)?;
            let mut grads = rnn.backward_last(&trace, &d)?;
            clip::global_norm(&mut grads, args.clip as f32)?;
            opt.step(rnn, &grads)?;
            progress.advance(batches);
            total += f64::from(value) * ends.len() as f64;
        }
        spent += start.elapsed();
        last = total / order.len() as f64;
        if !last.is_finite() {
            return Err(format!("the training loss of epoch {epoch} is {last}").into());
        }
        let line = format!(
            "epoch {epoch} loss {last:.5} ({:.2} s)",
            start.elapsed().as_secs_f64()
        );
        if bar.is_hidden() {
            println!("{line}")
        } else {
            bar.println(line)
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(path) = &args.save {
        Checkpoint::new(rnn.clone(), &opt, progress)
            .with_metadata("forecast.mean", series.mean.to_string())
            .with_metadata("forecast.std", series.std.to_string())
            .with_metadata("forecast.window", w.to_string())
            .save(path)
            .map_err(|e| format!("--save {}: {e}", path.display()))?;
    }
    Ok((last, spent.as_secs_f64() / args.epochs as f64))
}

/// The forecasts of the test part and their errors.
pub struct Forecasts {
    /// One step ahead, in the series' units, for every `t` of the test part.
    pub one_step: Vec<f64>,
    /// `h` steps from the first test origin, fed back, in the series' units.
    pub first_path: Vec<f64>,
    /// RMSE one step ahead.
    pub rmse_one: f64,
    /// RMSE over every origin and every step up to `h`.
    pub rmse_horizon: f64,
    /// The seasonal-naive baseline's RMSE over the test part.
    pub rmse_naive: f64,
}

/// Forecasts the test part one step and `h` steps ahead; `y` is the series in its units.
pub fn forecast<B: Kernels<Scalar = f32>>(
    rnn: &Rnn<B>,
    series: &Series,
    y: &[f64],
    (w, h, season): (usize, usize, usize),
) -> Res<Forecasts> {
    let n = y.len();
    let tests: Vec<usize> = (series.split..n).collect();
    let zs = predict(rnn, &series.z, &tests, w)?;
    let one: Vec<f64> = (tests.iter().zip(&zs))
        .map(|(&t, &z)| series.levels(y, t, &[z])[0])
        .collect();
    let rmse = |pairs: &mut dyn Iterator<Item = (f64, f64)>| {
        let (sum, count) = pairs.fold((0.0, 0usize), |(s, c), (a, b)| (s + (a - b).powi(2), c + 1));
        (sum / count.max(1) as f64).sqrt()
    };
    let rmse_one = rmse(&mut one.iter().zip(&y[series.split..]).map(|(a, b)| (*a, *b)));
    let rmse_naive = rmse(&mut tests.iter().map(|&t| (y[t - season], y[t])));
    // Every origin at once: one copy of the series per origin, its future overwritten by the
    // forecasts as they are made.
    let origins: Vec<usize> = (series.split..=n.saturating_sub(h)).collect();
    if origins.is_empty() {
        return Err(format!(
            "--horizon {h} is longer than the test part ({} values)",
            n - series.split
        )
        .into());
    }
    let mut paths: Vec<Vec<f64>> = origins
        .iter()
        .map(|&o| series.z[o - w..o].to_vec())
        .collect();
    for k in 0..h {
        let flat: Vec<f64> = paths
            .iter()
            .flat_map(|p| p[k..k + w].iter().copied())
            .collect();
        let ends: Vec<usize> = (0..origins.len()).map(|i| i * w + w).collect();
        let next = predict(rnn, &flat, &ends, w)?;
        for (path, z) in paths.iter_mut().zip(next) {
            path.push(z);
        }
    }
    let levels: Vec<Vec<f64>> = (origins.iter().zip(&paths))
        .map(|(&o, p)| series.levels(y, o, &p[w..]))
        .collect();
    let rmse_horizon = rmse(
        &mut (origins.iter().zip(&levels))
            .flat_map(|(&o, l)| (0..h).map(move |k| (l[k], y[o + k]))),
    );
    let first_path = levels[0].clone();
    Ok(Forecasts {
        one_step: one,
        first_path,
        rmse_one,
        rmse_horizon,
        rmse_naive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> Vec<f64> {
        (0..n)
            .map(|t| 0.1 * t as f64 + (t as f64 * 0.7).sin())
            .collect()
    }

    #[test]
    fn differences_are_summed_back_onto_the_last_known_level() {
        let y = [1.0, 2.0, 4.0, 7.0, 11.0, 16.0, 22.0, 29.0, 37.0, 46.0];
        let s = Series::new(&y, 3, true).unwrap();
        assert_eq!((s.split, s.first), (8, 1));
        // The exact differences, normalised, give the truth back.
        let zs: Vec<f64> = s.z[8..10].to_vec();
        let levels = s.levels(&y, 8, &zs);
        assert!((levels[0] - 37.0).abs() < 1e-12 && (levels[1] - 46.0).abs() < 1e-12);
        let plain = Series::new(&y, 3, false).unwrap();
        assert!((plain.levels(&y, 8, &plain.z[8..9])[0] - 37.0).abs() < 1e-12);
        assert!(Series::new(&y, 7, false).is_err()); // 80% = 8 values: not more than a window
    }

    /// Fed back for one step, the horizon's forecasts are the one-step ones: the same error.
    #[test]
    fn a_horizon_of_one_is_the_one_step_forecast() {
        let y = series(60);
        let s = Series::new(&y, 6, true).unwrap();
        let args = crate::args::parse_from(["forecast", "--hidden", "4"]).unwrap();
        let rnn = model(&args, Cpu::<f32>::with_threads(1)).unwrap();
        let f = forecast(&rnn, &s, &y, (6, 1, 5)).unwrap();
        assert_eq!(f.one_step.len(), 12);
        assert!((f.rmse_one - f.rmse_horizon).abs() < 1e-9 * f.rmse_one.max(1.0));
        let naive: f64 = (48..60).map(|t| (y[t] - y[t - 5]).powi(2)).sum::<f64>() / 12.0;
        assert!((f.rmse_naive - naive.sqrt()).abs() < 1e-12);
        assert!(forecast(&rnn, &s, &y, (6, 13, 5)).is_err()); // longer than the test part
    }
}
