//! A cell's parameters and the projections that use them, forward and backward.

use super::CellKind;
use crate::backend::{Backend, Transpose};
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use num_traits::{One, Zero};
use rand::Rng;
use rand_distr::{Distribution, Uniform};

/// The parameters of one cell, with PyTorch's shapes (`G` = [`CellKind::gates`]):
/// `weight_ih` `(G*H, I)`, `weight_hh` `(G*H, H)`, `bias_ih` and `bias_hh` `(1, G*H)` (PyTorch
/// stores the biases as vectors of length `G*H`).
///
/// The same type holds gradients, as a mirror of the parameters that backward adds into.
#[derive(Debug, Clone)]
pub struct CellParams<B: Backend> {
    pub(crate) weight_ih: B::Matrix,
    pub(crate) weight_hh: B::Matrix,
    pub(crate) bias_ih: Option<B::Matrix>,
    pub(crate) bias_hh: Option<B::Matrix>,
}

impl<B: Backend> CellParams<B> {
    /// Parameters initialised as PyTorch does: every entry uniform in `[-1/sqrt(H), 1/sqrt(H)]`,
    /// drawn in the order `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, row-major.
    ///
    /// # Errors
    /// [`Error::Config`] if `hidden` is zero.
    pub fn init<R: Rng + ?Sized>(
        backend: &B,
        kind: CellKind,
        input: usize,
        hidden: usize,
        bias: bool,
        rng: &mut R,
    ) -> Result<Self> {
        if hidden == 0 {
            return Err(Error::config("hidden size must be at least 1, given 0"));
        }
        let bound = 1.0 / (hidden as f64).sqrt();
        let gh = kind.gates() * hidden;
        let mut draw = |rows, cols| uniform(backend, rows, cols, bound, rng);
        let weight_ih = draw(gh, input)?;
        let weight_hh = draw(gh, hidden)?;
        let (bias_ih, bias_hh) = if bias {
            (Some(draw(1, gh)?), Some(draw(1, gh)?))
        } else {
            (None, None)
        };
        Ok(CellParams {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
        })
    }

    /// Parameters from given weights: `weight_ih` `(G*H, I)`, `weight_hh` `(G*H, H)` and
    /// optional biases `(1, G*H)` each, with `G` = [`CellKind::gates`].
    ///
    /// # Errors
    /// [`Error::Shape`] naming the first weight that does not fit (`weight_ih` fixes `H`);
    /// [`Error::Config`] if `H` is zero.
    pub fn from_weights(
        backend: &B,
        kind: CellKind,
        weight_ih: B::Matrix,
        weight_hh: B::Matrix,
        biases: Option<(B::Matrix, B::Matrix)>,
    ) -> Result<Self> {
        // weight_ih fixes H: its rows are the G gate blocks of H rows each.
        let (gh, input) = backend.shape(&weight_ih);
        let gates = kind.gates();
        if gh == 0 {
            return Err(Error::config("hidden size must be at least 1, given 0"));
        }
        if !gh.is_multiple_of(gates) {
            return Err(Error::Shape {
                what: "weight_ih".to_string(),
                expected: format!("({gates} * H, {input}) for the {} cell", kind.name()),
                given: format!("{:?}", (gh, input)),
            });
        }
        let hidden = gh / gates;
        let mut expect = vec![("weight_hh", &weight_hh, (gh, hidden))];
        if let Some((bi, bh)) = &biases {
            expect.push(("bias_ih", bi, (1, gh)));
            expect.push(("bias_hh", bh, (1, gh)));
        }
        for (name, m, want) in expect {
            if backend.shape(m) != want {
                return Err(Error::shape(name, want, backend.shape(m)));
            }
        }
        let (bias_ih, bias_hh) = biases.unzip();
        Ok(CellParams {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
        })
    }

    /// Zeros of the same shapes: the start of a gradient accumulator.
    pub fn zeros_like(&self, backend: &B) -> Self {
        let zeros = |m: &B::Matrix| {
            let (r, c) = backend.shape(m);
            backend.zeros(r, c)
        };
        CellParams {
            weight_ih: zeros(&self.weight_ih),
            weight_hh: zeros(&self.weight_hh),
            bias_ih: self.bias_ih.as_ref().map(zeros),
            bias_hh: self.bias_hh.as_ref().map(zeros),
        }
    }

    /// `weight_ih`, `(G*H, I)`.
    pub fn weight_ih(&self) -> &B::Matrix {
        &self.weight_ih
    }

    /// `weight_hh`, `(G*H, H)`.
    pub fn weight_hh(&self) -> &B::Matrix {
        &self.weight_hh
    }

    /// `bias_ih`, `(1, G*H)`, if the cell has biases.
    pub fn bias_ih(&self) -> Option<&B::Matrix> {
        self.bias_ih.as_ref()
    }

    /// `bias_hh`, `(1, G*H)`, if the cell has biases.
    pub fn bias_hh(&self) -> Option<&B::Matrix> {
        self.bias_hh.as_ref()
    }

    /// `(input_size, hidden_size)` read off the weight shapes.
    pub fn sizes(&self, backend: &B) -> (usize, usize) {
        let (_, input) = backend.shape(&self.weight_ih);
        let (_, hidden) = backend.shape(&self.weight_hh);
        (input, hidden)
    }

    /// The parameters with their PyTorch names for layer `suffix` (e.g. `"l0"`), in PyTorch's
    /// order: `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`.
    pub fn named(&self, suffix: &str) -> Vec<(String, &B::Matrix)> {
        let mut out = vec![
            (format!("weight_ih_{suffix}"), &self.weight_ih),
            (format!("weight_hh_{suffix}"), &self.weight_hh),
        ];
        if let (Some(bi), Some(bh)) = (&self.bias_ih, &self.bias_hh) {
            out.push((format!("bias_ih_{suffix}"), bi));
            out.push((format!("bias_hh_{suffix}"), bh));
        }
        out
    }

    /// The parameter matrices in the order of [`named`](CellParams::named), without names (and
    /// so without allocating).
    pub fn matrices(&self) -> impl Iterator<Item = &B::Matrix> {
        [&self.weight_ih, &self.weight_hh]
            .into_iter()
            .chain(self.bias_ih.iter())
            .chain(self.bias_hh.iter())
    }

    /// As [`matrices`](CellParams::matrices), mutable.
    pub fn matrices_mut(&mut self) -> impl Iterator<Item = &mut B::Matrix> {
        [&mut self.weight_ih, &mut self.weight_hh]
            .into_iter()
            .chain(self.bias_ih.iter_mut())
            .chain(self.bias_hh.iter_mut())
    }

    /// As [`named`](CellParams::named), mutable.
    pub fn named_mut(&mut self, suffix: &str) -> Vec<(String, &mut B::Matrix)> {
        let mut out = vec![
            (format!("weight_ih_{suffix}"), &mut self.weight_ih),
            (format!("weight_hh_{suffix}"), &mut self.weight_hh),
        ];
        if let (Some(bi), Some(bh)) = (&mut self.bias_ih, &mut self.bias_hh) {
            out.push((format!("bias_ih_{suffix}"), bi));
            out.push((format!("bias_hh_{suffix}"), bh));
        }
        out
    }

    /// `xp = x W_ih^T + b_ih` for dense rows `x` (`n x I`), giving `n x G*H`.
    pub(crate) fn project_input(&self, backend: &B, x: &B::Matrix) -> B::Matrix {
        let (n, _) = backend.shape(x);
        let (gh, _) = backend.shape(&self.weight_ih);
        let mut xp = backend.empty(n, gh); // written whole: beta = 0
        self.project_input_into(backend, x, &mut xp);
        xp
    }

    /// [`project_input`](Self::project_input) written over `xp` (`n x G*H`).
    pub(crate) fn project_input_into(&self, backend: &B, x: &B::Matrix, xp: &mut B::Matrix) {
        let (one, zero) = (B::Scalar::one(), B::Scalar::zero());
        backend.gemm(
            xp,
            one,
            x,
            Transpose::No,
            &self.weight_ih,
            Transpose::Yes,
            zero,
        );
        if let Some(b) = &self.bias_ih {
            backend.add_row(xp, b);
        }
    }

    /// `W_ih^T` prepared for [`project_input_prepared`](Self::project_input_prepared) at batch
    /// `batch`.
    pub(crate) fn prepare_input(&self, backend: &B, batch: usize) -> B::Prepared {
        backend.prepare_rhs(&self.weight_ih, Transpose::Yes, batch)
    }

    /// [`project_input_into`](Self::project_input_into) with `W_ih^T` prepared by
    /// [`prepare_input`](Self::prepare_input).
    pub(crate) fn project_input_prepared(
        &self,
        backend: &B,
        w_ih_t: &B::Prepared,
        x: &B::Matrix,
        xp: &mut B::Matrix,
    ) {
        let (one, zero) = (B::Scalar::one(), B::Scalar::zero());
        backend.gemm_prepared(xp, one, x, w_ih_t, zero);
        if let Some(b) = &self.bias_ih {
            backend.add_row(xp, b);
        }
    }

    /// `xp` for token ids: column `id` of `W_ih` plus `b_ih`, the one-hot product without the GEMM.
    pub(crate) fn project_ids(&self, backend: &B, ids: &[usize]) -> B::Matrix {
        let (gh, _) = backend.shape(&self.weight_ih);
        let mut xp = backend.empty(ids.len(), gh); // every row gathered
        self.project_ids_into(backend, ids, &mut xp);
        xp
    }

    /// [`project_ids`](Self::project_ids) written over `xp` (`ids.len() x G*H`).
    pub(crate) fn project_ids_into(&self, backend: &B, ids: &[usize], xp: &mut B::Matrix) {
        backend.gather_columns(xp, &self.weight_ih, ids);
        if let Some(b) = &self.bias_ih {
            backend.add_row(xp, b);
        }
    }

    /// The token-id table, `I x G*H`: row `v` is column `v` of `W_ih` plus `b_ih`, so that the
    /// projection of a step's ids is a gather of whole rows, with the same values (the same
    /// sums, rounded once) as [`project_ids`](Self::project_ids).
    pub(crate) fn id_table(&self, backend: &B) -> B::Matrix {
        let (gh, vocab) = backend.shape(&self.weight_ih);
        let every_id: Vec<usize> = (0..vocab).collect();
        let mut table = backend.zeros(vocab, gh);
        self.project_ids_into(backend, &every_id, &mut table);
        table
    }

    /// `hh = h W_hh^T + b_hh` for a single product, without preparing `W_hh`.
    pub(crate) fn project_hidden_once(&self, backend: &B, h: &B::Matrix, hh: &mut B::Matrix) {
        let (one, zero) = (B::Scalar::one(), B::Scalar::zero());
        backend.gemm(
            hh,
            one,
            h,
            Transpose::No,
            &self.weight_hh,
            Transpose::Yes,
            zero,
        );
        if let Some(b) = &self.bias_hh {
            backend.add_row(hh, b);
        }
    }

    /// `W_hh^T` prepared for [`project_hidden`](Self::project_hidden) at batch `batch`.
    pub(crate) fn prepare_hidden(&self, backend: &B, batch: usize) -> B::Prepared {
        backend.prepare_rhs(&self.weight_hh, Transpose::Yes, batch)
    }

    /// `hh = h W_hh^T + b_hh` for `h` (`B x H`), written over `hh` (`B x G*H`); `w_hh_t` is
    /// [`prepare_hidden`](Self::prepare_hidden)'s.
    pub(crate) fn project_hidden(
        &self,
        backend: &B,
        w_hh_t: &B::Prepared,
        h: &B::Matrix,
        hh: &mut B::Matrix,
    ) {
        let (one, zero) = (B::Scalar::one(), B::Scalar::zero());
        backend.gemm_prepared(hh, one, h, w_hh_t, zero);
        if let Some(b) = &self.bias_hh {
            backend.add_row(hh, b);
        }
    }
}

/// Checks that a gradient mirror has the parameters' shapes.
pub(crate) fn check_same_shapes<B: Backend>(
    backend: &B,
    params: &CellParams<B>,
    grads: &CellParams<B>,
) -> Result<()> {
    let want = params.named("");
    let have = grads.named("");
    if want.len() != have.len() {
        return Err(Error::shape(
            "gradient parameters (count)",
            want.len(),
            have.len(),
        ));
    }
    for ((name, p), (_, g)) in want.iter().zip(&have) {
        if backend.shape(p) != backend.shape(g) {
            return Err(Error::shape(
                format!("gradient {name}"),
                backend.shape(p),
                backend.shape(g),
            ));
        }
    }
    Ok(())
}

/// Weight side of a projection's backward: `d_weight += d^T x` and `d_bias += colsum(d)`, for
/// `d` (`n x G*H`) and the projected rows `x` (`n x K`). With `n = T*B` this is every step's
/// contribution summed in one GEMM.
pub(crate) fn add_weight_grads<B: Backend>(
    backend: &B,
    d_weight: &mut B::Matrix,
    d_bias: Option<&mut B::Matrix>,
    d: &B::Matrix,
    x: &B::Matrix,
) {
    let one = B::Scalar::one();
    backend.gemm(d_weight, one, d, Transpose::Yes, x, Transpose::No, one);
    if let Some(db) = d_bias {
        backend.add_column_sums(db, d);
    }
}

/// Input side of a projection's backward: `d W` for `d` (`n x G*H`) and `weight` (`G*H x K`),
/// plus `direct` (`n x K`), the gradient that reaches the same rows another way.
pub(crate) fn back_project<B: Backend>(
    backend: &B,
    weight: &B::Matrix,
    d: &B::Matrix,
    direct: Option<B::Matrix>,
) -> B::Matrix {
    let one = B::Scalar::one();
    let (rows, _) = backend.shape(d);
    let (_, cols) = backend.shape(weight);
    let (beta, mut out) = match direct {
        Some(direct) => (one, direct),
        None => (B::Scalar::zero(), backend.zeros(rows, cols)),
    };
    backend.gemm(&mut out, one, d, Transpose::No, weight, Transpose::No, beta);
    out
}

/// A `rows x cols` matrix with every entry drawn uniformly from `[-bound, bound]`, row-major.
pub(crate) fn uniform<B: Backend, R: Rng + ?Sized>(
    backend: &B,
    rows: usize,
    cols: usize,
    bound: f64,
    rng: &mut R,
) -> Result<B::Matrix> {
    let dist = Uniform::new_inclusive(B::Scalar::of(-bound), B::Scalar::of(bound))
        .map_err(|e| Error::config(format!("initialisation range: {e}")))?;
    let count = rows * cols;
    let mut data = Vec::new();
    data.try_reserve_exact(count)
        .map_err(|e| Error::config(format!("cannot allocate a {rows} x {cols} parameter: {e}")))?;
    data.extend((0..count).map(|_| dist.sample(rng)));
    backend.from_vec(rows, cols, data)
}
