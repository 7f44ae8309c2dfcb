//! The `.ts` reader on small texts, good and malformed, and on the shipped files.

use super::*;

const HEADER: &str = "# a comment\n@problemName Tiny\n@dimensions 2\n@classLabel true a b\n";

fn tiny(cases: &str) -> String {
    format!("{HEADER}@data\n{cases}")
}

fn error(text: &str) -> TsError {
    parse("t.ts", text).expect_err("malformed")
}

#[test]
fn cases_of_different_lengths_are_read_step_major() {
    let set = parse("t.ts", &tiny("1,2,3:4,5,6:b\n\n7:8:a\n")).unwrap();
    assert_eq!(set.dims, 2);
    assert_eq!(set.classes, ["a", "b"]);
    assert_eq!(set.labels, [1, 0]);
    assert_eq!(set.series[0], [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    assert_eq!(set.series[1], [7.0, 8.0]);
    assert_eq!((set.steps(0), set.steps(1), set.len()), (3, 1, 2));
}

#[test]
fn a_ragged_dimension_is_named_by_line_and_column() {
    let e = error(&tiny("1,2:3,4:a\n1,2,3:4,5:b\n"));
    assert_eq!((e.line, e.column), (7, 7), "{e}");
    assert_eq!(
        e.to_string(),
        "t.ts line 7, column 7: a ragged case: dimension 2 has 2 values, dimension 1 has 3"
    );
}

#[test]
fn a_missing_dimension_is_a_ragged_case() {
    let e = error(&tiny("1,2:a\n"));
    assert_eq!((e.line, e.column), (6, 5), "{e}");
    assert!(
        e.message.contains("2 dimensions and a label expected"),
        "{e}"
    );
    assert!(e.message.contains("found 2 fields"), "{e}");
}

#[test]
fn text_in_a_number_is_named_by_line_and_column() {
    let e = error(&tiny("1,2:3,4:a\n1,2:3,x4:b\n"));
    assert_eq!(
        e.to_string(),
        "t.ts line 7, column 7: dimension 2: expected a finite number, found \"x4\""
    );
    // An empty value, a missing one (`?`), an infinity: all refused where they stand.
    assert_eq!(error(&tiny("1,,2:3,4,5:a\n")).column, 3);
    assert_eq!(error(&tiny("1,?:3,4:a\n")).column, 3);
    assert_eq!(error(&tiny("inf:3:a\n")).column, 1);
}

#[test]
fn an_undeclared_label_is_refused() {
    let e = error(&tiny("1:2:c\n"));
    assert_eq!((e.line, e.column), (6, 5), "{e}");
    assert!(e.message.contains("label \"c\" is not one of"), "{e}");
}

#[test]
fn missing_data_an_empty_file_and_no_case_are_errors() {
    assert_eq!(
        error(HEADER).to_string(),
        "t.ts: no @data line: the header never ends"
    );
    assert_eq!(error("").to_string(), "t.ts: the file is empty");
    assert_eq!(error(" \n\n").to_string(), "t.ts: the file is empty");
    assert_eq!(error(&tiny("")).to_string(), "t.ts: no case after @data");
    let e = error("@dimensions 2\n1:2:a\n");
    assert_eq!((e.line, e.column), (2, 1), "{e}");
    assert!(e.message.contains("before the header's @data"), "{e}");
}

#[test]
fn a_header_without_dimensions_or_labels_is_refused() {
    let e = error("@classLabel true a\n@data\n1:a\n");
    assert_eq!(
        e.to_string(),
        "t.ts line 2, column 1: @data before @dimensions"
    );
    let e = error("@dimensions 1\n@data\n1:a\n");
    assert!(e.message.contains("@data before @classLabel"), "{e}");
    let e = error("@dimensions two\n");
    assert!(
        e.message.contains("@dimensions must be a whole number"),
        "{e}"
    );
    let e = error("@dimensions 1\n@classLabel false\n");
    assert!(e.message.contains("@classLabel must be `true`"), "{e}");
}

#[test]
fn the_standardisation_uses_every_step_and_spares_a_constant_dimension() {
    let mut set = parse("t.ts", &tiny("1,3:5,5:a\n2:5:b\n")).unwrap();
    let stats = Standardise::fit(&set);
    assert_eq!(stats.mean, [2.0, 5.0]);
    // Population deviation of 1, 3, 2; the constant dimension keeps a divisor of 1.
    assert!((stats.std[0] - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert_eq!(stats.std[1], 1.0);
    stats.apply(&mut set);
    let s = (2.0f32 / 3.0).sqrt();
    assert!((set.series[0][0] + 1.0 / s).abs() < 1e-6);
    assert_eq!(set.series[1], [0.0, 0.0]);
}

/// The shipped Japanese Vowels files: the official split's sizes, 12 dimensions, 7 to 29 steps,
/// 30 training utterances per speaker.
#[test]
fn the_shipped_japanese_vowels_split_reads_whole() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/japanese_vowels");
    let train = read(&dir.join("JapaneseVowels_TRAIN.ts")).unwrap();
    let test = read(&dir.join("JapaneseVowels_TEST.ts")).unwrap();
    assert_eq!((train.len(), test.len(), train.dims), (270, 370, 12));
    assert_eq!(train.classes.len(), 9);
    let steps = (0..train.len()).map(|i| train.steps(i));
    let (min, max) = (steps.clone().min().unwrap(), steps.max().unwrap());
    assert!(min >= 7 && max <= 29, "{min} {max}");
    for class in 0..9 {
        assert_eq!(train.labels.iter().filter(|&&l| l == class).count(), 30);
    }
}
