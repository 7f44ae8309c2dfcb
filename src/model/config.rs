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

    /// Adds an output projection to `size` outputs (the logits): `out.weight` `(size, D*H)`.
    /// Read with [`output_size`](RnnConfig::output_size).
    #[doc(alias = "output_size")]
    pub fn output(mut self, size: usize) -> Self {
        self.output = Some(size);
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
    /// constructor.
    pub fn input_size(&self) -> usize {
        self.input_size
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

    /// Input width of layer `layer`: `I` for the first, `D*H` above it.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        match layer {
            0 => self.input_size,
            _ => self.directions() * self.hidden_size,
        }
    }

    /// Every parameter's PyTorch name and shape (biases `(1, n)`), in `state_dict()` order,
    /// without allocating them.
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
        for layer in 0..self.layers {
            let input = match layer {
                0 => self.input_size,
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
        ];
        if let Some((what, value)) = sizes.iter().find(|(_, value)| *value == 0) {
            return Err(Error::config(format!(
                "{what} must be at least 1, given {value}"
            )));
        }
        for (what, p) in [
            ("dropout", self.dropout),
            ("output dropout", self.output_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::config(format!(
                    "{what} must be in [0, 1), given {p}"
                )));
            }
        }
        self.parameter_shapes().map(|_| ())
    }
}
