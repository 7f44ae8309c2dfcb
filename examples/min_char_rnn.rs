//! Karpathy's min-char-rnn on this crate: a character-level Elman RNN (tanh, 100 hidden units)
//! trained on windows of 25 characters with Adagrad, printing a sample of its text as it learns.
//!
//! ```text
//! cargo run --release --example min_char_rnn        # tests/fixtures/min_char_rnn/input.txt
//! cargo run --release --example min_char_rnn -- input.txt --iterations 100000
//! ```
//!
//! The algorithm is min-char-rnn's, step for step (`tests/fixtures/min_char_rnn/README.md`
//! spells it out in the order to match):
//!
//! - vocabulary: the distinct characters of the text, sorted; weights `randn * 0.01`, biases 0;
//! - iteration `n`: if `p + 25 + 1 >= len(data)` or `n == 0`, the hidden state and the data
//!   pointer `p` go back to zero; forward over `data[p .. p+25]` from the carried state, loss
//!   summed over the 25 steps against the next characters, backward through the window only;
//! - `smooth_loss = 0.999 smooth_loss + 0.001 loss`, from `25 ln V`;
//! - every gradient clipped element-wise to `[-5, 5]`, then Adagrad with the epsilon under the
//!   root: `mem += g*g; p -= 0.1 g / sqrt(mem + 1e-8)` ([`Adagrad::min_char_rnn`]);
//! - the window's last hidden state is carried to the next; `p += 25`;
//! - every 100 iterations, 200 characters sampled from the model, starting from the carried
//!   state and the window's first character.
//!
//! One difference of structure: min-char-rnn's cell has one hidden bias `bh`, PyTorch's (and
//! this crate's) two, `bias_ih_l0 + bias_hh_l0`. Both get the same gradient, so `bias_ih_l0`
//! plays `bh` and `bias_hh_l0` is held at zero: its gradient is dropped before the update.
//!
//! `tests/min_char_rnn.rs` runs [`MinCharRnn`] from this file against a numpy reference of the
//! same loop.

use recurrent::Kernels;
use recurrent::prelude::*;
use recurrent::rand::rngs::StdRng;
use recurrent::rand::{Rng, RngExt, SeedableRng};
use recurrent::rand_distr::StandardNormal;
use recurrent::{Sampler, Vocab};
use std::path::PathBuf;
use std::process::ExitCode;

/// Hidden units.
pub const HIDDEN: usize = 100;
/// Characters per window: the steps of one forward and backward pass.
pub const SEQ_LENGTH: usize = 25;
/// min-char-rnn's Adagrad learning rate.
pub const LEARNING_RATE: f64 = 0.1;
/// Every gradient entry is clipped to `[-CLIP, CLIP]`.
pub const CLIP: f64 = 5.0;
/// The initial weights are standard normal times this.
pub const INIT_SCALE: f64 = 0.01;
/// The weight of the old value in the smoothed loss.
const SMOOTHING: f64 = 0.999;

/// The model: `V` one-hot inputs, 100 tanh units, `V` logits.
pub fn config(vocab_size: usize) -> RnnConfig {
    RnnConfig::rnn(vocab_size, HIDDEN).output(vocab_size)
}

/// min-char-rnn's initial model: `W_xh` (H x V), `W_hh` (H x H), `W_hy` (V x H) drawn from
/// `N(0, 1) * 0.01` in that order from `rng`, every bias zero. PyTorch's `(rows, cols)` are
/// min-char-rnn's, so the draws go in row-major as they come.
pub fn init_model<B, R>(backend: B, vocab_size: usize, rng: &mut R) -> recurrent::Result<Rnn<B>>
where
    B: Kernels<Scalar = f64>,
    R: Rng + ?Sized,
{
    // Every parameter is overwritten below; this generator only fills them first.
    let mut placeholder = StdRng::seed_from_u64(0);
    let mut rnn = Rnn::new(backend, config(vocab_size), &mut placeholder)?;
    let (h, v) = (HIDDEN, vocab_size);
    let mut randn = |count: usize| -> Vec<f64> {
        (0..count)
            .map(|_| rng.sample::<f64, _>(StandardNormal) * INIT_SCALE)
            .collect()
    };
    let (w_xh, w_hh, w_hy) = (randn(h * v), randn(h * h), randn(v * h));
    rnn.set_parameter("weight_ih_l0", w_xh)?;
    rnn.set_parameter("weight_hh_l0", w_hh)?;
    rnn.set_parameter("out.weight", w_hy)?;
    rnn.set_parameter("bias_ih_l0", vec![0.0; h])?;
    rnn.set_parameter("bias_hh_l0", vec![0.0; h])?;
    rnn.set_parameter("out.bias", vec![0.0; v])?;
    Ok(rnn)
}

/// What one iteration did.
#[derive(Debug, Clone, Copy)]
pub struct Iteration {
    /// The iteration's number, from 0.
    pub n: usize,
    /// Whether the hidden state and the data pointer were reset before it (a new pass over the
    /// data).
    pub reset: bool,
    /// The window's loss, summed over its 25 steps, before the update.
    pub loss: f64,
    /// The smoothed loss with this iteration's folded in.
    pub smooth_loss: f64,
}

/// min-char-rnn's training loop over token ids: the model, Adagrad's memory, the data pointer,
/// the carried hidden state and the smoothed loss.
pub struct MinCharRnn<B: Kernels<Scalar = f64>> {
    rnn: Rnn<B>,
    adagrad: Adagrad<B>,
    data: Vec<usize>,
    /// Where the next window starts.
    p: usize,
    /// The next iteration's number.
    n: usize,
    /// The state the next window starts from: the last hidden state of the previous one.
    hprev: State<B>,
    smooth_loss: f64,
}

impl<B: Kernels<Scalar = f64>> MinCharRnn<B> {
    /// Training of `rnn` (shaped as [`config`]) on `data` (ids below the vocabulary size) with
    /// min-char-rnn's Adagrad at `learning_rate` (min-char-rnn's is [`LEARNING_RATE`]).
    ///
    /// # Errors
    /// [`Error::Config`] for data shorter than one window and its next character, or a learning
    /// rate that is not finite and positive; [`Error::Index`] for an id not below the model's
    /// input size.
    pub fn new(rnn: Rnn<B>, data: Vec<usize>, learning_rate: f64) -> recurrent::Result<Self> {
        if data.len() < SEQ_LENGTH + 1 {
            return Err(Error::Config {
                message: format!(
                    "min-char-rnn needs at least {} characters of data, given {}",
                    SEQ_LENGTH + 1,
                    data.len()
                ),
            });
        }
        let vocab_size = rnn.config().input_size();
        if let Some((position, &value)) = data.iter().enumerate().find(|(_, id)| **id >= vocab_size)
        {
            return Err(Error::Index {
                what: "min-char-rnn data".to_string(),
                position,
                value,
                bound: vocab_size,
            });
        }
        Ok(MinCharRnn {
            adagrad: Adagrad::min_char_rnn(learning_rate)?,
            hprev: rnn.zero_state(1),
            rnn,
            data,
            p: 0,
            n: 0,
            // The loss of a uniform guess over the vocabulary at every step of a window.
            smooth_loss: -(1.0 / vocab_size as f64).ln() * SEQ_LENGTH as f64,
        })
    }

    /// The model as trained so far.
    pub fn rnn(&self) -> &Rnn<B> {
        &self.rnn
    }

    /// Whether the next iteration starts a new pass: its first, or too little data left for a
    /// window and its targets.
    fn reset_due(&self) -> bool {
        self.p + SEQ_LENGTH + 1 >= self.data.len() || self.n == 0
    }

    /// One iteration of min-char-rnn's loop (without its sampling): forward and backward over
    /// the next window, clip, update.
    ///
    /// # Errors
    /// None expected: [`new`](MinCharRnn::new) checked the data, and the model's shapes are
    /// its own. An error from the crate is passed on.
    pub fn step(&mut self) -> recurrent::Result<Iteration> {
        let reset = self.reset_due();
        if reset {
            self.hprev = self.rnn.zero_state(1);
            self.p = 0;
        }
        let p = self.p;
        let inputs = Input::ids(self.data[p..p + SEQ_LENGTH].to_vec(), 1);
        let targets = &self.data[p + 1..p + SEQ_LENGTH + 1];
        // Forward from the carried state; backward through this window only (no gradient
        // reaches the previous one).
        let trace = self.rnn.forward(&inputs, Some(&self.hprev))?;
        let backend = self.rnn.backend().clone();
        let (loss, d_logits) = CrossEntropy::sum().forward(&backend, trace.logits(), targets)?;
        let mut grads = self.rnn.backward(&trace, &d_logits)?;
        self.smooth_loss = self.smooth_loss * SMOOTHING + loss * (1.0 - SMOOTHING);

        clip::by_value(&mut grads, CLIP)?;
        // min-char-rnn's one hidden bias is `bias_ih_l0`; `bias_hh_l0` stays zero, so its
        // gradient (equal to `bias_ih_l0`'s) is dropped. Adagrad then moves it by
        // `0 / sqrt(0 + 1e-8) = 0`.
        let d_bias_hh = grads.params_mut().get_mut("bias_hh_l0")?;
        let (rows, cols) = backend.shape(d_bias_hh);
        *d_bias_hh = backend.zeros(rows, cols);
        self.adagrad.step(&mut self.rnn, &grads)?;

        self.p += SEQ_LENGTH;
        self.hprev = trace.final_state();
        let n = self.n;
        self.n += 1;
        Ok(Iteration {
            n,
            reset,
            loss,
            smooth_loss: self.smooth_loss,
        })
    }

    /// min-char-rnn's `sample(hprev, inputs[0], length)` before the next iteration: `length`
    /// ids drawn one at a time by `sampler`, each fed back as the next input, starting from the
    /// state and the first character of the next window. Changes nothing of the training.
    ///
    /// # Errors
    /// As [`Rnn::step`] and [`Sampler::sample`].
    pub fn sample<R: Rng + ?Sized>(
        &self,
        length: usize,
        sampler: &mut Sampler,
        rng: &mut R,
    ) -> recurrent::Result<Vec<usize>> {
        let (mut stream, mut x) = match self.reset_due() {
            true => (self.rnn.stream(1)?, self.data[0]),
            false => (self.rnn.stream_from(&self.hprev)?, self.data[self.p]),
        };
        let mut ids = Vec::with_capacity(length);
        for _ in 0..length {
            let logits = self.rnn.step(&mut stream, &[x])?;
            x = sampler.sample(&self.rnn.backend().to_vec(logits), rng)?;
            ids.push(x);
        }
        Ok(ids)
    }
}

/// The command line: `[PATH] [--iterations N]`.
struct Args {
    path: PathBuf,
    iterations: usize,
}

const USAGE: &str = "usage: min_char_rnn [PATH] [--iterations N]   (default: \
                     tests/fixtures/min_char_rnn/input.txt, 2000 iterations)";

/// The arguments; `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        path: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/min_char_rnn/input.txt"),
        iterations: 2000,
    };
    let mut path_given = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iterations" => {
                let value = args.next().ok_or("--iterations needs a number")?;
                parsed.iterations = value
                    .parse()
                    .map_err(|_| format!("--iterations needs a number, given {value:?}"))?;
            }
            "-h" | "--help" => return Ok(None),
            _ if arg.starts_with('-') || path_given => {
                return Err(format!("unexpected argument {arg:?}\n{USAGE}"));
            }
            _ => {
                parsed.path = PathBuf::from(arg);
                path_given = true;
            }
        }
    }
    Ok(Some(parsed))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let Some(args) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    // Bytes to UTF-8 with no newline translation, so the vocabulary is the file's.
    let bytes = std::fs::read(&args.path).map_err(|e| format!("{}: {e}", args.path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| format!("{}: {e}", args.path.display()))?;
    let vocab = Vocab::from_text(&text)?;
    let data = vocab.encode(&text)?;
    println!(
        "data has {} characters, {} unique.",
        data.len(),
        vocab.len()
    );

    // As min-char-rnn, one seeded generator draws the initial weights, then the samples.
    let mut rng = StdRng::seed_from_u64(5);
    let rnn = init_model(Cpu::<f64>::default(), vocab.len(), &mut rng)?;
    let mut training = MinCharRnn::new(rnn, data, LEARNING_RATE)?;
    let mut sampler = Sampler::new(1.0)?;
    let (mut passes, mut last) = (0, None);
    for n in 0..args.iterations {
        let sample = (n % 100 == 0).then(|| training.sample(200, &mut sampler, &mut rng));
        if let Some(ids) = sample {
            println!("----\n {} \n----", vocab.decode(&ids?)?);
        }
        let it = training.step()?;
        passes += usize::from(it.reset);
        if n % 100 == 0 {
            println!("iter {}, loss {:.6}", it.n, it.smooth_loss);
        }
        last = Some(it);
    }
    if let Some(it) = last {
        println!(
            "after iter {}: loss {:.6}, {passes} pass(es) over the data",
            it.n, it.smooth_loss
        );
    }
    Ok(())
}
