//! Writes the crate documentation, `$OUT_DIR/README.md`, which `src/lib.rs` includes: README.md
//! with each figure replaced by a line naming its file.
//!
//! README's figures are images with paths inside the repository (`docs/figures/*.svg`): GitHub
//! shows them, but docs.rs has only the crate's rustdoc pages, where such a path leads nowhere.
//! Everything else, the code blocks included (they are doc-tests), is README's text unchanged.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    println!("cargo::rerun-if-changed=README.md");
    let dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets the manifest dir"));
    let readme = fs::read_to_string(dir.join("README.md")).expect("README.md: the crate docs");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("README.md");
    fs::write(&out, crate_docs(&readme)).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}

/// README's text with each figure line replaced; panics at any other link to a file of the
/// repository, which would be broken on docs.rs as the figures were.
fn crate_docs(readme: &str) -> String {
    let mut docs = String::with_capacity(readme.len());
    let mut in_code = false;
    for (number, line) in readme.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if !in_code {
            if let Some(note) = figure_note(line) {
                docs.push_str(&note);
                docs.push('\n');
                continue;
            }
            if let Some(target) = relative_link(line) {
                panic!(
                    "README.md:{}: `{target}` is a path inside the repository, which the crate \
                     docs on docs.rs cannot show: name it in backticks instead, or put it on a \
                     line of its own as a figure",
                    number + 1
                );
            }
        }
        docs.push_str(line);
        docs.push('\n');
    }
    docs
}

/// A figure, `![alt](path)` alone on its line with `path` inside the repository: the note that
/// replaces it.
fn figure_note(line: &str) -> Option<String> {
    let (alt, path) = line.trim().strip_prefix("![")?.split_once("](")?;
    let path = path.strip_suffix(')')?;
    is_relative(path).then(|| format!("*Figure: {alt} (`{path}` in the repository).*"))
}

/// The first link or image target on the line that is a path inside the repository.
fn relative_link(line: &str) -> Option<&str> {
    line.match_indices("](").find_map(|(at, _)| {
        let rest = &line[at + 2..];
        let target = &rest[..rest.find(')')?];
        is_relative(target).then_some(target)
    })
}

fn is_relative(target: &str) -> bool {
    !target.contains("://") && !target.starts_with('#') && !target.starts_with("mailto:")
}
