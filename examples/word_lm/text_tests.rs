//! The word reader, the vocabulary and PyTorch's layout of streams and windows, on small texts,
//! good and malformed, and on the shipped text.

use super::*;

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

#[test]
fn every_line_ends_with_eos_and_whitespace_splits_words() {
    let got = words("t.txt", b"the cat\n\n  sat\ton  the\r\nmat").unwrap();
    let expected = ["the", "cat", EOS, EOS, "sat", "on", "the", EOS, "mat", EOS];
    assert_eq!(got, strings(&expected));
}

#[test]
fn an_empty_or_blank_file_is_refused_by_name() {
    for text in ["", " \n\t\n"] {
        let e = words("empty.txt", text.as_bytes()).expect_err("no word");
        assert_eq!(e.to_string(), "empty.txt: the file holds no word");
    }
}

#[test]
fn bytes_that_are_not_utf8_are_refused_with_their_line_and_column() {
    let e = words("bad.txt", b"one two\nthr\xc3\xa9e f\xffour\n").expect_err("not UTF-8");
    assert_eq!(e.to_string(), "bad.txt line 2, column 8: not UTF-8 text");
}

#[test]
fn a_missing_file_is_refused_with_its_path() {
    let e = read_words(Path::new("no/such/words.txt")).expect_err("missing");
    assert!(e.to_string().starts_with("no/such/words.txt: "), "{e}");
}

#[test]
fn the_vocabulary_numbers_words_by_first_appearance_across_texts() {
    let train = strings(&["b", "a", "b", EOS]);
    let valid = strings(&["c", "a", EOS]);
    let vocab = WordVocab::from_texts([&train[..], &valid[..]]);
    assert_eq!(vocab.words(), strings(&["b", "a", EOS, "c"]));
    assert_eq!(vocab.encode(&valid).unwrap(), [3, 1, 2]);
    let e = vocab.encode(&strings(&["zebra"])).expect_err("unknown");
    assert_eq!(e, "\"zebra\" is not a known word");
}

/// PyTorch's `batchify(data, 2)` of 0..11 keeps 10 ids as columns [0..5] and [5..10];
/// `get_batch` with bptt 3 gives windows of 3 and 1 steps (4 targets per column).
#[test]
fn streams_and_windows_are_pytorchs_batchify_and_get_batch() {
    let ids: Vec<usize> = (0..11).collect();
    let streams = Streams::new(&ids, 2).unwrap();
    assert_eq!(
        (streams.batch(), streams.targets(), streams.len(3)),
        (2, 8, 2)
    );
    let windows: Vec<Window> = streams.windows(3).collect();
    assert_eq!(windows.len(), 2);
    assert_eq!(windows[0].steps, 3);
    assert_eq!(windows[0].inputs, [0, 5, 1, 6, 2, 7]);
    assert_eq!(windows[0].targets, [1, 6, 2, 7, 3, 8]);
    assert_eq!(windows[1].steps, 1);
    assert_eq!(
        (windows[1].inputs.clone(), windows[1].targets.clone()),
        (vec![3, 8], vec![4, 9])
    );
    // Every transition inside a column, once.
    let scored: usize = windows.iter().map(|w| w.targets.len()).sum();
    assert_eq!(scored, streams.targets());
}

#[test]
fn too_few_words_for_the_streams_are_refused() {
    let e = Streams::new(&[0, 1, 2], 2).expect_err("one row");
    assert_eq!(e, "3 words cannot make 2 columns of at least 2 words");
    assert!(Streams::new(&[0, 1], 0).is_err());
}

#[test]
fn the_shipped_text_reads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/kjv_genesis_exodus.txt");
    let words = read_words(&path).unwrap();
    let vocab = WordVocab::from_texts([&words[..]]);
    assert!(
        words.len() > 60_000 && vocab.len() > 3_000,
        "{} {}",
        words.len(),
        vocab.len()
    );
    assert_eq!(words[words.len() - 1], EOS);
}
