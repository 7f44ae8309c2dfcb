//! `Corpus`: a long id sequence as `B` parallel streams cut into `T`-step windows, for
//! truncated BPTT; `split`: a train / validation split at the end of the sequence.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::model::Input;
use std::fmt;
use std::iter::FusedIterator;

/// A token sequence laid out for truncated backpropagation through time, as `char-rnn`'s
/// `CharSplitLMMinibatchLoader` does: `B` parallel streams, each cut into windows of `T` steps,
/// window `k + 1` of a stream continuing where window `k` stopped, so the final hidden state of
/// one window is the right initial state of the next.
///
/// # Layout
///
/// From `N` ids, a pass has `K = (N - 1) / (B*T)` windows (integer division). Stream `b` is the
/// contiguous slice `ids[b*K*T ..= (b+1)*K*T]`: its first `K*T` ids are inputs, and each input's
/// target is the id after it. The last id of stream `b` is the first of stream `b + 1`, seen
/// there as an input and here only as a target, so every transition `ids[i] -> ids[i + 1]` for
/// `i < B*K*T` is trained exactly once per pass and none is made up. (`char-rnn` instead gives
/// its very last input the first id of the text as target.)
///
/// The remainder, the last `N - (B*K*T + 1)` ids (fewer than `B*T`), is dropped:
/// [`dropped`](Corpus::dropped) says how many.
///
/// Window `k` holds, for step `t` and stream `b`, `inputs[t*B + b] = ids[b*K*T + k*T + t]` and
/// `targets[t*B + b] = ids[b*K*T + k*T + t + 1]`: `T*B` of each, time-major, as
/// [`Rnn::forward`](crate::Rnn::forward) reads them.
///
/// For `ids = 0..20`, `B = 2`, `T = 3`: `K = 3`, stream 0 is `0..=9`, stream 1 is `9..=18`, id
/// 19 is dropped, and window 0 has inputs `[0, 9, 1, 10, 2, 11]`, targets `[1, 10, 2, 11, 3, 12]`.
///
/// ```
/// use recurrent::Corpus;
/// # fn main() -> recurrent::Result<()> {
/// let corpus = Corpus::new((0..20).collect(), 2, 3)?;
/// assert_eq!((corpus.len(), corpus.dropped()), (3, 1));
/// let last = corpus.window(2)?;
/// assert_eq!(last.inputs, [6, 15, 7, 16, 8, 17]);
/// assert_eq!(last.targets, [7, 16, 8, 17, 9, 18]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Corpus {
    /// The ids in use: `B*K*T + 1` of them.
    ids: Vec<usize>,
    batch: usize,
    steps: usize,
    /// `K`, windows per pass.
    windows: usize,
    dropped: usize,
}

impl Corpus {
    /// Lays `ids` out as `batch` streams of windows of `steps` steps (see [`Corpus`]). The ids
    /// are not checked against a vocabulary; [`Rnn::forward`](crate::Rnn::forward) does that.
    ///
    /// # Errors
    /// [`Error::Config`] if `batch` or `steps` is 0, or if there are fewer than
    /// `batch * steps + 1` ids (one window's inputs and the target after the last one).
    pub fn new(mut ids: Vec<usize>, batch: usize, steps: usize) -> Result<Corpus> {
        if batch == 0 || steps == 0 {
            return Err(Error::config(format!(
                "a corpus needs a batch and a step count of at least 1, given batch {batch} \
                 and steps {steps}"
            )));
        }
        // One window: `B*T` inputs and the target after the last of them.
        let needed = batch.checked_mul(steps).and_then(|n| n.checked_add(1));
        let Some(needed) = needed.filter(|&n| ids.len() >= n) else {
            let needed = needed.map_or("more than memory holds".to_string(), |n| n.to_string());
            return Err(Error::config(format!(
                "a corpus of {} ids is too short for batch {batch} and steps {steps}: one \
                 window needs batch * steps + 1 = {needed} ids",
                ids.len()
            )));
        };
        let per_window = needed - 1;
        let windows = (ids.len() - 1) / per_window;
        let used = windows * per_window + 1;
        let dropped = ids.len() - used;
        ids.truncate(used);
        ids.shrink_to_fit();
        Ok(Corpus {
            ids,
            batch,
            steps,
            windows,
            dropped,
        })
    }

    /// The number of parallel streams, `B`.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The number of steps per window, `T`.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The number of windows in a pass, `K = (N - 1) / (B*T)`: at least 1.
    pub fn len(&self) -> usize {
        self.windows
    }

    /// Always `false`: [`new`](Corpus::new) refuses a corpus too short for one window.
    pub fn is_empty(&self) -> bool {
        self.windows == 0
    }

    /// How many ids at the end of the given sequence no window uses: `N - (B*K*T + 1)`.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// The windows of one pass (epoch), in order: window 0 has `reset` set.
    pub fn windows(&self) -> Windows<'_> {
        Windows {
            corpus: self,
            front: 0,
            back: self.windows,
        }
    }

    /// Window `k` of a pass (see [`Corpus`] for its contents).
    ///
    /// # Errors
    /// [`Error::Index`] if `k` is not below [`len`](Corpus::len).
    pub fn window(&self, k: usize) -> Result<Window> {
        let mut window = Window::default();
        self.fill(k, &mut window)?;
        Ok(window)
    }

    /// Writes window `k` into `window`, reusing its buffers: after the first window of a pass,
    /// the loop allocates nothing.
    ///
    /// # Errors
    /// [`Error::Index`] if `k` is not below [`len`](Corpus::len); `window` is then unchanged.
    pub fn fill(&self, k: usize, window: &mut Window) -> Result<()> {
        if k >= self.windows {
            return Err(Error::Index {
                what: "corpus window".to_string(),
                position: 0,
                value: k,
                bound: self.windows,
            });
        }
        let (batch, steps) = (self.batch, self.steps);
        let stride = self.windows * steps; // ids between the starts of streams b and b + 1
        window.inputs.clear();
        window.targets.clear();
        for t in 0..steps {
            for b in 0..batch {
                let i = b * stride + k * steps + t;
                window.inputs.push(self.ids[i]);
                window.targets.push(self.ids[i + 1]);
            }
        }
        window.index = k;
        window.steps = steps;
        window.batch = batch;
        window.reset = k == 0;
        Ok(())
    }
}

/// Sizes only: a corpus holds megabytes of ids.
impl fmt::Debug for Corpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Corpus")
            .field("ids", &self.ids.len())
            .field("batch", &self.batch)
            .field("steps", &self.steps)
            .field("windows", &self.windows)
            .field("dropped", &self.dropped)
            .finish()
    }
}

/// One window of a [`Corpus`]: `T` steps of `B` streams, time-major. Non-exhaustive: it may
/// carry more later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Window {
    /// Its position in the pass, `k`.
    pub index: usize,
    /// Steps, `T`.
    pub steps: usize,
    /// Streams, `B`.
    pub batch: usize,
    /// `true` for the first window of a pass: the streams start again from their beginnings,
    /// so the state carried from the last window must be dropped (start from zeros).
    pub reset: bool,
    /// `T*B` input ids: `inputs[t*B + b]` is stream `b` at step `t`.
    pub inputs: Vec<usize>,
    /// `T*B` target ids: `targets[t*B + b]` is the id after `inputs[t*B + b]` in stream `b`.
    pub targets: Vec<usize>,
}

impl Window {
    /// The inputs as a model [`Input`] of token ids with batch `B` (copies them).
    pub fn input<B: Backend>(&self) -> Input<B> {
        Input::ids(self.inputs.clone(), self.batch)
    }
}

/// The windows of one pass over a [`Corpus`], in order; made by [`Corpus::windows`].
#[derive(Debug, Clone)]
pub struct Windows<'a> {
    corpus: &'a Corpus,
    front: usize,
    back: usize,
}

impl Iterator for Windows<'_> {
    type Item = Window;

    fn next(&mut self) -> Option<Window> {
        if self.front == self.back {
            return None;
        }
        self.front += 1;
        Some(self.corpus.window(self.front - 1).expect("k < K"))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Windows<'_> {
    fn next_back(&mut self) -> Option<Window> {
        if self.front == self.back {
            return None;
        }
        self.back -= 1;
        Some(self.corpus.window(self.back).expect("k < K"))
    }
}

impl ExactSizeIterator for Windows<'_> {}

impl FusedIterator for Windows<'_> {}

/// Splits `items` into a training part and a validation part, the last `round(N * val_fraction)`
/// items, as `char-rnn` keeps the end of its text (5% by default) for validation. Nothing is
/// shuffled: the validation text is text the model has not seen, not a sample of it.
///
/// Rounding: `N * val_fraction` is computed in `f64` and rounded to the nearest integer, a half
/// away from zero (Rust's [`f64::round`]), so on a tie the validation part gets the odd item
/// (`N = 5`, `0.5`: 3 validation, 2 training); the training part is the rest, `N - val`. The
/// product is rounded first: `25.0 * 0.58` is `14.499999999999998` in `f64`, not 14.5, so it
/// gives 14 validation items, not 15.
///
/// ```
/// # fn main() -> recurrent::Result<()> {
/// use recurrent::data::split;
/// let (train, val) = split((0..100).collect(), 0.05)?;
/// assert_eq!((train.len(), val), (95, vec![95, 96, 97, 98, 99]));
/// let (train, val) = split((0..5).collect(), 0.5)?; // 2.5 rounds up: validation gets it
/// assert_eq!((train, val), (vec![0, 1], vec![2, 3, 4]));
/// let (train, val) = split((0..7).collect(), 0.3)?; // 2.1 rounds down
/// assert_eq!((train.len(), val.len()), (5, 2));
/// let (train, val) = split((0..25).collect(), 0.58)?; // 14.499999999999998 in f64
/// assert_eq!((train.len(), val.len()), (11, 14));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::Empty`] for no items; [`Error::Config`] if `val_fraction` is not finite and in
/// `[0, 1)`, or if it is above 0 and either part would be empty.
pub fn split<T>(mut items: Vec<T>, val_fraction: f64) -> Result<(Vec<T>, Vec<T>)> {
    if items.is_empty() {
        return Err(Error::empty("sequence to split"));
    }
    if !(val_fraction.is_finite() && (0.0..1.0).contains(&val_fraction)) {
        return Err(Error::config(format!(
            "the validation fraction must be finite and in [0, 1), given {val_fraction}"
        )));
    }
    let n = items.len();
    // `n as f64` is exact below 2^53 items; the product rounds to at most `n`.
    let val = ((n as f64 * val_fraction).round() as usize).min(n);
    if val_fraction > 0.0 && (val == 0 || val == n) {
        return Err(Error::config(format!(
            "a validation fraction of {val_fraction} of {n} items leaves {} training and {val} \
             validation items; both need at least one",
            n - val
        )));
    }
    let validation = items.split_off(n - val);
    Ok((items, validation))
}
