//! `RnnConfig`: the shape of a model, as PyTorch's `nn.RNN` / `nn.LSTM` / `nn.GRU` arguments.

use crate::cell::{CellKind, Nonlinearity};
use crate::error::{Error, Result};

/// The shape of an [`Rnn`](crate::Rnn): cell kind, sizes, layers, directions, biases, dropout and
/// the optional output layer.
///
/// Built with a constructor for the cell kind and chained setters, mirroring PyTorch's
/// constructor arguments:
///
/// ```
/// use recurrent::{Nonlinearity, RnnConfig};
/// let config = RnnConfig::lstm(65, 128).layers(2).bidirectional(true).dropout(0.2).output(65);
/// assert_eq!(config.directions(), 2);
/// let elman = RnnConfig::rnn(65, 128).nonlinearity(Nonlinearity::Relu);
/// assert_eq!(elman.hidden_size(), 128);
/// ```
///
/// # Setter and getter names
///
/// Rust cannot give a consuming setter (`layers(self, n)`) and a getter (`layers(&self)`) one
/// name, so the setters are named as PyTorch's constructor arguments are where they can be and
/// the getters as PyTorch's module attributes (`num_layers`, `hidden_size`, `input_size`), or,
/// where the attribute's name is the setter's, as what they return:
///
/// | setter | getter |
/// |---|---|
/// | [`rnn`](RnnConfig::rnn), [`lstm`](RnnConfig::lstm), [`gru`](RnnConfig::gru), [`new`](RnnConfig::new) | [`kind`](RnnConfig::kind), [`input_size`](RnnConfig::input_size), [`hidden_size`](RnnConfig::hidden_size) |
/// | [`layers`](RnnConfig::layers) | [`num_layers`](RnnConfig::num_layers) |
/// | [`bidirectional`](RnnConfig::bidirectional) | [`is_bidirectional`](RnnConfig::is_bidirectional), [`directions`](RnnConfig::directions) |
/// | [`dropout`](RnnConfig::dropout) | [`dropout_probability`](RnnConfig::dropout_probability) |
/// | [`output_dropout`](RnnConfig::output_dropout) | [`output_dropout_probability`](RnnConfig::output_dropout_probability) |
/// | [`output`](RnnConfig::output) | [`output_size`](RnnConfig::output_size) |
/// | [`nonlinearity`](RnnConfig::nonlinearity) | [`kind`](RnnConfig::kind) (`CellKind::Rnn(nonlinearity)`) |
/// | [`bias`](RnnConfig::bias) | [`has_bias`](RnnConfig::has_bias) |
/// | [`output_bias`](RnnConfig::output_bias) | [`has_output_bias`](RnnConfig::has_output_bias) |
/// | [`embedding`](RnnConfig::embedding) | [`embedding_dim`](RnnConfig::embedding_dim), [`input_size`](RnnConfig::input_size) |
/// | [`tie_weights`](RnnConfig::tie_weights) | [`ties_weights`](RnnConfig::ties_weights) |
/// | [`embedding_dropout`](RnnConfig::embedding_dropout) | [`embedding_dropout_probability`](RnnConfig::embedding_dropout_probability) |
/// | [`input_dropout`](RnnConfig::input_dropout) | [`input_dropout_probability`](RnnConfig::input_dropout_probability) |
/// | [`weight_dropout`](RnnConfig::weight_dropout) | [`weight_dropout_probability`](RnnConfig::weight_dropout_probability) |
/// | [`locked_dropout`](RnnConfig::locked_dropout) | [`is_locked_dropout`](RnnConfig::is_locked_dropout) |
///
/// Each getter carries its setter's name as a search alias and each setter its getter's, so
/// searching the documentation for either finds both.
///
/// ```
/// use recurrent::RnnConfig;
/// let config = RnnConfig::gru(3, 8).layers(2).dropout(0.25).bias(false);
/// assert_eq!(config.num_layers(), 2);
/// assert_eq!(config.dropout_probability(), 0.25);
/// assert!(!config.has_bias() && !config.is_bidirectional());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RnnConfig {
    kind: CellKind,
    input_size: usize,
    hidden_size: usize,
    layers: usize,
    bidirectional: bool,
    dropout: f64,
    output_dropout: f64,
    output: Option<usize>,
    bias: bool,
    output_bias: bool,
    /// The embedding's width `E`, when token ids go through `embedding.weight` `(V, E)`.
    embedding: Option<usize>,
    tie_weights: bool,
    embedding_dropout: f64,
    input_dropout: f64,
    weight_dropout: f64,
    locked_dropout: bool,
}

impl RnnConfig {
    /// A model of `kind` cells with `input_size` inputs (the vocabulary size for token ids) and
    /// `hidden_size` units: one layer, one direction, biases on, no dropout, no output layer.
    pub fn new(kind: CellKind, input_size: usize, hidden_size: usize) -> Self {
        RnnConfig {
            kind,
            input_size,
            hidden_size,
            layers: 1,
            bidirectional: false,
            dropout: 0.0,
            output_dropout: 0.0,
            output: None,
            bias: true,
            output_bias: true,
            embedding: None,
            tie_weights: false,
            embedding_dropout: 0.0,
            input_dropout: 0.0,
            weight_dropout: 0.0,
            locked_dropout: false,
        }
    }

    /// An Elman RNN (tanh; see [`nonlinearity`](RnnConfig::nonlinearity)), as `nn.RNN`.
    pub fn rnn(input_size: usize, hidden_size: usize) -> Self {
        Self::new(CellKind::Rnn(Nonlinearity::Tanh), input_size, hidden_size)
    }

    /// An LSTM, as `nn.LSTM`.
    pub fn lstm(input_size: usize, hidden_size: usize) -> Self {
        Self::new(CellKind::Lstm, input_size, hidden_size)
    }

    /// A GRU, as `nn.GRU`.
    pub fn gru(input_size: usize, hidden_size: usize) -> Self {
        Self::new(CellKind::Gru, input_size, hidden_size)
    }

    /// Number of stacked layers (PyTorch's `num_layers`). Read with
    /// [`num_layers`](RnnConfig::num_layers).
    #[doc(alias = "num_layers")]
    pub fn layers(mut self, layers: usize) -> Self {
        self.layers = layers;
        self
    }

    /// Whether every layer also runs backwards in time (PyTorch's `bidirectional`): parameters
    /// of the backward direction end in `_reverse`, and a layer's output is the forward and the
    /// backward hidden states side by side, `T*B x 2H`. Read with
    /// [`is_bidirectional`](RnnConfig::is_bidirectional) or [`directions`](RnnConfig::directions).
    #[doc(alias = "is_bidirectional", alias = "directions")]
    pub fn bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }

    /// Dropout probability on the outputs of every layer but the last, applied by
    /// [`Rnn::forward_train`](crate::Rnn::forward_train) only (PyTorch's `dropout`). Read with
    /// [`dropout_probability`](RnnConfig::dropout_probability).
    #[doc(alias = "dropout_probability")]
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// Dropout probability on the last layer's output, before the output projection, applied
    /// by [`Rnn::forward_train`](crate::Rnn::forward_train) only. char-rnn drops there as well
    /// as between layers; in PyTorch it is an `nn.Dropout` between the recurrent module and the
    /// `nn.Linear`. Default 0. With no output projection it applies to the model's output. Read
    /// with [`output_dropout_probability`](RnnConfig::output_dropout_probability).
    #[doc(alias = "output_dropout_probability")]
    pub fn output_dropout(mut self, p: f64) -> Self {
        self.output_dropout = p;
        self
    }

    /// Embedding dropout (AWD-LSTM's, Merity et al. 2018; Gal & Ghahramani 2016): in
    /// [`forward_train`](crate::Rnn::forward_train), each row of `embedding.weight` (each token)
    /// is dropped with probability `p` for the whole pass, and the rows kept are scaled by
    /// `1/(1-p)`: a dropped token reads zeros at every step it occurs. A tied output layer uses
    /// the weight as it is. Needs an [`embedding`](RnnConfig::embedding). Default 0.
    ///
    /// Read with [`embedding_dropout_probability`](RnnConfig::embedding_dropout_probability).
    #[doc(alias = "embedding_dropout_probability")]
    pub fn embedding_dropout(mut self, p: f64) -> Self {
        self.embedding_dropout = p;
        self
    }

    /// Dropout probability on the first layer's input (dense rows, or the embedding's rows),
    /// applied by [`forward_train`](crate::Rnn::forward_train) only (AWD-LSTM's `dropouti`).
    /// Token ids without an embedding cannot be dropped: a training pass with this set is then
    /// an error. Default 0.
    ///
    /// Read with [`input_dropout_probability`](RnnConfig::input_dropout_probability).
    #[doc(alias = "input_dropout_probability")]
    pub fn input_dropout(mut self, p: f64) -> Self {
        self.input_dropout = p;
        self
    }

    /// Weight dropout on every recurrent weight `W_hh` (DropConnect, Wan et al. 2013;
    /// AWD-LSTM's `WeightDrop`): in [`forward_train`](crate::Rnn::forward_train), each entry of
    /// `W_hh` is zeroed with probability `p` for the whole pass (the same matrix at every step)
    /// and the rest scaled by `1/(1-p)`. The gradient reaches the stored weight through the
    /// mask: `dW_hh = (sum_t d hh_t^T h_{t-1}) * mask`. Default 0.
    ///
    /// Read with [`weight_dropout_probability`](RnnConfig::weight_dropout_probability).
    #[doc(alias = "weight_dropout_probability")]
    pub fn weight_dropout(mut self, p: f64) -> Self {
        self.weight_dropout = p;
        self
    }

    /// Variational (locked) dropout (Gal & Ghahramani 2016): with `true`, the input, between-
    /// layer and output dropout masks of [`forward_train`](crate::Rnn::forward_train) are drawn
    /// once per sequence and unit, `B x W`, and the same mask is applied at every time step,
    /// instead of a fresh mask per step. Default false.
    ///
    /// Read with [`is_locked_dropout`](RnnConfig::is_locked_dropout).
    #[doc(alias = "is_locked_dropout")]
    pub fn locked_dropout(mut self, locked: bool) -> Self {
        self.locked_dropout = locked;
        self
    }

    /// Adds an output projection to `size` outputs (the logits): `out.weight` `(size, D*H)`.
    /// Read with [`output_size`](RnnConfig::output_size).
    #[doc(alias = "output_size")]
    pub fn output(mut self, size: usize) -> Self {
        self.output = Some(size);
        self
    }

    /// Puts an embedding in front of the first layer, PyTorch's `nn.Embedding(vocab, dim)`:
    /// `embedding.weight` `(vocab, dim)`, whose row `id` is what the first layer reads for token
    /// `id`. The model's input is then token ids below `vocab`
    /// ([`input_size`](RnnConfig::input_size) becomes `vocab`, replacing the size given to the
    /// constructor) and the first layer is `dim` wide
    /// ([`layer_input_size(0)`](RnnConfig::layer_input_size)). Initialised as PyTorch
    /// initialises `nn.Embedding`: every entry `N(0, 1)`.
    ///
    /// ```
    /// use recurrent::RnnConfig;
    /// // Ids below 1000, 64-wide embeddings, an LSTM of 64 units, logits tied to the embedding.
    /// let config = RnnConfig::lstm(1000, 64).embedding(1000, 64).output(1000).tie_weights(true);
    /// assert_eq!((config.input_size(), config.layer_input_size(0)), (1000, 64));
    /// assert_eq!(config.embedding_dim(), Some(64));
    /// ```
    ///
    /// Read with [`embedding_dim`](RnnConfig::embedding_dim).
    #[doc(alias = "embedding_dim")]
    pub fn embedding(mut self, vocab: usize, dim: usize) -> Self {
        self.input_size = vocab;
        self.embedding = Some(dim);
        self
    }

    /// Whether the output weight is the embedding's (weight tying, Press & Wolf 2017; Inan et
    /// al. 2017): `out.weight` `(V, D*H)` and `embedding.weight` `(V, E)` are one matrix, so
    /// the model needs an [`embedding`](RnnConfig::embedding), an [`output`](RnnConfig::output)
    /// of the vocabulary's size, and `E = D*H`. The one weight's gradient is the sum of its two
    /// uses; optimisers and clipping see it once, under `embedding.weight`; a state dict holds
    /// it under both names, as PyTorch's does. Default false.
    ///
    /// Read with [`ties_weights`](RnnConfig::ties_weights).
    #[doc(alias = "ties_weights")]
    pub fn tie_weights(mut self, tie: bool) -> Self {
        self.tie_weights = tie;
        self
    }

    /// The Elman cell's non-linearity; ignored by LSTM and GRU, which have none to choose. Read
    /// with [`kind`](RnnConfig::kind), which is `CellKind::Rnn(nonlinearity)`.
    pub fn nonlinearity(mut self, nonlinearity: Nonlinearity) -> Self {
        if let CellKind::Rnn(_) = self.kind {
            self.kind = CellKind::Rnn(nonlinearity);
        }
        self
    }

    /// Whether the cells have `bias_ih` and `bias_hh` (PyTorch's `bias`, default true). Read with
    /// [`has_bias`](RnnConfig::has_bias).
    #[doc(alias = "has_bias")]
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Whether the output projection has `out.bias` (default true; the walkthrough has none).
    /// Read with [`has_output_bias`](RnnConfig::has_output_bias).
    #[doc(alias = "has_output_bias")]
    pub fn output_bias(mut self, bias: bool) -> Self {
        self.output_bias = bias;
        self
    }

    /// The cell kind, with the Elman cell's non-linearity: set by the constructor
    /// ([`rnn`](RnnConfig::rnn), [`lstm`](RnnConfig::lstm), [`gru`](RnnConfig::gru),
    /// [`new`](RnnConfig::new)) and [`nonlinearity`](RnnConfig::nonlinearity).
    #[doc(alias = "nonlinearity")]
    pub fn kind(&self) -> CellKind {
        self.kind
    }

    /// Input width `I` (vocabulary size for token ids), PyTorch's `input_size`: set by the
    /// constructor, or, with an [`embedding`](RnnConfig::embedding), its vocabulary `V`.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// The embedding's width `E`, if token ids go through an embedding.
    ///
    /// Set by [`embedding`](RnnConfig::embedding).
    #[doc(alias = "embedding")]
    pub fn embedding_dim(&self) -> Option<usize> {
        self.embedding
    }

    /// Whether the output weight is tied to the embedding.
    ///
    /// Set by [`tie_weights`](RnnConfig::tie_weights).
    #[doc(alias = "tie_weights")]
    pub fn ties_weights(&self) -> bool {
        self.tie_weights
    }

    /// Hidden units `H` per layer and direction, PyTorch's `hidden_size`: set by the
    /// constructor.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Number of layers, PyTorch's `num_layers`: set by [`layers`](RnnConfig::layers).
    #[doc(alias = "layers")]
    pub fn num_layers(&self) -> usize {
        self.layers
    }

    /// Whether every layer also runs backwards in time, PyTorch's `bidirectional`: set by
    /// [`bidirectional`](RnnConfig::bidirectional).
    #[doc(alias = "bidirectional")]
    pub fn is_bidirectional(&self) -> bool {
        self.bidirectional
    }

    /// Number of directions `D`: 2 if bidirectional, else 1 (set by
    /// [`bidirectional`](RnnConfig::bidirectional)).
    #[doc(alias = "bidirectional")]
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// The dropout probability between layers, PyTorch's `dropout`: set by
    /// [`dropout`](RnnConfig::dropout).
    #[doc(alias = "dropout")]
    pub fn dropout_probability(&self) -> f64 {
        self.dropout
    }

    /// The dropout probability on the last layer's output: set by
    /// [`output_dropout`](RnnConfig::output_dropout).
    #[doc(alias = "output_dropout")]
    pub fn output_dropout_probability(&self) -> f64 {
        self.output_dropout
    }

    /// The embedding dropout probability (whole rows of the embedding).
    ///
    /// Set by [`embedding_dropout`](RnnConfig::embedding_dropout).
    #[doc(alias = "embedding_dropout")]
    pub fn embedding_dropout_probability(&self) -> f64 {
        self.embedding_dropout
    }

    /// The dropout probability on the first layer's input.
    ///
    /// Set by [`input_dropout`](RnnConfig::input_dropout).
    #[doc(alias = "input_dropout")]
    pub fn input_dropout_probability(&self) -> f64 {
        self.input_dropout
    }

    /// The weight dropout probability on `W_hh`.
    ///
    /// Set by [`weight_dropout`](RnnConfig::weight_dropout).
    #[doc(alias = "weight_dropout")]
    pub fn weight_dropout_probability(&self) -> f64 {
        self.weight_dropout
    }

    /// Whether dropout masks are locked across time (variational dropout).
    ///
    /// Set by [`locked_dropout`](RnnConfig::locked_dropout).
    #[doc(alias = "locked_dropout")]
    pub fn is_locked_dropout(&self) -> bool {
        self.locked_dropout
    }

    /// Whether the cells have biases, PyTorch's `bias`: set by [`bias`](RnnConfig::bias).
    #[doc(alias = "bias")]
    pub fn has_bias(&self) -> bool {
        self.bias
    }

    /// Whether the output layer has a bias: set by [`output_bias`](RnnConfig::output_bias).
    #[doc(alias = "output_bias")]
    pub fn has_output_bias(&self) -> bool {
        self.output_bias
    }

    /// Output size `V`, if there is an output layer: set by [`output`](RnnConfig::output).
    #[doc(alias = "output")]
    pub fn output_size(&self) -> Option<usize> {
        self.output
    }

    /// Input width of layer `layer`: `I` (or the embedding's width `E`) for the first, `D*H`
    /// above it.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        match layer {
            0 => self.embedding.unwrap_or(self.input_size),
            _ => self.directions() * self.hidden_size,
        }
    }

    /// Every parameter's PyTorch name and shape (biases `(1, n)`), in `state_dict()` order,
    /// without allocating them. A tied weight is listed under both its names, `embedding.weight`
    /// first and `out.weight`, as PyTorch's `state_dict()` holds it.
    ///
    /// # Errors
    /// [`Error::Config`] if a shape's element count does not fit in memory's address range.
    pub fn parameter_shapes(&self) -> Result<Vec<(String, (usize, usize))>> {
        let (hidden, dirs) = (self.hidden_size, self.directions());
        let too_big = || {
            Error::config(format!(
                "{self:?} has more parameters than memory can address"
            ))
        };
        let gh = self.kind.gates().checked_mul(hidden).ok_or_else(too_big)?;
        let mut shapes = Vec::new();
        if let Some(dim) = self.embedding {
            shapes.push(("embedding.weight".to_string(), (self.input_size, dim)));
        }
        for layer in 0..self.layers {
            let input = match layer {
                0 => self.layer_input_size(0),
                _ => dirs.checked_mul(hidden).ok_or_else(too_big)?,
            };
            for dir in 0..dirs {
                let suffix = if dir == 0 {
                    format!("l{layer}")
                } else {
                    format!("l{layer}_reverse")
                };
                shapes.push((format!("weight_ih_{suffix}"), (gh, input)));
                shapes.push((format!("weight_hh_{suffix}"), (gh, hidden)));
                if self.bias {
                    shapes.push((format!("bias_ih_{suffix}"), (1, gh)));
                    shapes.push((format!("bias_hh_{suffix}"), (1, gh)));
                }
            }
        }
        if let Some(size) = self.output {
            let features = dirs.checked_mul(hidden).ok_or_else(too_big)?;
            shapes.push(("out.weight".to_string(), (size, features)));
            if self.output_bias {
                shapes.push(("out.bias".to_string(), (1, size)));
            }
        }
        // Every matrix must be addressable in f64: rows * cols * 8 bytes within isize::MAX.
        let limit = isize::MAX as usize / 8;
        for (_, (rows, cols)) in &shapes {
            if rows.checked_mul(*cols).is_none_or(|n| n > limit) {
                return Err(too_big());
            }
        }
        Ok(shapes)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let sizes = [
            ("input size", self.input_size),
            ("hidden size", self.hidden_size),
            ("layer count", self.layers),
            ("output size", self.output.unwrap_or(1)),
            ("embedding width", self.embedding.unwrap_or(1)),
        ];
        if let Some((what, value)) = sizes.iter().find(|(_, value)| *value == 0) {
            return Err(Error::config(format!(
                "{what} must be at least 1, given {value}"
            )));
        }
        for (what, p) in [
            ("dropout", self.dropout),
            ("output dropout", self.output_dropout),
            ("embedding dropout", self.embedding_dropout),
            ("input dropout", self.input_dropout),
            ("weight dropout", self.weight_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::config(format!(
                    "{what} must be in [0, 1), given {p}"
                )));
            }
        }
        if self.embedding_dropout > 0.0 && self.embedding.is_none() {
            return Err(Error::config(format!(
                "embedding dropout {} needs an embedding to drop rows of: add \
                 .embedding(vocab, dim)",
                self.embedding_dropout
            )));
        }
        self.validate_tying()?;
        self.parameter_shapes().map(|_| ())
    }

    /// Checks that tied weights have an embedding and an output layer of the same shape.
    fn validate_tying(&self) -> Result<()> {
        if !self.tie_weights {
            return Ok(());
        }
        let Some(dim) = self.embedding else {
            return Err(Error::config(
                "tie_weights needs an embedding to tie the output weight to: add \
                 .embedding(vocab, dim)",
            ));
        };
        let width = self.directions() * self.hidden_size;
        match self.output {
            None => Err(Error::config(format!(
                "tie_weights needs an output layer of the vocabulary's size: add .output({})",
                self.input_size
            ))),
            Some(size) if size != self.input_size => Err(Error::config(format!(
                "tied weights: the output size {size} must equal the embedding's vocabulary {}",
                self.input_size
            ))),
            Some(_) if dim != width => Err(Error::config(format!(
                "tied weights: the embedding width {dim} must equal the top layer's width \
                 D*H = {} * {} = {width}, which out.weight reads",
                self.directions(),
                self.hidden_size
            ))),
            Some(_) => Ok(()),
        }
    }
}
