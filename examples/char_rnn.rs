//! The crate's main job: train a character-level language model on a text and write text with
//! it, as Karpathy's char-rnn does.
//!
//! ```text
//! cargo run --release --example char_rnn                     # train ~2 minutes on the shipped text
//! cargo run --release --example char_rnn -- --help           # every setting
//! cargo run --release --example char_rnn -- --corpus tinyshakespeare.txt --minutes 15
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
//! next to it (`.last.safetensors`), from which `--resume` goes on exactly as if never stopped
//! (with the same corpus, `--batch`, `--seq` and `--val-fraction`, and for `--schedule cosine`
//! the same `--lr`, `--lr-min` and `--steps`, which it checks; the model, `--dropout` and
//! `--output-dropout` included, comes from the checkpoint).

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use recurrent::checkpoint::{Checkpoint, Progress};
use recurrent::data::{Corpus, Vocab, Window, split};
use recurrent::prelude::*;
use recurrent::sample::{Sampler, generate};
use recurrent::{CosineLr, ExponentialLr, Schedule};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The text shipped with the crate (public domain: see `examples/data/README.md`).
const DEFAULT_CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/data/kjv_genesis_exodus.txt"
);

#[derive(Parser, Debug, Clone)]
#[command(about = "Train a character-level RNN on a text, or write text with a trained one")]
struct Args {
    /// The text to learn (UTF-8) [default: the King James Genesis and Exodus shipped in
    /// examples/data]
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Recurrent cell
    #[arg(long, value_enum, default_value_t = CellArg::Lstm)]
    cell: CellArg,
    /// Hidden units per layer
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Stacked layers
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Characters per training window (BPTT length)
    #[arg(long, default_value_t = 50)]
    seq: usize,
    /// Parallel streams per batch
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Learning rate
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Optimiser
    #[arg(long, value_enum, default_value_t = OptimizerArg::Rmsprop)]
    optimizer: OptimizerArg,
    /// How the learning rate falls: `exponential` multiplies it by `--lr-decay` after every
    /// epoch from `--decay-after` on (char-rnn's); `cosine` anneals it from `--lr` at the first
    /// update to `--lr-min` after the last of `--steps` (PyTorch's CosineAnnealingLR, one value
    /// per update; needs `--steps`)
    #[arg(long, value_enum, default_value_t = ScheduleArg::Exponential)]
    schedule: ScheduleArg,
    /// Learning-rate decay per epoch after `--decay-after` epochs (char-rnn: 0.97 after 10)
    #[arg(long, default_value_t = 0.97)]
    lr_decay: f64,
    /// Where `--schedule cosine` ends (unused by the exponential decay)
    #[arg(long, default_value_t = 0.0)]
    lr_min: f64,
    /// Epochs before the learning rate starts to decay
    #[arg(long, default_value_t = 10)]
    decay_after: u64,
    /// Dropout between layers
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    /// Dropout on the top layer's output, before the output layer (char-rnn's `-dropout`
    /// applies there too)
    #[arg(long, default_value_t = 0.0)]
    output_dropout: f64,
    /// Element-wise gradient clipping threshold
    #[arg(long, default_value_t = 5.0)]
    clip: f64,
    /// Fraction of the text, at its end, kept for validation
    #[arg(long, default_value_t = 0.05)]
    val_fraction: f64,
    /// Stop after this many updates in all, counting a resumed run's (default: stop on time)
    #[arg(long)]
    steps: Option<u64>,
    /// Stop after this many minutes of this run [default: 2 without `--steps`; with it, no
    /// limit]; with both, at whichever comes first
    #[arg(long)]
    minutes: Option<f64>,
    /// Evaluate, sample and checkpoint every this many updates
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..))]
    eval_every: u64,
    /// Where the best checkpoint (by validation loss; with `--val-fraction 0`, the last) is
    /// written; the last one goes beside it
    #[arg(long, default_value = "char_rnn.safetensors")]
    save: PathBuf,
    /// Go on training from this checkpoint (with `--sample`: the checkpoint to sample from);
    /// the corpus, `--batch`, `--seq`, `--val-fraction` and a cosine schedule must be the
    /// run's (checked); the model, its dropout included, comes from the checkpoint
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Start a new run even if `--save` exists (it is overwritten at the first evaluation)
    #[arg(long)]
    force: bool,
    /// Write this many characters from a checkpoint (`--resume`, else `--save`) and exit
    #[arg(long)]
    sample: Option<usize>,
    /// Sampling temperature (0: always the most likely character)
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Sample only among the k most likely characters
    #[arg(long)]
    top_k: Option<usize>,
    /// Text the model reads before writing
    #[arg(long, default_value = "")]
    prime: String,
    /// Seed of the initial weights, dropout and sampling (a resumed run keeps its own seed for
    /// dropout; this one then seeds sampling only)
    #[arg(long, default_value_t = 123)]
    seed: u64,
    /// Threads (default: every core)
    #[arg(long)]
    threads: Option<usize>,
    /// The backend: `cpu` (the crate's `Cpu`), or `candle` (candle's tensors on its CPU device;
    /// needs `--features candle`)
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    backend: BackendArg,
    /// Print every update's training loss in full (`step N loss X`), to compare two runs
    #[arg(long)]
    print_losses: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum BackendArg {
    Cpu,
    Candle,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum CellArg {
    Rnn,
    Lstm,
    Gru,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum ScheduleArg {
    Exponential,
    Cosine,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum OptimizerArg {
    Sgd,
    Adagrad,
    Rmsprop,
    Adam,
}

fn main() {
    let args = Args::parse();
    if let Err(err) = run(&args) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    if args.backend == BackendArg::Candle {
        return run_on_candle(args);
    }
    let backend = match args.threads {
        Some(n) => Cpu::<f32>::with_threads(n),
        None => Cpu::new(),
    };
    let engine = format!("{} threads", backend.threads());
    match args.sample {
        Some(length) => sample_only(args, backend, length),
        None => train(args, backend, &engine),
    }
}

#[cfg(feature = "candle")]
fn run_on_candle(args: &Args) -> Result<()> {
    let backend = recurrent::Candle::<f32>::cpu();
    match args.sample {
        Some(length) => sample_only(args, backend, length),
        None => train(args, backend, "candle, CPU device"),
    }
}

#[cfg(not(feature = "candle"))]
fn run_on_candle(_: &Args) -> Result<()> {
    Err(Error::Config {
        message: "--backend candle needs the crate's feature `candle`: \
                  cargo run --features candle --example char_rnn -- --backend candle"
            .to_string(),
    })
}

/// `--sample N`: text from a saved model, no training.
fn sample_only<B: Kernels<Scalar = f32>>(args: &Args, backend: B, length: usize) -> Result<()> {
    let path = args.resume.as_deref().unwrap_or(&args.save);
    let checkpoint = Checkpoint::load(backend, path)?;
    let vocab = checkpoint.vocab.as_ref().ok_or_else(|| Error::Config {
        message: format!("{} holds no vocabulary", path.display()),
    })?;
    let mut sampler = sampler(args)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let text = generate(
        &checkpoint.rnn,
        vocab,
        &args.prime,
        length,
        &mut sampler,
        &mut rng,
    )?;
    println!("{}{text}", args.prime);
    Ok(())
}

fn sampler(args: &Args) -> Result<Sampler> {
    let sampler = if args.temperature == 0.0 {
        Sampler::greedy()
    } else {
        Sampler::new(args.temperature)?
    };
    match args.top_k {
        Some(k) => sampler.top_k(k),
        None => Ok(sampler),
    }
}

/// The learning rate of every update: set per epoch (exponential decay) or per update (cosine).
enum LrSchedule {
    PerEpoch(ExponentialLr),
    PerUpdate(CosineLr),
}

impl LrSchedule {
    fn apply<B: Kernels<Scalar = f32>>(
        &self,
        opt: &mut dyn Optimizer<B>,
        progress: &Progress,
    ) -> Result<()> {
        match self {
            LrSchedule::PerEpoch(s) => opt.set_lr(s.lr_at(progress.epoch)),
            LrSchedule::PerUpdate(s) => opt.set_lr(s.lr_at(progress.step)),
        }
    }
}

fn schedule(args: &Args) -> Result<LrSchedule> {
    Ok(match (args.schedule, args.steps) {
        (ScheduleArg::Exponential, _) => LrSchedule::PerEpoch(
            ExponentialLr::new(args.lr, args.lr_decay)?.first_decay_at(args.decay_after)?,
        ),
        (ScheduleArg::Cosine, Some(steps)) if steps > 0 => {
            LrSchedule::PerUpdate(CosineLr::new(args.lr, steps)?.eta_min(args.lr_min)?)
        }
        (ScheduleArg::Cosine, _) => {
            return Err(Error::Config {
                message: "--schedule cosine needs --steps of at least 1: the run's length is \
                          the cosine's"
                    .to_string(),
            });
        }
    })
}

fn optimizer<B: Kernels<Scalar = f32>>(args: &Args) -> Result<Box<dyn Optimizer<B>>> {
    Ok(match args.optimizer {
        OptimizerArg::Sgd => Box::new(Sgd::new(args.lr)?.momentum(0.9)?),
        OptimizerArg::Adagrad => Box::new(Adagrad::new(args.lr)?),
        OptimizerArg::Rmsprop => Box::new(RmsProp::new(args.lr)?.alpha(0.95)?),
        OptimizerArg::Adam => Box::new(Adam::new(args.lr)?),
    })
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn train<B: Kernels<Scalar = f32>>(args: &Args, backend: B, engine: &str) -> Result<()> {
    sampler(args)?; // a bad --temperature or --top-k is an error now, not at the first sample
    // No time limit when only `--steps` is given.
    let minutes = args.minutes.or(args.steps.is_none().then_some(2.0));
    let budget = minutes
        .map(|m| {
            Duration::try_from_secs_f64(m * 60.0).map_err(|_| Error::Config {
                message: format!("--minutes must be a finite number >= 0, given {m}"),
            })
        })
        .transpose()?;
    let schedule = schedule(args)?;
    if args.resume.is_none() && !args.force && args.save.exists() {
        return Err(Error::Config {
            message: format!(
                "{} exists: pass --resume {} to go on training it, or --force to start over \
                 and overwrite it",
                args.save.display(),
                last_path(&args.save).display()
            ),
        });
    }
    if let Some(dir) = args.save.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
    }
    let corpus_path = args.corpus.clone().unwrap_or_else(|| DEFAULT_CORPUS.into());
    let text = read_text(&corpus_path)?;
    let resumed = match &args.resume {
        Some(path) => Some(Checkpoint::load(backend.clone(), path)?),
        None => None,
    };
    let vocab = match resumed.as_ref().and_then(|c| c.vocab.as_ref()) {
        Some(vocab) => vocab.clone(),
        None => Vocab::from_text(&text)?,
    };
    // What a resumed run must share with the run it continues, saved with every checkpoint. The
    // cosine's rates depend on the run's length; the exponential decay may be changed on resume.
    let lr_schedule = match args.schedule {
        ScheduleArg::Exponential => "exponential".to_string(),
        ScheduleArg::Cosine => format!(
            "cosine from {:?} to {:?} over {} steps",
            args.lr,
            args.lr_min,
            args.steps.unwrap_or(0)
        ),
    };
    let layout = [
        ("batch", args.batch.to_string()),
        ("seq", args.seq.to_string()),
        ("val_fraction", format!("{:?}", args.val_fraction)),
        ("corpus_chars", text.chars().count().to_string()),
        ("lr_schedule", lr_schedule),
    ];
    if let Some(checkpoint) = &resumed {
        let differ: Vec<String> = layout
            .iter()
            // Checkpoints written before the schedule was saved have none: not checked.
            .filter(|(key, _)| *key != "lr_schedule" || checkpoint.metadata.contains_key(*key))
            .filter(|(key, value)| checkpoint.metadata.get(*key) != Some(value))
            .map(|(key, value)| {
                let saved = checkpoint.metadata.get(*key).map_or("none", String::as_str);
                format!("{key}: {saved} in the checkpoint, {value} now")
            })
            .collect();
        if !differ.is_empty() {
            return Err(Error::Config {
                message: format!(
                    "--resume with another data layout or schedule: {}",
                    differ.join("; ")
                ),
            });
        }
        if checkpoint.rnn.config().input_size() != vocab.len() {
            return Err(Error::Config {
                message: format!(
                    "the checkpoint's model reads {} characters, the vocabulary has {}",
                    checkpoint.rnn.config().input_size(),
                    vocab.len()
                ),
            });
        }
    }
    let (train_ids, val_ids) = split(vocab.encode(&text)?, args.val_fraction)?;
    let train_data = Corpus::new(train_ids, args.batch, args.seq)?;
    // Up to 8 validation streams, fewer for a short held-out text; none below one window.
    let val_batch = (val_ids.len().saturating_sub(1) / args.seq).min(args.batch.min(8));
    let val_data = (val_batch > 0)
        .then(|| Corpus::new(val_ids, val_batch, args.seq))
        .transpose()?;
    if val_data.is_none() && args.val_fraction > 0.0 {
        println!("(the held-out text is shorter than one window of --seq: no validation)");
    }
    let mut opt = optimizer(args)?;
    let (mut rnn, mut progress, mut state) = match resumed {
        Some(checkpoint) => {
            checkpoint.restore_optimizer(opt.as_mut())?;
            let Checkpoint {
                rnn,
                progress,
                state,
                ..
            } = checkpoint;
            (rnn, progress, state)
        }
        None => {
            let config = match args.cell {
                CellArg::Rnn => RnnConfig::rnn(vocab.len(), args.hidden),
                CellArg::Lstm => RnnConfig::lstm(vocab.len(), args.hidden),
                CellArg::Gru => RnnConfig::gru(vocab.len(), args.hidden),
            }
            .layers(args.layers)
            .dropout(args.dropout)
            .output_dropout(args.output_dropout)
            .output(vocab.len());
            let mut rng = StdRng::seed_from_u64(args.seed);
            let rnn = Rnn::new(backend.clone(), config, &mut rng)?;
            (rnn, Progress::new(args.seed), None)
        }
    };
    let windows = train_data.len();
    let loss = CrossEntropy::mean();
    let chars_per_step = (args.batch * args.seq) as f64;
    let parameters: usize = rnn
        .parameters()
        .iter()
        .map(|(_, m)| backend.shape(m).0 * backend.shape(m).1)
        .sum();
    let config = rnn.config();
    println!(
        "{} characters ({} distinct): {} windows of {} x {} for training, {} characters for \
         validation; {:?} {} x {}, {parameters} parameters, {}",
        text.chars().count(),
        vocab.len(),
        windows,
        args.batch,
        args.seq,
        val_data
            .as_ref()
            .map_or(0, |v| v.len() * v.batch() * v.steps()),
        config.kind(),
        config.num_layers(),
        config.hidden_size(),
        engine,
    );

    let bar = progress_bar(
        args.steps.map(|s| s.saturating_sub(progress.step)),
        budget.unwrap_or(Duration::MAX),
    );
    let (start, first_step) = (Instant::now(), progress.step);
    let mut window = Window::default();
    let mut last_loss = f64::NAN;
    let mut last_val = f64::NAN;
    let mut trained_chars = 0.0;
    // Time spent in updates alone, without evaluations, samples and checkpoints.
    let mut training = Duration::ZERO;
    let save = |rnn: &Rnn<B>,
                opt: &dyn Optimizer<B>,
                progress: Progress,
                state: &Option<State<B>>,
                best: bool|
     -> Result<()> {
        let mut checkpoint = Checkpoint::new(rnn.clone(), opt, progress)
            .with_vocab(vocab.clone())
            .with_state(state.clone());
        for (key, value) in &layout {
            checkpoint = checkpoint.with_metadata(*key, value.clone());
        }
        checkpoint.save(last_path(&args.save))?;
        if best {
            checkpoint.save(&args.save)?;
        }
        Ok(())
    };
    loop {
        let done = args.steps.is_some_and(|steps| progress.step >= steps)
            || budget.is_some_and(|budget| start.elapsed() >= budget);
        if done {
            break;
        }
        let update_start = Instant::now();
        train_data.fill(progress.window, &mut window)?;
        schedule.apply(opt.as_mut(), &progress)?;
        if window.reset {
            state = None; // a new pass: every stream starts again from its beginning
        }
        // Dropout draws from a generator made for this update, so a resumed run draws the same.
        let trace = rnn.forward_train(&window.input(), state.as_ref(), &mut progress.rng())?;
        let (value, d_logits) = loss.forward(rnn.backend(), trace.logits(), &window.targets)?;
        let mut grads = rnn.backward(&trace, &d_logits)?;
        clip::by_value(&mut grads, args.clip as f32)?;
        opt.step(&mut rnn, &grads)?;
        state = Some(trace.final_state());
        progress.advance(windows);
        training += update_start.elapsed();
        last_loss = f64::from(value);
        if args.print_losses {
            say(&bar, format!("step {} loss {value:.9e}", progress.step));
        }
        trained_chars += chars_per_step;
        if !last_loss.is_finite() {
            return Err(Error::NonFinite {
                what: format!("training loss at step {}", progress.step),
            });
        }
        if progress.step % args.eval_every == 0 {
            if let Some(val) = &val_data {
                last_val = validation_loss(&rnn, val, &loss)?;
            }
            let best = progress.record_val_loss(last_val) || val_data.is_none();
            save(&rnn, opt.as_ref(), progress, &state, best)?;
            let mut sampler = sampler(args)?;
            let mut rng = StdRng::seed_from_u64(args.seed.wrapping_add(progress.step));
            let sample = generate(&rnn, &vocab, "", 200, &mut sampler, &mut rng)?;
            say(
                &bar,
                format!(
                    "--- step {} (epoch {:.2}, {:.1} s of updates), loss {last_loss:.4}, validation \
                     {last_val:.4}{}\n{sample}\n",
                    progress.step,
                    progress.step as f64 / windows as f64,
                    training.as_secs_f64(),
                    if best { " (best: saved)" } else { "" },
                ),
            );
        }
        let seconds = start.elapsed().as_secs_f64();
        match args.steps {
            Some(_) => bar.inc(1),
            None => bar.set_position(seconds as u64),
        }
        bar.set_message(format!(
            "loss {last_loss:.3} val {last_val:.3} | {:.0} char/s | step {} lr {:.1e}",
            trained_chars / seconds,
            progress.step,
            opt.lr()
        ));
    }
    bar.finish();
    // A last evaluation and checkpoint, so that both files are up to date (unless the last
    // update was evaluated and saved already).
    if progress.step == first_step || progress.step % args.eval_every != 0 {
        if let Some(val) = &val_data {
            last_val = validation_loss(&rnn, val, &loss)?;
        }
        let best = progress.record_val_loss(last_val) || val_data.is_none();
        save(&rnn, opt.as_ref(), progress, &state, best)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "step {}: {} steps in {seconds:.1} s, {:.1} s of them updates ({:.0} characters/s); \
         loss {last_loss:.4}, validation {last_val:.4}, best validation {:.4} (in {})",
        progress.step,
        progress.step - first_step,
        training.as_secs_f64(),
        trained_chars / training.as_secs_f64(),
        progress.best_val_loss.unwrap_or(f64::NAN),
        args.save.display()
    );
    Ok(())
}

/// Mean cross-entropy per character over the whole validation text, the state carried from
/// window to window as in training.
fn validation_loss<B: Kernels<Scalar = f32>>(
    rnn: &Rnn<B>,
    data: &Corpus,
    loss: &CrossEntropy,
) -> Result<f64> {
    let mut state: Option<State<B>> = None;
    let mut total = 0.0;
    let mut window = Window::default();
    for k in 0..data.len() {
        data.fill(k, &mut window)?;
        let trace = rnn.forward(&window.input(), state.as_ref())?;
        let (value, _) = loss.forward(rnn.backend(), trace.logits(), &window.targets)?;
        total += f64::from(value);
        state = Some(trace.final_state());
    }
    Ok(total / data.len() as f64)
}

/// A line above the progress bar, or on its own where the bar is hidden (output not a terminal).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

fn last_path(best: &Path) -> PathBuf {
    let stem = best
        .file_stem()
        .map_or_else(|| "char_rnn".into(), |s| s.to_string_lossy());
    best.with_file_name(format!("{stem}.last.safetensors"))
}

fn progress_bar(steps: Option<u64>, budget: Duration) -> ProgressBar {
    let (length, unit) = match steps {
        Some(steps) => (steps, "steps"),
        None => (budget.as_secs().max(1), "s"),
    };
    let bar = ProgressBar::new(length);
    let template =
        format!("{{bar:30}} {{pos}}/{{len}} {unit} [{{elapsed_precise}}, eta {{eta}}] {{msg}}");
    bar.set_style(ProgressStyle::with_template(&template).expect("a valid template"));
    bar
}
