//! The parameters of a whole model, by PyTorch name; the same type mirrors them as gradients.

use crate::backend::Backend;
use crate::cell::CellParams;
use crate::error::{Error, Result};

/// The output projection `y = h W^T + b`: PyTorch's `nn.Linear(H, V)`, named `out.weight`
/// `(V, H)` and `out.bias` `(V)` (stored as `(1, V)`). With
/// [tied weights](crate::RnnConfig::tie_weights) its weight is the embedding.
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

/// All parameters of an [`Rnn`](crate::Rnn): the optional embedding, one [`CellParams`] per
/// layer and the optional output projection. [`Gradients`](crate::Gradients) holds the same
/// structure.
///
/// Names and order follow PyTorch's `state_dict()` of an `nn.Embedding` called `embedding`, an
/// `nn.RNN` and an `nn.Linear` called `out`: `embedding.weight, weight_ih_l0, weight_hh_l0,
/// bias_ih_l0, bias_hh_l0, ..., out.weight, out.bias`.
///
/// With [tied weights](crate::RnnConfig::tie_weights), `embedding.weight` and `out.weight` are
/// one matrix, kept once (it is [`Linear::weight`] of the output layer, and
/// [`embedding`](Params::embedding) returns it): [`named`](Params::named) and
/// [`matrices`](Params::matrices) give it once, as `embedding.weight` (PyTorch's
/// `named_parameters()`), and [`get`](Params::get) finds it under either name.
#[derive(Debug, Clone)]
pub struct Params<B: Backend> {
    /// `embedding.weight` `(V, E)`, when not tied (a tied one is `out.weight`).
    pub(crate) embedding: Option<B::Matrix>,
    /// One entry per layer and direction, index `layer * directions + direction`.
    pub(crate) layers: Vec<CellParams<B>>,
    pub(crate) directions: usize,
    pub(crate) out: Option<Linear<B>>,
    /// Whether `out.weight` is the embedding too.
    pub(crate) tied: bool,
}

/// The name of the embedding's weight.
pub(crate) const EMBEDDING: &str = "embedding.weight";
/// The name of the output layer's weight.
pub(crate) const OUT_WEIGHT: &str = "out.weight";

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

    /// `embedding.weight` `(V, E)`, if the model has an embedding (tied: the output weight).
    pub fn embedding(&self) -> Option<&B::Matrix> {
        match (&self.embedding, &self.out) {
            (Some(e), _) => Some(e),
            (None, Some(out)) if self.tied => Some(&out.weight),
            _ => None,
        }
    }

    /// Whether the output weight is the embedding's.
    pub fn is_tied(&self) -> bool {
        self.tied
    }

    /// The embedding, mutable (tied: the output weight).
    pub(crate) fn embedding_mut(&mut self) -> Option<&mut B::Matrix> {
        match (&mut self.embedding, &mut self.out) {
            (Some(e), _) => Some(e),
            (None, Some(out)) if self.tied => Some(&mut out.weight),
            _ => None,
        }
    }

    /// Every parameter with its PyTorch name, in `state_dict()` order; a tied weight once, as
    /// `embedding.weight` (PyTorch's `named_parameters()`).
    pub fn named(&self) -> Vec<(String, &B::Matrix)> {
        let mut out = Vec::new();
        if let Some(e) = self.embedding() {
            out.push((EMBEDDING.to_string(), e));
        }
        for (index, layer) in self.layers.iter().enumerate() {
            out.extend(layer.named(&self.suffix(index)));
        }
        if let Some(linear) = &self.out {
            if !self.tied {
                out.push((OUT_WEIGHT.to_string(), &linear.weight));
            }
            if let Some(b) = &linear.bias {
                out.push(("out.bias".to_string(), b));
            }
        }
        out
    }

    /// Every parameter matrix in the order of [`named`](Params::named), without names (and so
    /// without allocating): what optimisers and clipping walk. A tied weight comes once.
    pub fn matrices(&self) -> impl Iterator<Item = &B::Matrix> {
        let tied = self.tied;
        let out = self.out.iter().flat_map(move |o| {
            let weight = (!tied).then_some(&o.weight);
            weight.into_iter().chain(o.bias.iter())
        });
        let layers = self.layers.iter().flat_map(CellParams::matrices);
        self.embedding().into_iter().chain(layers).chain(out)
    }

    /// As [`matrices`](Params::matrices), mutable.
    pub fn matrices_mut(&mut self) -> impl Iterator<Item = &mut B::Matrix> {
        let (embedding, layers, weight, bias) = self.split_mut();
        let layers = layers.iter_mut().flat_map(CellParams::matrices_mut);
        embedding
            .into_iter()
            .chain(layers)
            .chain(weight)
            .chain(bias)
    }

    /// The parts, each mutable: the embedding (tied: the output weight), the layers, the
    /// output weight when not tied, and the output bias.
    #[allow(clippy::type_complexity)]
    fn split_mut(
        &mut self,
    ) -> (
        Option<&mut B::Matrix>,
        &mut Vec<CellParams<B>>,
        Option<&mut B::Matrix>,
        Option<&mut B::Matrix>,
    ) {
        let Params {
            embedding,
            layers,
            out,
            tied,
            ..
        } = self;
        let (weight, bias) = match out {
            Some(Linear { weight, bias }) => (Some(weight), bias.as_mut()),
            None => (None, None),
        };
        match tied {
            true => (weight, layers, None, bias),
            false => (embedding.as_mut(), layers, weight, bias),
        }
    }

    /// As [`named`](Params::named), mutable.
    pub fn named_mut(&mut self) -> Vec<(String, &mut B::Matrix)> {
        let suffixes: Vec<String> = (0..self.layers.len()).map(|i| self.suffix(i)).collect();
        let (embedding, layers, weight, bias) = self.split_mut();
        let mut out = Vec::new();
        if let Some(e) = embedding {
            out.push((EMBEDDING.to_string(), e));
        }
        for (layer, suffix) in layers.iter_mut().zip(&suffixes) {
            out.extend(layer.named_mut(suffix));
        }
        if let Some(w) = weight {
            out.push((OUT_WEIGHT.to_string(), w));
        }
        if let Some(b) = bias {
            out.push(("out.bias".to_string(), b));
        }
        out
    }

    /// The name a parameter is kept under: a tied `out.weight` is `embedding.weight`.
    fn resolve<'n>(&self, name: &'n str) -> &'n str {
        match self.tied && name == OUT_WEIGHT {
            true => EMBEDDING,
            false => name,
        }
    }

    /// Every name [`get`](Params::get) knows: those of [`named`](Params::named), and
    /// `out.weight` too when tied.
    fn known(&self) -> Vec<String> {
        let mut known: Vec<String> = self.named().into_iter().map(|(n, _)| n).collect();
        if self.tied {
            known.push(OUT_WEIGHT.to_string());
        }
        known
    }

    /// The parameter called `name` (a tied weight under either of its names).
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] listing the known names.
    pub fn get(&self, name: &str) -> Result<&B::Matrix> {
        let key = self.resolve(name);
        match self.named().into_iter().find(|(n, _)| n == key) {
            Some((_, m)) => Ok(m),
            None => Err(Error::UnknownParameter {
                name: name.to_string(),
                known: self.known(),
            }),
        }
    }

    /// The parameter called `name`, mutable (a tied weight under either of its names).
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] listing the known names.
    pub fn get_mut(&mut self, name: &str) -> Result<&mut B::Matrix> {
        let known = self.known();
        let key = self.resolve(name).to_string();
        self.named_mut()
            .into_iter()
            .find(|(n, _)| *n == key)
            .map(|(_, m)| m)
            .ok_or(Error::UnknownParameter {
                name: name.to_string(),
                known,
            })
    }

    /// Zeros of the same shapes: an empty gradient accumulator.
    pub fn zeros_like(&self, backend: &B) -> Self {
        let zeros = |m: &B::Matrix| {
            let (r, c) = backend.shape(m);
            backend.zeros(r, c)
        };
        Params {
            embedding: self.embedding.as_ref().map(zeros),
            tied: self.tied,
            layers: self.layers.iter().map(|l| l.zeros_like(backend)).collect(),
            directions: self.directions,
            out: self.out.as_ref().map(|o| Linear {
                weight: zeros(&o.weight),
                bias: o.bias.as_ref().map(zeros),
            }),
        }
    }

    /// Number of scalar parameters (a tied weight counted once).
    pub fn count(&self, backend: &B) -> usize {
        self.matrices()
            .map(|m| {
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
