//! The task, the training runs and the recorded gradient flow behind the figures.

use recurrent::Kernels;
use recurrent::diagnostics::{self, GradientFlow, Iteration};
use recurrent::prelude::*;
use recurrent::rand::rngs::StdRng;
use recurrent::rand::{RngExt, SeedableRng};
use recurrent::{CellKind, LayerFlow, Nonlinearity, Scalar};
use std::fmt;

/// Symbols to recall (ids `0..4`), distractors (ids `4..8`), the query mark (id 8).
const SYMBOLS: usize = 4;
const DISTRACTORS: usize = 4;
const QUERY: usize = SYMBOLS + DISTRACTORS;
const VOCAB: usize = QUERY + 1;

/// The three cells, in the order of every table and figure.
pub const CELLS: [CellKind; 3] = [
    CellKind::Rnn(Nonlinearity::Tanh),
    CellKind::Lstm,
    CellKind::Gru,
];

/// Sizes and lengths of a run.
pub struct Budget {
    /// The distances `N` to learn.
    pub distractors: Vec<usize>,
    pub hidden: usize,
    pub batch: usize,
    /// Adam updates per cell and `N`.
    pub updates: usize,
    /// Held-out sequences for accuracy and for the gradient-flow probes.
    pub eval: usize,
    /// SGD updates of the exploding Elman net, and its `N`.
    pub sgd_updates: usize,
    pub sgd_n: usize,
    pub sgd_lr: f64,
    /// Added to the LSTM's forget-gate bias at initialisation (0 keeps PyTorch's).
    pub forget_bias: f64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            distractors: vec![10, 20, 50, 100],
            hidden: 32,
            batch: 32,
            updates: 1000,
            eval: 256,
            sgd_updates: 150,
            sgd_n: 50,
            sgd_lr: 0.1,
            forget_bias: 1.0,
        }
    }
}

impl Budget {
    /// A smoke run: every part, on small models for a few updates.
    pub fn quick() -> Self {
        Budget {
            distractors: vec![10, 20, 50, 100],
            hidden: 8,
            batch: 8,
            updates: 4,
            eval: 16,
            sgd_updates: 12,
            sgd_n: 20,
            sgd_lr: 0.1,
            forget_bias: 1.0,
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "recall the first of {SYMBOLS} symbols after N distractors, N in {:?}: hidden {}, \
             batch {}, {} Adam updates (lr 1e-2, clipped at norm 1) per cell and N",
            self.distractors, self.hidden, self.batch, self.updates
        )
    }
}

/// A batch of the task: token ids (`T*B`, time-major, `T = n + 2`) and the symbol to recall for
/// each sequence.
fn task_batch(n: usize, batch: usize, rng: &mut StdRng) -> (Vec<usize>, Vec<usize>) {
    let answers: Vec<usize> = (0..batch).map(|_| rng.random_range(0..SYMBOLS)).collect();
    let mut ids = answers.clone();
    for _ in 0..n * batch {
        ids.push(SYMBOLS + rng.random_range(0..DISTRACTORS));
    }
    ids.extend(std::iter::repeat_n(QUERY, batch));
    (ids, answers)
}

/// Targets and mask for a loss at the last step only.
fn last_step_targets(answers: &[usize], steps: usize) -> (Vec<usize>, Vec<bool>) {
    let batch = answers.len();
    let rows = steps * batch;
    let targets = (0..rows)
        .map(|r| {
            if r >= rows - batch {
                answers[r % batch]
            } else {
                0
            }
        })
        .collect();
    let mask = (0..rows).map(|r| r >= rows - batch).collect();
    (targets, mask)
}

/// The mean cross-entropy at the query, its gradient, and the trace.
fn loss_at_query<B: Kernels>(
    rnn: &Rnn<B>,
    (ids, answers): &(Vec<usize>, Vec<usize>),
) -> Result<(f64, B::Matrix, Trace<B>)> {
    let batch = answers.len();
    let trace = rnn.forward(&Input::ids(ids.clone(), batch), None)?;
    let (targets, mask) = last_step_targets(answers, ids.len() / batch);
    let (loss, d) = CrossEntropy::mean().forward_masked(
        rnn.backend(),
        trace.logits(),
        &targets,
        Some(&mask),
    )?;
    Ok((loss.to_f64(), d, trace))
}

/// `||dE/dh_t||` of the first layer over `probe`, and the accuracy at the query.
fn probe<B: Kernels>(rnn: &Rnn<B>, data: &(Vec<usize>, Vec<usize>)) -> Result<(LayerFlow, f64)> {
    let (_, d, trace) = loss_at_query(rnn, data)?;
    let mut flow = GradientFlow::new();
    rnn.backward_recorded(&trace, &d, None, &mut flow)?;
    let answers = &data.1;
    let batch = answers.len();
    let logits = rnn.backend().to_vec(trace.logits());
    let last = &logits[logits.len() - batch * SYMBOLS..];
    let correct = answers
        .iter()
        .enumerate()
        .filter(|&(b, &answer)| {
            let row = &last[b * SYMBOLS..(b + 1) * SYMBOLS];
            (0..SYMBOLS).all(|k| row[k] <= row[answer])
        })
        .count();
    let layer = flow.layer(0, 0).expect("one layer").clone();
    Ok((layer, correct as f64 / batch as f64))
}

/// How many steps back each cell's gradient falls below 1e-6 of its last-step value.
pub struct Cutoffs {
    pub init: Option<usize>,
    pub trained: Option<usize>,
}

/// One cell trained on one `N`.
pub struct TaskRun {
    pub cell: &'static str,
    pub n: usize,
    pub init: Curve,
    pub trained: Curve,
    pub accuracy: f64,
    pub losses: Vec<f64>,
}

/// A recorded `||dE/dh_t||` curve and where it falls below 1e-6 of its last value.
pub struct Curve {
    pub dh: Vec<f64>,
    pub cutoff: Option<usize>,
}

impl Curve {
    fn of(flow: &LayerFlow) -> Self {
        Curve {
            dh: flow.dh().to_vec(),
            cutoff: flow.steps_until_below(1e-6),
        }
    }
}

impl TaskRun {
    pub fn cutoffs(&self) -> Cutoffs {
        Cutoffs {
            init: self.init.cutoff,
            trained: self.trained.cutoff,
        }
    }
}

/// The held-out sequences of distance `n`: the same for every cell.
fn held_out(n: usize, budget: &Budget, seed: u64) -> (Vec<usize>, Vec<usize>) {
    task_batch(
        n,
        budget.eval,
        &mut StdRng::seed_from_u64(seed ^ 0x5eed_0000 ^ n as u64),
    )
}

/// Adds `value` to the forget-gate block (rows `H..2H`, PyTorch's order i, f, g, o) of an
/// LSTM's `bias_ih_l0`: a forget gate near 1 at the start lets the cell vector, and its
/// gradient, last (Gers, Schmidhuber & Cummins 2000; Jozefowicz, Zaremba & Sutskever 2015).
fn add_forget_bias<B: Kernels>(rnn: &mut Rnn<B>, value: f64) -> Result<()> {
    let hidden = rnn.config().hidden_size();
    let mut bias = rnn.backend().to_vec(rnn.parameter("bias_ih_l0")?);
    for b in &mut bias[hidden..2 * hidden] {
        *b = *b + B::Scalar::of(value);
    }
    rnn.set_parameter("bias_ih_l0", bias)
}

/// Trains `cell` on distance `n` with Adam (lr 1e-2, gradients clipped at global norm 1).
pub fn train_task<B: Kernels>(
    backend: B,
    cell: CellKind,
    n: usize,
    budget: &Budget,
    seed: u64,
) -> Result<TaskRun> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(n as u64));
    let config = RnnConfig::new(cell, VOCAB, budget.hidden).output(SYMBOLS);
    let mut rnn = Rnn::new(backend, config, &mut rng)?;
    if cell == CellKind::Lstm {
        add_forget_bias(&mut rnn, budget.forget_bias)?;
    }
    let probe_data = held_out(n, budget, seed);
    let (init, _) = probe(&rnn, &probe_data)?;
    let mut adam = Adam::new(1e-2)?;
    let mut losses = Vec::with_capacity(budget.updates);
    for _ in 0..budget.updates {
        let batch = task_batch(n, budget.batch, &mut rng);
        let (loss, d, trace) = loss_at_query(&rnn, &batch)?;
        let mut grads = rnn.backward(&trace, &d)?;
        clip::global_norm(&mut grads, B::Scalar::of(1.0))?;
        adam.step(&mut rnn, &grads)?;
        losses.push(loss);
    }
    let (trained, accuracy) = probe(&rnn, &probe_data)?;
    Ok(TaskRun {
        cell: cell.name(),
        n,
        init: Curve::of(&init),
        trained: Curve::of(&trained),
        accuracy,
        losses,
    })
}

/// The Elman RNN's `||dE/dh_t||` at initialisation with `W_hh` scaled to spectral radius `rho`.
pub struct RhoCurve {
    pub rho: f64,
    pub sigma: f64,
    pub dh: Vec<f64>,
}

/// SGD on the exploding Elman net: the loss and pre-clip gradient norm of every update, and
/// the update whose loss or gradient was first NaN or infinite (training stops there).
pub struct SgdRun {
    pub losses: Vec<f64>,
    pub norms: Vec<f64>,
    pub nan_at: Option<usize>,
}

/// One Elman net trained with SGD from the same start, unclipped and clipped.
pub struct SgdPair {
    /// `tanh` or `relu`.
    pub nonlinearity: &'static str,
    pub rho: f64,
    pub unclipped: SgdRun,
    pub clipped: SgdRun,
}

/// Part 2 of the example.
pub struct Exploding {
    pub n: usize,
    pub curves: Vec<RhoCurve>,
    pub pairs: Vec<SgdPair>,
}

/// The spectral radii of the tanh curves.
const RHOS: [f64; 5] = [0.5, 0.9, 1.1, 1.5, 3.0];
/// The nets trained: tanh, whose saturation bounds the state, at radius 3, and ReLU, whose
/// state is unbounded, at 1.5.
const TRAINED: [(Nonlinearity, &str, f64); 2] = [
    (Nonlinearity::Tanh, "tanh", 3.0),
    (Nonlinearity::Relu, "relu", 1.5),
];

/// An Elman net of `budget`'s size whose `W_hh` is its initial one scaled to spectral radius
/// `rho`; returns it with the largest singular value of the scaled `W_hh`.
fn elman_at<B: Kernels>(
    backend: B,
    budget: &Budget,
    (nonlinearity, rho): (Nonlinearity, f64),
    seed: u64,
) -> Result<(Rnn<B>, f64)> {
    let config = RnnConfig::rnn(VOCAB, budget.hidden)
        .nonlinearity(nonlinearity)
        .output(SYMBOLS);
    let mut rnn = Rnn::new(backend, config, &mut StdRng::seed_from_u64(seed))?;
    let backend = rnn.backend().clone();
    let w = rnn.parameter("weight_hh_l0")?.clone();
    let opts = Iteration::default();
    let scale = rho / diagnostics::spectral_radius(&backend, &w, opts)?;
    let scaled: Vec<B::Scalar> = backend
        .to_vec(&w)
        .into_iter()
        .map(|v| v * B::Scalar::of(scale))
        .collect();
    rnn.set_parameter("weight_hh_l0", scaled)?;
    let sigma =
        diagnostics::largest_singular_value(&backend, rnn.parameter("weight_hh_l0")?, opts)?;
    Ok((rnn, sigma))
}

/// Plain SGD for `budget.sgd_updates` updates, clipping at global norm 1 when `clipped`.
fn sgd_run<B: Kernels>(
    mut rnn: Rnn<B>,
    budget: &Budget,
    clipped: bool,
    seed: u64,
) -> Result<SgdRun> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sgd = Sgd::new(budget.sgd_lr)?;
    let mut run = SgdRun {
        losses: Vec::new(),
        norms: Vec::new(),
        nan_at: None,
    };
    let mut flow = GradientFlow::new();
    for update in 0..budget.sgd_updates {
        let batch = task_batch(budget.sgd_n, budget.batch, &mut rng);
        let (loss, d, trace) = loss_at_query(&rnn, &batch)?;
        let mut grads = rnn.backward_recorded(&trace, &d, None, &mut flow)?;
        let norm = clip::norm(rnn.backend(), &grads);
        run.losses.push(loss);
        run.norms.push(norm);
        if !(loss.is_finite() && norm.is_finite()) {
            run.nan_at = Some(update);
            break;
        }
        if clipped {
            flow.record_clip(clip::global_norm_recorded(&mut grads, B::Scalar::of(1.0))?);
        }
        sgd.step(&mut rnn, &grads)?;
    }
    Ok(run)
}

/// Part 2: the tanh net's gradient curve at several spectral radii, and SGD on a tanh and a
/// ReLU net above radius 1, with and without clipping.
pub fn exploding<B: Kernels>(backend: B, budget: &Budget, seed: u64) -> Result<Exploding> {
    let n = budget.sgd_n;
    let data = held_out(n, budget, seed);
    let mut curves = Vec::new();
    for rho in RHOS {
        let (rnn, sigma) = elman_at(backend.clone(), budget, (Nonlinearity::Tanh, rho), seed)?;
        let (flow, _) = probe(&rnn, &data)?;
        curves.push(RhoCurve {
            rho,
            sigma,
            dh: flow.dh().to_vec(),
        });
    }
    let mut pairs = Vec::new();
    for (nonlinearity, name, rho) in TRAINED {
        let (rnn, _) = elman_at(backend.clone(), budget, (nonlinearity, rho), seed)?;
        pairs.push(SgdPair {
            nonlinearity: name,
            rho,
            unclipped: sgd_run(rnn.clone(), budget, false, seed)?,
            clipped: sgd_run(rnn, budget, true, seed)?,
        });
    }
    Ok(Exploding { n, curves, pairs })
}
