//! Text as token ids: [`Vocab`] maps characters to ids and back.
//!
//! ```
//! use recurrent::data::Vocab;
//!
//! # fn main() -> recurrent::Result<()> {
//! let text = "the cat sat on the mat.\n";
//! let vocab = Vocab::from_text(text)?; // the distinct chars, sorted: ids do not depend on order
//! let ids = vocab.encode(text)?;
//! assert_eq!(vocab.decode(&ids)?, text);
//! # Ok(())
//! # }
//! ```

mod vocab;

pub use vocab::Vocab;
