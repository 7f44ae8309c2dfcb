//! `Vocab`: characters (Unicode scalar values, Rust `char`s) to token ids and back.

use crate::error::{Error, Result, check_ids};
use crate::io::StateDict;
use std::collections::BTreeSet;
use std::fmt;

/// Marks an ASCII character that is not in the vocabulary.
const ABSENT: usize = usize::MAX;

/// What every saved vocabulary string starts with: the format and its version.
const MAGIC: &str = "recurrent-vocab/1";

/// A character vocabulary: `len()` distinct `char`s, id `i` is `chars()[i]`.
///
/// Characters are Unicode scalar values (Rust `char`s), not bytes: `'é'` and `'😀'` are one
/// id each. [`from_text`](Vocab::from_text) sorts the characters by code point, as `char-rnn`
/// does, so the same corpus always gives the same ids whatever the order of its lines.
///
/// Encoding looks ASCII up in a 128-entry table and other characters by binary search: about
/// 5 ns a character (20 ms for 5 MB of mostly-ASCII text, release build, on a 2-core machine,
/// where `from_text` took 2 ms). A character that is not in the vocabulary is
/// an error ([`Error::UnknownChar`], naming it and its position) unless a fallback was chosen
/// with [`with_unknown`](Vocab::with_unknown).
///
/// A vocabulary is saved beside a model's weights as a string of ASCII
/// ([`to_metadata`](Vocab::to_metadata)), in a [`StateDict`]'s metadata under
/// [`Vocab::METADATA_KEY`] ([`write_into`](Vocab::write_into)).
///
/// ```
/// use recurrent::Vocab;
/// # fn main() -> recurrent::Result<()> {
/// let vocab = Vocab::from_text("hello, wörld")?;
/// assert_eq!(vocab.chars(), [' ', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w', 'ö']);
/// assert_eq!(vocab.encode("hö")?, [4, 9]);
/// assert_eq!(vocab.decode(&[8, 9, 7, 5, 2])?, "wörld");
///
/// let err = vocab.encode("hello!").unwrap_err();
/// assert!(err.to_string().contains("character '!' (U+0021) at char position 5"));
/// let lenient = vocab.with_unknown(' ')?;
/// assert_eq!(lenient.decode(&lenient.encode("hello!")?)?, "hello ");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Vocab {
    /// Id `i` is `chars[i]`.
    chars: Vec<char>,
    /// `ascii[c]` is the id of ASCII character `c`, or [`ABSENT`].
    ascii: [usize; 128],
    /// The non-ASCII characters and their ids, sorted by character.
    others: Vec<(char, usize)>,
    /// The id unknown characters map to, if a fallback was chosen.
    unknown: Option<usize>,
}

impl Vocab {
    /// The [`StateDict`] metadata key a vocabulary is saved under: `"recurrent.vocab"`.
    pub const METADATA_KEY: &'static str = "recurrent.vocab";

    /// The distinct characters of `text`, sorted by code point.
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty text.
    pub fn from_text(text: &str) -> Result<Vocab> {
        let mut ascii = [false; 128];
        let mut others = BTreeSet::new();
        for c in text.chars() {
            if c.is_ascii() {
                ascii[c as usize] = true;
            } else {
                others.insert(c);
            }
        }
        let ascii = (0u8..128)
            .filter(|&b| ascii[usize::from(b)])
            .map(char::from);
        let chars: Vec<char> = ascii.chain(others).collect();
        if chars.is_empty() {
            return Err(Error::empty("text to build a vocabulary from"));
        }
        Self::from_chars(chars)
    }

    /// The given characters, in the given order: the first gets id 0.
    ///
    /// # Errors
    /// [`Error::Empty`] for no characters; [`Error::Config`] naming a character given twice.
    pub fn from_chars(chars: impl IntoIterator<Item = char>) -> Result<Vocab> {
        let chars: Vec<char> = chars.into_iter().collect();
        if chars.is_empty() {
            return Err(Error::empty("vocabulary"));
        }
        let mut ascii = [ABSENT; 128];
        let mut others = Vec::new();
        for (id, &c) in chars.iter().enumerate() {
            if !c.is_ascii() {
                others.push((c, id));
            } else if ascii[c as usize] != ABSENT {
                return Err(repeated(c, ascii[c as usize], id));
            } else {
                ascii[c as usize] = id;
            }
        }
        // Sorted by character, then id: a repeated character's two entries are neighbours, the
        // first id first.
        others.sort_unstable();
        if let Some(pair) = others.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(repeated(pair[0].0, pair[0].1, pair[1].1));
        }
        Ok(Vocab {
            chars,
            ascii,
            others,
            unknown: None,
        })
    }

    /// The same vocabulary with a fallback: from now on a character that is not in the
    /// vocabulary encodes as `c`'s id (so decoding no longer gives the text back exactly).
    ///
    /// # Errors
    /// [`Error::Config`] if `c` is not itself in the vocabulary.
    pub fn with_unknown(mut self, c: char) -> Result<Vocab> {
        let id = self.get(c).ok_or_else(|| {
            Error::config(format!(
                "the fallback character {c:?} (U+{:04X}) is not in the vocabulary of {} \
                 characters; choose one of them, or build the vocabulary with it",
                u32::from(c),
                self.len()
            ))
        })?;
        self.unknown = Some(id);
        Ok(self)
    }

    /// The fallback character unknown characters encode as, if one was chosen.
    pub fn unknown(&self) -> Option<char> {
        self.unknown.map(|id| self.chars[id])
    }

    /// The number of characters, `V`: ids are `0..V`.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Always `false`: a vocabulary has at least one character.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters in id order: id `i` is `chars()[i]`.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The id of `c` if it is in the vocabulary (the fallback plays no part).
    pub fn get(&self, c: char) -> Option<usize> {
        if c.is_ascii() {
            let id = self.ascii[c as usize];
            return (id != ABSENT).then_some(id);
        }
        let i = self.others.binary_search_by_key(&c, |&(k, _)| k).ok()?;
        Some(self.others[i].1)
    }

    /// The id of `c`, or of the fallback character if `c` is not in the vocabulary.
    ///
    /// # Errors
    /// [`Error::UnknownChar`] if `c` is not in the vocabulary and no fallback was chosen.
    pub fn id(&self, c: char) -> Result<usize> {
        self.get(c)
            .or(self.unknown)
            .ok_or_else(|| unknown_char("Vocab::id", c, 0))
    }

    /// The character with id `id`.
    ///
    /// # Errors
    /// [`Error::Index`] if `id` is not below [`len`](Vocab::len).
    pub fn char(&self, id: usize) -> Result<char> {
        check_ids("vocabulary id", &[id], self.len())?;
        Ok(self.chars[id])
    }

    /// The ids of `text`'s characters, one per `char`; unknown characters take the fallback's
    /// id if one was chosen.
    ///
    /// # Errors
    /// [`Error::UnknownChar`] naming the first character that is not in the vocabulary and its
    /// position in `chars`, when no fallback was chosen.
    pub fn encode(&self, text: &str) -> Result<Vec<usize>> {
        let mut ids = Vec::with_capacity(text.len());
        for (position, c) in text.chars().enumerate() {
            match self.get(c).or(self.unknown) {
                Some(id) => ids.push(id),
                None => return Err(unknown_char("text to encode", c, position)),
            }
        }
        Ok(ids)
    }

    /// The text of `ids`: the inverse of [`encode`](Vocab::encode) for text without unknown
    /// characters.
    ///
    /// # Errors
    /// [`Error::Index`] naming the first id not below [`len`](Vocab::len) and its position.
    pub fn decode(&self, ids: &[usize]) -> Result<String> {
        check_ids("ids to decode", ids, self.len())?;
        Ok(ids.iter().map(|&id| self.chars[id]).collect())
    }

    /// The vocabulary as a string of ASCII that [`from_metadata`](Vocab::from_metadata) reads
    /// back exactly, fallback included, whatever the characters (newlines, quotes, NUL, emoji).
    ///
    /// The format: `recurrent-vocab/1 unknown=U chars=C0,C1,...`, where `Ci` is the code point
    /// of id `i` in lowercase hexadecimal without leading zeros and `U` is the fallback's code
    /// point in the same form, or `none`. For `"\nab"`: `recurrent-vocab/1 unknown=none
    /// chars=a,61,62`.
    pub fn to_metadata(&self) -> String {
        let codes: Vec<String> = self.chars.iter().map(|&c| hex(c)).collect();
        let unknown = self.unknown().map_or_else(|| "none".to_string(), hex);
        format!("{MAGIC} unknown={unknown} chars={}", codes.join(","))
    }

    /// Reads a string written by [`to_metadata`](Vocab::to_metadata). Only that exact form is
    /// accepted (no spaces, upper case or leading zeros added), so a string that reads is the
    /// one [`to_metadata`](Vocab::to_metadata) writes for the result.
    ///
    /// # Errors
    /// [`Error::Format`] naming what is wrong: another prefix, a missing field, an entry that is
    /// not a code point, a surrogate or a value past `U+10FFFF`, a repeated character, no
    /// characters, or a fallback that is not among them.
    pub fn from_metadata(text: &str) -> Result<Vocab> {
        let fields = text
            .strip_prefix(MAGIC)
            .and_then(|rest| rest.strip_prefix(" unknown="))
            .and_then(|rest| rest.split_once(" chars="));
        let Some((unknown, codes)) = fields else {
            return Err(malformed(format!(
                "expected \"{MAGIC} unknown=... chars=...\", given {}",
                excerpt(text)
            )));
        };
        let chars = codes
            .split(',')
            .enumerate()
            .map(|(i, code)| {
                parse_code(code).ok_or_else(|| {
                    malformed(format!(
                        "entry {i} of chars, {}, is not a code point in lowercase hexadecimal",
                        excerpt(code)
                    ))
                })
            })
            .collect::<Result<Vec<char>>>()?;
        let vocab = Vocab::from_chars(chars).map_err(|e| malformed(e.to_string()))?;
        match unknown {
            "none" => Ok(vocab),
            code => {
                let c = parse_code(code).ok_or_else(|| {
                    malformed(format!(
                        "unknown={} is neither \"none\" nor a code point in lowercase hexadecimal",
                        excerpt(code)
                    ))
                })?;
                vocab.with_unknown(c).map_err(|e| malformed(e.to_string()))
            }
        }
    }

    /// Stores the vocabulary in `dict`'s metadata under [`Vocab::METADATA_KEY`], replacing any
    /// vocabulary there, so that it is saved with the weights.
    pub fn write_into(&self, dict: &mut StateDict) {
        dict.set_metadata(Self::METADATA_KEY, self.to_metadata());
    }

    /// The vocabulary stored in `dict`'s metadata by [`write_into`](Vocab::write_into).
    ///
    /// # Errors
    /// [`Error::Format`] if the key [`Vocab::METADATA_KEY`] is missing or its value is not a
    /// vocabulary (see [`from_metadata`](Vocab::from_metadata)).
    pub fn read_from(dict: &StateDict) -> Result<Vocab> {
        let text = dict
            .metadata()
            .get(Self::METADATA_KEY)
            .ok_or_else(|| Error::Format {
                message: format!(
                    "the state dict holds no vocabulary: its metadata has no key {:?} (save one \
                 with `Vocab::write_into`)",
                    Self::METADATA_KEY
                ),
            })?;
        Self::from_metadata(text)
    }
}

impl fmt::Debug for Vocab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vocab")
            .field("chars", &self.chars.iter().collect::<String>())
            .field("unknown", &self.unknown())
            .finish()
    }
}

fn unknown_char(what: &str, character: char, position: usize) -> Error {
    Error::UnknownChar {
        what: what.to_string(),
        character,
        position,
    }
}

fn repeated(c: char, first: usize, second: usize) -> Error {
    Error::config(format!(
        "vocabulary: character {c:?} (U+{:04X}) is given twice, as ids {first} and {second}",
        u32::from(c)
    ))
}

fn malformed(why: String) -> Error {
    Error::Format {
        message: format!("malformed vocabulary metadata: {why}"),
    }
}

/// `c`'s code point in lowercase hexadecimal without leading zeros.
fn hex(c: char) -> String {
    format!("{:x}", u32::from(c))
}

/// The `char` whose code point `code` is, in the exact form [`hex`] writes, or `None`.
fn parse_code(code: &str) -> Option<char> {
    let canonical = (1..=6).contains(&code.len())
        && code.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && (code == "0" || !code.starts_with('0'));
    if !canonical {
        return None;
    }
    u32::from_str_radix(code, 16).ok().and_then(char::from_u32)
}

/// `text` quoted for an error message, cut after 24 characters.
fn excerpt(text: &str) -> String {
    const MAX: usize = 24;
    match text.char_indices().nth(MAX) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}...", &text[..end]),
    }
}
