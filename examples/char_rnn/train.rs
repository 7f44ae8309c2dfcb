//! The training run: the data, the model (new or resumed), the loop of updates with its
//! evaluations and checkpoints, and the stop on `--steps`, on time, or on Ctrl-C.
//!
//! An update is one window of `--seq` characters in `--batch` streams: forward with the state
//! carried from the previous window, mean cross-entropy over the window's `B·T` characters,
//! BPTT, every gradient entry clipped to `[-clip, clip]`, one optimiser step.

use crate::args::{Args, CellArg, OptimizerArg, ScheduleArg};
use crate::checkpoints::{self, Files};
use crate::report::{self, CsvLog, Tally};
use crate::{Res, read_text, sampler};
use indicatif::ProgressBar;
use recurrent::checkpoint::{Checkpoint, Progress};
use recurrent::data::{Corpus, Vocab, Window, split};
use recurrent::prelude::*;
use recurrent::rand::SeedableRng;
use recurrent::rand::rngs::StdRng;
use recurrent::sample::generate;
use recurrent::{CosineLr, ExponentialLr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How a training run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// At `--steps` or at the end of `--minutes`, both checkpoints up to date.
    Finished,
    /// On `stop` (Ctrl-C): the last checkpoint saved at the step reached.
    Interrupted,
}

/// The learning rate of every update: set per epoch (exponential decay) or per update (cosine).
enum LrSchedule {
    PerEpoch(ExponentialLr),
    PerUpdate(CosineLr),
}

impl LrSchedule {
    fn of(args: &Args) -> Res<LrSchedule> {
        Ok(match (args.schedule, args.steps) {
            (ScheduleArg::Cosine, Some(steps)) => {
                LrSchedule::PerUpdate(CosineLr::new(args.lr, steps)?.eta_min(args.lr_min)?)
            }
            // `parse_from` refuses a cosine schedule without `--steps`.
            _ => LrSchedule::PerEpoch(
                ExponentialLr::new(args.lr, args.lr_decay)?.first_decay_at(args.decay_after)?,
            ),
        })
    }

    fn apply<B: Kernels>(&self, opt: &mut dyn Optimizer<B>, progress: &Progress) -> Res<()> {
        let lr = match self {
            LrSchedule::PerEpoch(s) => s.lr_at(progress.epoch),
            LrSchedule::PerUpdate(s) => s.lr_at(progress.step),
        };
        Ok(opt.set_lr(lr)?)
    }
}

fn optimizer<B: Kernels<Scalar = f32>>(args: &Args) -> Res<Box<dyn Optimizer<B>>> {
    Ok(match args.optimizer {
        OptimizerArg::Sgd => Box::new(Sgd::new(args.lr)?.momentum(0.9)?),
        OptimizerArg::Adagrad => Box::new(Adagrad::new(args.lr)?),
        OptimizerArg::Rmsprop => Box::new(RmsProp::new(args.lr)?.alpha(0.95)?),
        OptimizerArg::Adam => Box::new(Adam::new(args.lr)?),
    })
}

/// Everything a run carries from update to update.
struct Run<'a, B: Kernels<Scalar = f32>> {
    args: &'a Args,
    files: Files,
    vocab: Vocab,
    corpus_chars: usize,
    layout: Vec<(&'static str, String)>,
    train_data: Corpus,
    val_data: Option<Corpus>,
    rnn: Rnn<B>,
    opt: Box<dyn Optimizer<B>>,
    progress: Progress,
    state: Option<State<B>>,
    /// The training and validation loss: the mean over a window's characters.
    loss: CrossEntropy,
    tally: Tally,
    /// Whether this run wrote the best checkpoint.
    best_saved: bool,
    /// `--log`'s file, if given.
    log: Option<CsvLog>,
    /// When the run started (for the log's wall-clock column).
    started: Instant,
}

/// Trains as `args` say until `--steps`, the time budget or `stop`.
pub fn train<B: Kernels<Scalar = f32>>(
    args: &Args,
    backend: B,
    engine: &str,
    stop: &AtomicBool,
) -> Res<Outcome> {
    sampler(args)?; // a bad --top-k with --temperature is an error now, not at the first sample
    // No time limit when only `--steps` is given.
    let minutes = args.minutes.or(args.steps.is_none().then_some(2.0));
    let budget = minutes.map(|m| Duration::from_secs_f64(m * 60.0));
    let schedule = LrSchedule::of(args)?;
    let mut run = Run::prepare(args, backend)?;
    println!("{}", run.describe(engine));
    let bar = report::progress_bar(
        args.steps.map(|s| s.saturating_sub(run.progress.step)),
        budget.unwrap_or(Duration::MAX),
    );
    let start = Instant::now();
    if run.updates(&bar, &schedule, start, budget, stop)? == Outcome::Interrupted {
        bar.finish_and_clear();
        run.save(false)?;
        println!(
            "{}",
            report::interrupted(run.progress.step, &run.files.last)
        );
        return Ok(Outcome::Interrupted);
    }
    bar.finish();
    // A last evaluation and checkpoint, so that both files are up to date (unless the last
    // update was evaluated and saved already).
    if run.tally.updates == 0 || !run.progress.step.is_multiple_of(args.eval_every) {
        run.evaluate_and_save(false)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let (tally, progress) = (&run.tally, &run.progress);
    let best = progress.best_val_loss;
    let line = report::summary(
        tally,
        progress.step,
        seconds,
        best,
        run.best_saved,
        &run.files,
    );
    println!("{line}");
    Ok(Outcome::Finished)
}

impl<'a, B: Kernels<Scalar = f32>> Run<'a, B> {
    /// Reads the corpus, loads `--resume` and checks it against the run, and builds the data,
    /// the model and the optimiser; checks that the checkpoints can be written.
    fn prepare(args: &'a Args, backend: B) -> Res<Self> {
        let files = Files::of(args);
        if args.resume.is_none() && !args.force && files.best.exists() {
            return Err(format!(
                "--save {} exists: pass --resume {} to go on training it, or --force to start \
                 over and overwrite it",
                files.best.display(),
                files.last.display()
            )
            .into());
        }
        checkpoints::check_writable(&files)?;
        let log = args.log.as_deref().map(CsvLog::open).transpose()?;
        let corpus = args
            .corpus
            .clone()
            .unwrap_or_else(|| crate::DEFAULT_CORPUS.into());
        let text = read_text("--corpus", &corpus)?;
        let corpus_chars = text.chars().count();
        let layout = checkpoints::layout(args, corpus_chars);
        let resumed = match &args.resume {
            Some(path) => Some(checkpoints::load(backend.clone(), "--resume", path)?),
            None => None,
        };
        if let Some(checkpoint) = &resumed {
            checkpoints::check_resume(args, checkpoint, &layout)?;
            let step = checkpoint.progress.step;
            if let Some(warning) = checkpoints::later_last(backend.clone(), &files, step) {
                eprintln!("warning: {warning}");
            }
        }
        let vocab = match resumed.as_ref().and_then(|c| c.vocab.as_ref()) {
            Some(vocab) => vocab.clone(),
            None => Vocab::from_text(&text)?,
        };
        let ids = checkpoints::encode_corpus(&vocab, &text, &corpus, resumed.is_some())?;
        let (train_data, val_data) = data(args, ids)?;
        let mut opt = optimizer(args)?;
        let (rnn, progress, state) = match resumed {
            Some(checkpoint) => model_of(checkpoint, &vocab, opt.as_mut())?,
            None => new_model(args, backend, &vocab)?,
        };
        Ok(Run {
            args,
            files,
            vocab,
            corpus_chars,
            layout,
            train_data,
            val_data,
            rnn,
            opt,
            progress,
            state,
            loss: CrossEntropy::mean(),
            tally: Tally::default(),
            best_saved: false,
            log,
            started: Instant::now(),
        })
    }

    /// The line that opens a run: the data, the model, the engine.
    fn describe(&self, engine: &str) -> String {
        let backend = self.rnn.backend();
        let parameters: usize = (self.rnn.parameters().iter())
            .map(|(_, m)| backend.shape(m).0 * backend.shape(m).1)
            .sum();
        let config = self.rnn.config();
        let train = &self.train_data;
        let val_chars = (self.val_data.as_ref()).map_or(0, |v| v.len() * v.batch() * v.steps());
        format!(
            "{} characters ({} distinct): {} windows of {} x {} for training, {val_chars} \
             characters for validation; {:?} {} x {}, {parameters} parameters, {engine}",
            self.corpus_chars,
            self.vocab.len(),
            train.len(),
            train.batch(),
            train.steps(),
            config.kind(),
            config.num_layers(),
            config.hidden_size(),
        )
    }

    /// Updates until `--steps`, the time `budget` or `stop`, evaluating and saving every
    /// `--eval-every` updates; returns `Interrupted` on `stop`, with nothing saved yet.
    fn updates(
        &mut self,
        bar: &ProgressBar,
        schedule: &LrSchedule,
        start: Instant,
        budget: Option<Duration>,
        stop: &AtomicBool,
    ) -> Res<Outcome> {
        let args = self.args;
        let mut window = Window::default();
        loop {
            let done = args.steps.is_some_and(|steps| self.progress.step >= steps)
                || budget.is_some_and(|budget| start.elapsed() >= budget);
            if done {
                return Ok(Outcome::Finished);
            }
            let value = self.update(&mut window, schedule)?;
            if args.print_losses {
                report::say(bar, format!("step {} loss {value:.9e}", self.progress.step));
            }
            if self.progress.step.is_multiple_of(args.eval_every) {
                let line = self.evaluate_and_save(true)?;
                report::say(bar, line);
            }
            let seconds = start.elapsed().as_secs_f64();
            match args.steps {
                Some(_) => bar.inc(1),
                None => bar.set_position(seconds as u64),
            }
            let status = report::status(&self.tally, seconds, self.progress.step, self.opt.lr());
            bar.set_message(status);
            if stop.load(Ordering::Relaxed) {
                return Ok(Outcome::Interrupted);
            }
        }
    }

    /// One update; returns its training loss.
    fn update(&mut self, window: &mut Window, schedule: &LrSchedule) -> Res<f32> {
        let start = Instant::now();
        self.train_data.fill(self.progress.window, window)?;
        schedule.apply(self.opt.as_mut(), &self.progress)?;
        if window.reset {
            self.state = None; // a new pass: every stream starts again from its beginning
        }
        // Dropout draws from a generator made for this update, so a resumed run draws the same.
        let rng = &mut self.progress.rng();
        let trace = self
            .rnn
            .forward_train(&window.input(), self.state.as_ref(), rng)?;
        let (value, d_logits) =
            (self.loss).forward(self.rnn.backend(), trace.logits(), &window.targets)?;
        let mut grads = self.rnn.backward(&trace, &d_logits)?;
        clip::by_value(&mut grads, self.args.clip as f32)?;
        self.opt.step(&mut self.rnn, &grads)?;
        self.state = Some(trace.final_state());
        self.progress.advance(self.train_data.len());
        self.tally.training += start.elapsed();
        self.tally.updates += 1;
        self.tally.loss = f64::from(value);
        self.tally.chars += (window.batch * window.steps) as f64;
        if !self.tally.loss.is_finite() {
            return Err(Error::NonFinite {
                what: format!("training loss at step {}", self.progress.step),
            }
            .into());
        }
        Ok(value)
    }

    /// Computes the validation loss, saves the last checkpoint and, if it is the best, the best
    /// one; with `sample`, returns the evaluation's line and a sample of 200 characters.
    fn evaluate_and_save(&mut self, sample: bool) -> Res<String> {
        if let Some(val) = &self.val_data {
            self.tally.val = Some(validation_loss(&self.rnn, val, &self.loss)?);
        }
        let best = match self.tally.val {
            Some(val) => self.progress.record_val_loss(val),
            None => true, // no validation: the last checkpoint is the best
        };
        self.save(best)?;
        let epoch = self.progress.step as f64 / self.train_data.len() as f64;
        if let Some(log) = &mut self.log {
            let wall = self.started.elapsed();
            log.row(&self.tally, self.progress.step, epoch, wall, best)?;
        }
        if !sample {
            return Ok(String::new());
        }
        let mut sampler = sampler(self.args)?;
        let seed = self.args.seed.wrapping_add(self.progress.step);
        let mut rng = StdRng::seed_from_u64(seed);
        let text = generate(&self.rnn, &self.vocab, "", 200, &mut sampler, &mut rng)?;
        let line = report::evaluation(&self.tally, self.progress.step, epoch, best);
        Ok(format!("{line}\n{text}\n"))
    }

    /// Saves the last checkpoint and, if `best`, the best one.
    fn save(&mut self, best: bool) -> Res<()> {
        let mut checkpoint = Checkpoint::new(self.rnn.clone(), self.opt.as_ref(), self.progress)
            .with_vocab(self.vocab.clone())
            .with_state(self.state.clone());
        for (key, value) in &self.layout {
            checkpoint = checkpoint.with_metadata(*key, value.clone());
        }
        checkpoint.save(&self.files.last)?;
        if best {
            checkpoint.save(&self.files.best)?;
            self.best_saved = true;
        }
        Ok(())
    }
}

/// The training windows, and the validation windows if the held-out text holds one: up to 8
/// streams, fewer for a short held-out text.
fn data(args: &Args, ids: Vec<usize>) -> Res<(Corpus, Option<Corpus>)> {
    let (train_ids, val_ids) = split(ids, args.val_fraction)?;
    let train_data = Corpus::new(train_ids, args.batch, args.seq)?;
    let val_batch = (val_ids.len().saturating_sub(1) / args.seq).min(args.batch.min(8));
    let val_data = (val_batch > 0)
        .then(|| Corpus::new(val_ids, val_batch, args.seq))
        .transpose()?;
    if val_data.is_none() && args.val_fraction > 0.0 {
        println!("(the held-out text is shorter than one window of --seq: no validation)");
    }
    Ok((train_data, val_data))
}

type Resumed<B> = (Rnn<B>, Progress, Option<State<B>>);

fn model_of<B: Kernels<Scalar = f32>>(
    checkpoint: Checkpoint<B>,
    vocab: &Vocab,
    opt: &mut dyn Optimizer<B>,
) -> Res<Resumed<B>> {
    if checkpoint.rnn.config().input_size() != vocab.len() {
        return Err(format!(
            "--resume: the checkpoint's model reads {} characters, its vocabulary has {}",
            checkpoint.rnn.config().input_size(),
            vocab.len()
        )
        .into());
    }
    checkpoint.restore_optimizer(opt).map_err(|e| {
        format!("--resume: the checkpoint's optimiser state does not fit --optimizer: {e}")
    })?;
    let Checkpoint {
        rnn,
        progress,
        state,
        ..
    } = checkpoint;
    Ok((rnn, progress, state))
}

fn new_model<B: Kernels<Scalar = f32>>(args: &Args, backend: B, vocab: &Vocab) -> Res<Resumed<B>> {
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
    let rnn = Rnn::new(backend, config, &mut rng)?;
    Ok((rnn, Progress::new(args.seed), None))
}

/// Mean cross-entropy per character over the whole validation text, the state carried from
/// window to window as in training.
fn validation_loss<B: Kernels<Scalar = f32>>(
    rnn: &Rnn<B>,
    data: &Corpus,
    loss: &CrossEntropy,
) -> Res<f64> {
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

#[cfg(test)]
#[path = "train_tests.rs"]
mod tests;
