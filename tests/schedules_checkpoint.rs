//! Schedules across a checkpoint: a run stopped, saved, loaded and continued gives the same
//! losses, rates and weights, to the bit, as the run that did not stop.
//!
//! - `Warmup` over `CosineLr`, applied at every step from `Progress::step` (no state to save);
//! - `ReduceLrOnPlateau`, stepped on every epoch's summed loss, its state saved with
//!   `Checkpoint::with_schedule` and restored with `Checkpoint::restore_schedule`, stopped
//!   mid-epoch and at an epoch's end.
//!
//! And: a checkpoint without a schedule says so on `restore_schedule`; the schedule's entries
//! do not disturb the model's loading.

mod common;

use common::tempdir::TempDir;
use recurrent::checkpoint::{Checkpoint, Progress};
use recurrent::data::{Corpus, Vocab};
use recurrent::optim::{CosineLr, ReduceLrOnPlateau, Warmup};
use recurrent::prelude::*;

type B = NaiveCpu<f64>;

const TEXT: &str = "the cat sat on the mat. the rat sat on the cat. a cat, a rat, a mat.\n";

fn corpus() -> (Vocab, Corpus) {
    let vocab = Vocab::from_text(TEXT).unwrap();
    let corpus = Corpus::new(vocab.encode(TEXT).unwrap(), 2, 6).unwrap();
    (vocab, corpus)
}

fn fresh(vocab: &Vocab) -> Rnn<B> {
    let config = RnnConfig::gru(vocab.len(), 12).output(vocab.len());
    Rnn::new(B::default(), config, &mut StdRng::seed_from_u64(5)).unwrap()
}

/// A training run: its model, optimiser, carried state, position, plateau schedule, and the
/// loss summed over the current epoch so far.
struct Run {
    rnn: Rnn<B>,
    adam: Adam<B>,
    state: Option<State<B>>,
    progress: Progress,
    plateau: ReduceLrOnPlateau,
    epoch_loss: f64,
}

/// One update on the next window; at an epoch's end, the plateau schedule takes the epoch's
/// loss and sets Adam's rate. With `warmup`, the rate of every step comes from it instead.
fn update(run: &mut Run, corpus: &Corpus, warmup: Option<&dyn Fn(u64) -> f64>) -> (f64, f64) {
    if let Some(lr_at) = warmup {
        run.adam.set_lr(lr_at(run.progress.step)).unwrap();
    }
    let lr = run.adam.lr();
    let window = corpus.window(run.progress.window).unwrap();
    if window.reset {
        run.state = None;
    }
    let trace = run
        .rnn
        .forward(&window.input(), run.state.as_ref())
        .unwrap();
    let (loss, d_logits) = CrossEntropy::mean()
        .forward(run.rnn.backend(), trace.logits(), &window.targets)
        .unwrap();
    let mut grads = run.rnn.backward(&trace, &d_logits).unwrap();
    clip::global_norm(&mut grads, 5.0).unwrap();
    run.adam.step(&mut run.rnn, &grads).unwrap();
    run.state = Some(trace.final_state());
    run.epoch_loss += loss;
    if run.progress.advance(corpus.len()) && warmup.is_none() {
        run.plateau.apply(&mut run.adam, run.epoch_loss).unwrap();
        run.epoch_loss = 0.0;
    }
    (loss, lr)
}

fn start(vocab: &Vocab) -> Run {
    let rnn = fresh(vocab);
    let adam = Adam::for_model(&rnn, 3e-2).unwrap();
    // Cuts after every epoch that does not improve by 10%: several in this run.
    let plateau = ReduceLrOnPlateau::new(adam.lr()).unwrap().patience(0);
    let plateau = plateau.factor(0.5).unwrap().threshold(0.1).unwrap();
    Run {
        rnn,
        adam,
        state: None,
        progress: Progress::new(9),
        plateau,
        epoch_loss: 0.0,
    }
}

/// Saves `run` to `path` and loads it back into a run made as a fresh process would make it.
fn save_and_resume(run: Run, path: &std::path::Path) -> Run {
    Checkpoint::new(run.rnn, &run.adam, run.progress)
        .with_state(run.state)
        .with_schedule(&run.plateau)
        .with_metadata("epoch_loss", format!("{:?}", run.epoch_loss))
        .save(path)
        .unwrap();
    let checkpoint = Checkpoint::load(B::default(), path).unwrap();
    let mut adam = Adam::new(1.0).unwrap(); // everything comes from the file
    checkpoint.restore_optimizer(&mut adam).unwrap();
    let mut plateau = ReduceLrOnPlateau::new(1.0).unwrap();
    checkpoint.restore_schedule(&mut plateau).unwrap();
    let epoch_loss = checkpoint.metadata["epoch_loss"].parse().unwrap();
    let Checkpoint {
        rnn,
        state,
        progress,
        ..
    } = checkpoint;
    let loaded_plain = recurrent::io::load(B::default(), path).unwrap();
    assert_eq!(loaded_plain.state_dict(), rnn.state_dict());
    Run {
        rnn,
        adam,
        state,
        progress,
        plateau,
        epoch_loss,
    }
}

/// `steps` updates straight, then the same with a checkpoint after `stop`: the same losses,
/// rates, weights and schedule state.
fn check_resume(stop: u64, steps: u64, warmup: Option<&dyn Fn(u64) -> f64>, name: &str) {
    let (vocab, corpus) = corpus();
    let mut straight = start(&vocab);
    let want: Vec<(f64, f64)> = (0..steps)
        .map(|_| update(&mut straight, &corpus, warmup))
        .collect();
    let mut run = start(&vocab);
    let mut got: Vec<(f64, f64)> = (0..stop)
        .map(|_| update(&mut run, &corpus, warmup))
        .collect();
    let dir = TempDir::new(&format!("{name}_{stop}"));
    let mut run = save_and_resume(run, &dir.path("run.safetensors"));
    got.extend((stop..steps).map(|_| update(&mut run, &corpus, warmup)));
    assert_eq!(
        got, want,
        "{name}, stopped after {stop}: (loss, lr) of every step"
    );
    assert_eq!(run.rnn.state_dict(), straight.rnn.state_dict());
    assert_eq!(run.plateau, straight.plateau);
    let rates: Vec<f64> = want.iter().map(|&(_, lr)| lr).collect();
    let changes = rates.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        changes >= 2,
        "{name}: the rate changed only {changes} times: {rates:?}"
    );
}

#[test]
fn a_plateau_schedule_resumes_bit_for_bit() {
    let (_, corpus) = corpus();
    let windows = corpus.len() as u64;
    // Mid-epoch (the epoch's partial loss is saved too) and at an epoch's end.
    for stop in [windows + 2, 3 * windows] {
        check_resume(stop, 8 * windows, None, "plateau");
    }
}

#[test]
fn a_warmup_schedule_resumes_bit_for_bit() {
    let cosine = CosineLr::new(3e-2, 30).unwrap().eta_min(1e-3).unwrap();
    let schedule = Warmup::new(cosine, 6, 0.1).unwrap();
    let lr_at = |step: u64| schedule.lr_at(step);
    for stop in [4, 11] {
        check_resume(stop, 30, Some(&lr_at), "warmup");
    }
}

#[test]
fn a_checkpoint_without_a_schedule_says_so() {
    let (vocab, _) = corpus();
    let rnn = fresh(&vocab);
    let adam = Adam::for_model(&rnn, 1e-2).unwrap();
    let bytes = Checkpoint::new(rnn, &adam, Progress::new(0))
        .to_state_dict()
        .unwrap()
        .to_bytes()
        .unwrap();
    let checkpoint = Checkpoint::from_bytes(B::default(), &bytes).unwrap();
    assert!(checkpoint.schedule.is_none());
    let mut plateau = ReduceLrOnPlateau::new(0.1).unwrap();
    let before = plateau;
    let message = checkpoint
        .restore_schedule(&mut plateau)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "invalid configuration: the checkpoint holds no schedule state (it was saved without \
         `with_schedule`)"
    );
    assert_eq!(plateau, before);
}
