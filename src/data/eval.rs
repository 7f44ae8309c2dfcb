//! `eval_windows`: one stream cut into windows of `T` steps, the last one shorter, so that an
//! evaluation scores every target of a sequence exactly once.

use super::Window;
use crate::error::{Error, Result};
use std::iter::FusedIterator;

/// The windows of an evaluation pass over `ids`: one stream (batch 1), `steps` steps per window
/// and the last window shorter, as PyTorch's language-model examples read their validation
/// data (`seq_len = min(bptt, len(source) - 1 - i)`), so that every target `ids[1..]` is scored
/// exactly once and nothing is dropped.
///
/// From `N` ids there are `N - 1` targets and `K = ceil((N - 1) / T)` windows. Window `k`
/// holds the inputs `ids[k*T .. k*T + T_k]` and the targets `ids[k*T + 1 .. k*T + T_k + 1]`,
/// with `T_k = T` but for the last window, whose `T_k = N - 1 - (K - 1)*T` is between 1 and
/// `T`. Window 0 has `reset` set; every other continues the one before it, so the final state
/// of window `k` is the initial state of window `k + 1`, and the summed loss over the pass is
/// the loss of one forward pass over the whole sequence, up to rounding.
///
/// The batch is 1 because `B` streams of one length cannot cover a count of targets that is
/// not a multiple of `B` without dropping or repeating some: [`Corpus`](super::Corpus), which
/// trains on `B` streams, drops the remainder instead ([`Corpus::dropped`](super::Corpus::dropped)).
///
/// ```
/// use recurrent::data::eval_windows;
/// use recurrent::prelude::*;
///
/// # fn main() -> recurrent::Result<()> {
/// let ids: Vec<usize> = vec![0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2]; // 10 targets
/// let windows = eval_windows(&ids, 4)?;
/// assert_eq!((windows.len(), windows.targets()), (3, 10));
/// let steps: Vec<usize> = windows.clone().map(|w| w.steps).collect();
/// assert_eq!(steps, [4, 4, 2]); // the last window is short
///
/// // The mean loss per target over the pass, with the state carried from window to window.
/// let rnn = Rnn::new(NaiveCpu::<f64>::new(), RnnConfig::gru(4, 6).output(4),
///     &mut StdRng::seed_from_u64(0))?;
/// let (mut total, mut state) = (0.0, None);
/// for window in windows.clone() {
///     if window.reset {
///         state = None;
///     }
///     let trace = rnn.forward(&window.input(), state.as_ref())?;
///     let (sum, _) = CrossEntropy::sum().forward(rnn.backend(), trace.logits(), &window.targets)?;
///     total += sum;
///     state = Some(trace.final_state());
/// }
/// let mean = total / windows.targets() as f64;
/// // The same as one forward pass over the whole sequence.
/// let whole = rnn.forward(&Input::ids(ids[..10].to_vec(), 1), None)?;
/// let (whole, _) = CrossEntropy::mean().forward(rnn.backend(), whole.logits(), &ids[1..])?;
/// assert!((mean - whole).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::Empty`] for no ids; [`Error::Config`] for a single id (no target to score) or
/// `steps == 0`.
pub fn eval_windows(ids: &[usize], steps: usize) -> Result<EvalWindows<'_>> {
    if ids.is_empty() {
        return Err(Error::empty("sequence to evaluate"));
    }
    if ids.len() < 2 {
        return Err(Error::config(
            "a sequence to evaluate needs at least 2 ids (an input and its target), given 1",
        ));
    }
    if steps == 0 {
        return Err(Error::config(
            "evaluation windows need a step count of at least 1, given 0",
        ));
    }
    let windows = (ids.len() - 1).div_ceil(steps);
    Ok(EvalWindows {
        ids,
        steps,
        front: 0,
        back: windows,
    })
}

/// The windows of one evaluation pass, in order; made by [`eval_windows`], which documents
/// their layout. Each is a [`Window`] of batch 1.
#[derive(Debug, Clone)]
pub struct EvalWindows<'a> {
    ids: &'a [usize],
    steps: usize,
    front: usize,
    back: usize,
}

impl EvalWindows<'_> {
    /// The number of targets the whole pass scores, `N - 1`: divide the summed loss by it for
    /// the mean per target.
    pub fn targets(&self) -> usize {
        self.ids.len() - 1
    }

    /// Window `k`: `T` steps from input `k*T`, fewer for the last.
    fn window(&self, k: usize) -> Window {
        let start = k * self.steps;
        let steps = self.steps.min(self.targets() - start);
        Window {
            index: k,
            steps,
            batch: 1,
            reset: k == 0,
            inputs: self.ids[start..start + steps].to_vec(),
            targets: self.ids[start + 1..start + steps + 1].to_vec(),
        }
    }
}

impl Iterator for EvalWindows<'_> {
    type Item = Window;

    fn next(&mut self) -> Option<Window> {
        if self.front == self.back {
            return None;
        }
        self.front += 1;
        Some(self.window(self.front - 1))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for EvalWindows<'_> {
    fn next_back(&mut self) -> Option<Window> {
        if self.front == self.back {
            return None;
        }
        self.back -= 1;
        Some(self.window(self.back))
    }
}

impl ExactSizeIterator for EvalWindows<'_> {}

impl FusedIterator for EvalWindows<'_> {}
