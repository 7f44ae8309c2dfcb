//! The checks of the examples' numeric flags, shared by `char_rnn`, `classify` and `forecast`
//! (each includes this file with `#[path]`): clap calls them on the flag's text, and their
//! message says what the flag must be and what it was given.
// Each example uses the checks its flags need, not all of them.
#![allow(dead_code)]

/// A whole number of at least 1 (sizes, counts, steps).
pub fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(text: &str) -> Result<T, String> {
    match text.trim().parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err(format!("must be a whole number of at least 1, got {text}")),
    }
}

/// A whole number of at least 0.
pub fn whole<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim()
        .parse::<T>()
        .map_err(|_| format!("must be a whole number of at least 0, got {text}"))
}

/// A finite number for which `accept` holds, else `expected`.
pub fn number(text: &str, accept: impl Fn(f64) -> bool, expected: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && accept(x) => Ok(x),
        _ => Err(format!("must be {expected}, got {text}")),
    }
}

/// A finite number above 0.
pub fn positive(text: &str) -> Result<f64, String> {
    number(text, |x| x > 0.0, "a positive number")
}

/// A finite number of at least 0.
pub fn non_negative(text: &str) -> Result<f64, String> {
    number(text, |x| x >= 0.0, "a number of at least 0")
}

/// A probability that leaves something: at least 0 and below 1 (dropout, label smoothing).
pub fn probability(text: &str) -> Result<f64, String> {
    number(text, |x| (0.0..1.0).contains(&x), "at least 0 and below 1")
}

/// A multiplicative decay: above 0 and at most 1.
pub fn decay_factor(text: &str) -> Result<f64, String> {
    number(text, |x| x > 0.0 && x <= 1.0, "above 0 and at most 1")
}
