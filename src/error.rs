//! The crate's one error type.
//!
//! Every public function that takes data from a user returns [`Result`]. A message names the
//! operation, what it expected and what it was given, so that a shape mismatch deep in a training
//! loop can be fixed from the message alone.

use std::fmt;
use std::io::ErrorKind;
use std::sync::Arc;

/// Errors returned by `recurrent`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A matrix, vector or state had the wrong shape or length.
    Shape {
        /// The operation or argument that was checked.
        what: String,
        /// The shape it needed, e.g. `(6, 4)`.
        expected: String,
        /// The shape it was given.
        given: String,
    },
    /// A token id or class index was not below its bound.
    Index {
        /// The operation or argument that was checked.
        what: String,
        /// Position of the offending entry in the given slice.
        position: usize,
        /// The offending value.
        value: usize,
        /// The exclusive upper bound (vocabulary or class count).
        bound: usize,
    },
    /// A sequence, batch or model had no entries where at least one is needed.
    Empty {
        /// What was empty.
        what: String,
    },
    /// A configuration value is not allowed (for example zero hidden units).
    Config {
        /// What is wrong with it.
        message: String,
    },
    /// No parameter has the given name.
    UnknownParameter {
        /// The name asked for.
        name: String,
        /// The names the model has.
        known: Vec<String>,
    },
    /// A character of a text is not in the [`Vocab`](crate::Vocab), and the vocabulary has no
    /// fallback character ([`Vocab::with_unknown`](crate::Vocab::with_unknown)).
    UnknownChar {
        /// The operation that looked the character up.
        what: String,
        /// The character.
        character: char,
        /// Its position in the text, counted in `char`s (not bytes) from 0.
        position: usize,
    },
    /// A NaN or infinity was found where finite numbers are required.
    NonFinite {
        /// Where it was found.
        what: String,
    },
    /// A file could not be read or written. [`Error::io_kind`] gives the operating system's
    /// [`ErrorKind`] (`NotFound`, `PermissionDenied`, ...), and [`source`](std::error::Error::source)
    /// the [`std::io::Error`] itself.
    ///
    /// Non-exhaustive: match it with `Error::Io { path, .. }`.
    #[non_exhaustive]
    Io {
        /// The file.
        path: String,
        /// What the operating system said (the source's message).
        message: String,
        /// The [`std::io::Error`], shared so that `Error` stays `Clone`.
        source: IoSource,
    },
    /// Stored data is not valid: bytes that should be a `safetensors` file, or a saved
    /// vocabulary string ([`Vocab::from_metadata`](crate::Vocab::from_metadata)).
    Format {
        /// What is wrong with them.
        message: String,
    },
    /// A state dict does not fit the model, as PyTorch's `load_state_dict` reports it.
    StateDict {
        /// Parameters the model has and the state dict lacks.
        missing: Vec<String>,
        /// Tensors the state dict has and the model does not (strict loading only).
        unexpected: Vec<String>,
        /// Tensors of the wrong shape or dtype, each with what was expected and given.
        mismatched: Vec<String>,
    },
}

/// `Result` with [`Error`] as its error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A shape error: `what` expected `expected`, was given `given`.
    pub(crate) fn shape(
        what: impl Into<String>,
        expected: impl fmt::Debug,
        given: impl fmt::Debug,
    ) -> Self {
        Error::Shape {
            what: what.into(),
            expected: format!("{expected:?}"),
            given: format!("{given:?}"),
        }
    }

    /// A configuration error with a message.
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
        }
    }

    /// An error for an empty sequence, batch or model.
    pub(crate) fn empty(what: impl Into<String>) -> Self {
        Error::Empty { what: what.into() }
    }
}

/// The [`std::io::Error`] behind an [`Error::Io`], behind an [`Arc`] so that [`Error`] can be
/// cloned. Two are equal when their [`ErrorKind`]s and messages are: an `io::Error` has no
/// equality of its own.
#[derive(Debug, Clone)]
pub struct IoSource(Arc<std::io::Error>);

impl IoSource {
    /// The operating system's error.
    pub fn get(&self) -> &std::io::Error {
        &self.0
    }

    /// Its kind, as [`std::io::Error::kind`].
    pub fn kind(&self) -> ErrorKind {
        self.0.kind()
    }
}

impl PartialEq for IoSource {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl Eq for IoSource {}

impl Error {
    /// An [`Error::Io`] on `path`, keeping `source` (files are read and written with the
    /// feature `formats` only).
    #[cfg(feature = "formats")]
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            message: source.to_string(),
            source: IoSource(Arc::new(source)),
        }
    }

    /// The [`ErrorKind`] of an [`Error::Io`] (`None` for every other variant): `NotFound` for
    /// a missing file, `PermissionDenied`, `IsADirectory` for a directory given as a file on
    /// Unix, and so on.
    ///
    /// ```
    /// use recurrent::NaiveCpu;
    /// use std::io::ErrorKind;
    ///
    /// let missing = std::env::temp_dir().join("recurrent_io_kind_doc.safetensors");
    /// let err = recurrent::io::load(NaiveCpu::<f64>::default(), &missing).unwrap_err();
    /// assert_eq!(err.io_kind(), Some(ErrorKind::NotFound));
    /// // The operating system's error is the source.
    /// let source = std::error::Error::source(&err).expect("an io::Error");
    /// assert!(source.downcast_ref::<std::io::Error>().is_some());
    /// ```
    pub fn io_kind(&self) -> Option<ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape {
                what,
                expected,
                given,
            } => write!(f, "{what}: expected shape {expected}, given {given}"),
            Error::Index {
                what,
                position,
                value,
                bound,
            } => write!(
                f,
                "{what}: entry {position} is {value}, expected a value below {bound}"
            ),
            Error::Empty { what } => write!(f, "{what} is empty: at least one entry is needed"),
            Error::Config { message } => write!(f, "invalid configuration: {message}"),
            Error::UnknownParameter { name, known } => write!(
                f,
                "no parameter named {name:?}; the model has: {}",
                known.join(", ")
            ),
            Error::UnknownChar {
                what,
                character,
                position,
            } => write!(
                f,
                "{what}: character {character:?} (U+{:04X}) at char position {position} is not in \
                 the vocabulary; build the vocabulary from all the text, or choose a fallback \
                 character with `Vocab::with_unknown`",
                u32::from(*character)
            ),
            Error::NonFinite { what } => write!(f, "{what} holds a NaN or infinite value"),
            Error::Io { path, message, .. } => write!(f, "{path}: {message}"),
            Error::Format { message } => write!(f, "{message}"),
            Error::StateDict {
                missing,
                unexpected,
                mismatched,
            } => {
                write!(f, "the state dict does not fit the model")?;
                let parts = [
                    ("missing", missing),
                    ("unexpected", unexpected),
                    ("mismatched", mismatched),
                ];
                for (label, names) in parts.iter().filter(|(_, n)| !n.is_empty()) {
                    write!(f, "; {label}: {}", names.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {
    /// The [`std::io::Error`] of an [`Error::Io`]; `None` for the other variants, whose
    /// message says all there is.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source.get()),
            _ => None,
        }
    }
}

/// Checks that every id is below `bound`, naming the first offender.
pub(crate) fn check_ids(what: &str, ids: &[usize], bound: usize) -> Result<()> {
    match ids.iter().position(|&id| id >= bound) {
        None => Ok(()),
        Some(position) => Err(Error::Index {
            what: what.to_string(),
            position,
            value: ids[position],
            bound,
        }),
    }
}
