//! Text as token ids: `Vocab` (round trips, sorted ids, unknown characters).

use recurrent::{Error, Vocab};

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
