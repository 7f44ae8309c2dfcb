//! Backend conformance for the cells' element-wise steps, [`CellKernels`]' `lstm_forward`,
//! `gru_forward` and their backward: the checks every backend must pass, whether it runs the
//! generic equations of `src/cell/` (the trait's defaults) or fused kernels of its own, generic
//! over `B` like `backend_conformance.rs`, whose test-side helpers (`common/conformance.rs`) they
//! share.
//!
//! Two kinds of evidence, on random inputs for every batch in [`BATCHES`] and hidden size in
//! [`HIDDENS`]:
//! - Against the equations. Each kernel is compared with the cell equations of the trait docs,
//!   written out below for one element in plain `f64` (PyTorch's gate orders: i, f, g, o for the
//!   LSTM; r, z, n for the GRU, with `n = tanh(xp_n + r * hh_n)`). Inputs are multiples of
//!   `1/256` in `[-4, 4]`, exact in f32 and f64; the saved activations handed to a backward kernel
//!   are first rounded to the scalar type, so that both sides start from the same numbers. Every
//!   output starts as NaN, so an element the kernel forgets to write fails. The tolerance is
//!   [`tolerance`], 32 epsilons of the scalar type relative to `max(1, |expected|)` (`3.8e-6` for
//!   f32, `7.1e-15` for f64): each result goes through a few `exp` or `tanh` and a handful of
//!   products of values below 4, each off by an ulp or so (`NaiveCpu` stays within 2 epsilons).
//! - Against the forward kernel (f64 only). For a random upstream gradient `w`, the backward
//!   kernel's outputs equal the central finite differences of the scalar `sum(w_h * h + w_c * c)`
//!   (LSTM) or `sum(w_h * h)` (GRU), computed by calling the forward kernel itself, to
//!   [`FD_TOLERANCE`]. This proves that backward is the derivative of forward, even where the
//!   equations written here and the kernel might share a mistake.
//!
//! A shape misuse that reaches a cell kernel panics with the kernel's name (the generic
//! equations check their operands' shapes first, as a fused kernel does).
//!
//! A new backend joins by adding one line per scalar type to the `conformance_suite!` call at the
//! bottom, `scalar: module_name => backend_value`; `f64` entries also run the finite-difference
//! checks. Every check then runs as a `#[test]` in that module:
//! `cargo test --test backend_conformance_cells module_name::`.

#[path = "common/conformance.rs"]
mod conformance;

use conformance::{Host, Lcg, assert_close, download, expect_panic, tolerance};
use recurrent::cell::StepBuffers;
use recurrent::{Activation, Backend, CellKernels, CellKind, Cpu, NaiveCpu};

/// Batch sizes the cells are checked at.
const BATCHES: [usize; 3] = [1, 2, 5];

/// Hidden sizes the cells are checked at.
const HIDDENS: [usize; 3] = [1, 3, 8];

/// Bound of the random inputs: multiples of `1/256` in `[-4, 4]`, from saturating gates to the
/// linear part of `tanh` and `sigmoid`.
const BOUND: usize = 4;

/// Step of the central differences: their truncation error, `STEP^2 / 6` times a third
/// derivative, and their rounding error, an ulp of the loss over `STEP`, are both near `1e-10`.
const STEP: f64 = 1e-5;

/// Tolerance of the finite-difference checks, relative to `max(1, |gradient|)`: a thousand times
/// the error of the differences, and far below the error of any wrong term.
const FD_TOLERANCE: f64 = 1e-7;

/// Every `(batch, hidden)` checked.
fn sizes() -> impl Iterator<Item = (usize, usize)> {
    BATCHES
        .into_iter()
        .flat_map(|batch| HIDDENS.into_iter().map(move |hidden| (batch, hidden)))
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `host` as the backend stores it: rounded to the scalar type and read back.
fn in_scalar<B: Backend>(backend: &B, host: &Host) -> Host {
    download(backend, &host.upload(backend))
}

/// `sum_ij a[i, j] * b[i, j]`.
fn dot(a: &Host, b: &Host) -> f64 {
    a.data.iter().zip(&b.data).map(|(x, y)| x * y).sum()
}

/// The `G` gates of element `(b, j)` of a `batch x G*hidden` gate matrix, in stored order.
fn gates_at<const G: usize>(m: &Host, hidden: usize, b: usize, j: usize) -> [f64; G] {
    std::array::from_fn(|q| m.at(b, q * hidden + j))
}

/// Writes the `G` gates of element `(b, j)` into a `batch x G*hidden` gate matrix.
fn set_gates<const G: usize>(m: &mut Host, hidden: usize, b: usize, j: usize, gates: [f64; G]) {
    for (q, value) in gates.into_iter().enumerate() {
        *m.at_mut(b, q * hidden + j) = value;
    }
}

/// The gradient of `loss` at `x` by central differences, one element at a time.
fn central_differences(x: &Host, mut loss: impl FnMut(&Host) -> f64) -> Host {
    let mut probe = x.clone();
    let mut grad = Host::filled(x.rows, x.cols, f64::NAN);
    for k in 0..x.data.len() {
        probe.data[k] = x.data[k] + STEP;
        let up = loss(&probe);
        probe.data[k] = x.data[k] - STEP;
        let down = loss(&probe);
        probe.data[k] = x.data[k];
        grad.data[k] = (up - down) / (2.0 * STEP);
    }
    grad
}

// ---------------------------------------------------------------------------------------------
// LSTM: pre-activations in the order i, f, g, o.
// ---------------------------------------------------------------------------------------------

/// One element of the LSTM cell: from the pre-activations `[i, f, g, o]` and `c_prev`, the
/// activations, `c` and `h`.
fn lstm_element([ai, af, ag, ao]: [f64; 4], c_prev: f64) -> ([f64; 4], f64, f64) {
    let (i, f, g, o) = (sigmoid(ai), sigmoid(af), ag.tanh(), sigmoid(ao));
    let c = f * c_prev + i * g;
    let h = o * c.tanh();
    ([i, f, g, o], c, h)
}

/// Its derivative by the chain rule: from the activations, `c_prev`, `c` and the gradients `dh`,
/// `dc` reaching `h` and `c`, the gradients of the four pre-activations and of `c_prev`.
fn lstm_element_backward(
    [i, f, g, o]: [f64; 4],
    (c_prev, c): (f64, f64),
    (dh, dc): (f64, f64),
) -> ([f64; 4], f64) {
    let tanh_c = c.tanh();
    // All the gradient reaching c: from the next step, and through h = o * tanh(c).
    let dc_total = dc + dh * o * (1.0 - tanh_c * tanh_c);
    let d_pre = [
        dc_total * g * i * (1.0 - i),
        dc_total * c_prev * f * (1.0 - f),
        dc_total * i * (1.0 - g * g),
        dh * tanh_c * o * (1.0 - o),
    ];
    (d_pre, dc_total * f)
}

/// The LSTM cell over a batch: `(activated gates, c, h)`.
fn lstm_reference(pre: &Host, c_prev: &Host) -> (Host, Host, Host) {
    let (batch, hidden) = (c_prev.rows, c_prev.cols);
    let mut gates = Host::filled(batch, 4 * hidden, f64::NAN);
    let mut c = Host::filled(batch, hidden, f64::NAN);
    let mut h = c.clone();
    for b in 0..batch {
        for j in 0..hidden {
            let (act, c_new, h_new) = lstm_element(gates_at(pre, hidden, b, j), c_prev.at(b, j));
            set_gates(&mut gates, hidden, b, j, act);
            *c.at_mut(b, j) = c_new;
            *h.at_mut(b, j) = h_new;
        }
    }
    (gates, c, h)
}

/// Its backward over a batch: `(d_gates, dc_prev)`.
fn lstm_backward_reference(
    gates: &Host,
    c_prev: &Host,
    c: &Host,
    dh: &Host,
    dc: &Host,
) -> (Host, Host) {
    let (batch, hidden) = (c_prev.rows, c_prev.cols);
    let mut d_gates = Host::filled(batch, 4 * hidden, f64::NAN);
    let mut dc_prev = Host::filled(batch, hidden, f64::NAN);
    for b in 0..batch {
        for j in 0..hidden {
            let (d, dc_p) = lstm_element_backward(
                gates_at(gates, hidden, b, j),
                (c_prev.at(b, j), c.at(b, j)),
                (dh.at(b, j), dc.at(b, j)),
            );
            set_gates(&mut d_gates, hidden, b, j, d);
            *dc_prev.at_mut(b, j) = dc_p;
        }
    }
    (d_gates, dc_prev)
}

/// Step buffers for `kind` at this batch and hidden size, every matrix NaN: a value the kernel
/// should write and does not stays NaN and fails.
fn nan_buffers<B: CellKernels>(
    backend: &B,
    kind: CellKind,
    batch: usize,
    hidden: usize,
) -> StepBuffers<B> {
    let mut buf = StepBuffers::new(backend, kind, batch, hidden);
    let nan = |m: &B::Matrix| {
        let (r, c) = backend.shape(m);
        Host::filled(r, c, f64::NAN).upload(backend)
    };
    for m in [
        &mut buf.xp,
        &mut buf.hh,
        &mut buf.gates,
        &mut buf.h_prev,
        &mut buf.c_prev,
        &mut buf.h,
        &mut buf.c,
        &mut buf.dh,
        &mut buf.dc,
        &mut buf.d_xp,
        &mut buf.d_hh,
        &mut buf.dh_direct,
        &mut buf.dc_prev,
    ] {
        *m = nan(m);
    }
    buf
}

/// Runs `lstm_forward` on the pre-activations `pre` and `c_prev`, with `gates`, `c` and `h`
/// starting as NaN: `(gates, c, h)`. The kernel gets `pre` as `xp + hh`, with `hh` multiples of
/// `1/256` in `[-2, 2)`, so that the sum is exact for dyadic `pre` and a kernel that reads only
/// one of the two fails.
fn run_lstm_cell<B: CellKernels>(backend: &B, pre: &Host, c_prev: &Host) -> (Host, Host, Host) {
    let (batch, hidden) = (c_prev.rows, c_prev.cols);
    let hh = Host::from_fn(batch, 4 * hidden, |b, k| {
        ((b * 4 * hidden + k) * 389 % 1024) as f64 / 256.0 - 2.0
    });
    let xp = Host::from_fn(batch, 4 * hidden, |b, k| pre.at(b, k) - hh.at(b, k));
    let mut buf = nan_buffers(backend, CellKind::Lstm, batch, hidden);
    buf.xp = xp.upload(backend);
    buf.hh = hh.upload(backend);
    buf.c_prev = c_prev.upload(backend);
    backend.lstm_forward(&mut buf);
    let down = |m| download(backend, m);
    (down(&buf.gates), down(&buf.c), down(&buf.h))
}

/// Runs `lstm_backward`, with its outputs starting as NaN: `(d_gates, dc_prev)`.
fn run_lstm_cell_backward<B: CellKernels>(
    backend: &B,
    [gates, c_prev, c, dh, dc]: [&Host; 5],
) -> (Host, Host) {
    let (batch, hidden) = (c_prev.rows, c_prev.cols);
    let mut buf = nan_buffers(backend, CellKind::Lstm, batch, hidden);
    let up = |m: &Host| m.upload(backend);
    (buf.gates, buf.c_prev, buf.c, buf.dh, buf.dc) = (up(gates), up(c_prev), up(c), up(dh), up(dc));
    backend.lstm_backward(&mut buf);
    (
        download(backend, &buf.d_xp),
        download(backend, &buf.dc_prev),
    )
}

fn check_lstm_cell<B: CellKernels>(backend: &B) {
    let mut rng = Lcg::new(101);
    let tol = tolerance::<B>();
    for (batch, hidden) in sizes() {
        let pre = Host::dyadic(&mut rng, batch, 4 * hidden, BOUND);
        let c_prev = Host::dyadic(&mut rng, batch, hidden, BOUND);
        let (want_gates, want_c, want_h) = lstm_reference(&pre, &c_prev);
        let (gates, c, h) = run_lstm_cell(backend, &pre, &c_prev);
        let case = format!("lstm_cell batch={batch} hidden={hidden}");
        assert_close(&gates, &want_gates, tol, format_args!("{case}: gates"));
        assert_close(&c, &want_c, tol, format_args!("{case}: c"));
        assert_close(&h, &want_h, tol, format_args!("{case}: h"));
    }
}

fn check_lstm_cell_backward<B: CellKernels>(backend: &B) {
    let mut rng = Lcg::new(102);
    let tol = tolerance::<B>();
    for (batch, hidden) in sizes() {
        let pre = Host::dyadic(&mut rng, batch, 4 * hidden, BOUND);
        let c_prev = Host::dyadic(&mut rng, batch, hidden, BOUND);
        let (gates, c, _) = lstm_reference(&pre, &c_prev);
        // Saved activations as the backend holds them; c_prev, dh and dc are exact already.
        let (gates, c) = (in_scalar(backend, &gates), in_scalar(backend, &c));
        let dh = Host::dyadic(&mut rng, batch, hidden, BOUND);
        let dc = Host::dyadic(&mut rng, batch, hidden, BOUND);
        let (want_d_gates, want_dc_prev) = lstm_backward_reference(&gates, &c_prev, &c, &dh, &dc);
        let (d_gates, dc_prev) = run_lstm_cell_backward(backend, [&gates, &c_prev, &c, &dh, &dc]);
        let case = format!("lstm_cell_backward batch={batch} hidden={hidden}");
        assert_close(
            &d_gates,
            &want_d_gates,
            tol,
            format_args!("{case}: d_gates"),
        );
        assert_close(
            &dc_prev,
            &want_dc_prev,
            tol,
            format_args!("{case}: dc_prev"),
        );
    }
}

/// `lstm_cell_backward` with `dh = w_h`, `dc = w_c` is the gradient of
/// `sum(w_h * h + w_c * c)` through `lstm_cell`, with respect to the pre-activations and `c_prev`.
fn check_lstm_cell_backward_is_the_derivative<B: CellKernels<Scalar = f64>>(backend: &B) {
    let mut rng = Lcg::new(103);
    for (batch, hidden) in sizes() {
        let pre = Host::dyadic(&mut rng, batch, 4 * hidden, BOUND);
        let c_prev = Host::dyadic(&mut rng, batch, hidden, BOUND);
        let w_h = Host::dyadic(&mut rng, batch, hidden, 1);
        let w_c = Host::dyadic(&mut rng, batch, hidden, 1);
        let loss = |pre: &Host, c_prev: &Host| {
            let (_, c, h) = run_lstm_cell(backend, pre, c_prev);
            dot(&w_h, &h) + dot(&w_c, &c)
        };
        let (gates, c, _) = run_lstm_cell(backend, &pre, &c_prev);
        let (d_pre, dc_prev) = run_lstm_cell_backward(backend, [&gates, &c_prev, &c, &w_h, &w_c]);
        let case = format!("lstm_cell_backward against differences, batch={batch} hidden={hidden}");
        let want = central_differences(&pre, |pre| loss(pre, &c_prev));
        assert_close(&d_pre, &want, FD_TOLERANCE, format_args!("{case}: d_gates"));
        let want = central_differences(&c_prev, |c_prev| loss(&pre, c_prev));
        assert_close(
            &dc_prev,
            &want,
            FD_TOLERANCE,
            format_args!("{case}: dc_prev"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// GRU: input and hidden projections in the order r, z, n.
// ---------------------------------------------------------------------------------------------

/// One element of the GRU cell: from the projections `xp = [r, z, n]` of the input and
/// `hh = [r, z, n]` of `h_prev` (biases included), and `h_prev`, the activations and `h`. The
/// reset gate multiplies `hh_n` after the product, as PyTorch does.
fn gru_element([xr, xz, xn]: [f64; 3], [hr, hz, hn]: [f64; 3], h_prev: f64) -> ([f64; 3], f64) {
    let r = sigmoid(xr + hr);
    let z = sigmoid(xz + hz);
    let n = (xn + r * hn).tanh();
    let h = (1.0 - z) * n + z * h_prev;
    ([r, z, n], h)
}

/// Its derivative by the chain rule, from the activations, `hh_n`, `h_prev` and the gradient
/// `dh` reaching `h`: `(d_xp, d_hh, dh_prev)`, where `dh_prev` is only the direct part through
/// `z * h_prev` (`hh` is an input of its own).
fn gru_element_backward(
    [r, z, n]: [f64; 3],
    hh_n: f64,
    h_prev: f64,
    dh: f64,
) -> ([f64; 3], [f64; 3], f64) {
    // The gradients of the pre-activations of n, r and z.
    let d_an = dh * (1.0 - z) * (1.0 - n * n);
    let d_ar = d_an * hh_n * r * (1.0 - r);
    let d_az = dh * (h_prev - n) * z * (1.0 - z);
    ([d_ar, d_az, d_an], [d_ar, d_az, d_an * r], dh * z)
}

/// The GRU cell over a batch: `(activated gates, h)`.
fn gru_reference(xp: &Host, hh: &Host, h_prev: &Host) -> (Host, Host) {
    let (batch, hidden) = (h_prev.rows, h_prev.cols);
    let mut gates = Host::filled(batch, 3 * hidden, f64::NAN);
    let mut h = Host::filled(batch, hidden, f64::NAN);
    for b in 0..batch {
        for j in 0..hidden {
            let (x, u) = (gates_at(xp, hidden, b, j), gates_at(hh, hidden, b, j));
            let (act, h_new) = gru_element(x, u, h_prev.at(b, j));
            set_gates(&mut gates, hidden, b, j, act);
            *h.at_mut(b, j) = h_new;
        }
    }
    (gates, h)
}

/// Its backward over a batch: `(d_xp, d_hh, dh_prev)`.
fn gru_backward_reference(gates: &Host, hh: &Host, h_prev: &Host, dh: &Host) -> (Host, Host, Host) {
    let (batch, hidden) = (h_prev.rows, h_prev.cols);
    let mut d_xp = Host::filled(batch, 3 * hidden, f64::NAN);
    let mut d_hh = d_xp.clone();
    let mut dh_prev = Host::filled(batch, hidden, f64::NAN);
    for b in 0..batch {
        for j in 0..hidden {
            let hh_n = hh.at(b, 2 * hidden + j);
            let act = gates_at(gates, hidden, b, j);
            let (dx, du, dhp) = gru_element_backward(act, hh_n, h_prev.at(b, j), dh.at(b, j));
            set_gates(&mut d_xp, hidden, b, j, dx);
            set_gates(&mut d_hh, hidden, b, j, du);
            *dh_prev.at_mut(b, j) = dhp;
        }
    }
    (d_xp, d_hh, dh_prev)
}

/// Runs `gru_forward`, with `gates` and `h` starting as NaN: `(gates, h)`.
fn run_gru_cell<B: CellKernels>(backend: &B, xp: &Host, hh: &Host, h_prev: &Host) -> (Host, Host) {
    let (batch, hidden) = (h_prev.rows, h_prev.cols);
    let mut buf = nan_buffers(backend, CellKind::Gru, batch, hidden);
    let up = |m: &Host| m.upload(backend);
    (buf.xp, buf.hh, buf.h_prev) = (up(xp), up(hh), up(h_prev));
    backend.gru_forward(&mut buf);
    (download(backend, &buf.gates), download(backend, &buf.h))
}

/// Runs `gru_backward`, with its outputs starting as NaN: `(d_xp, d_hh, dh_prev)`, the last
/// the direct part of the gradient reaching `h_prev` (`dh_direct`).
fn run_gru_cell_backward<B: CellKernels>(
    backend: &B,
    [gates, hh, h_prev, dh]: [&Host; 4],
) -> (Host, Host, Host) {
    let (batch, hidden) = (h_prev.rows, h_prev.cols);
    let mut buf = nan_buffers(backend, CellKind::Gru, batch, hidden);
    let up = |m: &Host| m.upload(backend);
    (buf.gates, buf.hh, buf.h_prev, buf.dh) = (up(gates), up(hh), up(h_prev), up(dh));
    backend.gru_backward(&mut buf);
    let down = |m| download(backend, m);
    (down(&buf.d_xp), down(&buf.d_hh), down(&buf.dh_direct))
}

fn check_gru_cell<B: CellKernels>(backend: &B) {
    let mut rng = Lcg::new(201);
    let tol = tolerance::<B>();
    for (batch, hidden) in sizes() {
        let xp = Host::dyadic(&mut rng, batch, 3 * hidden, BOUND);
        let hh = Host::dyadic(&mut rng, batch, 3 * hidden, BOUND);
        let h_prev = Host::dyadic(&mut rng, batch, hidden, BOUND);
        let (want_gates, want_h) = gru_reference(&xp, &hh, &h_prev);
        let (gates, h) = run_gru_cell(backend, &xp, &hh, &h_prev);
        let case = format!("gru_cell batch={batch} hidden={hidden}");
        assert_close(&gates, &want_gates, tol, format_args!("{case}: gates"));
        assert_close(&h, &want_h, tol, format_args!("{case}: h"));
    }
}

fn check_gru_cell_backward<B: CellKernels>(backend: &B) {
    let mut rng = Lcg::new(202);
    let tol = tolerance::<B>();
    for (batch, hidden) in sizes() {
        let xp = Host::dyadic(&mut rng, batch, 3 * hidden, BOUND);
        let hh = Host::dyadic(&mut rng, batch, 3 * hidden, BOUND);
        let h_prev = Host::dyadic(&mut rng, batch, hidden, BOUND);
        // Saved activations as the backend holds them; hh, h_prev and dh are exact already.
        let gates = in_scalar(backend, &gru_reference(&xp, &hh, &h_prev).0);
        let dh = Host::dyadic(&mut rng, batch, hidden, BOUND);
        let want = gru_backward_reference(&gates, &hh, &h_prev, &dh);
        let got = run_gru_cell_backward(backend, [&gates, &hh, &h_prev, &dh]);
        let case = format!("gru_cell_backward batch={batch} hidden={hidden}");
        assert_close(&got.0, &want.0, tol, format_args!("{case}: d_xp"));
        assert_close(&got.1, &want.1, tol, format_args!("{case}: d_hh"));
        assert_close(&got.2, &want.2, tol, format_args!("{case}: dh_prev"));
    }
}

/// `gru_cell_backward` with `dh = w_h` is the gradient of `sum(w_h * h)` through `gru_cell`,
/// with respect to `xp`, `hh` and `h_prev` (the direct part: `hh` is held fixed).
fn check_gru_cell_backward_is_the_derivative<B: CellKernels<Scalar = f64>>(backend: &B) {
    let mut rng = Lcg::new(203);
    for (batch, hidden) in sizes() {
        let xp = Host::dyadic(&mut rng, batch, 3 * hidden, BOUND);
        let hh = Host::dyadic(&mut rng, batch, 3 * hidden, BOUND);
        let h_prev = Host::dyadic(&mut rng, batch, hidden, BOUND);
        let w_h = Host::dyadic(&mut rng, batch, hidden, 1);
        let loss = |xp: &Host, hh: &Host, h_prev: &Host| {
            dot(&w_h, &run_gru_cell(backend, xp, hh, h_prev).1)
        };
        let (gates, _) = run_gru_cell(backend, &xp, &hh, &h_prev);
        let (d_xp, d_hh, dh_prev) = run_gru_cell_backward(backend, [&gates, &hh, &h_prev, &w_h]);
        let case = format!("gru_cell_backward against differences, batch={batch} hidden={hidden}");
        let want = central_differences(&xp, |xp| loss(xp, &hh, &h_prev));
        assert_close(&d_xp, &want, FD_TOLERANCE, format_args!("{case}: d_xp"));
        let want = central_differences(&hh, |hh| loss(&xp, hh, &h_prev));
        assert_close(&d_hh, &want, FD_TOLERANCE, format_args!("{case}: d_hh"));
        let want = central_differences(&h_prev, |h_prev| loss(&xp, &hh, h_prev));
        assert_close(
            &dh_prev,
            &want,
            FD_TOLERANCE,
            format_args!("{case}: dh_prev"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Shape misuse: a bug in the crate, which a kernel reports by panicking with its name.
// ---------------------------------------------------------------------------------------------

/// A field of the step buffers.
type Field<B> = fn(&mut StepBuffers<B>) -> &mut <B as Backend>::Matrix;

/// A shape misuse: the kernel, its cell, the field made wrong and its wrong shape.
type Misuse<B> = (&'static str, CellKind, Field<B>, (usize, usize));

fn check_cells_panic_with_their_name<B: CellKernels>(backend: &B) {
    // Batch 2, hidden 3 (LSTM gates 2 x 12, GRU gates 2 x 9); each call has one operand of the
    // wrong shape.
    let cases: [Misuse<B>; 9] = [
        ("lstm_forward", CellKind::Lstm, |b| &mut b.gates, (2, 9)),
        ("lstm_forward", CellKind::Lstm, |b| &mut b.hh, (2, 9)),
        ("lstm_forward", CellKind::Lstm, |b| &mut b.h, (1, 3)),
        ("lstm_backward", CellKind::Lstm, |b| &mut b.dh, (2, 2)),
        ("lstm_backward", CellKind::Lstm, |b| &mut b.d_xp, (2, 9)),
        ("gru_forward", CellKind::Gru, |b| &mut b.hh, (2, 12)),
        ("gru_forward", CellKind::Gru, |b| &mut b.h, (3, 3)),
        ("gru_backward", CellKind::Gru, |b| &mut b.dh, (1, 3)),
        ("gru_backward", CellKind::Gru, |b| &mut b.d_hh, (2, 8)),
    ];
    for (name, kind, field, (rows, cols)) in cases {
        let mut buf = StepBuffers::new(backend, kind, 2, 3);
        *field(&mut buf) = backend.zeros(rows, cols);
        expect_panic(name, || match name {
            "lstm_forward" => backend.lstm_forward(&mut buf),
            "lstm_backward" => backend.lstm_backward(&mut buf),
            "gru_forward" => backend.gru_forward(&mut buf),
            _ => backend.gru_backward(&mut buf),
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Threads: `Cpu` cuts the cell kernels between batch rows when the work is large; every row is
// computed alone, so any number of threads gives the single thread's bits.
// ---------------------------------------------------------------------------------------------

/// Batch and hidden size large enough for three threads to take a ragged block each (37 rows of
/// 1600 LSTM gates: blocks of 13, 13 and 11 rows), yet checked in a blink.
const THREADED: (usize, usize) = (37, 400);

fn same_bits(got: &Host, want: &Host, what: &str) {
    let bits = |m: &Host| m.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert!(bits(got) == bits(want), "{what}: threads changed the bits");
}

fn check_threads_give_the_same_bits<B: CellKernels>(one: &B, many: &B) {
    let (batch, hidden) = THREADED;
    let mut rng = Lcg::new(7);
    let wide4 = Host::dyadic(&mut rng, batch, 4 * hidden, BOUND);
    let wide3 = Host::dyadic(&mut rng, batch, 3 * hidden, BOUND);
    let other3 = Host::dyadic(&mut rng, batch, 3 * hidden, BOUND);
    let [s1, s2, s3, s4] = [(); 4].map(|()| Host::dyadic(&mut rng, batch, hidden, BOUND));
    let (g1, c1, h1) = run_lstm_cell(one, &wide4, &s1);
    let (g2, c2, h2) = run_lstm_cell(many, &wide4, &s1);
    same_bits(&g2, &g1, "lstm_cell gates");
    same_bits(&c2, &c1, "lstm_cell c");
    same_bits(&h2, &h1, "lstm_cell h");
    let inputs = [&g1, &s1, &c1, &s2, &s3];
    let (d1, p1) = run_lstm_cell_backward(one, inputs);
    let (d2, p2) = run_lstm_cell_backward(many, inputs);
    same_bits(&d2, &d1, "lstm_cell_backward d_gates");
    same_bits(&p2, &p1, "lstm_cell_backward dc_prev");
    let (g1, h1) = run_gru_cell(one, &wide3, &other3, &s4);
    let (g2, h2) = run_gru_cell(many, &wide3, &other3, &s4);
    same_bits(&g2, &g1, "gru_cell gates");
    same_bits(&h2, &h1, "gru_cell h");
    let inputs = [&g1, &other3, &s4, &s2];
    let (x1, u1, p1) = run_gru_cell_backward(one, inputs);
    let (x2, u2, p2) = run_gru_cell_backward(many, inputs);
    same_bits(&x2, &x1, "gru_cell_backward d_xp");
    same_bits(&u2, &u1, "gru_cell_backward d_hh");
    same_bits(&p2, &p1, "gru_cell_backward dh_prev");
    for act in [Activation::Tanh, Activation::Sigmoid] {
        let run = |backend: &B| {
            let mut m = wide4.upload(backend);
            backend.activate(&mut m, act);
            download(backend, &m)
        };
        same_bits(&run(many), &run(one), &format!("activate {act:?}"));
    }
}

#[test]
fn cpu_threads_give_the_same_bits_f32() {
    check_threads_give_the_same_bits(
        &Cpu::<f32>::with_threads(1),
        &Cpu::with_threads(3).split_always(),
    );
}

#[test]
fn cpu_threads_give_the_same_bits_f64() {
    check_threads_give_the_same_bits(
        &Cpu::<f64>::with_threads(1),
        &Cpu::with_threads(3).split_always(),
    );
}

// ---------------------------------------------------------------------------------------------
// The backends under test.
// ---------------------------------------------------------------------------------------------

/// One module per `scalar: module => backend` entry, with one `#[test]` per check; the scalar,
/// `f32` or `f64`, says whether the finite-difference checks run too (they need f64, and a wrong
/// label does not compile: they take `Backend<Scalar = f64>`).
macro_rules! conformance_suite {
    ($($scalar:ident: $module:ident => $backend:expr),+ $(,)?) => {$(
        mod $module {
            use super::*;

            #[test] fn lstm_cell() { check_lstm_cell(&$backend) }
            #[test] fn lstm_cell_backward() { check_lstm_cell_backward(&$backend) }
            #[test] fn gru_cell() { check_gru_cell(&$backend) }
            #[test] fn gru_cell_backward() { check_gru_cell_backward(&$backend) }
            #[test] fn cells_panic_with_their_name() { check_cells_panic_with_their_name(&$backend) }
            conformance_suite!(@derivatives $scalar $backend);
        }
    )+};
    (@derivatives f32 $backend:expr) => {};
    (@derivatives f64 $backend:expr) => {
        #[test] fn lstm_cell_backward_is_the_derivative() { check_lstm_cell_backward_is_the_derivative(&$backend) }
        #[test] fn gru_cell_backward_is_the_derivative() { check_gru_cell_backward_is_the_derivative(&$backend) }
    };
}

conformance_suite! {
    f32: naive_f32 => NaiveCpu::<f32>::new(),
    f64: naive_f64 => NaiveCpu::<f64>::new(),
    f32: cpu_f32 => Cpu::<f32>::new(),
    f64: cpu_f64 => Cpu::<f64>::new(),
    f32: vec_f32 => conformance::vec_backend::VecBackend::<f32>::new(),
    f64: vec_f64 => conformance::vec_backend::VecBackend::<f64>::new(),
}

// The candle backend, with the feature `candle`.
#[cfg(feature = "candle")]
conformance_suite! {
    f32: candle_f32 => recurrent::Candle::<f32>::cpu(),
    f64: candle_f64 => recurrent::Candle::<f64>::cpu(),
}
