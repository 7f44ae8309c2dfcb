//! Training checkpoints: every part round-trips through the file, a resumed run reaches the
//! same losses and weights as one that did not stop (to the bit), the same seed and thread count
//! give the same bits, and every malformed file or misuse is an `Err` that changes nothing.
//!
//! The training loop is the one of `char-rnn`: an LSTM of two layers with dropout between them,
//! a character vocabulary, `Corpus` windows with the state carried from one to the next, Adam
//! (or centred RMSprop with momentum), clipping by global norm, a step schedule per epoch, a
//! validation loss after each epoch, and every dropout mask drawn from `step_rng(seed, step)`.

mod common;

use common::tempdir::TempDir;

use rand::SeedableRng;
use rand::rngs::StdRng;
use recurrent::Kernels;
use recurrent::checkpoint::{self, Checkpoint, FORMAT_KEY, Progress};
use recurrent::data::{Corpus, Vocab, split};
use recurrent::optim::{Schedule, StepLr};
use recurrent::prelude::*;
use recurrent::{Error, Nonlinearity, Scalar, StateDict, Tensor, io};

const TEXT: &str = "It was the best of times, it was the worst of times, it was the age of \
    wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of \
    incredulity, it was the season of Light, it was the season of Darkness, it was the spring \
    of hope, it was the winter of despair, we had everything before us, we had nothing before \
    us, we were all going direct to Heaven, we were all going direct the other way - in short, \
    the period was so far like the present period, that some of its noisiest authorities \
    insisted on its being received, for good or for evil, in the superlative degree of \
    comparison only.\n";

#[derive(Clone, Copy, Debug)]
enum Opt {
    Adam,
    RmsProp,
}

/// What a run is made of: data, model shape, optimiser, schedule, seed.
struct Setup {
    vocab: Vocab,
    corpus: Corpus,
    validation: Vec<usize>,
    config: RnnConfig,
    opt: Opt,
    schedule: StepLr,
    seed: u64,
}

impl Setup {
    /// `batch` streams of `steps`-step windows, an LSTM of two `hidden`-unit layers.
    fn new(hidden: usize, batch: usize, steps: usize, opt: Opt) -> Setup {
        let vocab = Vocab::from_text(TEXT).unwrap();
        let (train, validation) = split(vocab.encode(TEXT).unwrap(), 0.1).unwrap();
        let corpus = Corpus::new(train, batch, steps).unwrap();
        let config = RnnConfig::lstm(vocab.len(), hidden)
            .layers(2)
            .dropout(0.3)
            .output(vocab.len());
        Setup {
            vocab,
            corpus,
            validation,
            config,
            opt,
            schedule: StepLr::new(3e-3, 1, 0.5).unwrap(),
            seed: 2024,
        }
    }

    /// The optimiser as the run builds it (a resumed run too: the file then overrides it).
    fn optimizer<B: Kernels>(&self) -> Box<dyn Optimizer<B>> {
        match self.opt {
            Opt::Adam => Box::new(Adam::new(3e-3).unwrap().weight_decay(1e-4).unwrap()),
            Opt::RmsProp => Box::new(
                RmsProp::new(3e-3)
                    .unwrap()
                    .momentum(0.5)
                    .unwrap()
                    .centered(true)
                    .unwrap(),
            ),
        }
    }
}

/// A run in progress, and what it has reported so far (losses as bits).
struct Run<B: Kernels> {
    rnn: Rnn<B>,
    optimizer: Box<dyn Optimizer<B>>,
    state: Option<State<B>>,
    progress: Progress,
    losses: Vec<u64>,
    val_losses: Vec<u64>,
}

impl<B: Kernels> Run<B> {
    fn start(backend: B, setup: &Setup) -> Self {
        let mut init = StdRng::seed_from_u64(setup.seed);
        Run {
            rnn: Rnn::new(backend, setup.config.clone(), &mut init).unwrap(),
            optimizer: setup.optimizer(),
            state: None,
            progress: Progress::new(setup.seed),
            losses: vec![],
            val_losses: vec![],
        }
    }

    /// Trains until `progress.step == until`.
    fn train(&mut self, setup: &Setup, until: u64) {
        let corpus = &setup.corpus;
        while self.progress.step < until {
            if self.progress.window == 0 {
                let epoch = self.progress.epoch;
                setup
                    .schedule
                    .apply(self.optimizer.as_mut(), epoch)
                    .unwrap();
            }
            let window = corpus.window(self.progress.window).unwrap();
            if window.reset {
                self.state = None;
            }
            let mut rng = self.progress.rng();
            let rnn = &mut self.rnn;
            let trace = rnn
                .forward_train(&window.input(), self.state.as_ref(), &mut rng)
                .unwrap();
            let (loss, d_logits) = CrossEntropy::mean()
                .forward(rnn.backend(), trace.logits(), &window.targets)
                .unwrap();
            let mut grads = rnn.backward(&trace, &d_logits).unwrap();
            clip::global_norm(&mut grads, B::Scalar::of(0.25)).unwrap();
            self.optimizer.step(rnn, &grads).unwrap();
            self.state = Some(trace.final_state());
            self.losses.push(loss.to_f64().to_bits());
            if self.progress.advance(corpus.len()) {
                let loss = validation_loss(&self.rnn, &setup.validation);
                self.progress.record_val_loss(loss);
                self.val_losses.push(loss.to_bits());
            }
        }
    }

    /// A checkpoint of the run, which is consumed (as a process that ends after saving).
    fn checkpoint(self, setup: &Setup) -> Checkpoint<B> {
        Checkpoint::new(self.rnn, self.optimizer.as_ref(), self.progress)
            .with_vocab(setup.vocab.clone())
            .with_state(self.state)
            .with_metadata("command", "train --layers 2 --dropout 0.3")
    }

    /// The run a checkpoint continues; `losses` are those reported before it.
    fn resume(checkpoint: Checkpoint<B>, setup: &Setup, losses: Vec<u64>, val: Vec<u64>) -> Self {
        let mut optimizer = setup.optimizer();
        checkpoint.restore_optimizer(optimizer.as_mut()).unwrap();
        let Checkpoint {
            rnn,
            state,
            progress,
            ..
        } = checkpoint;
        Run {
            rnn,
            optimizer,
            state,
            progress,
            losses,
            val_losses: val,
        }
    }
}

/// The mean loss of the model on the validation ids, one stream, in inference mode.
fn validation_loss<B: Kernels>(rnn: &Rnn<B>, ids: &[usize]) -> f64 {
    let input = Input::ids(ids[..ids.len() - 1].to_vec(), 1);
    let trace = rnn.forward(&input, None).unwrap();
    let (loss, _) = CrossEntropy::mean()
        .forward(rnn.backend(), trace.logits(), &ids[1..])
        .unwrap();
    loss.to_f64()
}

fn bits<B: Kernels>(backend: &B, m: &B::Matrix) -> Vec<u64> {
    backend
        .to_vec(m)
        .into_iter()
        .map(|v| v.to_f64().to_bits())
        .collect()
}

fn parameter_bits<B: Kernels>(rnn: &Rnn<B>) -> Vec<(String, Vec<u64>)> {
    let backend = rnn.backend();
    let params = rnn.parameters().into_iter();
    params.map(|(name, m)| (name, bits(backend, m))).collect()
}

fn state_bits<B: Kernels>(backend: &B, state: Option<&State<B>>) -> Vec<Vec<u64>> {
    let layers = state.map_or(&[][..], State::layers);
    let parts = layers
        .iter()
        .flat_map(|l| std::iter::once(&l.h).chain(&l.c));
    parts.map(|m| bits(backend, m)).collect()
}

/// Everything a run has and reports, as bits.
fn fingerprint<B: Kernels>(run: &Run<B>) -> impl PartialEq + std::fmt::Debug + use<B> {
    (
        run.losses.clone(),
        run.val_losses.clone(),
        parameter_bits(&run.rnn),
        run.optimizer.state_dict(),
        state_bits(run.rnn.backend(), run.state.as_ref()),
        run.progress,
    )
}

// ---------------------------------------------------------------------------------------------
// Resuming to the bit

/// `n` steps without a stop against `k` steps, a checkpoint written to a file, everything
/// dropped, the checkpoint loaded and the run continued to `n`.
fn resumed_run_matches<B: Kernels>(backend: impl Fn() -> B, setup: &Setup, k: u64, n: u64) {
    let mut straight = Run::start(backend(), setup);
    straight.train(setup, n);

    let dir = TempDir::new(&format!("resume-{k}-{n}-{:?}", setup.opt));
    let path = dir.path("run.safetensors");
    let mut first = Run::start(backend(), setup);
    first.train(setup, k);
    let (losses, val) = (first.losses.clone(), first.val_losses.clone());
    first.checkpoint(setup).save(&path).unwrap();

    let checkpoint = Checkpoint::load(backend(), &path).unwrap();
    let (windows, progress) = (setup.corpus.len() as u64, checkpoint.progress);
    assert_eq!((progress.step, progress.epoch), (k, k / windows));
    assert_eq!(progress.window as u64, k % windows);
    assert_eq!(progress.best_val_loss.is_some(), k >= windows);
    assert_eq!(checkpoint.vocab.as_ref(), Some(&setup.vocab));
    let mut resumed = Run::resume(checkpoint, setup, losses, val);
    resumed.train(setup, n);
    assert_eq!(resumed.losses.len(), n as usize);
    assert_eq!(fingerprint(&resumed), fingerprint(&straight));
    assert_eq!(dir.entries(), ["run.safetensors"], "no temporary file left");

    // The comparison can fail: the same resume without the carried state (mid-pass: at the
    // start of a pass the state is dropped anyway), or with the generator of another seed,
    // gives other losses from the first resumed step on.
    let mid_pass = !k.is_multiple_of(setup.corpus.len() as u64);
    for spoil in (if mid_pass { 0 } else { 1 })..2 {
        let mut checkpoint = Checkpoint::load(backend(), &path).unwrap();
        match spoil {
            0 => checkpoint.state = None,
            _ => checkpoint.progress.seed += 1,
        }
        let mut other = Run::resume(checkpoint, setup, vec![], vec![]);
        other.train(setup, k + 1);
        assert_ne!(
            other.losses[0], straight.losses[k as usize],
            "spoil {spoil}"
        );
    }
}

/// Sizes for `Cpu`: `T*B = 68` rows and `H = 128`, so that the input projection of the second
/// layer (68 x 512 x 128) and the weight gradients (512 x 128 x 68) are large enough for the
/// GEMM to split them across two threads (at least 2 * 2^21 multiply-adds), and 68 rows split
/// in two do not fall on the kernel's 8- or 16-row blocks.
fn threaded_setup(opt: Opt) -> Setup {
    Setup::new(128, 4, 17, opt)
}

#[test]
fn a_resumed_run_matches_to_the_bit_in_f32_on_one_and_two_threads() {
    let setup = threaded_setup(Opt::Adam);
    // 8 windows a pass: stop mid-pass at 5 with the state carried, go on into the next pass.
    assert_eq!(setup.corpus.len(), 8);
    resumed_run_matches(|| Cpu::<f32>::with_threads(1), &setup, 5, 10);
    resumed_run_matches(|| Cpu::<f32>::with_threads(2).split_always(), &setup, 5, 10);
    // Stopped at the end of a pass: the checkpoint holds epoch 1, window 0, a validation loss.
    resumed_run_matches(|| Cpu::<f32>::with_threads(2).split_always(), &setup, 8, 10);
}

#[test]
fn a_resumed_run_matches_to_the_bit_in_f64_on_the_reference_backend() {
    for opt in [Opt::Adam, Opt::RmsProp] {
        let setup = Setup::new(16, 6, 10, opt);
        assert_eq!(setup.corpus.len(), 9);
        resumed_run_matches(NaiveCpu::<f64>::new, &setup, 5, 12);
    }
}

// ---------------------------------------------------------------------------------------------
// Determinism

#[test]
fn the_same_seed_and_threads_give_the_same_bits_and_one_or_two_threads_agree() {
    let setup = threaded_setup(Opt::Adam);
    let run = |threads: usize, seed: u64| {
        let mut run = Run::start(Cpu::<f32>::with_threads(threads).split_always(), &setup);
        run.progress.seed = seed;
        run.train(&setup, 9);
        (run.losses.clone(), fingerprint(&run))
    };
    let (one, two) = (run(1, setup.seed), run(2, setup.seed));
    assert_eq!(run(1, setup.seed), one, "one thread, twice");
    assert_eq!(run(2, setup.seed), two, "two threads, twice");
    // Threads take whole rows of each product (whole columns for one row), each element
    // computed by the same kernel in the same order: the thread count does not change a bit.
    assert_eq!(one, two, "one thread against two");
    // The dropout masks come from the seed: another one gives other losses (the checks above
    // do not compare constants).
    let other = run(2, setup.seed + 1);
    assert_ne!(other.0[0], two.0[0]);
}

/// One forward and backward pass at the shapes of each threaded kernel, on one thread and on
/// two and three that split every kernel they can ([`Cpu::split_always`]): at batch 1
/// (`H = 512`), the recurrence's product split by columns, and with one step the second layer's
/// input projection too (a one-row GEMM); at batch 128, the general products split by rows; at
/// batch 37, each cell's recurrent step (product and cell) cut by rows of the batch, unevenly,
/// and the Elman cell with ReLU, whose step is not cut.
#[test]
fn every_threaded_kernel_gives_the_same_bits_on_one_and_two_threads() {
    let relu = RnnConfig::rnn(31, 96).nonlinearity(Nonlinearity::Relu);
    let cases = [
        (RnnConfig::lstm(31, 512).layers(2).output(31), 1, 1),
        (RnnConfig::lstm(31, 512).output(31), 1, 5),
        (RnnConfig::lstm(31, 128).output(31), 128, 2),
        (RnnConfig::lstm(31, 64).output(31), 37, 3),
        (RnnConfig::gru(31, 64).output(31), 37, 3),
        (RnnConfig::rnn(31, 96).output(31), 37, 3),
        (relu.output(31), 37, 3),
    ];
    for (config, batch, steps) in cases {
        let pass = |threads: usize| {
            let backend = Cpu::<f32>::with_threads(threads).split_always();
            let mut init = StdRng::seed_from_u64(5);
            let rnn = Rnn::new(backend.clone(), config.clone(), &mut init).unwrap();
            let ids: Vec<usize> = (0..batch * steps).map(|i| (i * 7 + i / 5) % 31).collect();
            let targets: Vec<usize> = ids.iter().map(|&i| (i * 3 + 1) % 31).collect();
            let trace = rnn.forward(&Input::ids(ids, batch), None).unwrap();
            let (loss, d_logits) = CrossEntropy::sum()
                .forward(&backend, trace.logits(), &targets)
                .unwrap();
            let grads = rnn.backward(&trace, &d_logits).unwrap();
            let grads: Vec<Vec<u64>> = grads
                .params()
                .matrices()
                .map(|g| bits(&backend, g))
                .collect();
            (
                loss.to_bits(),
                grads,
                state_bits(&backend, Some(&trace.final_state())),
            )
        };
        let one = pass(1);
        assert_eq!(one, pass(2), "{config:?}, batch {batch}");
        assert_eq!(one, pass(3), "{config:?}, batch {batch}, three threads");
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips and the file's layout

/// A checkpoint of every part after `steps` updates of the small loop, with a validation loss
/// and metadata.
fn trained<B: Kernels>(backend: B, steps: u64) -> (Setup, Checkpoint<B>) {
    let setup = Setup::new(8, 2, 5, Opt::Adam);
    let mut run = Run::start(backend, &setup);
    run.train(&setup, steps);
    run.progress.record_val_loss(1.25);
    let checkpoint = run
        .checkpoint(&setup)
        .with_metadata("note", "é\n\"quoted\"");
    (setup, checkpoint)
}

/// Every part of `a` and `b`, compared to the bit.
fn assert_same<B: Kernels>(a: &Checkpoint<B>, b: &Checkpoint<B>, case: &str) {
    assert_eq!(a.rnn.config(), b.rnn.config(), "{case}: configuration");
    assert_eq!(parameter_bits(&a.rnn), parameter_bits(&b.rnn), "{case}");
    assert_eq!(a.optimizer, b.optimizer, "{case}: optimizer state");
    assert_eq!(a.progress, b.progress, "{case}: progress");
    assert_eq!(a.vocab, b.vocab, "{case}: vocabulary");
    let backend = a.rnn.backend();
    let (sa, sb) = (a.state.as_ref(), b.state.as_ref());
    assert_eq!(sa.is_some(), sb.is_some(), "{case}: state");
    assert_eq!(state_bits(backend, sa), state_bits(backend, sb), "{case}");
    assert_eq!(a.metadata, b.metadata, "{case}: metadata");
}

fn round_trip<B: Kernels>(backend: impl Fn() -> B, case: &str) {
    let dir = TempDir::new(&format!("round-trip-{case}"));
    let (_, checkpoint) = trained(backend(), 3);
    assert!(checkpoint.state.is_some() && checkpoint.optimizer.names().count() > 0);
    let path = dir.path("c.safetensors");
    checkpoint.save(&path).unwrap();
    let loaded = Checkpoint::load(backend(), &path).unwrap();
    assert_same(&checkpoint, &loaded, case);
    assert_eq!(loaded.progress.best_val_loss, Some(1.25));
    assert_eq!(loaded.metadata["note"], "é\n\"quoted\"");
    // Saving what was loaded writes the same tensors and metadata (not always the same bytes:
    // the `safetensors` crate writes the metadata from a hash map, in no fixed order).
    let again = dir.path("again.safetensors");
    loaded.save(&again).unwrap();
    let (first, second) = (StateDict::read(&path), StateDict::read(&again));
    assert!(
        first.unwrap() == second.unwrap(),
        "{case}: saved again, the file differs"
    );
    assert_eq!(dir.entries(), ["again.safetensors", "c.safetensors"]);
}

#[test]
fn every_part_round_trips_on_every_backend_and_scalar() {
    round_trip(NaiveCpu::<f32>::new, "naive-f32");
    round_trip(NaiveCpu::<f64>::new, "naive-f64");
    round_trip(|| Cpu::<f32>::with_threads(2), "cpu-f32");
    round_trip(|| Cpu::<f64>::with_threads(2), "cpu-f64");
}

#[test]
fn optional_parts_and_other_models_and_optimizers_round_trip() {
    let backend = NaiveCpu::<f64>::new;
    let mut init = StdRng::seed_from_u64(3);
    let configs = [
        RnnConfig::gru(5, 4).layers(2).bidirectional(true).output(5),
        RnnConfig::rnn(5, 4)
            .nonlinearity(recurrent::Nonlinearity::Relu)
            .bias(false)
            .output(5)
            .output_bias(false),
        RnnConfig::lstm(5, 3),
    ];
    let optimizers: [Box<dyn Optimizer<NaiveCpu<f64>>>; 3] = [
        Box::new(Sgd::new(0.1).unwrap()),
        Box::new(RmsProp::new(0.01).unwrap().centered(true).unwrap()),
        Box::new(Sgd::new(0.1).unwrap().momentum(0.9).unwrap()),
    ];
    for (k, (config, mut optimizer)) in configs.into_iter().zip(optimizers).enumerate() {
        let mut rnn = Rnn::new(backend(), config, &mut init).unwrap();
        // Two updates, so that optimisers with buffers have them (plain SGD has none).
        for _ in 0..2 {
            let trace = rnn.forward(&Input::ids(vec![0, 1, 2, 3], 2), None).unwrap();
            let rows = trace.logits();
            let width = rnn.backend().shape(rows).1;
            let targets: Vec<usize> = (0..4).map(|i| (i + 1) % width).collect();
            let (_, d) = CrossEntropy::sum()
                .forward(rnn.backend(), rows, &targets)
                .unwrap();
            let grads = rnn.backward(&trace, &d).unwrap();
            optimizer.step(&mut rnn, &grads).unwrap();
        }
        let state = (k == 1).then(|| rnn.zero_state(3));
        let checkpoint =
            Checkpoint::new(rnn, optimizer.as_ref(), Progress::new(9)).with_state(state);
        let dict = checkpoint.to_state_dict().unwrap();
        let loaded = Checkpoint::from_state_dict(backend(), &dict).unwrap();
        assert_same(&checkpoint, &loaded, &format!("case {k}"));
        assert_eq!(loaded.vocab, None);
        assert_eq!(loaded.progress.best_val_loss, None);
        // The optimiser restores into a fresh one of its kind.
        let mut fresh: Box<dyn Optimizer<NaiveCpu<f64>>> = match k {
            1 => Box::new(RmsProp::new(0.5).unwrap()),
            _ => Box::new(Sgd::new(0.5).unwrap()),
        };
        loaded.restore_optimizer(fresh.as_mut()).unwrap();
        assert_eq!(fresh.state_dict(), checkpoint.optimizer);
    }
    // A fresh optimiser (no step yet, no buffers) is saved and restored too.
    let rnn = Rnn::new(backend(), RnnConfig::gru(3, 2), &mut init).unwrap();
    let adam = Adam::<NaiveCpu<f64>>::new(0.01).unwrap();
    let checkpoint = Checkpoint::new(rnn, &adam, Progress::new(1));
    let loaded = Checkpoint::from_state_dict(backend(), &checkpoint.to_state_dict().unwrap());
    assert_same(&checkpoint, &loaded.unwrap(), "fresh optimizer");
}

#[test]
fn the_file_holds_the_documented_names_and_keys() {
    let (setup, checkpoint) = trained(NaiveCpu::<f32>::new(), 2);
    let dict = checkpoint.to_state_dict().unwrap();
    let names: Vec<&str> = dict.names().collect();
    let params = checkpoint.rnn.parameters();
    for (name, _) in &params {
        assert!(
            names.contains(&name.as_str()),
            "{name} under its PyTorch name"
        );
        for buffer in ["exp_avg", "exp_avg_sq"] {
            let key = format!("optim.{name}.{buffer}");
            assert!(names.contains(&key.as_str()), "{key}");
        }
    }
    assert_eq!(names.len(), params.len() * 3 + 2, "{names:?}");
    // h and c as PyTorch's (h_n, c_n): (layers * directions, batch, hidden).
    assert_eq!(dict.get("state.h").unwrap().shape(), [2, 2, 8]);
    assert_eq!(dict.get("state.c").unwrap().shape(), [2, 2, 8]);
    assert_eq!(dict.get("state.h").unwrap().dtype(), io::Dtype::F32);
    let meta = dict.metadata();
    let keys: Vec<&str> = meta.keys().map(String::as_str).collect();
    let optim = [
        "amsgrad",
        "beta1",
        "beta2",
        "decoupled_weight_decay",
        "eps",
        "format",
        "lr",
    ];
    let optim = optim.iter().chain(&["optimizer", "step", "weight_decay"]);
    let recurrent = [
        "best_val_loss",
        "bias",
        "bidirectional",
        "checkpoint",
        "epoch",
    ];
    let recurrent = recurrent
        .iter()
        .chain(&["hidden_size", "input_size", "num_layers"]);
    let recurrent = recurrent.chain(&["output_bias", "output_size", "seed", "step", "vocab"]);
    let mut want: Vec<String> = ["cell", "dropout", "format"].map(String::from).to_vec();
    want.extend(optim.map(|k| format!("optim.{k}")));
    want.push("output_dropout".to_string());
    want.extend(
        recurrent
            .chain(&["window"])
            .map(|k| format!("recurrent.{k}")),
    );
    want.extend(["user.command".to_string(), "user.note".to_string()]);
    assert_eq!(keys, want, "every metadata key, sorted");
    let value = |key: &str| meta.get(key).map(String::as_str);
    assert_eq!(value(FORMAT_KEY), Some("1"));
    assert_eq!(value("recurrent.checkpoint"), Some("1"));
    assert_eq!(value("cell"), Some("LSTM"));
    assert_eq!(value("dropout"), Some("0.3"));
    assert_eq!(value("format"), Some("pt"));
    assert_eq!(value("recurrent.input_size"), Some("31"));
    assert_eq!(value("recurrent.hidden_size"), Some("8"));
    assert_eq!(value("recurrent.num_layers"), Some("2"));
    assert_eq!(value("recurrent.bidirectional"), Some("false"));
    assert_eq!(value("recurrent.bias"), Some("true"));
    assert_eq!(value("recurrent.output_size"), Some("31"));
    assert_eq!(value("recurrent.output_bias"), Some("true"));
    assert_eq!(
        value("recurrent.vocab"),
        Some(setup.vocab.to_metadata().as_str())
    );
    assert_eq!(value("optim.optimizer"), Some("Adam"));
    assert_eq!(value("optim.step"), Some("2"));
    assert_eq!(value("optim.weight_decay"), Some("0.0001"));
    assert_eq!(value("recurrent.seed"), Some("2024"));
    assert_eq!(value("recurrent.step"), Some("2"));
    assert_eq!(value("recurrent.epoch"), Some("0"));
    assert_eq!(value("recurrent.window"), Some("2"));
    assert_eq!(value("recurrent.best_val_loss"), Some("1.25"));
    assert_eq!(
        value("user.command"),
        Some("train --layers 2 --dropout 0.3")
    );
}

#[test]
fn io_load_reads_the_weights_of_a_checkpoint() {
    let dir = TempDir::new("io-load");
    let (_, checkpoint) = trained(NaiveCpu::<f64>::new(), 2);
    let path = dir.path("c.safetensors");
    checkpoint.save(&path).unwrap();
    let rnn = io::load(NaiveCpu::<f64>::new(), &path).unwrap();
    assert_eq!(rnn.config(), checkpoint.rnn.config(), "dropout included");
    assert_eq!(parameter_bits(&rnn), parameter_bits(&checkpoint.rnn));
    // Only a checkpoint's own extra tensors are passed over: a stray tensor is still refused.
    let mut dict = StateDict::read(&path).unwrap();
    dict.insert(
        "stray",
        Tensor::float(io::Dtype::F64, vec![1], vec![0.0]).unwrap(),
    );
    dict.write(&path).unwrap();
    let err = io::load(NaiveCpu::<f64>::new(), &path).unwrap_err();
    assert!(matches!(&err, Error::StateDict { unexpected, .. } if unexpected == &["stray"]));
}

#[test]
fn step_generators_depend_on_the_seed_and_the_step_only() {
    use rand::Rng;
    let draw = |seed, step| checkpoint::step_rng(seed, step).next_u64();
    assert_eq!(draw(1, 2), draw(1, 2));
    assert_ne!(draw(1, 2), draw(1, 3));
    assert_ne!(draw(1, 2), draw(2, 2));
    assert_ne!(draw(1, 2), draw(2, 1));
    let mut progress = Progress::new(7);
    assert_eq!(progress.rng().next_u64(), draw(7, 0));
    assert!(!progress.advance(2));
    assert!(
        progress.advance(2),
        "the second of two windows ends the pass"
    );
    assert_eq!((progress.step, progress.epoch, progress.window), (2, 1, 0));
    assert_eq!(progress.rng().next_u64(), draw(7, 2));
    assert!(progress.record_val_loss(2.0));
    assert!(!progress.record_val_loss(2.5) && !progress.record_val_loss(f64::NAN));
    assert!(progress.record_val_loss(1.5));
    assert_eq!(progress.best_val_loss, Some(1.5));
}
