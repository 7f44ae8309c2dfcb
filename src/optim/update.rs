//! The optimisers' update rules, applied element-wise by [`UpdateKernels::update`]: their
//! definition ([`UpdateRule`]) and the reference loops.
//!
//! Each rule is PyTorch's single-tensor CPU implementation (`torch/optim/*.py`,
//! `_single_tensor_*`), operation for operation, in the same order and with the same roundings,
//! so that the results are PyTorch's to the last bit:
//!
//! - a hyperparameter PyTorch derives in Python (`1 - beta2`, `lr / bias_correction1`) is
//!   derived here in `f64` and converted to the scalar type once, as PyTorch converts a Python
//!   float for its kernels;
//! - PyTorch's CPU kernels compute `add(s, x, alpha=a)` as `fma(a, x, s)`, `addcmul(s, x, y,
//!   value=v)` as `fma(v * x, y, s)` and `lerp(s, e, w)` as `fma(w, e - s, s)` for `|w| < 0.5`,
//!   `fma(w - 1, e - s, e)` otherwise, where `fma(a, b, c) = a * b + c` rounded once (a fused
//!   multiply-add: explicitly in the vectorised loops, by the C++ compiler's contraction in the
//!   scalar ones); so do these loops, with [`mul_add`](num_traits::Float::mul_add).
//!   `addcdiv(s, x, y, value=v)` is `s + (v * x) / y`, rounded three times.
//!
//! One difference remains: the square root here is IEEE's, correctly rounded, while PyTorch's
//! CPU `sqrt` (MKL's vector math in the official builds) is within one ulp of it, not always
//! equal: 1.3% of random f64 roots (16% in f32) differ in the last bit. Against PyTorch 2.15
//! (AVX-512 kernels) in f64, `tests/optim.rs` finds every value equal to the bit except where
//! such a root entered, and those within a few ulps.
//!
//! On a machine without FMA instructions `mul_add` is a library call: exact, slower. The loops
//! are inlined into their callers, so that `Cpu` can compile them with FMA enabled, where
//! `mul_add` is one instruction and the loops vectorise (the results are the same: a fused
//! multiply-add rounds once either way).

use crate::backend::{Backend, DenseMatrix, NaiveCpu};
use crate::scalar::Scalar;

/// Where a backend may apply an optimiser's update its own way: [`UpdateKernels`].
///
/// The default runs the reference loops of this module on a copy of each operand, through
/// [`to_vec`](Backend::to_vec) and [`from_vec`](Backend::from_vec), so a backend works before it
/// has an update kernel of its own (`impl UpdateKernels for MyBackend {}`); the element-wise
/// division and square root the rules need are not among the [`Backend`] operations. An
/// override runs the same loops where the data is: [`Cpu`](crate::Cpu) in place, split across
/// its threads.
pub trait UpdateKernels: Backend {
    /// One optimiser update of one parameter, element-wise and in place: `param` (`r x c`) moves
    /// by `rule` (see [`UpdateRule`] for each rule's formulas) from `grad` (`r x c`), reading
    /// and writing the rule's `state` buffers (`r x c` each, in the order and number
    /// [`UpdateRule::state_names`] gives).
    ///
    /// # Panics
    /// If `grad` or a state buffer is not `r x c`, or `state` does not hold as many buffers as
    /// the rule has; the message names the kernel.
    fn update(
        &self,
        rule: &UpdateRule,
        param: &mut Self::Matrix,
        grad: &Self::Matrix,
        state: &mut [Self::Matrix],
    ) {
        update_via_vec(self, rule, param, grad, state)
    }
}

/// The reference backend runs the reference loops on copies.
impl<T: Scalar> UpdateKernels for NaiveCpu<T> {}

/// One optimiser update of one parameter, applied element-wise by [`UpdateKernels::update`] to the
/// parameter `p`, its gradient `g` and the rule's state buffers (each of `p`'s shape, in the
/// order [`state_names`](UpdateRule::state_names) gives).
///
/// The hyperparameters are `f64`; a backend converts each derived scalar to its element type once
/// per call. `step` counts updates including this one (1 on the first). The optimisers of
/// [`optim`](crate::optim) validate the values; a backend assumes they are valid.
///
/// In the formulas, `g <- fma(wd, p, g)` (weight decay) is applied first when
/// `weight_decay != 0`; `fma(a, b, c)` is `a * b + c` rounded once, every other line is
/// evaluated left to right with a rounding per operation, and `lerp(s, e, w)` is
/// `fma(w, e - s, s)` for `|w| < 0.5`, `fma(w - 1, e - s, e)` otherwise (PyTorch's kernels).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum UpdateRule {
    /// `torch.optim.SGD`. Without momentum there is no state and `p <- fma(-lr, g, p)`. With
    /// `momentum > 0` the state is `[momentum_buffer]`:
    ///
    /// ```text
    /// buf <- g                                       on step 1 (the buffer is not read)
    /// buf <- fma(1 - dampening, g, buf * momentum)   on later steps
    /// d   <- fma(momentum, buf, g)  (nesterov)   or  buf
    /// p   <- fma(-lr, d, p)
    /// ```
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum factor; 0 for none (and then no state).
        momentum: f64,
        /// Dampening of the gradient in the momentum buffer (not on step 1).
        dampening: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
        /// This update's number, from 1.
        step: u64,
    },
    /// `torch.optim.Adagrad`, and min-char-rnn's variant with `eps` inside the square root.
    /// State `[sum]`:
    ///
    /// ```text
    /// clr <- lr / (1 + (step - 1) * lr_decay)            (f64)
    /// sum <- fma(g, g, sum)
    /// std <- sqrt(sum) + eps     or, eps_inside_sqrt:  sqrt(sum + eps)
    /// p   <- p + (-clr) * g / std
    /// ```
    Adagrad {
        /// Learning rate.
        lr: f64,
        /// Learning-rate decay per step (see `clr`).
        lr_decay: f64,
        /// Added to the root (PyTorch) or under it (min-char-rnn).
        eps: f64,
        /// Whether `eps` goes under the square root.
        eps_inside_sqrt: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
        /// This update's number, from 1.
        step: u64,
    },
    /// `torch.optim.RMSprop`. State `[square_avg]`, then `grad_avg` if `centered`, then
    /// `momentum_buffer` if `momentum > 0`:
    ///
    /// ```text
    /// v   <- fma((1 - alpha) * g, g, v * alpha)
    /// ga  <- lerp(ga, g, 1 - alpha);  avg <- sqrt(fma(-ga, ga, v))   (centered)
    /// avg <- sqrt(v)                                                 (otherwise)
    /// avg <- avg + eps
    /// buf <- buf * momentum + g / avg;  p <- fma(-lr, buf, p)        (momentum > 0)
    /// p   <- p + (-lr) * g / avg                                     (otherwise)
    /// ```
    RmsProp {
        /// Learning rate.
        lr: f64,
        /// Smoothing constant of the running averages.
        alpha: f64,
        /// Added to the root.
        eps: f64,
        /// Momentum factor; 0 for none.
        momentum: f64,
        /// Whether the squared gradient's average is centred by the gradient's.
        centered: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
    /// `torch.optim.Adam` (and `AdamW` with `decoupled_weight_decay`, which replaces the
    /// gradient's L2 term by `p <- p * (1 - lr * wd)` first). State `[exp_avg, exp_avg_sq]`,
    /// then `max_exp_avg_sq` if `amsgrad`:
    ///
    /// ```text
    /// m    <- lerp(m, g, 1 - beta1)
    /// v    <- fma((1 - beta2) * g, g, v * beta2)
    /// bc1  <- 1 - beta1^step;  bc2 <- 1 - beta2^step;  step_size <- lr / bc1      (f64)
    /// vmax <- max(vmax, v), NaN-propagating                                      (amsgrad)
    /// den  <- sqrt(v or vmax) / sqrt(bc2) + eps
    /// p    <- p + (-step_size) * m / den
    /// ```
    Adam {
        /// Learning rate.
        lr: f64,
        /// Decay of the gradient's running average.
        beta1: f64,
        /// Decay of the squared gradient's running average.
        beta2: f64,
        /// Added to the root.
        eps: f64,
        /// L2 penalty (or decoupled decay).
        weight_decay: f64,
        /// AdamW: decay the parameter instead of adding to the gradient.
        decoupled_weight_decay: bool,
        /// Normalise by the running maximum of `v`.
        amsgrad: bool,
        /// This update's number, from 1.
        step: u64,
    },
}

impl UpdateRule {
    /// The state buffers the rule reads and writes, in the order [`UpdateKernels::update`] takes them;
    /// the names are PyTorch's keys in an optimiser's per-parameter state.
    pub fn state_names(&self) -> &'static [&'static str] {
        match *self {
            UpdateRule::Sgd { momentum, .. } if momentum != 0.0 => &["momentum_buffer"],
            UpdateRule::Sgd { .. } => &[],
            UpdateRule::Adagrad { .. } => &["sum"],
            UpdateRule::RmsProp {
                centered, momentum, ..
            } => match (centered, momentum > 0.0) {
                (false, false) => &["square_avg"],
                (false, true) => &["square_avg", "momentum_buffer"],
                (true, false) => &["square_avg", "grad_avg"],
                (true, true) => &["square_avg", "grad_avg", "momentum_buffer"],
            },
            UpdateRule::Adam { amsgrad: false, .. } => &["exp_avg", "exp_avg_sq"],
            UpdateRule::Adam { amsgrad: true, .. } => &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
        }
    }
}

/// [`UpdateKernels::update`] on [`DenseMatrix`] storage, in place, on operands the caller has
/// checked ([`check_operands`]): [`apply`].
#[inline(always)]
pub(crate) fn update_dense<T: Scalar>(
    rule: &UpdateRule,
    param: &mut DenseMatrix<T>,
    grad: &DenseMatrix<T>,
    state: &mut [DenseMatrix<T>],
) {
    let (p, g) = (param.as_mut_slice(), grad.as_slice());
    match state {
        [] => apply(rule, p, g, &mut []),
        [a] => apply(rule, p, g, &mut [a.as_mut_slice()]),
        [a, b] => apply(rule, p, g, &mut [a.as_mut_slice(), b.as_mut_slice()]),
        [a, b, c] => apply(
            rule,
            p,
            g,
            &mut [a.as_mut_slice(), b.as_mut_slice(), c.as_mut_slice()],
        ),
        _ => unreachable!("update: no rule has more than three buffers"),
    }
}

/// [`UpdateKernels::update`]'s shape checks: the gradient and every state buffer have the
/// parameter's shape, and there are as many buffers as the rule has. Panics naming the kernel.
pub(crate) fn check_operands<B: Backend>(
    backend: &B,
    rule: &UpdateRule,
    param: &B::Matrix,
    grad: &B::Matrix,
    state: &[B::Matrix],
) {
    let shape = backend.shape(param);
    assert_eq!(backend.shape(grad), shape, "update: gradient shape");
    assert_eq!(
        state.len(),
        rule.state_names().len(),
        "update: state buffer count"
    );
    assert!(
        state.iter().all(|s| backend.shape(s) == shape),
        "update: state buffer shape"
    );
}

/// [`UpdateKernels::update`]'s default: through `to_vec` and `from_vec`, for any storage.
pub(crate) fn update_via_vec<B: Backend>(
    backend: &B,
    rule: &UpdateRule,
    param: &mut B::Matrix,
    grad: &B::Matrix,
    state: &mut [B::Matrix],
) {
    let (rows, cols) = backend.shape(param);
    check_operands(backend, rule, param, grad, state);
    let mut dense = |m: &B::Matrix| {
        DenseMatrix::from_vec(rows, cols, backend.to_vec(m)).expect("update: operand shape")
    };
    let mut p = dense(param);
    let g = dense(grad);
    let mut s: Vec<_> = state.iter().map(&mut dense).collect();
    update_dense(rule, &mut p, &g, &mut s);
    let upload = |m: DenseMatrix<B::Scalar>| backend.from_vec(rows, cols, m.into_vec());
    *param = upload(p).expect("update: rows * cols elements");
    for (slot, m) in state.iter_mut().zip(s) {
        *slot = upload(m).expect("update: rows * cols elements");
    }
}

/// The reference loops: `p`, `g` and every buffer of `state` have the same length.
#[inline(always)]
pub(crate) fn apply<T: Scalar>(rule: &UpdateRule, p: &mut [T], g: &[T], state: &mut [&mut [T]]) {
    match *rule {
        UpdateRule::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
            step,
        } => sgd(
            p,
            g,
            state,
            (lr, momentum, dampening, weight_decay),
            nesterov,
            step,
        ),
        UpdateRule::Adagrad {
            lr,
            lr_decay,
            eps,
            eps_inside_sqrt,
            weight_decay,
            step,
        } => {
            let clr = lr / (1.0 + (step as f64 - 1.0) * lr_decay);
            adagrad(p, g, state, (clr, eps, weight_decay), eps_inside_sqrt)
        }
        UpdateRule::RmsProp {
            lr,
            alpha,
            eps,
            momentum,
            centered,
            weight_decay,
        } => rmsprop(
            p,
            g,
            state,
            (lr, alpha, eps, momentum, weight_decay),
            centered,
        ),
        UpdateRule::Adam { .. } => adam(p, g, state, rule),
    }
}

/// `fma(wd, p, g)` when `wd != 0` (PyTorch's `grad.add(param, alpha=weight_decay)`), else `g`.
#[inline(always)]
fn decayed<T: Scalar>(g: T, p: T, wd: T) -> T {
    if wd != T::zero() { wd.mul_add(p, g) } else { g }
}

/// PyTorch's `lerp(s, e, w)`, with its branch for small weights.
#[inline(always)]
fn lerp<T: Scalar>(s: T, e: T, w: T) -> T {
    if w.abs() < T::of(0.5) {
        w.mul_add(e - s, s)
    } else {
        (w - T::one()).mul_add(e - s, e)
    }
}

#[inline(always)]
fn sgd<T: Scalar>(
    p: &mut [T],
    g: &[T],
    state: &mut [&mut [T]],
    (lr, momentum, dampening, weight_decay): (f64, f64, f64, f64),
    nesterov: bool,
    step: u64,
) {
    let (neg_lr, wd) = (T::of(-lr), T::of(weight_decay));
    let (mom, keep) = (T::of(momentum), T::of(1.0 - dampening));
    match state {
        [] => {
            for (p, &g) in p.iter_mut().zip(g) {
                let g = decayed(g, *p, wd);
                *p = neg_lr.mul_add(g, *p);
            }
        }
        [buf] => {
            for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
                let g = decayed(g, *p, wd);
                *b = if step == 1 {
                    g
                } else {
                    keep.mul_add(g, *b * mom)
                };
                let d = if nesterov { mom.mul_add(*b, g) } else { *b };
                *p = neg_lr.mul_add(d, *p);
            }
        }
        _ => unreachable!("update: SGD has at most one buffer"),
    }
}

#[inline(always)]
fn adagrad<T: Scalar>(
    p: &mut [T],
    g: &[T],
    state: &mut [&mut [T]],
    (clr, eps, weight_decay): (f64, f64, f64),
    eps_inside_sqrt: bool,
) {
    let [sum] = state else {
        unreachable!("update: Adagrad has one buffer")
    };
    let (neg_clr, eps, wd) = (T::of(-clr), T::of(eps), T::of(weight_decay));
    for ((p, &g), s) in p.iter_mut().zip(g).zip(sum.iter_mut()) {
        let g = decayed(g, *p, wd);
        *s = g.mul_add(g, *s);
        let std = if eps_inside_sqrt {
            (*s + eps).sqrt()
        } else {
            s.sqrt() + eps
        };
        *p = *p + neg_clr * g / std;
    }
}

#[inline(always)]
fn rmsprop<T: Scalar>(
    p: &mut [T],
    g: &[T],
    state: &mut [&mut [T]],
    (lr, alpha, eps, momentum, weight_decay): (f64, f64, f64, f64, f64),
    centered: bool,
) {
    let (neg_lr, eps, wd) = (T::of(-lr), T::of(eps), T::of(weight_decay));
    let (a, w, mom) = (T::of(alpha), T::of(1.0 - alpha), T::of(momentum));
    let (square_avg, rest) = state.split_first_mut().expect("update: RMSprop buffers");
    let (mut grad_avg, rest) = match centered {
        true => rest
            .split_first_mut()
            .map(|(f, r)| (Some(f), r))
            .expect("grad_avg"),
        false => (None, rest),
    };
    let mut buffer = rest.first_mut();
    for (i, (p, &g)) in p.iter_mut().zip(g).enumerate() {
        let g = decayed(g, *p, wd);
        let v = &mut square_avg[i];
        *v = (w * g).mul_add(g, *v * a);
        let avg = match &mut grad_avg {
            Some(ga) => {
                ga[i] = lerp(ga[i], g, w);
                (-ga[i]).mul_add(ga[i], *v).sqrt()
            }
            None => v.sqrt(),
        };
        let avg = avg + eps;
        match &mut buffer {
            Some(buf) => {
                buf[i] = buf[i] * mom + g / avg;
                *p = neg_lr.mul_add(buf[i], *p);
            }
            None => *p = *p + neg_lr * g / avg,
        }
    }
}

#[inline(always)]
fn adam<T: Scalar>(p: &mut [T], g: &[T], state: &mut [&mut [T]], rule: &UpdateRule) {
    let UpdateRule::Adam {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        decoupled_weight_decay,
        amsgrad,
        step,
    } = *rule
    else {
        unreachable!("update: not Adam")
    };
    let (exp_avg, rest) = state.split_first_mut().expect("update: Adam buffers");
    let (exp_avg_sq, rest) = rest.split_first_mut().expect("update: Adam buffers");
    let mut max_sq = rest.first_mut().filter(|_| amsgrad);
    // The scalars PyTorch computes in Python floats. It takes `bias_correction2 ** 0.5` with C's
    // `pow`, which is within 0.52 ulp of this correctly rounded root.
    let t = step as f64;
    let (bc1, bc2) = (1.0 - beta1.powf(t), 1.0 - beta2.powf(t));
    let neg_step_size = T::of(-(lr / bc1));
    let bc2_sqrt = T::of(bc2.sqrt());
    let (w1, b2, w2, eps) = (
        T::of(1.0 - beta1),
        T::of(beta2),
        T::of(1.0 - beta2),
        T::of(eps),
    );
    let (wd, shrink) = (T::of(weight_decay), T::of(1.0 - lr * weight_decay));
    let decay = weight_decay != 0.0;
    for (i, (p, &g)) in p.iter_mut().zip(g).enumerate() {
        let mut g = g;
        if decay && decoupled_weight_decay {
            *p = *p * shrink;
        } else if decay {
            g = wd.mul_add(*p, g);
        }
        let m = &mut exp_avg[i];
        *m = lerp(*m, g, w1);
        let v = &mut exp_avg_sq[i];
        *v = (w2 * g).mul_add(g, *v * b2);
        let second = match &mut max_sq {
            Some(vmax) => {
                // `torch.maximum`: NaN wins.
                if *v > vmax[i] || v.is_nan() {
                    vmax[i] = *v;
                }
                vmax[i]
            }
            None => *v,
        };
        let denom = second.sqrt() / bc2_sqrt + eps;
        *p = *p + neg_step_size * *m / denom;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default `UpdateKernels::update`, through `to_vec` and `from_vec`, gives the in-place
    /// bits.
    #[test]
    fn the_default_through_vectors_matches_in_place() {
        let rule = UpdateRule::Adam {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
            decoupled_weight_decay: false,
            amsgrad: true,
            step: 3,
        };
        let m = |seed: f64| {
            let data = (0..6).map(|i| (seed + i as f64).sin().abs()).collect();
            DenseMatrix::from_vec(2, 3, data).expect("6 values")
        };
        let (mut p, g) = (m(0.5), m(1.5));
        let mut state = vec![m(2.5), m(3.5), m(4.5)];
        let (mut p2, mut state2) = (p.clone(), state.clone());
        update_dense(&rule, &mut p, &g, &mut state);
        update_via_vec(&NaiveCpu::<f64>::new(), &rule, &mut p2, &g, &mut state2);
        assert_eq!((p, state), (p2, state2));
    }
}
