// README.md, with its figures (paths inside the repository, which docs.rs cannot show) replaced
// by a line naming each file: written by build.rs. Its code blocks are doc-tests.
#![doc = include_str!(concat!(env!("OUT_DIR"), "/README.md"))]
// docs.rs (`--cfg docsrs`, nightly rustdoc) marks each item that needs a cargo feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The docs link to `Cpu` and to the file functions from many items; without the `cpu` or the
// `formats` feature those items do not exist, and the links render as plain text instead of
// failing the lean build's `cargo doc`.
#![cfg_attr(
    not(all(feature = "cpu", feature = "formats")),
    allow(rustdoc::broken_intra_doc_links)
)]
//!
//! # Crate layout
//!
//! - [`backend`]: the [`Backend`] trait, the matrix operations and the only code that knows how
//!   numbers are stored, and [`NaiveCpu`], its reference implementation.
//! - [`cell`]: one time step of a recurrent cell, forward and backward ([`RnnCell`],
//!   [`LstmCell`], [`GruCell`]), each cell's equations written on [`Backend`].
//! - `cpu` (cargo feature `cpu`, on by default): `Cpu`, the fast backend: the matrix
//!   operations, and fused overrides of the generic cell, loss and update code
//!   ([`CellKernels`], [`LossKernels`], [`UpdateKernels`]).
//! - `candle` (cargo feature `candle`, off by default): `Candle`, a backend on candle's tensors,
//!   on its CPU device or (feature `cuda`) a GPU.
//! - [`softmax`](mod@softmax), [`loss`]: next-token probabilities, and the losses with their
//!   gradients: [`CrossEntropy`] (class weights, `ignore_index`, label smoothing), [`Mse`],
//!   [`L1`], [`Huber`], [`BceWithLogits`].
//! - [`bptt`]: backpropagation through time over one layer.
//! - [`truncated`]: [`Tbptt`], truncated BPTT over long streams with an update every `k1` steps
//!   and gradients through the last `k2`.
//! - [`model`]: [`Rnn`], stacked layers and an output projection, with `forward` and `backward`.
//! - [`clip`], [`optim`]: gradient clipping, and the optimisers of `torch.optim` ([`Sgd`],
//!   [`Adagrad`], [`RmsProp`], [`Adam`]) with learning-rate schedules.
//! - [`gradcheck`]: finite-difference checks of every gradient.
//! - [`diagnostics`]: the gradient flow of a backward pass ([`GradientFlow`]: `||dE/dh_t||` per
//!   step and layer, each step's share of every weight gradient, the norm before and after
//!   clipping) and the spectral norms of `W_hh` that decide vanishing or exploding.
//! - [`data`]: text as token ids: [`Vocab`] (characters to ids and back, saved with the model)
//!   and [`Corpus`] (a long sequence as `B` streams of `T`-step windows for truncated BPTT);
//!   [`data::eval_windows`] for an evaluation that scores every target once.
//! - [`io`]: PyTorch `state_dict`s ([`StateDict`]), and (cargo feature `formats`, on by
//!   default) `safetensors` files, read and written.
//! - [`checkpoint`]: a training run in one file (on disk with the feature `formats`) ([`Checkpoint`]: model, vocabulary, optimiser
//!   state, carried state, [`Progress`]), resumed bit for bit.
//! - [`sample`]: the next token from logits (greedy, temperature, top-k), and text generation
//!   on a [`Stream`], a model run one step at a time.
//!
//! # Conventions
//!
//! - Matrices are row-major. A sequence of `T` steps with batch `B` is `T*B` rows, time-major:
//!   rows `t*B .. t*B + B` are step `t`.
//! - Parameters keep PyTorch's names and shapes (`weight_ih_l0` is `(G*H, I)`), so weights move
//!   between the two without transposes. Biases, vectors in PyTorch, are `1 x n` matrices here.
//! - Every function that takes user data returns [`Result`]; errors name what was expected and
//!   what was given.
//! - NaN and infinity: [`Trace::check_finite`], [`Gradients::check_finite`],
//!   [`Rnn::check_finite`], [`Input::check_finite`] and [`State::check_finite`] name the first
//!   one (layer, direction, step, batch row, parameter, entry). Optimiser steps and
//!   [`Tbptt::step`] refuse them with [`Error::NonFinite`] and change nothing; `forward` and
//!   `backward` compute with them as IEEE arithmetic does.
//! - Threads: models, traces, gradients, states, optimisers and checkpoints are `Send + Sync`,
//!   and `forward` and `backward` take `&self`, so threads may share one model; concurrent calls
//!   give the same bits as the same calls one after another.

pub mod backend;
pub mod bptt;
#[cfg(feature = "candle")]
#[cfg_attr(docsrs, doc(cfg(feature = "candle")))]
pub mod candle;
pub mod cell;
pub mod checkpoint;
pub mod clip;
#[cfg(feature = "cpu")]
#[cfg_attr(docsrs, doc(cfg(feature = "cpu")))]
pub mod cpu;
pub mod data;
pub mod diagnostics;
mod error;
pub mod gradcheck;
pub mod io;
mod kernels;
pub mod loss;
pub mod model;
pub mod optim;
mod params;
pub mod sample;
mod scalar;
pub mod softmax;
pub mod truncated;

/// The `rand` crate this crate is built on, re-exported so that a program needs no dependency of
/// its own to make the random number generator that [`Rnn::new`], `forward_train` and
/// [`sample::generate`] take: `recurrent::rand::rngs::StdRng`, or [`prelude::StdRng`] with
/// [`prelude::SeedableRng`].
pub use rand;
/// The `rand_distr` crate this crate draws its initial weights with, re-exported for the
/// distributions a program needs beside it (`recurrent::rand_distr::StandardNormal` for
/// `randn`-style weights, as `examples/min_char_rnn.rs` draws them), at the version this crate
/// was built with.
pub use rand_distr;

pub use backend::{Activation, Backend, DenseMatrix, NaiveCpu, Transpose};
#[cfg(feature = "candle")]
#[cfg_attr(docsrs, doc(cfg(feature = "candle")))]
pub use candle::Candle;
pub use cell::{
    Cell, CellKernels, CellKind, CellParams, CellState, GruCell, LoopPass, LstmCell, Nonlinearity,
    RnnCell, StepCache, TimeLoop,
};
pub use checkpoint::{Checkpoint, Progress};
#[cfg(feature = "cpu")]
#[cfg_attr(docsrs, doc(cfg(feature = "cpu")))]
pub use cpu::Cpu;
pub use data::{Corpus, Vocab, Window, Windows};
pub use diagnostics::{GradientFlow, LayerFlow};
pub use error::{Error, IoSource, Result};
pub use io::{StateDict, Tensor};
pub use kernels::Kernels;
pub use loss::{BceWithLogits, CrossEntropy, Huber, L1, LossKernels, Mse, Reduction};
pub use model::{Gradients, Input, Rnn, RnnConfig, State, Stream, Trace};
pub use optim::{
    Adagrad, Adam, CosineLr, ExponentialLr, OneCycleLr, Optimizer, ReduceLrOnPlateau, RmsProp,
    Schedule, Sgd, StatefulSchedule, StepLr, UpdateKernels, UpdateRule, Warmup,
};
pub use params::{Linear, Params};
pub use sample::Sampler;
pub use scalar::Scalar;
pub use softmax::{log_softmax, softmax};
pub use truncated::{Tbptt, TbpttStep};

/// The names most programs need: `use recurrent::prelude::*;`, `rand`'s seeded generator
/// included.
///
/// ```
/// use recurrent::prelude::*;
///
/// let mut rng = StdRng::seed_from_u64(0); // the same seed, the same weights
/// let config = RnnConfig::gru(3, 4);
/// let a = Rnn::new(NaiveCpu::<f64>::default(), config.clone(), &mut rng)?;
/// let b = Rnn::new(NaiveCpu::<f64>::default(), config, &mut StdRng::seed_from_u64(0))?;
/// assert_eq!(a.state_dict(), b.state_dict());
/// # Ok::<(), recurrent::Error>(())
/// ```
pub mod prelude {
    pub use crate::backend::{Backend, NaiveCpu};
    pub use crate::cell::CellKernels;
    pub use crate::clip;
    #[cfg(feature = "cpu")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cpu")))]
    pub use crate::cpu::Cpu;
    pub use crate::kernels::Kernels;
    pub use crate::loss::{CrossEntropy, LossKernels};
    pub use crate::model::{Gradients, Input, Rnn, RnnConfig, State, Stream, Trace};
    pub use crate::optim::{
        Adagrad, Adam, Optimizer, RmsProp, Schedule, Sgd, StatefulSchedule, UpdateKernels,
    };
    pub use crate::{Error, Result};
    /// `rand`'s seedable generator and the trait that seeds it (`StdRng::seed_from_u64`).
    pub use rand::{SeedableRng, rngs::StdRng};
}
