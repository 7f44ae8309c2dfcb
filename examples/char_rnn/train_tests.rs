//! Whole runs of the example on a tiny corpus and model: resume, Ctrl-C, and the errors a run
//! reports before it trains.

use super::*;
use crate::args::{ModelFlag, parse_from};
use std::path::{Path, PathBuf};

/// A directory of this test's own, emptied.
fn temp(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("char_rnn-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny corpus in `dir`.
fn corpus(dir: &Path) -> PathBuf {
    let path = dir.join("corpus.txt");
    std::fs::write(
        &path,
        "the quick brown fox jumps over the lazy dog. ".repeat(20),
    )
    .unwrap();
    path
}

/// The flags of a tiny run on `dir`'s corpus, then `flags`.
fn args(dir: &Path, flags: &[&str]) -> Args {
    let corpus = corpus(dir);
    let tiny = [
        "--hidden", "4", "--layers", "1", "--seq", "5", "--batch", "2",
    ];
    let argv = ["char_rnn", "--corpus", corpus.to_str().unwrap()]
        .into_iter()
        .chain(tiny)
        .chain(flags.iter().copied());
    parse_from(argv).unwrap()
}

fn run(args: &Args, stop: bool) -> Res<Outcome> {
    train(args, NaiveCpu::<f32>::new(), "test", &AtomicBool::new(stop))
}

fn step_of(path: &Path) -> u64 {
    let checkpoint = Checkpoint::load(NaiveCpu::<f32>::new(), path).unwrap();
    checkpoint.progress.step
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_resumed_run_saves_into_the_files_it_resumed_from() {
    let dir = temp("resume");
    let (best, last) = (dir.join("m.safetensors"), dir.join("m.last.safetensors"));
    let first = args(
        &dir,
        &["--steps", "4", "--eval-every", "2", "--save", s(&best)],
    );
    assert_eq!(run(&first, false).unwrap(), Outcome::Finished);
    assert_eq!(step_of(&last), 4);
    // Resumed from `.last` with no --save: the same two files, not char_rnn.safetensors.
    let resumed = args(
        &dir,
        &["--steps", "6", "--eval-every", "2", "--resume", s(&last)],
    );
    assert_eq!(run(&resumed, false).unwrap(), Outcome::Finished);
    assert_eq!(step_of(&last), 6);
    // Nothing left to do.
    let message = run(&resumed, false).unwrap_err().to_string();
    assert!(
        message.starts_with("--steps 6: the checkpoint is at step 6 already"),
        "{message}"
    );
    // A new run does not overwrite them unasked.
    let message = run(&first, false).unwrap_err().to_string();
    assert!(message.contains("exists: pass --resume"), "{message}");
    assert!(
        message.contains(&format!("--resume {}", last.display())),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stop_request_saves_the_last_checkpoint_at_the_step_reached() {
    let dir = temp("stop");
    let (best, last) = (dir.join("m.safetensors"), dir.join("m.last.safetensors"));
    let flags = ["--steps", "50", "--eval-every", "10", "--save", s(&best)];
    // The flag is checked after every update: set from the start, the run makes one.
    assert_eq!(
        run(&args(&dir, &flags), true).unwrap(),
        Outcome::Interrupted
    );
    assert_eq!(step_of(&last), 1);
    assert!(!best.exists(), "no evaluation ran: no best checkpoint");
    // And goes on from there.
    let resumed = args(
        &dir,
        &["--steps", "3", "--eval-every", "10", "--resume", s(&last)],
    );
    assert_eq!(run(&resumed, false).unwrap(), Outcome::Finished);
    assert_eq!((step_of(&last), step_of(&best)), (3, 3));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Sends SIGINT to this test process with `kill`: Unix only. From then on, the first Ctrl-C
/// of whoever runs the tests sets the flag, and the second ends them.
#[cfg(unix)]
#[test]
fn ctrl_c_sets_the_stop_flag() {
    let stop = crate::stop_on_ctrl_c().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-INT", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let waited = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "SIGINT did not set the flag"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_resumed_run_refuses_another_model_and_another_text() {
    let dir = temp("refuse");
    let best = dir.join("m.safetensors");
    let last = dir.join("m.last.safetensors");
    run(&args(&dir, &["--steps", "2", "--save", s(&best)]), false).unwrap();
    // `--hidden 4` is on the command line already (`args`): `--hidden 512` in its place.
    let mut bigger = args(&dir, &["--steps", "4", "--resume", s(&last)]);
    bigger.hidden = 512;
    let message = run(&bigger, false).unwrap_err().to_string();
    assert!(
        message.starts_with("--hidden 512, but the checkpoint's model has 4"),
        "{message}"
    );
    // The same model flags as the checkpoint's are accepted (a repeated command line: `args`
    // gives `--hidden 4 --layers 1`).
    let same = args(&dir, &["--steps", "3", "--resume", s(&last)]);
    assert_eq!(
        same.model_flags_given,
        [ModelFlag::Hidden, ModelFlag::Layers]
    );
    run(&same, false).unwrap();
    // A text with a character the checkpoint's vocabulary lacks, of the same length.
    let other = dir.join("other.txt");
    let text = "the quick brown fox jumps over the lazy cat! ".repeat(20);
    std::fs::write(&other, text).unwrap();
    let mut resumed = args(&dir, &["--steps", "4", "--resume", s(&last)]);
    resumed.corpus = Some(other.clone());
    let message = run(&resumed, false).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("--corpus {}: character '!'", other.display())),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_errors_before_training_name_the_flag() {
    let dir = temp("before");
    let file = dir.join("plain");
    std::fs::write(&file, "x").unwrap();
    let unwritable = file.join("m.safetensors");
    let message = run(&args(&dir, &["--save", s(&unwritable)]), false).unwrap_err();
    assert!(message.to_string().starts_with("--save "), "{message}");
    let missing = dir.join("missing.txt");
    let mut no_corpus = args(&dir, &["--save", s(&dir.join("m.safetensors"))]);
    no_corpus.corpus = Some(missing.clone());
    let message = run(&no_corpus, false).unwrap_err().to_string();
    assert!(message.starts_with(&format!("--corpus {}: ", missing.display())));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sampling_names_the_flag_of_a_bad_prime_or_model() {
    let dir = temp("sample");
    let best = dir.join("m.safetensors");
    run(&args(&dir, &["--steps", "1", "--save", s(&best)]), false).unwrap();
    let sample = |flags: &[&str]| {
        let all = [&["--sample", "5", "--save", s(&best)], flags].concat();
        crate::sample_only(&args(&dir, &all), NaiveCpu::<f32>::new(), 5)
    };
    assert_eq!(sample(&["--prime", "the"]).unwrap(), Outcome::Finished);
    assert_eq!(sample(&["--temperature", "0"]).unwrap(), Outcome::Finished);
    let message = sample(&["--prime", "the Zebra"]).unwrap_err().to_string();
    assert!(message.starts_with("--prime: character 'Z' is not in the model's vocabulary"));
    let message = sample(&["--cell", "gru"]).unwrap_err().to_string();
    assert!(message.starts_with("--cell gru, but the checkpoint's model has lstm"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn zero_steps_save_the_initial_model() {
    let dir = temp("zero");
    let (best, last) = (dir.join("m.safetensors"), dir.join("m.last.safetensors"));
    let zero = args(&dir, &["--steps", "0", "--save", s(&best)]);
    assert_eq!(run(&zero, false).unwrap(), Outcome::Finished);
    assert_eq!((step_of(&best), step_of(&last)), (0, 0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cuda_without_its_backend_or_feature_is_refused() {
    let dir = temp("cuda");
    let message = crate::run(&args(&dir, &["--cuda", "0"])).unwrap_err();
    assert!(message.to_string().starts_with("--cuda "), "{message}");
    // Without the feature `cuda`, the candle backend refuses the device, naming the feature.
    if cfg!(not(feature = "cuda")) {
        let on_candle = args(&dir, &["--backend", "candle", "--cuda", "0"]);
        let message = crate::run(&on_candle).unwrap_err().to_string();
        assert!(message.contains("feature `"), "{message}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 15's check: 50 updates of the default model (a 2-layer LSTM of 128 on the default
/// corpus, RMSprop, clipping, exponential decay) give the same losses on `Candle` as on `Cpu`,
/// within 1e-5 relative (f32). Run by `.ci/run`'s candle step.
#[cfg(feature = "candle")]
#[test]
fn fifty_updates_of_the_default_model_agree_on_candle_and_cpu() {
    let dir = temp("candle");
    let save = dir.join("m.safetensors");
    let args = parse_from(["char_rnn", "--steps", "50", "--save", s(&save)]).unwrap();
    fn losses<B: Kernels<Scalar = f32>>(args: &Args, backend: B) -> Vec<f32> {
        let schedule = LrSchedule::of(args).unwrap();
        let mut run = Run::prepare(args, backend).unwrap();
        let mut window = Window::default();
        (0..50)
            .map(|_| run.update(&mut window, &schedule).unwrap())
            .collect()
    }
    let on_cpu = losses(&args, Cpu::<f32>::new());
    let on_candle = losses(&args, recurrent::Candle::<f32>::cpu());
    let worst = on_cpu
        .iter()
        .zip(&on_candle)
        .map(|(a, b)| ((a - b) / a).abs())
        .fold(0.0_f32, f32::max);
    println!("50 updates: worst relative difference of the losses {worst:.2e}");
    assert!(worst <= 1e-5, "Cpu {on_cpu:?}\ncandle {on_candle:?}");
    assert!(on_cpu[49] < on_cpu[0], "the loss falls: {on_cpu:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_log_gets_a_row_per_evaluation_and_a_resumed_run_appends() {
    let dir = temp("log");
    let (best, last, log) = (
        dir.join("m.safetensors"),
        dir.join("m.last.safetensors"),
        dir.join("log.csv"),
    );
    let flags = ["--eval-every", "2", "--save", s(&best), "--log", s(&log)];
    run(
        &args(&dir, &[&["--steps", "4"], &flags[..]].concat()),
        false,
    )
    .unwrap();
    let resumed = [&["--steps", "6", "--resume", s(&last)], &flags[..]].concat();
    run(&args(&dir, &resumed), false).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], report::CsvLog::HEADER, "{text}");
    let steps: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["2", "4", "6"],
        "one header, then steps 2, 4 and 6: {text}"
    );
    for line in &lines[1..] {
        assert_eq!(line.split(',').count(), 7, "{line}");
    }
    // A log that cannot be written stops the run before it trains, naming the flag.
    let blocked = dir.join("m.safetensors").join("log.csv");
    let bad = ["--force", "--save", s(&best), "--log", s(&blocked)];
    let message = run(&args(&dir, &bad), false).unwrap_err().to_string();
    assert!(message.starts_with("--log "), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}
