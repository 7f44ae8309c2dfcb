//! Text as token ids: `Vocab` (round trips, sorted ids, unknown characters, saved metadata that
//! survives hostile characters and refuses malformed strings without panicking).
//! (`tests/corpus.rs` tests `Corpus` and `split`.)

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use recurrent::{Error, StateDict, Vocab};

// ---------------------------------------------------------------------------------------------
// Vocab: characters and ids

/// Texts that must encode and decode back to themselves.
const TEXTS: [&str; 6] = [
    "hello world",
    "naïve café, Ærøskøbing, 日本語のテキスト, Ελληνικά",
    "emoji 😀🎉 and a family 👨‍👩‍👧 and a flag 🇳🇿",
    "lines\nand\r\nwindows\ttabs\0nul",
    "quotes \" ' \\ backslash , = - and a space",
    "\u{10FFFF}\u{FFFD}\u{7F}\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}",
];

#[test]
fn every_text_round_trips_one_id_per_char() {
    for text in TEXTS {
        let vocab = Vocab::from_text(text).unwrap();
        let ids = vocab.encode(text).unwrap();
        assert_eq!(ids.len(), text.chars().count(), "{text:?}");
        assert!(ids.iter().all(|&id| id < vocab.len()));
        assert_eq!(vocab.decode(&ids).unwrap(), text);
        for (c, &id) in text.chars().zip(&ids) {
            assert_eq!(vocab.char(id).unwrap(), c);
            assert_eq!(vocab.id(c).unwrap(), id);
            assert_eq!(vocab.get(c), Some(id));
        }
    }
    // Every text's characters in one vocabulary, each text a part of it.
    let all: String = TEXTS.concat();
    let vocab = Vocab::from_text(&all).unwrap();
    for text in TEXTS {
        assert_eq!(vocab.decode(&vocab.encode(text).unwrap()).unwrap(), text);
    }
}

#[test]
fn from_text_sorts_the_distinct_chars_by_code_point() {
    let vocab = Vocab::from_text("hello\nwörld 😀é").unwrap();
    assert_eq!(
        vocab.chars(),
        ['\n', ' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w', 'é', 'ö', '😀']
    );
    assert_eq!(vocab.len(), 12);
    assert!(!vocab.is_empty());
    assert_eq!(vocab.encode("hé😀\n").unwrap(), [4, 9, 11, 0]);

    // The same characters in any order give the same ids.
    let shuffled = Vocab::from_text("😀é wörld\nhello").unwrap();
    assert_eq!(shuffled, vocab);
    for text in TEXTS {
        let reversed: String = text.chars().rev().collect();
        let a = Vocab::from_text(text).unwrap();
        let b = Vocab::from_text(&reversed).unwrap();
        assert_eq!(a, b);
        assert!(a.chars().windows(2).all(|w| w[0] < w[1]), "{text:?}");
    }
}

#[test]
fn from_chars_keeps_the_given_order() {
    let vocab = Vocab::from_chars(['z', 'é', 'a', '\n']).unwrap();
    assert_eq!(vocab.chars(), ['z', 'é', 'a', '\n']);
    assert_eq!(vocab.encode("a\néz").unwrap(), [2, 3, 1, 0]);
    assert_eq!(vocab.decode(&[0, 1, 2]).unwrap(), "zéa");
}

#[test]
fn empty_and_repeated_chars_are_refused() {
    assert!(matches!(Vocab::from_text(""), Err(Error::Empty { .. })));
    assert!(matches!(
        Vocab::from_chars(std::iter::empty()),
        Err(Error::Empty { .. })
    ));
    for (chars, named, ids) in [
        (vec!['a', 'b', 'a'], "'a'", "ids 0 and 2"),
        (vec!['x', 'é', 'y', 'z', 'é'], "'é'", "ids 1 and 4"),
        (vec!['😀', '😀'], "'😀'", "ids 0 and 1"),
        (vec!['\n', 'q', '\n'], "'\\n'", "ids 0 and 2"),
    ] {
        let err = Vocab::from_chars(chars).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert!(message.contains(named), "{message}");
        assert!(message.contains(ids), "{message}");
    }
}

#[test]
fn ids_out_of_range_are_index_errors() {
    let vocab = Vocab::from_text("abc").unwrap();
    assert_eq!(
        vocab.char(3),
        Err(Error::Index {
            what: "vocabulary id".to_string(),
            position: 0,
            value: 3,
            bound: 3,
        })
    );
    assert_eq!(
        vocab.decode(&[0, 1, 2, 7, 9]),
        Err(Error::Index {
            what: "ids to decode".to_string(),
            position: 3,
            value: 7,
            bound: 3,
        })
    );
    assert_eq!(vocab.decode(&[]).unwrap(), "");
    assert_eq!(vocab.encode("").unwrap(), Vec::<usize>::new());
}

// ---------------------------------------------------------------------------------------------
// Vocab: unknown characters

#[test]
fn an_unknown_char_is_named_with_its_char_position_and_a_hint() {
    let vocab = Vocab::from_text("héllo").unwrap();
    // '!' is byte 6 but char 5: the position counts chars.
    let err = vocab.encode("héllo!").unwrap_err();
    assert_eq!(
        err,
        Error::UnknownChar {
            what: "text to encode".to_string(),
            character: '!',
            position: 5,
        }
    );
    assert_eq!(
        err.to_string(),
        "text to encode: character '!' (U+0021) at char position 5 is not in the vocabulary; \
         build the vocabulary from all the text, or choose a fallback character with \
         `Vocab::with_unknown`"
    );

    // Control characters and astral ones are escaped or named by code point.
    let message = vocab.encode("hé\nllo").unwrap_err().to_string();
    assert!(
        message.contains("character '\\n' (U+000A) at char position 2"),
        "{message}"
    );
    let message = vocab.encode("😀").unwrap_err().to_string();
    assert!(
        message.contains("(U+1F600) at char position 0"),
        "{message}"
    );
    let message = vocab.encode("\u{200B}").unwrap_err().to_string();
    assert!(message.contains("'\\u{200b}' (U+200B)"), "{message}");

    assert!(matches!(
        vocab.id('?'),
        Err(Error::UnknownChar { character: '?', .. })
    ));
    assert_eq!(vocab.get('?'), None);
    assert_eq!(vocab.unknown(), None);
}

#[test]
fn a_fallback_char_takes_the_place_of_unknown_ones() {
    let vocab = Vocab::from_text("ab?").unwrap().with_unknown('?').unwrap();
    assert_eq!(vocab.unknown(), Some('?'));
    assert_eq!(vocab.chars(), ['?', 'a', 'b']);
    assert_eq!(vocab.encode("a😀b\nc").unwrap(), [1, 0, 2, 0, 0]);
    assert_eq!(vocab.decode(&vocab.encode("a😀b").unwrap()).unwrap(), "a?b");
    assert_eq!(vocab.id('z').unwrap(), 0);
    assert_eq!(vocab.get('z'), None, "get ignores the fallback");
    assert_eq!(vocab.id('b').unwrap(), 2, "known chars keep their ids");

    // Choosing another fallback replaces the first.
    let again = vocab.clone().with_unknown('b').unwrap();
    assert_eq!(again.encode("z").unwrap(), [2]);

    // The fallback must be in the vocabulary.
    let err = Vocab::from_text("ab")
        .unwrap()
        .with_unknown('?')
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("'?' (U+003F)"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Vocab: saved with the model

/// Vocabularies whose characters are hard to store in a string.
fn hostile_vocabs() -> Vec<Vocab> {
    let hostile = [
        '\n',
        '\r',
        '"',
        '\\',
        '\0',
        ',',
        ' ',
        '=',
        '\t',
        '\u{7F}',
        '\u{85}',
        '\u{2028}',
        '😀',
        '\u{10FFFF}',
        '\u{FEFF}',
        'a',
        '0',
    ];
    let mut vocabs = vec![
        Vocab::from_chars(hostile).unwrap(),
        Vocab::from_chars(hostile)
            .unwrap()
            .with_unknown('\0')
            .unwrap(),
        Vocab::from_chars(hostile)
            .unwrap()
            .with_unknown('😀')
            .unwrap(),
        Vocab::from_chars(['\0']).unwrap(),
        Vocab::from_chars(['\0'])
            .unwrap()
            .with_unknown('\0')
            .unwrap(),
    ];
    vocabs.extend(TEXTS.iter().map(|t| Vocab::from_text(t).unwrap()));
    // Random characters from the whole range, in random order.
    let mut rng = StdRng::seed_from_u64(5);
    for size in [1, 2, 50, 3000] {
        let mut chars: Vec<char> = (0..size)
            .map(|_| {
                loop {
                    if let Some(c) = char::from_u32(rng.random_range(0..=0x10FFFF)) {
                        break c;
                    }
                }
            })
            .collect();
        chars.sort_unstable();
        chars.dedup();
        // Shuffle so that ids are not in code point order.
        for i in (1..chars.len()).rev() {
            chars.swap(i, rng.random_range(0..=i));
        }
        let fallback = chars[chars.len() / 2];
        vocabs.push(Vocab::from_chars(chars.clone()).unwrap());
        vocabs.push(
            Vocab::from_chars(chars)
                .unwrap()
                .with_unknown(fallback)
                .unwrap(),
        );
    }
    vocabs
}

#[test]
fn metadata_round_trips_exactly_whatever_the_chars() {
    for vocab in hostile_vocabs() {
        let text = vocab.to_metadata();
        assert!(
            text.is_ascii() && !text.contains(['\n', '"', '\\', '\0']),
            "{text}"
        );
        let back = Vocab::from_metadata(&text).unwrap();
        assert_eq!(back, vocab);
        assert_eq!(back.chars(), vocab.chars());
        assert_eq!(back.unknown(), vocab.unknown());
        assert_eq!(back.to_metadata(), text);
    }
}

#[test]
fn metadata_format_is_the_documented_one() {
    let vocab = Vocab::from_chars(['\n', 'a', 'b']).unwrap();
    assert_eq!(
        vocab.to_metadata(),
        "recurrent-vocab/1 unknown=none chars=a,61,62"
    );
    let vocab = Vocab::from_chars(['\0', '😀', 'Z'])
        .unwrap()
        .with_unknown('😀')
        .unwrap();
    assert_eq!(
        vocab.to_metadata(),
        "recurrent-vocab/1 unknown=1f600 chars=0,1f600,5a"
    );
}

#[test]
fn vocab_travels_in_a_safetensors_file() {
    assert_eq!(Vocab::METADATA_KEY, "recurrent.vocab");
    for vocab in hostile_vocabs() {
        let mut dict = StateDict::new();
        vocab.write_into(&mut dict);
        assert_eq!(
            dict.metadata().get("recurrent.vocab"),
            Some(&vocab.to_metadata())
        );
        let bytes = dict.to_bytes().unwrap();
        let read = StateDict::from_bytes(&bytes).unwrap();
        assert_eq!(Vocab::read_from(&read).unwrap(), vocab);
    }
}

#[test]
fn a_state_dict_without_a_vocab_is_a_clear_error() {
    let err = Vocab::read_from(&StateDict::new()).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("no vocabulary"), "{message}");
    assert!(message.contains("\"recurrent.vocab\""), "{message}");

    let mut dict = StateDict::new();
    dict.set_metadata("recurrent.vocab", "abc");
    let err = Vocab::read_from(&dict).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err:?}");
}

#[test]
fn malformed_metadata_is_refused_with_a_reason() {
    let cases = [
        ("", "expected \"recurrent-vocab/1 unknown=... chars=...\""),
        ("abc", "given \"abc\""),
        ("recurrent-vocab/2 unknown=none chars=61", "expected"),
        ("recurrent-vocab/1 chars=61", "expected"),
        ("recurrent-vocab/1 unknown=none", "expected"),
        (
            "recurrent-vocab/1 unknown=none chars=",
            "entry 0 of chars, \"\"",
        ),
        (
            "recurrent-vocab/1 unknown=none chars=61,",
            "entry 1 of chars, \"\"",
        ),
        ("recurrent-vocab/1 unknown=none chars=61,,62", "entry 1"),
        (
            "recurrent-vocab/1 unknown=none chars=61, 62",
            "entry 1 of chars, \" 62\"",
        ),
        ("recurrent-vocab/1 unknown=none chars=4A", "\"4A\""),
        ("recurrent-vocab/1 unknown=none chars=061", "\"061\""),
        ("recurrent-vocab/1 unknown=none chars=+61", "\"+61\""),
        ("recurrent-vocab/1 unknown=none chars=-1", "\"-1\""),
        ("recurrent-vocab/1 unknown=none chars=d800", "\"d800\""),
        ("recurrent-vocab/1 unknown=none chars=110000", "\"110000\""),
        (
            "recurrent-vocab/1 unknown=none chars=1000000",
            "\"1000000\"",
        ),
        (
            "recurrent-vocab/1 unknown=none chars=ffffffffffffffffffff",
            "\"ffffffff",
        ),
        (
            "recurrent-vocab/1 unknown=none chars=61,62,61",
            "'a' (U+0061) is given twice",
        ),
        (
            "recurrent-vocab/1 unknown=63 chars=61,62",
            "'c' (U+0063) is not in the vocabulary",
        ),
        (
            "recurrent-vocab/1 unknown= chars=61",
            "unknown=\"\" is neither",
        ),
        (
            "recurrent-vocab/1 unknown=None chars=61",
            "unknown=\"None\"",
        ),
        ("recurrent-vocab/1 unknown=none chars=61 ", "\"61 \""),
        ("recurrent-vocab/1 unknown=none chars=61\n", "\"61\\n\""),
        (" recurrent-vocab/1 unknown=none chars=61", "expected"),
        ("recurrent-vocab/1  unknown=none chars=61", "expected"),
    ];
    for (text, reason) in cases {
        let err = Vocab::from_metadata(text).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{text:?}: {err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with("malformed vocabulary metadata: "),
            "{message}"
        );
        assert!(message.contains(reason), "{text:?}: {message}");
    }
    // A long malformed entry is cut in the message, not echoed whole.
    let long = format!(
        "recurrent-vocab/1 unknown=none chars={}",
        "z".repeat(100_000)
    );
    let message = Vocab::from_metadata(&long).unwrap_err().to_string();
    assert!(message.len() < 200, "{message}");
}

/// `from_metadata` on `text` must return, never panic; if it accepts, the string must be the
/// one `to_metadata` writes for what it read.
fn check_never_panics(text: &str) {
    let read = std::panic::catch_unwind(|| Vocab::from_metadata(text));
    match read {
        Err(_) => panic!("from_metadata panicked on {text:?}"),
        Ok(Ok(vocab)) => assert_eq!(vocab.to_metadata(), text, "accepted {text:?}"),
        Ok(Err(err)) => assert!(matches!(err, Error::Format { .. }), "{text:?}: {err:?}"),
    }
}

#[test]
fn truncated_and_mutated_metadata_never_panics() {
    let vocab = Vocab::from_chars(['\n', '"', '\\', '\0', 'a', 'é', '😀', '\u{10FFFF}'])
        .unwrap()
        .with_unknown('é')
        .unwrap();
    let good = vocab.to_metadata();
    let mut accepted = 0;
    // Every truncation, from either end.
    for cut in 0..=good.len() {
        check_never_panics(&good[..cut]);
        check_never_panics(&good[cut..]);
        accepted += usize::from(Vocab::from_metadata(&good[..cut]).is_ok());
    }
    // Truncations that end inside an entry can still be a valid, smaller vocabulary.
    assert!(accepted > 0);
    // Every byte replaced by a character that could confuse the parser, or deleted, or doubled.
    let replacements = [
        "", ",", " ", "=", "0", "9", "f", "g", "A", "-", "+", "\n", "\0", "é", "😀", ",,", "x",
    ];
    for i in 0..good.len() {
        for r in replacements {
            let mutated = format!("{}{r}{}", &good[..i], &good[i + 1..]);
            check_never_panics(&mutated);
        }
        check_never_panics(&format!("{}{}", &good[..=i], &good[i..]));
    }
    // Random splices of random bytes, lossily made into strings.
    let mut rng = StdRng::seed_from_u64(55);
    for _ in 0..5000 {
        let mut bytes = good.clone().into_bytes();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..3) {
                0 => bytes[at] = rng.random(),
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, rng.random()),
            }
            if bytes.is_empty() {
                break;
            }
        }
        check_never_panics(&String::from_utf8_lossy(&bytes));
    }
}
