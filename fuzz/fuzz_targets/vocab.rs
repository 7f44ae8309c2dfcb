//! Vocabulary decoding: `Vocab::from_metadata` on any string, and vocabularies built from
//! any text (the bytes, read as UTF-8 with replacement characters where they are not).
//!
//! Beyond "no panic": a metadata string that reads is exactly the one `to_metadata` writes;
//! every vocabulary survives `to_metadata`/`from_metadata`; encoding then decoding gives the
//! text back, or, with a fallback, the text with unknown characters replaced by it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recurrent::Vocab;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(vocab) = Vocab::from_metadata(text)
    {
        assert_eq!(
            vocab.to_metadata(),
            text,
            "from_metadata accepted a non-canonical form"
        );
    }
    let text = String::from_utf8_lossy(data);
    let (left, right) = text.split_at(text.floor_char_boundary(text.len() / 2));
    if let Ok(vocab) = Vocab::from_text(left) {
        assert!(
            vocab.chars().windows(2).all(|w| w[0] < w[1]),
            "chars not sorted"
        );
        check(&vocab, left, right);
    } else {
        assert!(left.is_empty());
    }
    if let Ok(vocab) = Vocab::from_chars(left.chars()) {
        assert_eq!(vocab.chars(), left.chars().collect::<Vec<_>>());
        check(&vocab, left, right);
    }
    let vocab = Vocab::from_chars(['a', 'b', '\u{e9}']).expect("three chars");
    let ids: Vec<usize> = data.iter().map(|&b| usize::from(b % 4)).collect();
    match vocab.decode(&ids) {
        Ok(decoded) => assert_eq!(decoded.chars().count(), ids.len()),
        Err(_) => assert!(ids.contains(&3)),
    }
});

/// `vocab` was built from `known`: it round-trips, and `other` encodes with a fallback.
fn check(vocab: &Vocab, known: &str, other: &str) {
    let back = Vocab::from_metadata(&vocab.to_metadata()).expect("metadata reads back");
    assert_eq!(&back, vocab);
    let ids = vocab.encode(known).expect("known characters encode");
    assert_eq!(vocab.decode(&ids).expect("ids decode"), known);
    let fallback = vocab.chars()[0];
    let lenient = vocab
        .clone()
        .with_unknown(fallback)
        .expect("a known fallback");
    let back = Vocab::from_metadata(&lenient.to_metadata()).expect("with its fallback");
    assert_eq!(back, lenient);
    let decoded = lenient
        .decode(&lenient.encode(other).expect("encodes"))
        .expect("decodes");
    assert_eq!(decoded.chars().count(), other.chars().count());
    for (a, b) in other.chars().zip(decoded.chars()) {
        assert!(
            a == b || (b == fallback && vocab.get(a).is_none()),
            "{a:?} became {b:?}"
        );
    }
    if vocab.encode(other).is_ok() {
        assert!(other.chars().all(|c| vocab.get(c).is_some()));
    }
}
