//! What goes into a model: the input sequence (`Input`) and the recurrent state (`State`).

use crate::backend::Backend;
use crate::bptt::LayerInput;
use crate::cell::CellState;

/// A model's input for a whole sequence: `T*B` rows, time-major (rows `t*B .. t*B+B` are step
/// `t`), either dense or token ids, optionally with per-sequence lengths.
///
/// Checked by [`Rnn::forward`](crate::Rnn::forward), which names what is wrong.
#[derive(Debug, Clone)]
pub struct Input<B: Backend> {
    data: InputData<B>,
    batch: usize,
    lengths: Option<Vec<usize>>,
}

/// Sequence rows, dense or ids: a model's input, or a reordered copy of a layer's input.
#[derive(Debug, Clone)]
pub(crate) enum InputData<B: Backend> {
    Dense(B::Matrix),
    Ids(Vec<usize>),
}

impl<B: Backend> InputData<B> {
    pub(crate) fn as_layer_input(&self) -> LayerInput<'_, B> {
        match self {
            InputData::Dense(x) => LayerInput::Dense(x),
            InputData::Ids(ids) => LayerInput::Ids(ids),
        }
    }

    /// `input` with rows reordered: row `r` of the result is row `rows[r]` of `input`.
    pub(crate) fn permuted(backend: &B, input: LayerInput<'_, B>, rows: &[usize]) -> Self {
        match input {
            LayerInput::Dense(x) => InputData::Dense(super::permute_rows(backend, x, rows)),
            LayerInput::Ids(ids) => InputData::Ids(rows.iter().map(|&r| ids[r]).collect()),
        }
    }
}

impl<B: Backend> Input<B> {
    /// Dense input, `T*B x I`, with batch size `batch`.
    pub fn dense(x: B::Matrix, batch: usize) -> Self {
        Input {
            data: InputData::Dense(x),
            batch,
            lengths: None,
        }
    }

    /// Token ids, `T*B` of them, each below the input size, with batch size `batch`.
    pub fn ids(ids: Vec<usize>, batch: usize) -> Self {
        Input {
            data: InputData::Ids(ids),
            batch,
            lengths: None,
        }
    }

    /// The same input with sequences of different lengths: `lengths[b]` (in `1..=T`) steps of
    /// sequence `b` are real, the rest padding. Padded steps output zeros, leave the state as it
    /// was, and take no loss when the loss is given [`Trace::mask`](crate::Trace::mask). Unlike
    /// PyTorch's `pack_padded_sequence`, the batch need not be sorted by length.
    pub fn with_lengths(mut self, lengths: Vec<usize>) -> Self {
        self.lengths = Some(lengths);
        self
    }

    /// The batch size `B`.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The per-sequence lengths, if given.
    pub fn lengths(&self) -> Option<&[usize]> {
        self.lengths.as_deref()
    }

    /// The dense rows, if this input is dense.
    pub fn as_dense(&self) -> Option<&B::Matrix> {
        match &self.data {
            InputData::Dense(x) => Some(x),
            InputData::Ids(_) => None,
        }
    }

    /// The token ids, if this input is ids.
    pub fn as_ids(&self) -> Option<&[usize]> {
        match &self.data {
            InputData::Dense(_) => None,
            InputData::Ids(ids) => Some(ids),
        }
    }

    pub(crate) fn layer_input(&self) -> LayerInput<'_, B> {
        self.data.as_layer_input()
    }
}

/// The recurrent state of every layer and direction: `h` (and `c` for the LSTM), each `B x H`.
///
/// PyTorch's `h_0` of shape `(layers * directions, B, H)` is one [`CellState`] per
/// `(layer, direction)` here, in the same order: index `layer * directions + direction`.
#[derive(Debug, Clone)]
pub struct State<B: Backend> {
    layers: Vec<CellState<B>>,
}

impl<B: Backend> State<B> {
    /// A state from one [`CellState`] per layer and direction, in PyTorch's order.
    pub fn new(layers: Vec<CellState<B>>) -> Self {
        State { layers }
    }

    /// The per-layer (and direction) states, in PyTorch's order.
    pub fn layers(&self) -> &[CellState<B>] {
        &self.layers
    }

    /// Consumes the state, returning the per-layer states.
    pub fn into_layers(self) -> Vec<CellState<B>> {
        self.layers
    }
}
