//! The progress bar of `char_rnn`, `classify` and `word_lm` (each includes this file with
//! `#[path]`): a bar of `len` units with a status message after it, and lines printed above it,
//! or on their own where it is hidden (output not a terminal, as in CI and in the benchmark
//! scripts' logs).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` units named `unit` ("epochs", "windows"), with the elapsed time, an ETA and
/// the message set by `ProgressBar::set_message` (none until one is set).
pub fn new(len: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template =
        format!("{{bar:30}} {{pos}}/{{len}} {unit} [{{elapsed_precise}}, eta {{eta}}] {{msg}}");
    bar.set_style(ProgressStyle::with_template(&template).expect("a valid template"));
    bar
}

/// A line above the bar, or on its own where the bar is hidden.
pub fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}
