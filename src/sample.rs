//! Choosing the next token from a model's logits, and writing text with it.
//!
//! A [`Sampler`] turns one row of logits into a token id: greedily (the largest logit) or by
//! drawing from `softmax(logits / temperature)`, optionally only among the `k` largest logits.
//! [`generate`] runs a character model on a [`Stream`]: it reads a priming text, then writes one
//! character at a time, each fed back as the next input.
//!
//! The arithmetic is in `f64` whatever the backend's scalar, and a draw takes exactly one
//! `f64` from the random number generator, so the same seed gives the same text.

use crate::cell::CellKernels;
use crate::data::Vocab;
use crate::error::{Error, Result};
use crate::model::{Rnn, Stream};
use crate::scalar::Scalar;
use rand::{Rng, RngExt};

/// How the next token is chosen from a row of logits.
#[derive(Debug, Clone)]
pub struct Sampler {
    /// `None`: greedy.
    temperature: Option<f64>,
    top_k: Option<usize>,
    /// `(logit, id)` pairs, reused from draw to draw.
    scratch: Vec<(f64, usize)>,
}

impl Sampler {
    /// Always the token with the largest logit (the lowest id among equals); takes nothing from
    /// the random number generator.
    pub fn greedy() -> Self {
        Sampler {
            temperature: None,
            top_k: None,
            scratch: Vec::new(),
        }
    }

    /// Draws from `softmax(logits / temperature)`: below 1 sharper (more likely, more
    /// repetitive text), above 1 flatter (more surprising text).
    ///
    /// # Errors
    /// [`Error::Config`] unless `temperature` is finite and positive (for the limit 0, use
    /// [`greedy`](Sampler::greedy)).
    pub fn new(temperature: f64) -> Result<Self> {
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(Error::config(format!(
                "sampling temperature must be finite and positive, given {temperature}; \
                 use Sampler::greedy() for the most likely token"
            )));
        }
        Ok(Sampler {
            temperature: Some(temperature),
            ..Sampler::greedy()
        })
    }

    /// Draws only among the `k` largest logits (ties broken by the lower id), their
    /// probabilities renormalised. `k` at or above the vocabulary size changes nothing.
    ///
    /// # Errors
    /// [`Error::Config`] for `k = 0`.
    pub fn top_k(mut self, k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::config("top-k sampling needs k >= 1, given 0"));
        }
        self.top_k = Some(k);
        Ok(self)
    }

    /// The temperature, `None` for greedy.
    pub fn temperature(&self) -> Option<f64> {
        self.temperature
    }

    /// The id chosen from `logits` (one score per token).
    ///
    /// # Errors
    /// [`Error::Empty`] for no logits; [`Error::NonFinite`] if one is NaN or infinite. Nothing
    /// is drawn from `rng` then.
    pub fn sample<T: Scalar, R: Rng + ?Sized>(
        &mut self,
        logits: &[T],
        rng: &mut R,
    ) -> Result<usize> {
        if logits.is_empty() {
            return Err(Error::empty("logits to sample from"));
        }
        if let Some(position) = logits.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("logit {position} of the row to sample from"),
            });
        }
        self.scratch.clear();
        self.scratch.extend(
            logits
                .iter()
                .enumerate()
                .map(|(id, v)| (v.to_f64().unwrap_or(0.0), id)),
        );
        // Largest first; equal logits by the lower id, so that every choice is reproducible.
        let keep = self.top_k.unwrap_or(logits.len()).min(logits.len());
        let by_rank = |a: &(f64, usize), b: &(f64, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if keep < self.scratch.len() {
            self.scratch.select_nth_unstable_by(keep - 1, by_rank);
            self.scratch.truncate(keep);
        }
        let Some(temperature) = self.temperature else {
            let best = self.scratch.iter().min_by(|a, b| by_rank(a, b));
            return Ok(best.expect("at least one logit").1);
        };
        // softmax((x - max) / temperature) over the kept ids, in id order.
        self.scratch.sort_unstable_by_key(|&(_, id)| id);
        let max = self
            .scratch
            .iter()
            .map(|&(v, _)| v)
            .fold(f64::NEG_INFINITY, f64::max);
        let mut total = 0.0;
        for (v, _) in &mut self.scratch {
            *v = ((*v - max) / temperature).exp();
            total += *v;
        }
        let mut target = rng.random::<f64>() * total;
        for &(weight, id) in &self.scratch {
            if target < weight {
                return Ok(id);
            }
            target -= weight;
        }
        // Rounding can leave `target` a hair above the last weight: the last id with any.
        let last = self.scratch.iter().rev().find(|&&(w, _)| w > 0.0);
        Ok(last.expect("the largest logit has weight 1").1)
    }
}

/// Writes `length` characters after `prime` with a character model: `rnn` takes token ids of
/// `vocab` and has an output layer of `vocab.len()` logits. The model reads `prime`, then each
/// new character is chosen by `sampler` from the logits and fed back in. With an empty `prime`,
/// the first input is a character drawn uniformly from the vocabulary (as `char-rnn` does); it
/// is not part of the text.
///
/// Returns `prime` followed by the `length` new characters, the whole text as char-rnn's
/// `sample.lua` prints it and as Hugging Face's `generate` returns the prompt with its
/// continuation (`text[prime.len()..]` is the new part). Runs on a [`Stream`] of batch 1: the model's
/// steps allocate nothing; each character copies its row of logits out of the backend.
///
/// # Errors
/// [`Error::Config`] if the model's input or output size is not the vocabulary's, or it is
/// bidirectional; [`Error::UnknownChar`] for a character of `prime` not in `vocab`;
/// [`Error::NonFinite`] if the model produces a NaN or infinite logit.
pub fn generate<B: CellKernels, R: Rng + ?Sized>(
    rnn: &Rnn<B>,
    vocab: &Vocab,
    prime: &str,
    length: usize,
    sampler: &mut Sampler,
    rng: &mut R,
) -> Result<String> {
    let config = rnn.config();
    if config.input_size() != vocab.len() || config.output_size() != Some(vocab.len()) {
        return Err(Error::config(format!(
            "generating text needs a model with {n} inputs and an output layer of {n} logits \
             (the vocabulary's size); this one has {} inputs and output {:?}",
            config.input_size(),
            config.output_size(),
            n = vocab.len()
        )));
    }
    let primed = vocab.encode(prime)?;
    let mut stream: Stream<B> = rnn.stream(1)?;
    let mut next = match primed.split_last() {
        Some((&last, before)) => {
            for &id in before {
                rnn.step(&mut stream, &[id])?;
            }
            last
        }
        None => rng.random_range(0..vocab.len()),
    };
    let mut row = Vec::with_capacity(vocab.len());
    let mut text = String::with_capacity(prime.len() + length);
    text.push_str(prime);
    for _ in 0..length {
        let logits = rnn.step(&mut stream, &[next])?;
        row.clear();
        row.extend(rnn.backend().to_vec(logits));
        next = sampler.sample(&row, rng)?;
        text.push(vocab.char(next)?);
    }
    Ok(text)
}
