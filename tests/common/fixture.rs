//! Reading PyTorch fixtures (f64 tensors by name) and comparing against them: shared by the
//! parity suites (`#[path = "common/fixture.rs"] mod fixture;`).

#![allow(dead_code)]

use recurrent::StateDict;

/// The bound of the f64 parity suites: `|got - want| <= 1e-10 max(1, |want|)`.
pub const TOLERANCE: f64 = 1e-10;

/// The values of float tensor `name` of a fixture.
#[track_caller]
pub fn floats<'a>(dict: &'a StateDict, name: &str) -> &'a [f64] {
    dict.get(name)
        .unwrap_or_else(|| panic!("fixture lacks {name}"))
        .floats()
        .unwrap_or_else(|| panic!("fixture's {name} is not a float tensor"))
}

/// The values of integer tensor `name` of a fixture.
#[track_caller]
pub fn ints<'a>(dict: &'a StateDict, name: &str) -> &'a [i64] {
    dict.get(name)
        .unwrap_or_else(|| panic!("fixture lacks {name}"))
        .ints()
        .unwrap_or_else(|| panic!("fixture's {name} is not an integer tensor"))
}

/// Integer tensor `name` as ids or lengths (every value non-negative).
#[track_caller]
pub fn indices(dict: &StateDict, name: &str) -> Vec<usize> {
    ints(dict, name)
        .iter()
        .map(|&v| usize::try_from(v).unwrap_or_else(|_| panic!("{name} holds {v}")))
        .collect()
}

/// The worst error against PyTorch seen so far, where, and how many values were compared.
#[derive(Debug, Default)]
pub struct Worst {
    /// `|got - want| / max(1, |want|)`, the largest seen.
    pub error: f64,
    /// The tensor and index of that error.
    pub at: String,
    /// Values compared.
    pub compared: usize,
}

impl Worst {
    /// Compares `got` with PyTorch's `want` value by value, asserting [`TOLERANCE`].
    #[track_caller]
    pub fn compare(&mut self, what: &str, got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}: lengths differ");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let error = (g - w).abs() / w.abs().max(1.0);
            assert!(
                error <= TOLERANCE,
                "{what}[{i}]: got {g}, PyTorch {w} (error {error:.2e})"
            );
            self.compared += 1;
            if error > self.error || self.at.is_empty() {
                self.error = error;
                self.at = format!("{what}[{i}]");
            }
        }
    }

    /// Keeps `other`'s worst (named `case: at`) if it is worse than this one's.
    pub fn keep_worse(&mut self, case: &str, other: &Worst) {
        self.compared += other.compared;
        if other.error > self.error || self.at.is_empty() {
            self.error = other.error;
            self.at = format!("{case}: {}", other.at);
        }
    }
}
