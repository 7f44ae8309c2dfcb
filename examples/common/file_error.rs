//! The error of the examples' data readers (`classify`'s `.ts`, `forecast`'s CSV), shared by
//! both (each includes this file with `#[path]`): where in which file, and what is wrong.

use std::fmt;

/// What is wrong with a data file's text, and where: `file line L, column C: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file's name, as given.
    pub file: String,
    /// The line (from 1), 0 for the file as a whole.
    pub line: usize,
    /// The column (from 1, in characters), 0 for the line as a whole.
    pub column: usize,
    /// What was expected and what was found.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (line, 0) => write!(f, "{} line {line}: {}", self.file, self.message),
            (line, column) => write!(
                f,
                "{} line {line}, column {column}: {}",
                self.file, self.message
            ),
        }
    }
}

impl std::error::Error for FileError {}
