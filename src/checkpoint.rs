//! Training checkpoints: the model, its vocabulary, the optimiser's state, the hidden state
//! carried between windows and the position in the run, in one `safetensors` file, so that a
//! resumed run continues bit for bit as if it had not stopped.
//!
//! ```
//! use recurrent::checkpoint::{Checkpoint, Progress};
//! use recurrent::data::{Corpus, Vocab};
//! use recurrent::prelude::*;
//!
//! type B = NaiveCpu<f32>;
//!
//! /// Trains until `progress.step == until`: one Adam update per window, the state carried from
//! /// window to window, dropout drawn from the generator of the step (`progress.rng()`).
//! fn train(
//!     rnn: &mut Rnn<B>,
//!     adam: &mut Adam<B>,
//!     state: &mut Option<State<B>>,
//!     progress: &mut Progress,
//!     corpus: &Corpus,
//!     until: u64,
//! ) -> recurrent::Result<Vec<f32>> {
//!     let mut losses = vec![];
//!     while progress.step < until {
//!         let window = corpus.window(progress.window)?;
//!         if window.reset {
//!             *state = None;
//!         }
//!         let trace = rnn.forward_train(&window.input(), state.as_ref(), &mut progress.rng())?;
//!         let loss = CrossEntropy::mean();
//!         let (value, d_logits) = loss.forward(rnn.backend(), trace.logits(), &window.targets)?;
//!         let mut grads = rnn.backward(&trace, &d_logits)?;
//!         clip::global_norm(&mut grads, 5.0)?;
//!         adam.step(rnn, &grads)?;
//!         *state = Some(trace.final_state());
//!         progress.advance(corpus.len());
//!         losses.push(value);
//!     }
//!     Ok(losses)
//! }
//!
//! # fn main() -> recurrent::Result<()> {
//! let text = "the cat sat on the mat. the rat sat on the cat.\n";
//! let vocab = Vocab::from_text(text)?;
//! let corpus = Corpus::new(vocab.encode(text)?, 2, 6)?;
//! let config = RnnConfig::lstm(vocab.len(), 16).layers(2).dropout(0.2).output(vocab.len());
//! let seed = 7;
//! let fresh = || {
//!     let mut init = StdRng::seed_from_u64(seed);
//!     Rnn::new(B::default(), config.clone(), &mut init)
//! };
//!
//! // Five steps, a checkpoint, and the process ends.
//! let name = format!("recurrent-doc-checkpoint-{}.safetensors", std::process::id());
//! let path = std::env::temp_dir().join(name);
//! let (mut rnn, mut adam, mut state) = (fresh()?, Adam::new(1e-2)?, None);
//! let mut progress = Progress::new(seed);
//! let mut resumed_losses = train(&mut rnn, &mut adam, &mut state, &mut progress, &corpus, 5)?;
//! Checkpoint::new(rnn, &adam, progress)
//!     .with_vocab(vocab)
//!     .with_state(state)
//!     .with_metadata("command", "train --steps 8")
//!     .save(&path)?;
//!
//! // Another process: load, restore the optimiser, go on to step 8.
//! let checkpoint = Checkpoint::load(B::default(), &path)?;
//! let mut adam = Adam::new(1e-2)?; // the hyperparameters and buffers come from the file
//! checkpoint.restore_optimizer(&mut adam)?;
//! let Checkpoint { mut rnn, mut state, mut progress, vocab, .. } = checkpoint;
//! resumed_losses.extend(train(&mut rnn, &mut adam, &mut state, &mut progress, &corpus, 8)?);
//! assert_eq!(vocab.map(|v| v.len()), Some(config.input_size()));
//!
//! // The same eight steps without a stop: the same losses, to the bit.
//! let (mut straight, mut adam, mut state) = (fresh()?, Adam::new(1e-2)?, None);
//! let mut progress = Progress::new(seed);
//! let losses = train(&mut straight, &mut adam, &mut state, &mut progress, &corpus, 8)?;
//! assert_eq!(losses, resumed_losses);
//! std::fs::remove_file(&path).ok();
//! # Ok(())
//! # }
//! ```
//!
//! # The file
//!
//! One `safetensors` file, written atomically (to a temporary file beside the target, synced,
//! renamed over it: a crash never leaves a torn checkpoint, and the previous one survives a
//! failed save). Files need the cargo feature `formats` (on by default); without it a checkpoint
//! is still a [`StateDict`] in memory ([`Checkpoint::to_state_dict`],
//! [`Checkpoint::from_state_dict`]). Tensors:
//!
//! - the model's parameters under their PyTorch names and shapes, as [`io::save`](crate::io::save) writes them
//!   (`weight_ih_l0`, `bias_hh_l1`, `out.weight`, ...), so the weights of a checkpoint load with
//!   [`io::load`](crate::io::load) (which reads a checkpoint's model tensors and passes over the rest) and in
//!   PyTorch with `model.load_state_dict(safetensors.torch.load_file(path), strict=False)`;
//! - the optimiser's buffers under `optim.` and their names in
//!   [`Optimizer::state_dict`] (`optim.weight_hh_l0.exp_avg`, ...);
//! - a stateful schedule's tensors under `schedule.`, should it have any
//!   ([`ReduceLrOnPlateau`](crate::optim::ReduceLrOnPlateau) has none);
//! - the carried hidden state, if saved: `state.h` and, for the LSTM, `state.c`, each
//!   `[L*D, B, H]` as PyTorch's `(h_n, c_n)`.
//!
//! Every tensor is in the model's scalar type. Metadata (`__metadata__`, strings):
//!
//! | key | value |
//! |-----|-------|
//! | `recurrent.checkpoint` | the format version, `1` ([`FORMAT_VERSION`]); marks the file as a checkpoint |
//! | `cell`, `nonlinearity`, `dropout`, `output_dropout`, `format` | as [`Rnn::state_dict`] writes them: the cell (`RNN`, `LSTM`, `GRU`), the Elman non-linearity, the dropout probabilities (between layers; before the output layer, absent in older files: 0), `pt` |
//! | `recurrent.input_size`, `recurrent.hidden_size`, `recurrent.num_layers`, `recurrent.bidirectional`, `recurrent.bias`, `recurrent.output_size` (a count or `none`), `recurrent.output_bias`; for a model with an embedding `recurrent.embedding_dim` and `recurrent.tie_weights` | the rest of the [`RnnConfig`](crate::RnnConfig) under PyTorch's argument names: the model is built from them and the tensors checked against it, so a missing tensor is reported instead of read as another model |
//! | `recurrent.vocab` | the vocabulary, if saved ([`Vocab::to_metadata`]) |
//! | `optim.optimizer`, `optim.step`, `optim.lr`, ... | the optimiser's kind, step count and hyperparameters, its state dict's metadata under `optim.` |
//! | `schedule.schedule`, `schedule.best`, `schedule.lr`, ... | a [`StatefulSchedule`]'s kind, hyperparameters and state, if saved ([`with_schedule`](Checkpoint::with_schedule)): its state dict's metadata under `schedule.`; absent in older files |
//! | `recurrent.seed`, `recurrent.step`, `recurrent.epoch`, `recurrent.window` | the [`Progress`] |
//! | `recurrent.best_val_loss` | [`Progress::best_val_loss`], if there is one |
//! | `user.{key}` | the caller's [`metadata`](Checkpoint::metadata) |
//!
//! Numbers are written as Rust's `{:?}` writes them, which parses back to the same bits. The
//! metadata comes first in the header, its keys in sorted order, so the same checkpoint always
//! gives the same bytes: two runs that agree write files `cmp` finds equal.
//!
//! # Resuming bit for bit
//!
//! A resumed run reaches the same losses and weights as one that did not stop when everything
//! an update reads is either in the checkpoint or a function of it:
//!
//! - the weights, the optimiser's buffers, step count and hyperparameters (the learning rate
//!   included), the carried state, and where the run is (epoch, window) are saved exactly;
//! - a [`Schedule`](crate::optim::Schedule) is a function of the epoch (or step) and holds
//!   nothing: build it as the run did and give it the saved count; a [`StatefulSchedule`]
//!   ([`ReduceLrOnPlateau`](crate::optim::ReduceLrOnPlateau)) is saved with
//!   [`with_schedule`](Checkpoint::with_schedule) and restored with
//!   [`restore_schedule`](Checkpoint::restore_schedule);
//! - randomness is not saved but derived: `rand`'s generators cannot be serialised, so each
//!   update draws from a generator made for it, [`step_rng`]`(seed, step)`
//!   ([`Progress::rng`]), and the run saves only its seed and step. Draw everything random of
//!   an update (dropout masks, sampled text) from that generator and from nothing else.
//!
//! The arithmetic is deterministic: the same seed, thread count and build give the same bits.
//! On the [`Cpu`](crate::Cpu) backend one and two threads give the same bits too, so a run may
//! resume with another thread count: threads take whole rows or whole columns of a product, or
//! ranges of an element-wise kernel's elements, and every element is computed by the same kernel,
//! in the same order, on whichever thread it falls. `tests/checkpoint.rs` checks this for one against two threads on
//! every threaded path (larger counts split the same way but are not tested).
//!
//! Not covered: a checkpoint resumed with another version of `rand` (whose `StdRng` may change
//! its algorithm; the run goes on correctly, with other masks), on another backend or scalar
//! type, or on a processor with other SIMD instructions (other kernels round differently).
//! [`Tbptt`](crate::Tbptt) with `k2 > k1` holds a context of past inputs that a checkpoint
//! does not save; with `k1 = k2` the carried state is all it needs.
//!
//! # Loading
//!
//! [`Checkpoint::load`] checks everything before it returns: the format version, every model
//! tensor's presence, shape and dtype (and no stray ones), finite values, the vocabulary, the
//! progress, the optimiser's metadata and that each of its tensors belongs to a parameter and
//! has that parameter's shape, and the state's shape. Any failure is an `Err`, never a panic,
//! and there is no half-loaded checkpoint. The optimiser's buffers are checked once more, against
//! the kind of optimiser and its buffer names, by [`Checkpoint::restore_optimizer`] (or
//! [`Optimizer::load_state_dict`]), which changes nothing on error. A schedule's state is read
//! and checked by [`Checkpoint::restore_schedule`] (or [`StatefulSchedule::load_state_dict`]),
//! which changes nothing on error either.

mod file;

// The marker key and the prefixes of the parts are defined in `io` (src/io/checkpoint_layout.rs),
// which reads the model out of a checkpoint without importing this module.
pub use crate::io::checkpoint_layout::FORMAT_KEY;

use crate::backend::Backend;
use crate::data::Vocab;
use crate::error::{Error, Result};
use crate::io::StateDict;
use crate::io::checkpoint_layout::{OPTIM, SCHEDULE, USER, model_part};
use crate::model::{Rnn, State};
use crate::optim::{Optimizer, StatefulSchedule};
use num_traits::Float;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::BTreeMap;
#[cfg(feature = "formats")]
use std::path::Path;

/// The format version this crate writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

const SEED: &str = "recurrent.seed";
const STEP: &str = "recurrent.step";
const EPOCH: &str = "recurrent.epoch";
const WINDOW: &str = "recurrent.window";
const BEST: &str = "recurrent.best_val_loss";

/// The generator of update `step` of the run with seed `seed`: the same pair always gives the
/// same numbers, different pairs independent ones (a ChaCha key made of the two).
///
/// A run that draws everything random of update `n` from `step_rng(seed, n)` needs to save only
/// `seed` and `n` to resume with the same draws (see the [module documentation](self)).
pub fn step_rng(seed: u64, step: u64) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&step.to_le_bytes());
    // Sets these keys apart from other uses of a seed.
    key[16..].copy_from_slice(b"recurrent/step/1");
    StdRng::from_seed(key)
}

/// Where a training run is: what a loop needs, besides the weights and the optimiser, to go on
/// exactly where it stopped.
///
/// The loop counts with [`advance`](Progress::advance) after each update and draws its
/// randomness from [`rng`](Progress::rng).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Progress {
    /// The run's seed, from which every update's generator is derived ([`step_rng`]).
    pub seed: u64,
    /// Updates made so far; the next one is number `step` (from 0).
    pub step: u64,
    /// Passes over the training data completed.
    pub epoch: u64,
    /// The window of the current pass the next update trains on (a
    /// [`Corpus::window`](crate::Corpus::window) index).
    pub window: usize,
    /// The lowest validation loss so far, if the run has measured one.
    pub best_val_loss: Option<f64>,
}

impl Progress {
    /// The start of a run with seed `seed`: step, epoch and window 0, no validation loss.
    pub fn new(seed: u64) -> Self {
        Progress {
            seed,
            step: 0,
            epoch: 0,
            window: 0,
            best_val_loss: None,
        }
    }

    /// The generator of the next update, [`step_rng`]`(seed, step)`.
    pub fn rng(&self) -> StdRng {
        step_rng(self.seed, self.step)
    }

    /// Counts one update on the current window of a pass of `windows` windows: the step and
    /// the window move on by one, and past the last window the epoch does and the window
    /// starts again from 0. Returns whether that update ended the epoch.
    pub fn advance(&mut self, windows: usize) -> bool {
        self.step += 1;
        self.window += 1;
        let ended = self.window >= windows;
        if ended {
            self.window = 0;
            self.epoch += 1;
        }
        ended
    }

    /// Records a validation loss; returns whether it is the best so far (below every earlier
    /// one, or the first). A NaN is never the best.
    pub fn record_val_loss(&mut self, loss: f64) -> bool {
        let best = !loss.is_nan() && self.best_val_loss.is_none_or(|b| loss < b);
        if best {
            self.best_val_loss = Some(loss);
        }
        best
    }
}

/// Everything a training run needs to resume: the model, the optimiser's state, the
/// [`Progress`], and optionally the vocabulary, the hidden state carried between windows and
/// the caller's own metadata (the command line, say). See the [module documentation](self) for
/// the file it is saved as and how a run resumes from it.
///
/// Fields are public, to take apart after loading (`let Checkpoint { rnn, state, .. } = c`);
/// [`new`](Checkpoint::new) and the `with_` methods build one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Checkpoint<B: Backend> {
    /// The model: weights and configuration.
    pub rnn: Rnn<B>,
    /// The optimiser's [`state_dict`](Optimizer::state_dict), for the model's parameters.
    pub optimizer: StateDict,
    /// A stateful schedule's [`state_dict`](StatefulSchedule::state_dict), if one was saved.
    pub schedule: Option<StateDict>,
    /// Where the run is.
    pub progress: Progress,
    /// The vocabulary of a character model.
    pub vocab: Option<Vocab>,
    /// The state the next window starts from (the last window's final state); `None` for
    /// zeros.
    pub state: Option<State<B>>,
    /// The caller's metadata, saved under `user.{key}`.
    pub metadata: BTreeMap<String, String>,
}

impl<B: Backend> Checkpoint<B> {
    /// A checkpoint of `rnn`, trained by `optimizer`, at `progress`; no vocabulary, state or
    /// metadata yet. Takes the model by value: save a clone to keep training it.
    pub fn new<O: Optimizer<B> + ?Sized>(rnn: Rnn<B>, optimizer: &O, progress: Progress) -> Self {
        Checkpoint {
            rnn,
            optimizer: optimizer.state_dict(),
            schedule: None,
            progress,
            vocab: None,
            state: None,
            metadata: BTreeMap::new(),
        }
    }

    /// The same checkpoint with a vocabulary.
    pub fn with_vocab(mut self, vocab: Vocab) -> Self {
        self.vocab = Some(vocab);
        self
    }

    /// The same checkpoint with the carried state (a [`State`], or an `Option` of one as a loop
    /// keeps it).
    pub fn with_state(mut self, state: impl Into<Option<State<B>>>) -> Self {
        self.state = state.into();
        self
    }

    /// The same checkpoint with the state of `schedule` (a
    /// [`ReduceLrOnPlateau`](crate::optim::ReduceLrOnPlateau)), to
    /// [`restore_schedule`](Checkpoint::restore_schedule) on resuming.
    pub fn with_schedule<S: StatefulSchedule + ?Sized>(mut self, schedule: &S) -> Self {
        self.schedule = Some(schedule.state_dict());
        self
    }

    /// The same checkpoint with one more metadata entry (replacing one of the same key).
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Restores the saved optimiser state into `optimizer`, for [`rnn`](Checkpoint::rnn):
    /// [`Optimizer::load_state_dict`]. Build `optimizer` as the run built it (the same kind;
    /// its hyperparameters are replaced by the saved ones).
    ///
    /// # Errors
    /// As [`Optimizer::load_state_dict`], for another kind of optimiser or buffers it does not
    /// have; `optimizer` is unchanged then.
    pub fn restore_optimizer<O: Optimizer<B> + ?Sized>(&self, optimizer: &mut O) -> Result<()> {
        optimizer.load_state_dict(&self.rnn, &self.optimizer)
    }

    /// Restores the saved schedule state into `schedule`:
    /// [`StatefulSchedule::load_state_dict`]. Build `schedule` as the run built it (its
    /// hyperparameters are replaced by the saved ones).
    ///
    /// # Errors
    /// [`Error::Config`] if the checkpoint holds no schedule (saved without
    /// [`with_schedule`](Checkpoint::with_schedule), or by an older version); otherwise as
    /// [`StatefulSchedule::load_state_dict`]. `schedule` is unchanged on error.
    pub fn restore_schedule<S: StatefulSchedule + ?Sized>(&self, schedule: &mut S) -> Result<()> {
        match &self.schedule {
            Some(dict) => schedule.load_state_dict(dict),
            None => Err(Error::config(
                "the checkpoint holds no schedule state (it was saved without `with_schedule`)",
            )),
        }
    }

    #[cfg(feature = "formats")]
    #[cfg_attr(docsrs, doc(cfg(feature = "formats")))]
    /// Writes the checkpoint to `path`, atomically (see the [module documentation](self)).
    ///
    /// # Errors
    /// As [`to_state_dict`](Checkpoint::to_state_dict); [`Error::Io`] naming the path. The file
    /// at `path`, if any, is untouched on error.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.to_state_dict()?.write(path)
    }

    /// The checkpoint as the [`StateDict`] [`save`](Checkpoint::save) writes. What would not
    /// load back is refused here, so a good checkpoint is never replaced by one that cannot be
    /// read.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming a parameter, buffer or state with a NaN or infinity (a run
    /// that diverged); [`Error::Shape`] or [`Error::Config`] for a state that does not fit the
    /// model; [`Error::StateDict`] for an optimiser state of another model or without its
    /// `optimizer` and `step` metadata; [`Error::Format`] for a step that is not a count.
    pub fn to_state_dict(&self) -> Result<StateDict> {
        let backend = self.rnn.backend();
        for (name, m) in self.rnn.parameters() {
            if !backend.to_vec(m).iter().all(|v| v.is_finite()) {
                return Err(Error::NonFinite {
                    what: format!("parameter {name}"),
                });
            }
        }
        file::check_optimizer(&self.rnn, &self.optimizer)?;
        if let Some(state) = &self.state {
            file::check_state(&self.rnn, state)?;
        }
        let mut dict = self.rnn.state_dict();
        dict.set_metadata(FORMAT_KEY, FORMAT_VERSION.to_string());
        file::write_config(self.rnn.config(), &mut dict);
        file::write_progress(&self.progress, &mut dict);
        if let Some(vocab) = &self.vocab {
            vocab.write_into(&mut dict);
        }
        for name in self.optimizer.names() {
            let tensor = self.optimizer.get(name).expect("a listed name").clone();
            dict.insert(format!("{OPTIM}{name}"), tensor);
        }
        for (key, value) in self.optimizer.metadata() {
            dict.set_metadata(format!("{OPTIM}{key}"), value.clone());
        }
        if let Some(schedule) = &self.schedule {
            file::write_prefixed(schedule, SCHEDULE, &mut dict);
        }
        if let Some(state) = &self.state {
            file::write_state(&self.rnn, state, &mut dict);
        }
        for (key, value) in &self.metadata {
            dict.set_metadata(format!("{USER}{key}"), value.clone());
        }
        Ok(dict)
    }

    #[cfg(feature = "formats")]
    #[cfg_attr(docsrs, doc(cfg(feature = "formats")))]
    /// Reads a checkpoint written by [`save`](Checkpoint::save) onto `backend` (which may have
    /// another scalar type than the run that saved it: values are converted).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; otherwise as
    /// [`from_state_dict`](Checkpoint::from_state_dict).
    pub fn load(backend: B, path: impl AsRef<Path>) -> Result<Self> {
        Self::from_state_dict(backend, &StateDict::read(path)?)
    }

    #[cfg(feature = "formats")]
    #[cfg_attr(docsrs, doc(cfg(feature = "formats")))]
    /// [`load`](Checkpoint::load) from the bytes of a checkpoint file already in memory. Any
    /// bytes are safe to pass: a malformed or hostile file is an `Err`, never a panic.
    ///
    /// # Errors
    /// As [`from_state_dict`](Checkpoint::from_state_dict), and [`Error::Format`] for bytes
    /// that are not a `safetensors` file.
    pub fn from_bytes(backend: B, bytes: &[u8]) -> Result<Self> {
        Self::from_state_dict(backend, &StateDict::from_bytes(bytes)?)
    }

    /// The checkpoint a [`StateDict`] holds (see [`to_state_dict`](Checkpoint::to_state_dict)),
    /// checked throughout before anything is returned.
    ///
    /// # Errors
    /// - [`Error::Format`]: not a `safetensors` file or a truncated one (from
    ///   [`load`](Checkpoint::load)), not a checkpoint (no `recurrent.checkpoint` key: plain
    ///   weights load with [`io::load`](crate::io::load)), a format version newer than
    ///   [`FORMAT_VERSION`] or not a number, a malformed vocabulary, dropout, output dropout or progress entry;
    /// - [`Error::StateDict`]: missing, unexpected or mis-shaped model, optimiser or state
    ///   tensors, or missing metadata (`metadata recurrent.step`, `metadata optim.optimizer`);
    /// - [`Error::NonFinite`]: a NaN or infinity in a tensor;
    /// - [`Error::Config`]: a configuration the model refuses (a dropout or output dropout
    ///   outside `[0, 1)`).
    pub fn from_state_dict(backend: B, dict: &StateDict) -> Result<Self> {
        file::check_version(dict)?;
        let progress = file::read_progress(dict)?;
        let vocab = match dict.metadata().get(Vocab::METADATA_KEY) {
            Some(text) => Some(Vocab::from_metadata(text)?),
            None => None,
        };
        let config = file::read_config(dict)?;
        let rnn = Rnn::from_state_dict(backend, config, &model_part(dict), true)?;
        let optimizer = file::prefixed(dict, OPTIM);
        file::check_optimizer(&rnn, &optimizer)?;
        let schedule = file::prefixed(dict, SCHEDULE);
        let schedule = match schedule.metadata().is_empty() && schedule.names().count() == 0 {
            true => None, // saved without a schedule, or before schedules were saved
            false => Some(schedule),
        };
        let state = file::read_state(&rnn, dict)?;
        let metadata = dict
            .metadata()
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(USER)?.to_string(), v.clone())))
            .collect();
        Ok(Checkpoint {
            rnn,
            optimizer,
            schedule,
            progress,
            vocab,
            state,
            metadata,
        })
    }
}
