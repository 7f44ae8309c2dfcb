//! Inverted-dropout masks for [`Rnn::forward_train`](crate::Rnn::forward_train).

use crate::backend::Backend;
use crate::scalar::Scalar;
use num_traits::Zero;
use rand::{Rng, RngExt};

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
