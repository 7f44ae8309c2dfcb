//! [`Kernels`]: one name for everything a backend provides to the crate.

use crate::cell::CellKernels;
use crate::loss::LossKernels;
use crate::optim::UpdateKernels;

/// A backend the whole crate runs on: the matrix operations of [`Backend`](crate::Backend) and
/// the three places where it may override the generic code, [`CellKernels`], [`LossKernels`]
/// and [`UpdateKernels`].
///
/// It is implemented for every type that implements those three, so a backend never
/// implements it by hand. Generic code that trains a model names it as its one bound:
///
/// ```
/// use recurrent::{Kernels, Rnn, Input, Result};
///
/// fn last_logits<B: Kernels>(rnn: &Rnn<B>, ids: Vec<usize>) -> Result<Vec<B::Scalar>> {
///     let trace = rnn.forward(&Input::ids(ids, 1), None)?;
///     Ok(rnn.backend().to_vec(trace.logits()))
/// }
/// # use recurrent::{Backend, NaiveCpu, RnnConfig};
/// # use recurrent::prelude::{SeedableRng, StdRng};
/// # let config = RnnConfig::lstm(5, 8).output(5);
/// # let rnn = Rnn::new(NaiveCpu::<f64>::new(), config, &mut StdRng::seed_from_u64(0)).unwrap();
/// # assert_eq!(last_logits(&rnn, vec![1, 2, 3]).unwrap().len(), 15);
/// ```
pub trait Kernels: CellKernels + LossKernels + UpdateKernels {}

impl<B: CellKernels + LossKernels + UpdateKernels> Kernels for B {}
