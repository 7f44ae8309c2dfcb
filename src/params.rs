//! The parameters of a whole model, by PyTorch name; the same type mirrors them as gradients.

use crate::backend::Backend;
use crate::cell::CellParams;
use crate::error::{Error, Result};

/// The output projection `y = h W^T + b`: PyTorch's `nn.Linear(H, V)`, named `out.weight`
/// `(V, H)` and `out.bias` `(V)` (stored as `(1, V)`).
#[derive(Debug, Clone)]
pub struct Linear<B: Backend> {
    pub(crate) weight: B::Matrix,
    pub(crate) bias: Option<B::Matrix>,
}

impl<B: Backend> Linear<B> {
    /// `out.weight`, `(V, H)`.
    pub fn weight(&self) -> &B::Matrix {
        &self.weight
    }

    /// `out.bias`, `(1, V)`, if the projection has one.
    pub fn bias(&self) -> Option<&B::Matrix> {
        self.bias.as_ref()
    }
}

/// All parameters of an [`Rnn`](crate::Rnn): one [`CellParams`] per layer and the optional
/// output projection. [`Gradients`](crate::Gradients) holds the same structure.
///
/// Names and order follow PyTorch's `state_dict()` of an `nn.RNN` followed by an `nn.Linear`
/// called `out`: `weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ..., out.weight, out.bias`.
#[derive(Debug, Clone)]
pub struct Params<B: Backend> {
    /// One entry per layer and direction, index `layer * directions + direction`.
    pub(crate) layers: Vec<CellParams<B>>,
    pub(crate) directions: usize,
    pub(crate) out: Option<Linear<B>>,
}

impl<B: Backend> Params<B> {
    /// The parameters of layer `layer`, direction `direction` (0 forward, 1 backward).
    pub fn layer(&self, layer: usize, direction: usize) -> Option<&CellParams<B>> {
        match direction < self.directions {
            true => self.layers.get(layer * self.directions + direction),
            false => None,
        }
    }

    /// PyTorch's name suffix of entry `index` of `layers`: `l0`, `l0_reverse`, `l1`, ...
    fn suffix(&self, index: usize) -> String {
        let layer = index / self.directions;
        match index % self.directions {
            0 => format!("l{layer}"),
            _ => format!("l{layer}_reverse"),
        }
    }

    /// The output projection, if the model has one.
    pub fn output(&self) -> Option<&Linear<B>> {
        self.out.as_ref()
    }

    /// Every parameter with its PyTorch name, in `state_dict()` order.
    pub fn named(&self) -> Vec<(String, &B::Matrix)> {
        let mut out = Vec::new();
        for (index, layer) in self.layers.iter().enumerate() {
            out.extend(layer.named(&self.suffix(index)));
        }
        if let Some(linear) = &self.out {
            out.push(("out.weight".to_string(), &linear.weight));
            if let Some(b) = &linear.bias {
                out.push(("out.bias".to_string(), b));
            }
        }
        out
    }

    /// Every parameter matrix in the order of [`named`](Params::named), without names (and so
    /// without allocating): what optimisers and clipping walk.
    pub fn matrices(&self) -> impl Iterator<Item = &B::Matrix> {
        let out = self
            .out
            .iter()
            .flat_map(|o| std::iter::once(&o.weight).chain(o.bias.iter()));
        self.layers.iter().flat_map(CellParams::matrices).chain(out)
    }

    /// As [`matrices`](Params::matrices), mutable.
    pub fn matrices_mut(&mut self) -> impl Iterator<Item = &mut B::Matrix> {
        let out = self
            .out
            .iter_mut()
            .flat_map(|o| std::iter::once(&mut o.weight).chain(o.bias.iter_mut()));
        self.layers
            .iter_mut()
            .flat_map(CellParams::matrices_mut)
            .chain(out)
    }

    /// As [`named`](Params::named), mutable.
    pub fn named_mut(&mut self) -> Vec<(String, &mut B::Matrix)> {
        let mut out = Vec::new();
        let suffixes: Vec<String> = (0..self.layers.len()).map(|i| self.suffix(i)).collect();
        for (layer, suffix) in self.layers.iter_mut().zip(&suffixes) {
            out.extend(layer.named_mut(suffix));
        }
        if let Some(linear) = &mut self.out {
            out.push(("out.weight".to_string(), &mut linear.weight));
            if let Some(b) = &mut linear.bias {
                out.push(("out.bias".to_string(), b));
            }
        }
        out
    }

    /// The parameter called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] listing the known names.
    pub fn get(&self, name: &str) -> Result<&B::Matrix> {
        let named = self.named();
        let known = || named.iter().map(|(n, _)| n.clone()).collect();
        match named.iter().find(|(n, _)| n == name) {
            Some((_, m)) => Ok(m),
            None => Err(Error::UnknownParameter {
                name: name.to_string(),
                known: known(),
            }),
        }
    }

    /// The parameter called `name`, mutable.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] listing the known names.
    pub fn get_mut(&mut self, name: &str) -> Result<&mut B::Matrix> {
        let known: Vec<String> = self.named().into_iter().map(|(n, _)| n).collect();
        self.named_mut()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m)
            .ok_or(Error::UnknownParameter {
                name: name.to_string(),
                known,
            })
    }

    /// Zeros of the same shapes: an empty gradient accumulator.
    pub fn zeros_like(&self, backend: &B) -> Self {
        Params {
            layers: self.layers.iter().map(|l| l.zeros_like(backend)).collect(),
            directions: self.directions,
            out: self.out.as_ref().map(|o| {
                let zeros = |m: &B::Matrix| {
                    let (r, c) = backend.shape(m);
                    backend.zeros(r, c)
                };
                Linear {
                    weight: zeros(&o.weight),
                    bias: o.bias.as_ref().map(zeros),
                }
            }),
        }
    }

    /// Number of scalar parameters.
    pub fn count(&self, backend: &B) -> usize {
        self.named()
            .iter()
            .map(|(_, m)| {
                let (r, c) = backend.shape(m);
                r * c
            })
            .sum()
    }

    /// Checks that `other` has the same names and shapes, e.g. gradients before an update.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the first parameter that differs.
    pub fn check_matches(&self, backend: &B, other: &Params<B>) -> Result<()> {
        let (mine, theirs) = (self.named(), other.named());
        let names =
            |v: &[(String, &B::Matrix)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        if names(&mine) != names(&theirs) {
            return Err(Error::shape(
                "parameter names",
                names(&mine),
                names(&theirs),
            ));
        }
        for ((name, a), (_, b)) in mine.iter().zip(&theirs) {
            if backend.shape(a) != backend.shape(b) {
                return Err(Error::shape(
                    name.as_str(),
                    backend.shape(a),
                    backend.shape(b),
                ));
            }
        }
        Ok(())
    }
}
