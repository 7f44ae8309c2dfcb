//! What goes into a model: the input sequence (`Input`) and the recurrent state (`State`).

use crate::backend::Backend;
use crate::bptt::LayerInput;
use crate::cell::CellState;
use crate::error::{Error, Result};

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
    /// Dense input, `T*B x I`, with batch size `batch`: PyTorch's `(T, B, I)` input flattened
    /// row-major, so rows `t*B .. t*B + B` are step `t`. [`Rnn::forward`](crate::Rnn::forward)
    /// checks it: `batch` must divide the rows and the columns must be the input size.
    ///
    /// ```
    /// use recurrent::prelude::*;
    ///
    /// let backend = NaiveCpu::<f64>::default();
    /// let rnn = Rnn::new(backend.clone(), RnnConfig::lstm(2, 4), &mut StdRng::seed_from_u64(1))?;
    /// // T = 3 steps, B = 2 sequences, I = 2: x[t][b] = [t, b].
    /// let x = vec![0., 0., 0., 1., 1., 0., 1., 1., 2., 0., 2., 1.];
    /// let input = Input::dense(backend.from_vec(6, 2, x.clone())?, 2);
    /// let trace = rnn.forward(&input, None)?;
    /// assert_eq!(backend.shape(trace.hidden()), (6, 4)); // T*B x H, time-major as the input
    /// // Batch 4 does not divide the 6 rows; 3 columns are not the input size 2.
    /// assert!(rnn.forward(&Input::dense(backend.from_vec(6, 2, x)?, 4), None).is_err());
    /// let wide = Input::dense(backend.from_vec(4, 3, vec![0.0; 12])?, 2);
    /// assert!(rnn.forward(&wide, None).is_err());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
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
/// [`State::from_pytorch`] and [`State::to_pytorch`] convert between the two: PyTorch's
/// tensors, row-major, are the `L*D` matrices `B x H` one after another,
///
/// ```text
/// h_0[k, b, j]  =  layers()[k].h[b, j]        c_0[k, b, j]  =  layers()[k].c[b, j]
/// ```
///
/// ```
/// # use recurrent::prelude::*;
/// # let mut rng = StdRng::seed_from_u64(0);
/// // A 2-layer bidirectional LSTM: h_0 and c_0 are (L*D, B, H) = (4, 3, 5) in PyTorch.
/// let config = RnnConfig::lstm(2, 5).layers(2).bidirectional(true);
/// let rnn = Rnn::new(NaiveCpu::<f64>::default(), config, &mut rng)?;
/// let h0: Vec<f64> = (0..60).map(|v| f64::from(v) / 60.0).collect();
/// let c0 = vec![0.5; 60];
/// let state = State::from_pytorch(rnn.backend(), [4, 3, 5], h0.clone(), Some(c0))?;
/// assert_eq!(rnn.backend().to_vec(&state.layers()[1].h)[0], h0[15]); // layer 0, backward
/// let input = Input::dense(rnn.backend().from_vec(7 * 3, 2, vec![0.1; 42])?, 3);
/// let h_n = rnn.forward(&input, Some(&state))?.final_state();
/// let (h, c) = h_n.to_pytorch(rnn.backend())?;
/// assert_eq!((h.len(), c.map(|c| c.len())), (60, Some(60)));
/// assert_eq!(h_n.pytorch_shape(rnn.backend())?, [4, 3, 5]);
/// # Ok::<(), recurrent::Error>(())
/// ```
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

    /// A state from PyTorch's `h_0` (and `c_0`, the LSTM's cell state) of shape `shape =
    /// [L*D, B, H]`, each as its row-major values (`tensor.flatten().tolist()`): layer and
    /// direction `k` takes the `B x H` block `k`. The model checks the result against its
    /// layers, directions, batch and hidden size when it runs.
    ///
    /// # Errors
    /// [`Error::Empty`] if a dimension of `shape` is 0; [`Error::Shape`] if `h` or `c` does not
    /// hold `L*D*B*H` values.
    pub fn from_pytorch(
        backend: &B,
        shape: [usize; 3],
        h: Vec<B::Scalar>,
        c: Option<Vec<B::Scalar>>,
    ) -> Result<Self> {
        let [count, batch, hidden] = shape;
        if count == 0 || batch == 0 || hidden == 0 {
            return Err(Error::empty(format!(
                "PyTorch state of shape (L*D, B, H) = {shape:?}"
            )));
        }
        let blocks = |name: &str, data: Vec<B::Scalar>| -> Result<Vec<B::Matrix>> {
            let expected = count.checked_mul(batch).and_then(|n| n.checked_mul(hidden));
            if expected != Some(data.len()) {
                return Err(Error::Shape {
                    what: format!("PyTorch {name} of shape (L*D, B, H) = {shape:?}"),
                    expected: format!("{count}*{batch}*{hidden} values"),
                    given: format!("{} values", data.len()),
                });
            }
            data.chunks_exact(batch * hidden)
                .map(|block| backend.from_vec(batch, hidden, block.to_vec()))
                .collect()
        };
        let hs = blocks("h_0", h)?;
        let cs = c.map(|c| blocks("c_0", c)).transpose()?;
        let layers = match cs {
            Some(cs) => hs
                .into_iter()
                .zip(cs)
                .map(|(h, c)| CellState { h, c: Some(c) })
                .collect(),
            None => hs.into_iter().map(|h| CellState { h, c: None }).collect(),
        };
        Ok(State { layers })
    }

    /// PyTorch's shape of this state, `[L*D, B, H]`: the number of layer states and the shape
    /// of each.
    ///
    /// # Errors
    /// [`Error::Empty`] for a state of no layers; [`Error::Shape`] if the layers' `h` and `c`
    /// do not all have the first one's shape; [`Error::Config`] if some have `c` and others
    /// not.
    pub fn pytorch_shape(&self, backend: &B) -> Result<[usize; 3]> {
        let first = self
            .layers
            .first()
            .ok_or_else(|| Error::empty("the state's layers"))?;
        let (batch, hidden) = backend.shape(&first.h);
        let has_c = first.c.is_some();
        for (k, layer) in self.layers.iter().enumerate() {
            let given = backend.shape(&layer.h);
            if given != (batch, hidden) {
                return Err(Error::shape(
                    format!("state of layer and direction {k}: h, as layer 0's"),
                    (batch, hidden),
                    given,
                ));
            }
            match &layer.c {
                Some(c) if has_c && backend.shape(c) != (batch, hidden) => {
                    let what = format!("state of layer and direction {k}: c, as layer 0's h");
                    return Err(Error::shape(what, (batch, hidden), backend.shape(c)));
                }
                Some(_) if has_c => {}
                None if !has_c => {}
                _ => {
                    return Err(Error::config(format!(
                        "state of layer and direction {k}: {} a cell state c, layer 0 {}",
                        if has_c { "lacks" } else { "has" },
                        if has_c { "has one" } else { "does not" }
                    )));
                }
            }
        }
        Ok([self.layers.len(), batch, hidden])
    }

    /// This state as PyTorch's `h_n` (and `c_n` for the LSTM), each the row-major values of a
    /// tensor of shape [`pytorch_shape`](State::pytorch_shape), `[L*D, B, H]`
    /// (`torch.tensor(h).reshape(shape)` in Python).
    ///
    /// # Errors
    /// As [`pytorch_shape`](State::pytorch_shape).
    // `(h_n, c_n)` reads plainer in the docs than an alias a reader would have to look up.
    #[allow(clippy::type_complexity)]
    pub fn to_pytorch(&self, backend: &B) -> Result<(Vec<B::Scalar>, Option<Vec<B::Scalar>>)> {
        let [count, batch, hidden] = self.pytorch_shape(backend)?;
        let mut h = Vec::with_capacity(count * batch * hidden);
        let mut c = self.layers[0]
            .c
            .as_ref()
            .map(|_| Vec::with_capacity(count * batch * hidden));
        for layer in &self.layers {
            h.extend(backend.to_vec(&layer.h));
            if let (Some(c), Some(layer_c)) = (c.as_mut(), layer.c.as_ref()) {
                c.extend(backend.to_vec(layer_c));
            }
        }
        Ok((h, c))
    }
}
