//! Text as token ids: [`Vocab`] maps characters to ids and back, [`Corpus`] cuts a long id
//! sequence into the time-major windows that truncated BPTT trains on, and [`split`] keeps the
//! end of a text for validation, as Karpathy's `char-rnn` does. [`eval_windows`] reads a
//! validation text as one stream with a short last window, so that every character is scored
//! exactly once.
//!
//! A training pass over a corpus, carrying the hidden state from one window to the next:
//!
//! ```
//! use recurrent::data::{Corpus, Vocab, split};
//! use recurrent::prelude::*;
//!
//! # fn main() -> recurrent::Result<()> {
//! let text = "the cat sat on the mat. the rat sat on the cat.\n";
//! let vocab = Vocab::from_text(text)?; // the distinct chars, sorted: ids do not depend on order
//! let (train, validation) = split(vocab.encode(text)?, 0.1)?; // the last 10% for validation
//! assert_eq!(validation.len(), 5);
//!
//! // B = 2 parallel streams, T = 6 steps per window.
//! let corpus = Corpus::new(train, 2, 6)?;
//! assert_eq!(corpus.len(), 3);
//!
//! let mut rng = StdRng::seed_from_u64(0);
//! let config = RnnConfig::lstm(vocab.len(), 16).output(vocab.len());
//! let mut rnn = Rnn::new(NaiveCpu::<f32>::default(), config, &mut rng)?;
//! let mut sgd = Sgd::new(0.1)?;
//! let mut state = None;
//! for window in corpus.windows() {
//!     if window.reset {
//!         state = None; // a new pass starts the streams from their beginnings
//!     }
//!     let trace = rnn.forward(&window.input(), state.as_ref())?;
//!     let loss = CrossEntropy::mean();
//!     let (_, d_logits) = loss.forward(rnn.backend(), trace.logits(), &window.targets)?;
//!     let grads = rnn.backward(&trace, &d_logits)?;
//!     sgd.step(&mut rnn, &grads)?;
//!     state = Some(trace.final_state()); // window k + 1 continues window k
//! }
//! assert_eq!(vocab.decode(&vocab.encode("a cat")?)?, "a cat");
//! # Ok(())
//! # }
//! ```

mod corpus;
mod eval;
mod vocab;

pub use corpus::{Corpus, Window, Windows, split};
pub use eval::{EvalWindows, eval_windows};
pub use vocab::Vocab;
