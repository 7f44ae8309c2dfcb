//! The regularisers of [`Rnn::forward_train`](crate::Rnn::forward_train): inverted-dropout
//! masks, drawn per entry or locked across time, on the first layer's input, between layers and
//! before the output layer; embedding dropout; weight dropout on `W_hh`.
//!
//! Every mask has entries `0` (probability `p`) or `1/(1-p)`, so that a unit's expected value
//! is unchanged; in inference mode ([`Rnn::forward`](crate::Rnn::forward)) none is applied.
//! With `T` steps, batch `B`, and `ids[r]` the token of row `r = t*B + b`:
//!
//! ```text
//! per-entry dropout        x'[r, j] = x[r, j] m[r, j]            m: T*B x W, fresh per entry
//! locked (variational)     x'[r, j] = x[r, j] m[r mod B, j]      m: B x W, the same every step
//! embedding dropout        x[r, :]  = E[ids[r], :] m[ids[r]]     m: V x 1, whole rows of E
//! weight dropout           W_hh' = W_hh * m                      m: G*H x H, the same every step
//! ```
//!
//! Backward multiplies by the same masks: `dx = dx' * m`; the embedding's rows gain
//! `m[ids[r]] dx[r, :]`; `dW_hh = (sum_t d hh_t^T h_{t-1}) * m`, the gradient reaching the
//! stored weight through the mask (AWD-LSTM's `WeightDrop`). A tied output layer uses the
//! embedding as it is, undropped (as AWD-LSTM's decoder does).
//!
//! The masks are drawn from the generator given to `forward_train`, in a fixed order: the
//! embedding's, the input's, then per layer the `W_hh` mask of each direction and the layer's
//! output mask. A probability of 0 draws nothing, so the same seed gives the same masks, and a
//! configuration without the newer options draws what it drew before they existed.

use super::{DrawMask, Input, Rnn};
use crate::backend::Backend;
use crate::cell::{CellKernels, CellParams};
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use num_traits::Zero;
use rand::{Rng, RngExt};

/// What the first layer reads and the factor its entries were multiplied by (training mode).
type FirstInput<B> = (
    Option<<B as Backend>::Matrix>,
    Option<<B as Backend>::Matrix>,
);

impl<B: CellKernels> Rnn<B> {
    /// What the first layer reads when it is not the input as given, and the mask applied to
    /// it: the embedding's rows for the ids; in training mode (`draw`), times the embedding
    /// dropout's row factors and the input dropout mask.
    ///
    /// # Errors
    /// [`Error::Config`] for dense input to a model with an embedding, or input dropout in
    /// training mode on token ids without an embedding.
    pub(super) fn first_input(
        &self,
        input: &Input<B>,
        steps: usize,
        draw: Option<&mut DrawMask<'_, B>>,
    ) -> Result<FirstInput<B>> {
        let backend = &self.backend;
        let rows = self.embed(input)?;
        let Some(draw) = draw else {
            return Ok((rows, None));
        };
        let batch = input.batch();
        let mut mask = self.embedding_mask(input, draw);
        let p = self.config.input_dropout_probability();
        if p > 0.0 {
            let width = match (&rows, input.as_dense()) {
                (Some(r), _) | (None, Some(r)) => backend.shape(r).1,
                (None, None) => {
                    return Err(Error::config(format!(
                        "input dropout {p} needs dense input or an embedding: token ids select \
                         columns of weight_ih_l0 and have no entries to drop"
                    )));
                }
            };
            let drawn = self.draw_mask(draw, (steps, batch), width, p);
            mask = match (mask, drawn) {
                (Some(mut m), Some(d)) => {
                    backend.mul(&mut m, &d);
                    Some(m)
                }
                (m, d) => m.or(d),
            };
        }
        let Some(mask) = mask else {
            return Ok((rows, None));
        };
        let mut dropped = match (rows, input.as_dense()) {
            (Some(r), _) => r,
            (None, x) => x.expect("width read from the dense input").clone(),
        };
        backend.mul(&mut dropped, &mask);
        Ok((Some(dropped), Some(mask)))
    }

    /// Embedding dropout's factors for every row of the input, `T*B x E`: a `V x 1` mask
    /// drawn for the pass, entry `ids[r]` repeated along row `r`. `None` without it.
    fn embedding_mask(&self, input: &Input<B>, draw: &mut DrawMask<'_, B>) -> Option<B::Matrix> {
        let (backend, p) = (&self.backend, self.config.embedding_dropout_probability());
        let (table, ids) = (self.params.embedding()?, input.as_ids()?);
        let (vocab, dim) = backend.shape(table);
        let factors = backend.to_vec(&draw(vocab, 1, p)?);
        let data = ids
            .iter()
            .flat_map(|&id| std::iter::repeat_n(factors[id], dim))
            .collect();
        Some(
            backend
                .from_vec(ids.len(), dim, data)
                .expect("T*B x E values"),
        )
    }

    /// A dropout mask for `steps * batch` rows of `cols` units at probability `p`: fresh for
    /// every entry, or with [locked dropout](crate::RnnConfig::locked_dropout) one `B x cols`
    /// mask repeated at every step. `None` when `p = 0`.
    pub(super) fn draw_mask(
        &self,
        draw: &mut DrawMask<'_, B>,
        (steps, batch): (usize, usize),
        cols: usize,
        p: f64,
    ) -> Option<B::Matrix> {
        if !self.config.is_locked_dropout() {
            return draw(steps * batch, cols, p);
        }
        let once = draw(batch, cols, p)?;
        let rows: Vec<usize> = (0..steps * batch).map(|r| r % batch).collect();
        let mut tiled = self.backend.zeros(steps * batch, cols);
        self.backend.gather_rows(&mut tiled, &once, &rows);
        Some(tiled)
    }

    /// Weight dropout on layer and direction `index`: the mask on `W_hh` and the parameters
    /// with `W_hh` times it. `None` when the probability is 0.
    pub(super) fn drop_weights(
        &self,
        index: usize,
        draw: &mut DrawMask<'_, B>,
    ) -> Option<(B::Matrix, CellParams<B>)> {
        let params = &self.params.layers[index];
        let (rows, cols) = self.backend.shape(&params.weight_hh);
        let mask = draw(rows, cols, self.config.weight_dropout_probability())?;
        let mut dropped = params.clone();
        self.backend.mul(&mut dropped.weight_hh, &mask);
        Some((mask, dropped))
    }

    /// The embedding's rows for the input's token ids, `T*B x E`, or `None` for a model without
    /// an embedding. The ids were checked against the vocabulary.
    ///
    /// # Errors
    /// [`Error::Config`] for dense input to a model with an embedding.
    pub(super) fn embed(&self, input: &Input<B>) -> Result<Option<B::Matrix>> {
        let Some(table) = self.params.embedding() else {
            return Ok(None);
        };
        let Some(ids) = input.as_ids() else {
            let width = input.as_dense().map(|x| self.backend.shape(x).1);
            return Err(Error::config(format!(
                "this model has an embedding of {} tokens: its input is token ids \
                 (Input::ids), given dense rows of width {}",
                self.config.input_size(),
                width.unwrap_or_default()
            )));
        };
        let (_, dim) = self.backend.shape(table);
        let mut rows = self.backend.empty(ids.len(), dim); // every row gathered
        self.backend.gather_rows(&mut rows, table, ids);
        Ok(Some(rows))
    }
}

/// Random words drawn at a time: a few kilobytes, refilled as the mask is written.
const WORDS: usize = 512;

/// An inverted-dropout mask, `rows x cols`: each entry `0` with probability `p`, else
/// `1/(1-p)`. `None` when `p = 0`, so that no mask is applied.
///
/// Entry `k` is dropped when the `k`-th `rng.random::<f64>()` would be below `p`. `rand` makes
/// that float from the generator's next `u64` `x` as `(x >> 11) * 2^-53`, so the test is the
/// integer comparison `x >> 11 < ceil(p * 2^53)` (both sides exact), made on words drawn in
/// bulk: the masks of drawing one float per entry, bit for bit with `StdRng`, in about a third
/// of the time (drawn one by one, the masks of a 2 x 512 LSTM took a tenth of its training
/// step).
pub(super) fn mask<B: Backend, R: Rng + ?Sized>(
    backend: &B,
    rows: usize,
    cols: usize,
    p: f64,
    rng: &mut R,
) -> Option<B::Matrix> {
    if p == 0.0 {
        return None;
    }
    let keep = B::Scalar::of(1.0 / (1.0 - p));
    let below = (p * (1u64 << 53) as f64).ceil() as u64;
    let (len, zero) = (rows * cols, B::Scalar::zero());
    let mut data = crate::backend::spare_vec(len);
    let mut words = [0u64; WORDS];
    while data.len() < len {
        let words = &mut words[..WORDS.min(len - data.len())];
        rng.fill(words);
        // A select, not a branch on the word: at p = 0.5 a branch was mispredicted at every
        // other entry, and the mask took three times as long.
        data.extend(
            words
                .iter()
                .map(|&word| if word >> 11 >= below { keep } else { zero }),
        );
    }
    Some(backend.from_vec(rows, cols, data).expect("sized to fit"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::NaiveCpu;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// The mask as one float per entry draws it.
    fn by_floats(n: usize, p: f64, rng: &mut StdRng) -> Vec<f64> {
        let keep = 1.0 / (1.0 - p);
        (0..n)
            .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
            .collect()
    }

    #[test]
    fn masks_are_those_of_one_float_per_entry_and_the_stream_goes_on_alike() {
        let backend = NaiveCpu::<f64>::new();
        for p in [0.5, 0.3, 0.1, 1e-12, 0.999_999] {
            for (seed, len) in [(0, 1), (1, 3), (2, 511), (3, 512), (4, 513), (5, 3000)] {
                for offset in [false, true] {
                    let mut words = StdRng::seed_from_u64(seed);
                    let mut floats = StdRng::seed_from_u64(seed);
                    if offset {
                        // Half a word drawn before: the bulk draw starts mid-block.
                        words.next_u32();
                        floats.next_u32();
                    }
                    let got = mask(&backend, 1, len, p, &mut words).unwrap();
                    let want = by_floats(len, p, &mut floats);
                    assert_eq!(backend.to_vec(&got), want, "p {p}, {len} entries");
                    assert_eq!(words.next_u64(), floats.next_u64(), "the stream after");
                }
            }
        }
        let mut rng = StdRng::seed_from_u64(0);
        assert!(mask(&backend, 4, 4, 0.0, &mut rng).is_none());
        assert_eq!(
            rng.next_u64(),
            StdRng::seed_from_u64(0).next_u64(),
            "nothing drawn"
        );
    }
}
