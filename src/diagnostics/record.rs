//! Filling a [`LayerFlow`] during one layer's backward pass, without allocating per step.

use super::LayerFlow;
use crate::backend::{Activation, Backend, Transpose};
use crate::cell::LayerInput;
use crate::cell::{CellKind, StepBuffers, copy_all};
use crate::scalar::Scalar;
use num_traits::{One, Zero};

/// Records into a [`LayerFlow`] while [`bptt`](crate::bptt) runs one layer backward.
///
/// Made before the time loop (it sizes the record and its scratch there); [`step`] is called
/// at every step once `dh` and `dc` are in place, [`weight_terms`] once after the loop.
///
/// [`step`]: Recorder::step
/// [`weight_terms`]: Recorder::weight_terms
pub(crate) struct Recorder<'a, B: Backend> {
    flow: &'a mut LayerFlow,
    /// Two `B x H` matrices for the LSTM's `dE/dc_t`.
    scratch: Option<(B::Matrix, B::Matrix)>,
}

impl<'a, B: Backend> Recorder<'a, B> {
    /// Sizes `flow` for `steps` steps of a `kind` layer (with biases or not).
    pub(crate) fn new(
        backend: &B,
        flow: &'a mut LayerFlow,
        kind: CellKind,
        (batch, hidden, steps): (usize, usize, usize),
        bias: bool,
    ) -> Self {
        flow.reset(steps, kind.has_cell_state(), bias);
        let scratch = kind
            .has_cell_state()
            .then(|| (backend.zeros(batch, hidden), backend.zeros(batch, hidden)));
        Recorder { flow, scratch }
    }

    /// Records step `t` from `buf` as the cell's backward is about to read it: `dh` is the whole
    /// gradient reaching `h_t`; for the LSTM `dc` is the part reaching `c_t` through `c_{t+1}`,
    /// and `c`, `gates` are the step's saved values.
    pub(crate) fn step(&mut self, backend: &B, t: usize, buf: &StepBuffers<B>) {
        self.flow.dh[t] = norm(backend, &buf.dh);
        let Some((tanh_c, dc)) = &mut self.scratch else {
            return;
        };
        // dE/dc_t = dc + dh * o * (1 - tanh(c_t)^2), with o the last gate block.
        let hidden = backend.shape(&buf.c).1;
        copy_all(backend, tanh_c, &buf.c);
        backend.activate(tanh_c, Activation::Tanh);
        copy_all(backend, dc, &buf.dh);
        backend.activate_backward(dc, tanh_c, Activation::Tanh);
        let o = tanh_c;
        backend.copy_columns(o, 0, &buf.gates, 3 * hidden, hidden);
        backend.mul(dc, o);
        backend.axpy(dc, B::Scalar::one(), &buf.dc);
        self.flow.dc[t] = norm(backend, dc);
    }

    /// Records every step's term of the weight and bias gradients from the gate gradients of
    /// all steps (`T*B x G*H`: `d_xp_all` for the input side, `d_hh_all` for the recurrent side),
    /// the previous states `h_prev_all` (`T*B x H`) and the layer's input.
    pub(crate) fn weight_terms(
        self,
        backend: &B,
        d_xp_all: &B::Matrix,
        d_hh_all: &B::Matrix,
        h_prev_all: &B::Matrix,
        input: LayerInput<'_, B>,
        batch: usize,
    ) {
        let flow = self.flow;
        let bias = flow.bias;
        let hh = Terms::new(backend, d_hh_all, Rows::Dense(h_prev_all), batch);
        hh.write(&mut flow.weight_hh, bias.then_some(&mut flow.bias_hh));
        let rows = match input {
            LayerInput::Dense(x) => Rows::Dense(x),
            LayerInput::Ids(ids) => Rows::Ids(ids),
        };
        let ih = Terms::new(backend, d_xp_all, rows, batch);
        ih.write(&mut flow.weight_ih, bias.then_some(&mut flow.bias_ih));
    }
}

/// `||m||_F` in `f64`.
fn norm<B: Backend>(backend: &B, m: &B::Matrix) -> f64 {
    backend.sum_squares(m).to_f64().sqrt()
}

/// The right operand of every step's weight term: its rows (`T*B x K`), or token ids, whose
/// one-hot rows have dot products `[id == id']`.
enum Rows<'m, B: Backend> {
    Dense(&'m B::Matrix),
    Ids(&'m [usize]),
}

/// Every step's `||D_t^T X_t||_F^2` and `||1^T D_t||^2`, summed per row `(t, b)` of the batch:
/// with `D_t` rows `d_b` and `X_t` rows `x_b` (`b` in `0..B`),
///
/// ```text
/// ||D_t^T X_t||_F^2 = sum_{b, b'} (d_b . d_b') (x_b . x_b')      ||1^T D_t||^2 = sum_{b, b'} d_b . d_b'
/// ```
///
/// taken over `b' = (b + lag) mod B` for each `lag` in `0..B`: one rotation of the rows within
/// every step, an element-wise product and one product with a column of ones per lag, each over
/// all `T*B` rows at once. So the work is `B` passes over the whole sequence, never one per
/// step, and no `G*H x K` matrix is formed.
struct Terms {
    batch: usize,
    /// Row `(t, b)` of the two sums, in `f64`.
    weight: Vec<f64>,
    bias: Vec<f64>,
}

impl Terms {
    fn new<B: Backend>(backend: &B, d_all: &B::Matrix, rows: Rows<'_, B>, batch: usize) -> Self {
        let (count, _) = backend.shape(d_all);
        let mut d_lag = LagDots::new(backend, d_all);
        let mut x_lag = match rows {
            Rows::Dense(x) => Some(LagDots::new(backend, x)),
            Rows::Ids(_) => None,
        };
        let (one, zero) = (B::Scalar::one(), B::Scalar::zero());
        let mut weight = backend.zeros(count, 1);
        let mut bias = backend.zeros(count, 1);
        let mut same_id = Vec::with_capacity(count);
        for lag in 0..batch {
            let order = rotation(count, batch, lag);
            d_lag.compute(backend, d_all, &order);
            backend.axpy(&mut bias, one, &d_lag.dots);
            match (&rows, &mut x_lag) {
                (Rows::Dense(x), Some(x_lag)) => {
                    x_lag.compute(backend, x, &order);
                    backend.mul(&mut d_lag.dots, &x_lag.dots);
                }
                (Rows::Ids(ids), _) => {
                    same_id.clear();
                    let equal =
                        |(r, &o): (usize, &usize)| if ids[r] == ids[o] { one } else { zero };
                    same_id.extend(order.iter().enumerate().map(equal));
                    let dots = backend.from_vec(count, 1, same_id.clone());
                    backend.mul(&mut d_lag.dots, &dots.expect("T*B x 1"));
                }
                (Rows::Dense(_), None) => unreachable!("dense rows have scratch"),
            }
            backend.axpy(&mut weight, one, &d_lag.dots);
        }
        let widen = |m: &B::Matrix| backend.to_vec(m).into_iter().map(Scalar::to_f64).collect();
        Terms {
            batch,
            weight: widen(&weight),
            bias: widen(&bias),
        }
    }

    /// Writes the norms per step: the square root of each step's sum over its `B` rows (its
    /// absolute value: the sums are non-negative but for rounding).
    fn write(&self, weight: &mut [f64], bias: Option<&mut Vec<f64>>) {
        let per_step = |v: &[f64], out: &mut [f64]| {
            for (o, step) in out.iter_mut().zip(v.chunks(self.batch)) {
                *o = step.iter().sum::<f64>().abs().sqrt();
            }
        };
        per_step(&self.weight, weight);
        if let Some(bias) = bias {
            per_step(&self.bias, bias);
        }
    }
}

/// The row order that rotates the rows of every step by `lag`: row `(t, b)` reads row
/// `(t, (b + lag) mod B)`.
fn rotation(count: usize, batch: usize, lag: usize) -> Vec<usize> {
    (0..count)
        .map(|r| r - r % batch + (r % batch + lag) % batch)
        .collect()
}

/// Scratch for the dot products of every row of an `n x K` matrix with another row of it.
struct LagDots<B: Backend> {
    rotated: B::Matrix,
    ones: B::Matrix,
    /// `n x 1`: row `r`'s dot product with row `order[r]`.
    dots: B::Matrix,
}

impl<B: Backend> LagDots<B> {
    fn new(backend: &B, m: &B::Matrix) -> Self {
        let (rows, cols) = backend.shape(m);
        let ones = vec![B::Scalar::one(); cols];
        LagDots {
            rotated: backend.zeros(rows, cols),
            ones: backend.from_vec(cols, 1, ones).expect("K x 1"),
            dots: backend.zeros(rows, 1),
        }
    }

    /// `dots[r] = m[r] . m[order[r]]`.
    fn compute(&mut self, backend: &B, m: &B::Matrix, order: &[usize]) {
        let (one, zero) = (B::Scalar::one(), B::Scalar::zero());
        backend.gather_rows(&mut self.rotated, m, order);
        backend.mul(&mut self.rotated, m);
        let (no, rotated) = (Transpose::No, &self.rotated);
        backend.gemm(&mut self.dots, one, rotated, no, &self.ones, no, zero);
    }
}
