//! [`LayerInput`]: what a layer reads over a whole sequence, dense rows or token ids.

use crate::backend::Backend;
use crate::error::{Error, Result, check_ids};

/// The input of a layer for a whole sequence.
#[derive(Debug)]
pub enum LayerInput<'a, B: Backend> {
    /// Dense rows, `T*B x I`.
    Dense(&'a B::Matrix),
    /// Token ids, `T*B` of them, each below `I`: the input projection is a column gather of
    /// `W_ih`, never a one-hot GEMM.
    Ids(&'a [usize]),
}

// Manual impls: a derive would ask `B: Copy`, but only references are copied.
impl<B: Backend> Clone for LayerInput<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for LayerInput<'_, B> {}

impl<B: Backend> LayerInput<'_, B> {
    /// Number of rows, `T * B`.
    pub fn rows(&self, backend: &B) -> usize {
        match self {
            LayerInput::Dense(x) => backend.shape(x).0,
            LayerInput::Ids(ids) => ids.len(),
        }
    }

    /// Checks the input against the layer's input size and the batch, returning `T`.
    pub(crate) fn check(&self, backend: &B, input_size: usize, batch: usize) -> Result<usize> {
        if batch == 0 {
            return Err(Error::empty("batch"));
        }
        let rows = self.rows(backend);
        if rows == 0 {
            return Err(Error::empty("input sequence"));
        }
        if !rows.is_multiple_of(batch) {
            return Err(Error::Shape {
                what: format!("input rows (time-major, steps * batch with batch {batch})"),
                expected: format!("a multiple of {batch} rows"),
                given: format!("{rows} rows"),
            });
        }
        match self {
            LayerInput::Dense(x) => {
                let (r, c) = backend.shape(x);
                if c != input_size {
                    return Err(Error::shape("input", (r, input_size), (r, c)));
                }
            }
            LayerInput::Ids(ids) => check_ids("input token ids", ids, input_size)?,
        }
        Ok(rows / batch)
    }
}
