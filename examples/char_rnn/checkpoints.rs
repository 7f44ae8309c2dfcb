//! The checkpoint files: which paths a run writes, that they can be written before training
//! starts, loading one with messages in terms of the flags, and what a resumed run must share
//! with the run it continues.

use crate::Res;
use crate::args::{Args, CellArg, DEFAULT_SAVE, ModelFlag};
use recurrent::CellKind;
use recurrent::checkpoint::{Checkpoint, FORMAT_KEY};
use recurrent::data::Vocab;
use recurrent::io::StateDict;
use recurrent::prelude::*;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// The two files of a run: the best checkpoint (by validation loss) and the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    pub best: PathBuf,
    pub last: PathBuf,
}

impl Files {
    /// `--save`; without it, the files of the run `--resume` continues (`--resume m.last.safetensors`
    /// or `--resume m.safetensors`: `m.safetensors` and `m.last.safetensors`), else the default.
    pub fn of(args: &Args) -> Files {
        let best = match (&args.save, &args.resume) {
            (Some(save), _) => save.clone(),
            (None, Some(resume)) => best_of(resume),
            (None, None) => PathBuf::from(DEFAULT_SAVE),
        };
        Files {
            last: last_of(&best),
            best,
        }
    }
}

const LAST_SUFFIX: &str = ".last.safetensors";

/// `m.last.safetensors` → `m.safetensors`; any other name is the best checkpoint's own.
fn best_of(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    match name.as_deref().and_then(|n| n.strip_suffix(LAST_SUFFIX)) {
        Some(stem) if !stem.is_empty() => path.with_file_name(format!("{stem}.safetensors")),
        _ => path.to_path_buf(),
    }
}

/// `m.safetensors` → `m.last.safetensors`.
fn last_of(best: &Path) -> PathBuf {
    let stem = best
        .file_stem()
        .map_or_else(|| "char_rnn".into(), |s| s.to_string_lossy());
    best.with_file_name(format!("{stem}{LAST_SUFFIX}"))
}

/// Creates the directory of `--save` and checks that a file can be written in it and that
/// neither checkpoint path is a directory: a run that cannot save fails now, not after training.
pub fn check_writable(files: &Files) -> Res<()> {
    let dir = match files.best.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let cannot = |what: String| format!("--save {}: {what}", files.best.display());
    if dir.exists() && !dir.is_dir() {
        return Err(cannot(format!("{} is not a directory", dir.display())).into());
    }
    std::fs::create_dir_all(&dir).map_err(|e| {
        cannot(format!(
            "cannot create the directory {}: {e}",
            dir.display()
        ))
    })?;
    for path in [&files.best, &files.last] {
        if path.is_dir() {
            return Err(cannot(format!("{} is a directory", path.display())).into());
        }
    }
    let probe = dir.join(format!(".char_rnn-write-check-{}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| cannot(format!("cannot write in {}: {e}", dir.display())))?;
    std::fs::remove_file(&probe)
        .map_err(|e| cannot(format!("cannot remove {}: {e}", probe.display())))?;
    Ok(())
}

/// Loads the checkpoint given to `flag` (`--resume` or `--save`).
pub fn load<B: Kernels>(backend: B, flag: &str, path: &Path) -> Res<Checkpoint<B>> {
    let at = |e: &dyn std::fmt::Display| format!("{flag} {}: {e}", path.display());
    let dict = StateDict::read(path).map_err(|e| match e {
        // The error names the path already.
        Error::Io { message, .. } => at(&message),
        other => at(&other),
    })?;
    if !dict.metadata().contains_key(FORMAT_KEY) {
        return Err(at(
            &"not a checkpoint (a file of plain weights, from PyTorch say, holds no \
                        optimiser state, progress or vocabulary to train on or sample with)",
        )
        .into());
    }
    Ok(Checkpoint::from_state_dict(backend, &dict).map_err(|e| at(&e))?)
}

/// A run resumed from an earlier checkpoint than the last one it will overwrite: the warning
/// that says so (the steps between are lost unless the user resumes from the last one).
pub fn later_last<B: Kernels>(backend: B, files: &Files, resumed_step: u64) -> Option<String> {
    let last = Checkpoint::load(backend, &files.last).ok()?;
    (last.progress.step > resumed_step).then(|| {
        format!(
            "{} is at step {}, later than the checkpoint resumed (step {resumed_step}), and this \
             run overwrites it; to go on from step {} instead, stop now (Ctrl-C) and pass \
             --resume {}",
            files.last.display(),
            last.progress.step,
            last.progress.step,
            files.last.display()
        )
    })
}

/// Refuses a model flag given on the command line that differs from the resumed checkpoint's
/// model, which is the one trained.
pub fn check_model_flags(args: &Args, config: &RnnConfig) -> Res<()> {
    for flag in &args.model_flags_given {
        let (given, saved) = match flag {
            ModelFlag::Cell => (
                cell_name(args.cell),
                format!("{:?}", config.kind()).to_lowercase(),
            ),
            ModelFlag::Hidden => (args.hidden.to_string(), config.hidden_size().to_string()),
            ModelFlag::Layers => (args.layers.to_string(), config.num_layers().to_string()),
            ModelFlag::Dropout => (
                args.dropout.to_string(),
                config.dropout_probability().to_string(),
            ),
            ModelFlag::OutputDropout => (
                args.output_dropout.to_string(),
                config.output_dropout_probability().to_string(),
            ),
        };
        if given != saved && !same_cell(*flag, args.cell, config) {
            let flag = flag.flag();
            return Err(format!(
                "{flag} {given}, but the checkpoint's model has {saved}: the model of a resumed \
                 run (or of --sample) is the checkpoint's; leave {flag} out, or start a new run \
                 with another --save"
            )
            .into());
        }
    }
    Ok(())
}

fn cell_name(cell: CellArg) -> String {
    format!("{cell:?}").to_lowercase()
}

fn same_cell(flag: ModelFlag, cell: CellArg, config: &RnnConfig) -> bool {
    flag == ModelFlag::Cell
        && matches!(
            (cell, config.kind()),
            (CellArg::Rnn, CellKind::Rnn(_))
                | (CellArg::Lstm, CellKind::Lstm)
                | (CellArg::Gru, CellKind::Gru)
        )
}

/// What a resumed run must share with the run it continues, saved with every checkpoint: the
/// data layout, and the cosine's rates, which depend on the run's length (the exponential
/// decay may be changed on resume).
pub fn layout(args: &Args, corpus_chars: usize) -> Vec<(&'static str, String)> {
    let lr_schedule = match (args.schedule, args.steps) {
        (crate::args::ScheduleArg::Cosine, Some(steps)) => format!(
            "cosine from {:?} to {:?} over {steps} steps",
            args.lr, args.lr_min
        ),
        _ => "exponential".to_string(),
    };
    vec![
        ("batch", args.batch.to_string()),
        ("seq", args.seq.to_string()),
        ("val_fraction", format!("{:?}", args.val_fraction)),
        ("corpus_chars", corpus_chars.to_string()),
        ("lr_schedule", lr_schedule),
    ]
}

/// Refuses a resumed run whose layout differs from its checkpoint's, or that has nothing left
/// to do.
pub fn check_resume<B: Kernels>(
    args: &Args,
    checkpoint: &Checkpoint<B>,
    layout: &[(&'static str, String)],
) -> Res<()> {
    let differ: Vec<String> = layout
        .iter()
        // Checkpoints written before the schedule was saved have none: not checked.
        .filter(|(key, _)| *key != "lr_schedule" || checkpoint.metadata.contains_key(*key))
        .filter(|(key, value)| checkpoint.metadata.get(*key) != Some(value))
        .map(|(key, value)| {
            let saved = checkpoint.metadata.get(*key).map_or("none", String::as_str);
            format!("{key}: {saved} in the checkpoint, {value} now")
        })
        .collect();
    if !differ.is_empty() {
        return Err(format!(
            "--resume with another data layout or schedule: {}",
            differ.join("; ")
        )
        .into());
    }
    check_model_flags(args, checkpoint.rnn.config())?;
    match args.steps {
        Some(steps) if steps <= checkpoint.progress.step => Err(format!(
            "--steps {steps}: the checkpoint is at step {} already; give more --steps to go on",
            checkpoint.progress.step
        )
        .into()),
        _ => Ok(()),
    }
}

/// The corpus as ids of the checkpoint's vocabulary, with an unknown character named in terms
/// of the flags.
pub fn encode_corpus(vocab: &Vocab, text: &str, corpus: &Path, resumed: bool) -> Res<Vec<usize>> {
    vocab.encode(text).map_err(|e| match e {
        Error::UnknownChar {
            character,
            position,
            ..
        } if resumed => format!(
            "--corpus {}: character {character:?} at char position {position} is not in the \
             vocabulary of the --resume checkpoint: resume with the text it was trained on",
            corpus.display()
        )
        .into(),
        other => other.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse_from;
    use recurrent::rand::SeedableRng;
    use recurrent::rand::rngs::StdRng;

    fn args(flags: &[&str]) -> Args {
        parse_from(std::iter::once("char_rnn").chain(flags.iter().copied())).unwrap()
    }

    fn files(best: &str, last: &str) -> Files {
        Files {
            best: best.into(),
            last: last.into(),
        }
    }

    #[test]
    fn a_resumed_run_saves_where_it_resumed_from_unless_save_says_otherwise() {
        let default = files("char_rnn.safetensors", "char_rnn.last.safetensors");
        assert_eq!(Files::of(&args(&[])), default);
        let resumed = files("d/m.safetensors", "d/m.last.safetensors");
        assert_eq!(
            Files::of(&args(&["--resume", "d/m.last.safetensors"])),
            resumed
        );
        assert_eq!(Files::of(&args(&["--resume", "d/m.safetensors"])), resumed);
        assert_eq!(
            Files::of(&args(&[
                "--resume",
                "d/m.last.safetensors",
                "--save",
                "x.safetensors"
            ])),
            files("x.safetensors", "x.last.safetensors")
        );
        // A name that is only the suffix is no pair's last file.
        assert_eq!(
            best_of(Path::new(".last.safetensors")),
            Path::new(".last.safetensors")
        );
    }

    #[test]
    fn an_unwritable_save_is_refused_before_training() {
        let dir = std::env::temp_dir().join(format!("char_rnn-writable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A directory whose parent is a plain file cannot be made, whoever runs the test.
        let file = dir.join("plain");
        std::fs::write(&file, "x").unwrap();
        let inside = file.join("m.safetensors");
        let message = check_writable(&Files::of(&args(&["--save", inside.to_str().unwrap()])))
            .unwrap_err()
            .to_string();
        let expected = format!(
            "--save {}: {} is not a directory",
            inside.display(),
            file.display()
        );
        assert_eq!(message, expected);
        // Nor one inside it.
        let deeper = file.join("sub/m.safetensors");
        let message = check_writable(&Files::of(&args(&["--save", deeper.to_str().unwrap()])))
            .unwrap_err()
            .to_string();
        assert!(message.starts_with(&format!("--save {}: cannot create", deeper.display())));
        // A checkpoint path that is a directory.
        let message = check_writable(&Files::of(&args(&["--save", dir.to_str().unwrap()])))
            .unwrap_err()
            .to_string();
        assert!(message.ends_with("is a directory"), "{message}");
        // A new directory is made, and the check leaves nothing behind.
        let fresh = dir.join("new/m.safetensors");
        check_writable(&Files::of(&args(&["--save", fresh.to_str().unwrap()]))).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.join("new")).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn model(config: RnnConfig) -> Rnn<NaiveCpu<f32>> {
        Rnn::new(NaiveCpu::new(), config, &mut StdRng::seed_from_u64(1)).unwrap()
    }

    #[test]
    fn a_model_flag_that_differs_from_the_checkpoints_is_refused() {
        let config = RnnConfig::lstm(5, 8).layers(2).output(5);
        let same = args(&[
            "--cell",
            "lstm",
            "--hidden",
            "8",
            "--layers",
            "2",
            "--dropout",
            "0",
        ]);
        check_model_flags(&same, &config).unwrap();
        check_model_flags(&args(&["--seq", "3"]), &config).unwrap();
        for (flags, expected) in [
            (
                ["--hidden", "512"],
                "--hidden 512, but the checkpoint's model has 8",
            ),
            (
                ["--cell", "gru"],
                "--cell gru, but the checkpoint's model has lstm",
            ),
            (
                ["--layers", "3"],
                "--layers 3, but the checkpoint's model has 2",
            ),
            (
                ["--dropout", "0.5"],
                "--dropout 0.5, but the checkpoint's model has 0",
            ),
            (
                ["--output-dropout", "0.5"],
                "--output-dropout 0.5, but the checkpoint's model has 0",
            ),
        ] {
            let message = check_model_flags(&args(&flags), &config)
                .unwrap_err()
                .to_string();
            assert!(message.starts_with(expected), "{message}");
        }
        let rnn = RnnConfig::rnn(5, 8).output(5);
        check_model_flags(&args(&["--cell", "rnn"]), &rnn).unwrap();
        assert!(model(rnn).config().hidden_size() == 8);
    }

    #[test]
    fn a_resumed_run_with_nothing_left_to_do_is_refused() {
        let rnn = model(RnnConfig::gru(5, 4).output(5));
        let opt = Sgd::new(0.1).unwrap();
        let mut progress = recurrent::checkpoint::Progress::new(1);
        progress.step = 9;
        let run = args(&["--steps", "9"]);
        let layout = layout(&run, 100);
        let mut checkpoint = Checkpoint::new(rnn, &opt, progress);
        for (key, value) in &layout {
            checkpoint = checkpoint.with_metadata(*key, value.clone());
        }
        let message = check_resume(&run, &checkpoint, &layout)
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("--steps 9: the checkpoint is at step 9 already"));
        check_resume(&args(&["--steps", "10"]), &checkpoint, &layout).unwrap();
        let other = args(&["--steps", "10", "--seq", "7"]);
        let message = check_resume(&other, &checkpoint, &super::layout(&other, 100)).unwrap_err();
        assert!(message.to_string().starts_with(
            "--resume with another data layout or schedule: seq: 50 in the checkpoint, 7 now"
        ));
    }

    #[test]
    fn resuming_before_the_last_checkpoint_is_warned_of() {
        let dir = std::env::temp_dir().join(format!("char_rnn-later-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = Files {
            best: dir.join("m.safetensors"),
            last: dir.join("m.last.safetensors"),
        };
        let backend = NaiveCpu::<f32>::new();
        assert_eq!(later_last(backend.clone(), &files, 3), None, "no last file");
        let mut progress = recurrent::checkpoint::Progress::new(1);
        progress.step = 7;
        let rnn = model(RnnConfig::gru(5, 4).output(5));
        let checkpoint = Checkpoint::new(rnn, &Sgd::new(0.1).unwrap(), progress);
        checkpoint.save(&files.last).unwrap();
        let warning = later_last(backend.clone(), &files, 3).expect("a warning");
        let expected = format!("{} is at step 7, later than", files.last.display());
        assert!(warning.starts_with(&expected), "{warning}");
        assert_eq!(
            later_last(backend.clone(), &files, 7),
            None,
            "resumed from the last"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_that_are_no_checkpoint_are_refused_by_flag() {
        let dir = std::env::temp_dir().join(format!("char_rnn-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let weights = dir.join("weights.safetensors");
        recurrent::io::save(&model(RnnConfig::lstm(3, 2)), &weights).unwrap();
        let message = load(NaiveCpu::<f32>::new(), "--resume", &weights)
            .unwrap_err()
            .to_string();
        assert!(message.starts_with(&format!("--resume {}: not a checkpoint", weights.display())));
        assert!(!message.contains("io::load"), "{message}");
        let missing = dir.join("missing.safetensors");
        let message = load(NaiveCpu::<f32>::new(), "--save", &missing)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(&format!("--save {}: No such file", missing.display())),
            "{message}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corpus_outside_the_checkpoints_vocabulary_names_the_flags() {
        let vocab = Vocab::from_text("abc").unwrap();
        let path = Path::new("new.txt");
        assert_eq!(encode_corpus(&vocab, "cab", path, true).unwrap(), [2, 0, 1]);
        let message = encode_corpus(&vocab, "abz", path, true)
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "--corpus new.txt: character 'z' at char position 2 is not in the vocabulary of \
             the --resume checkpoint: resume with the text it was trained on"
        );
        assert!(!message.contains("Vocab::"));
    }
}
