//! Words as ids, laid out as PyTorch's `word_language_model` example lays them out.
//!
//! - **Words**: every line of a text file is split on whitespace and ends with the word
//!   `<eos>`, so an empty line is the one word `<eos>` (PyTorch's `data.py`: `line.split() +
//!   ['<eos>']`). A last line without its newline still ends with `<eos>`.
//! - **Vocabulary**: the distinct words numbered in the order of their first appearance, the
//!   training file first, then the validation file (`Dictionary.add_word`).
//! - **Streams** (`batchify`): the `N` ids of a file as `B` contiguous columns of
//!   `L = N / B` ids each (integer division: the last `N - B*L` ids are dropped). Column `b` is
//!   `ids[b*L .. (b+1)*L]`; the data is stored time-major, `data[t*B + b] = ids[b*L + t]`.
//! - **Windows** (`get_batch`): window `k` starts at row `i = k*T` and has
//!   `T_k = min(T, L - 1 - i)` steps: inputs rows `i .. i + T_k`, targets rows
//!   `i + 1 .. i + T_k + 1`. There are `ceil((L - 1) / T)` windows, the last one shorter when
//!   `T` does not divide `L - 1`, so every one of the `B*(L - 1)` transitions inside a column
//!   is scored exactly once; the state after window `k` is the state before window `k + 1`.
//!
//! A file that cannot be read, is not UTF-8 (the line and column of the first bad byte are
//! named) or holds no word is an error naming it.

#[path = "../common/file_error.rs"]
mod file_error;
pub use file_error::FileError;
use std::collections::HashMap;
use std::path::Path;

/// The word every line ends with.
pub const EOS: &str = "<eos>";

/// The words of `path`, `<eos>` after each line.
pub fn read_words(path: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(words(&path.display().to_string(), &bytes)?)
}

/// The words of a file's bytes; `file` names it in errors.
pub fn words(file: &str, bytes: &[u8]) -> Result<Vec<String>, FileError> {
    let err = |line: usize, column: usize, message: String| FileError {
        file: file.to_owned(),
        line,
        column,
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
        let start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        // The column in characters: the valid UTF-8 before the bad byte on its line.
        let column = 1 + String::from_utf8_lossy(&good[start..]).chars().count();
        err(line, column, "not UTF-8 text".into())
    })?;
    if text.split_whitespace().next().is_none() {
        return Err(err(0, 0, "the file holds no word".into()));
    }
    let mut out = Vec::new();
    for line in text.lines() {
        out.extend(line.split_whitespace().map(str::to_owned));
        out.push(EOS.to_owned());
    }
    Ok(out)
}

/// Words numbered in the order of their first appearance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WordVocab {
    words: Vec<String>,
    ids: HashMap<String, usize>,
}

impl WordVocab {
    /// The vocabulary of every word of `texts`, in order.
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = &'a [String]>) -> WordVocab {
        let mut vocab = WordVocab::default();
        for word in texts.into_iter().flatten() {
            if !vocab.ids.contains_key(word) {
                vocab.ids.insert(word.clone(), vocab.words.len());
                vocab.words.push(word.clone());
            }
        }
        vocab
    }

    /// The number of distinct words, `V`.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// The words, word `i` at index `i`.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The ids of `words`; a word outside the vocabulary is an error naming it.
    pub fn encode(&self, words: &[String]) -> Result<Vec<usize>, String> {
        (words.iter())
            .map(|w| (self.ids.get(w).copied()).ok_or_else(|| format!("{w:?} is not a known word")))
            .collect()
    }
}

/// A file's ids as `B` columns (see the module's text), stored time-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streams {
    /// `data[t*B + b]`: row `t` of column `b`.
    data: Vec<usize>,
    batch: usize,
    rows: usize,
}

/// One window of [`Streams`]: `steps*B` inputs and their targets, time-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Steps in this window, `T_k`.
    pub steps: usize,
    /// `inputs[t*B + b]`: the word at step `t` of column `b`.
    pub inputs: Vec<usize>,
    /// `targets[t*B + b]`: the word after it.
    pub targets: Vec<usize>,
}

impl Streams {
    /// `ids` as `batch` columns of `ids.len() / batch` rows; at least two rows are needed, so
    /// that a window has a target.
    pub fn new(ids: &[usize], batch: usize) -> Result<Streams, String> {
        let rows = ids.len() / batch.max(1);
        if batch == 0 || rows < 2 {
            return Err(format!(
                "{} words cannot make {batch} columns of at least 2 words",
                ids.len()
            ));
        }
        let mut data = vec![0; rows * batch];
        for b in 0..batch {
            for t in 0..rows {
                data[t * batch + b] = ids[b * rows + t];
            }
        }
        Ok(Streams { data, batch, rows })
    }

    /// Columns, `B`.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Targets scored per pass, `B*(L - 1)`.
    pub fn targets(&self) -> usize {
        self.batch * (self.rows - 1)
    }

    /// Windows of `steps` steps per pass, `ceil((L - 1) / steps)`.
    pub fn len(&self, steps: usize) -> usize {
        (self.rows - 1).div_ceil(steps)
    }

    /// The windows of one pass, `steps` (at least 1) steps each but the last.
    pub fn windows(&self, steps: usize) -> impl Iterator<Item = Window> + '_ {
        let steps = steps.max(1);
        let b = self.batch;
        (0..self.rows - 1).step_by(steps).map(move |i| {
            let n = steps.min(self.rows - 1 - i);
            Window {
                steps: n,
                inputs: self.data[i * b..(i + n) * b].to_vec(),
                targets: self.data[(i + 1) * b..(i + n + 1) * b].to_vec(),
            }
        })
    }
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
