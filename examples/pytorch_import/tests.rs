//! The example's runs (a parity fixture, an f32 model on an input file, token ids) and every
//! error it reports instead of running.

use super::*;
use recurrent::{Tensor, io};
use std::path::Path;

/// A directory of this test's own, emptied.
fn temp(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pytorch_import-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn args(model: &Path, input: Option<&Path>) -> Args {
    Args {
        model: model.to_path_buf(),
        input: input.map(Path::to_path_buf),
    }
}

/// A saved f32 model of `config` in `dir`, and the model.
fn f32_model(dir: &Path, config: RnnConfig) -> (PathBuf, Rnn<Cpu<f32>>) {
    let rnn = Rnn::new(Cpu::<f32>::new(), config, &mut StdRng::seed_from_u64(5)).unwrap();
    let path = dir.join("model.safetensors");
    io::save(&rnn, &path).unwrap();
    (path, rnn)
}

/// A file of the given tensors in `dir`.
fn tensors(dir: &Path, name: &str, entries: Vec<(&str, Tensor)>) -> PathBuf {
    let mut dict = StateDict::new();
    for (key, tensor) in entries {
        dict.insert(key, tensor);
    }
    let path = dir.join(name);
    dict.write(&path).unwrap();
    path
}

fn floats(dtype: Dtype, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    let data = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
    Tensor::float(dtype, shape.to_vec(), data).unwrap()
}

fn error(args: &Args) -> String {
    run(args).expect_err("the run must fail")
}

#[test]
fn the_fixture_runs_in_f64_as_pytorch_computed_it() {
    let run = run(&parse(Vec::<String>::new()).unwrap()).unwrap();
    assert_eq!(run.dtype, Dtype::F64);
    let worst = run
        .worst
        .expect("the fixture holds PyTorch's logits and h_n");
    eprintln!("largest difference from PyTorch on the fixture: {worst:.1e}");
    assert!(worst < 1e-13, "{worst}");
    assert!(
        run.report.contains("computed in F64 on Cpu"),
        "{}",
        run.report
    );
    assert!(
        run.report.contains("output, shape (5, 3, "),
        "{}",
        run.report
    );
}

#[test]
fn an_f32_model_runs_in_f32_on_an_input_file() {
    let dir = temp("f32");
    let (model, rnn) = f32_model(&dir, RnnConfig::gru(3, 4).layers(2).output(2));
    let x = floats(Dtype::F32, &[2, 2, 3]);
    let h0 = floats(Dtype::F32, &[2, 2, 4]);
    let input = tensors(
        &dir,
        "input.safetensors",
        vec![("input", x.clone()), ("h0", h0.clone())],
    );
    let run = run(&args(&model, Some(&input))).unwrap();
    assert_eq!((run.dtype, run.worst), (Dtype::F32, None));
    // The same numbers as the model run directly on Cpu<f32>, printed with 8 digits.
    let b = rnn.backend();
    let to_f32 = |t: &Tensor| t.floats().unwrap().iter().map(|&v| v as f32).collect();
    let xs = b.from_vec(4, 3, to_f32(&x)).unwrap();
    let state = State::from_pytorch(b, [2, 2, 4], to_f32(&h0), None).unwrap();
    let trace = rnn.forward(&Input::dense(xs, 2), Some(&state)).unwrap();
    let logits = to_f64(b, trace.logits());
    let last = format!("  [1, 1] {}\n", fmt::<Cpu<f32>>(&logits[6..]));
    assert!(run.report.contains(&last), "{last} not in\n{}", run.report);
    assert!(
        run.report.contains("computed in F32 on Cpu"),
        "{}",
        run.report
    );
    assert!(
        run.report.contains("h_n, shape (2, 2, 4):"),
        "{}",
        run.report
    );
}

#[test]
fn token_ids_run_as_one_hot_rows() {
    let dir = temp("ids");
    let (model, rnn) = f32_model(&dir, RnnConfig::lstm(5, 4).output(5));
    let ids = Tensor::int(vec![3, 2], vec![0, 4, 1, 3, 2, 2]).unwrap();
    let lengths = Tensor::int(vec![2], vec![3, 2]).unwrap();
    let input = tensors(
        &dir,
        "ids.safetensors",
        vec![("ids", ids), ("lengths", lengths)],
    );
    let run = run(&args(&model, Some(&input))).unwrap();
    let direct = Input::ids(vec![0, 4, 1, 3, 2, 2], 2).with_lengths(vec![3, 2]);
    let trace = rnn.forward(&direct, None).unwrap();
    let logits = to_f64(rnn.backend(), trace.logits());
    let first = format!("  [0, 0] {}\n", fmt::<Cpu<f32>>(&logits[..5]));
    assert!(
        run.report.contains(&first),
        "{first} not in\n{}",
        run.report
    );
}

#[test]
fn command_line_errors_say_what_is_wrong() {
    let parse = |args: &[&str]| parse(args.iter().map(|s| s.to_string())).unwrap_err();
    assert_eq!(
        parse(&["--input"]),
        "--input needs a file: --input INPUT.safetensors"
    );
    assert!(parse(&["--steps", "3"]).starts_with("unknown flag --steps; usage:"));
    assert!(parse(&["a.safetensors", "b.safetensors"]).starts_with("more than one model file"));
    assert_eq!(parse(&["--help"]), USAGE);
    let ok = super::parse(["m.safetensors", "--input", "x.safetensors"].map(String::from));
    assert_eq!(
        ok,
        Ok(args(
            Path::new("m.safetensors"),
            Some(Path::new("x.safetensors"))
        ))
    );
}

#[test]
fn missing_files_name_the_flag_and_the_path() {
    let dir = temp("missing");
    let absent = dir.join("absent.safetensors");
    let model_error = error(&args(&absent, None));
    assert!(model_error.starts_with(&format!("model file {}: ", absent.display())));
    let (model, _) = f32_model(&dir, RnnConfig::rnn(3, 2));
    let input_error = error(&args(&model, Some(&absent)));
    assert!(input_error.starts_with(&format!("--input {}: ", absent.display())));
    // A file of other tensors: the names it has.
    let other = tensors(
        &dir,
        "other.safetensors",
        vec![("x", floats(Dtype::F32, &[2]))],
    );
    let e = error(&args(&model, Some(&other)));
    assert!(
        e.contains("holds no tensor `input`") && e.ends_with("it has: x"),
        "{e}"
    );
}

#[test]
fn wrong_dtypes_are_refused_with_the_fix() {
    let dir = temp("dtype");
    let (model, rnn) = f32_model(&dir, RnnConfig::rnn(3, 2).output(3));
    let x64 = tensors(
        &dir,
        "x64.safetensors",
        vec![("input", floats(Dtype::F64, &[2, 1, 3]))],
    );
    let e = error(&args(&model, Some(&x64)));
    assert!(e.starts_with("input is F64 but the model is F32") && e.contains("x.float()"));
    let ids = tensors(
        &dir,
        "fids.safetensors",
        vec![("ids", floats(Dtype::F32, &[2, 1]))],
    );
    assert!(error(&args(&model, Some(&ids))).starts_with("ids: expected integers (int64)"));
    let x = floats(Dtype::F32, &[2, 1, 3]);
    let lengths = ("lengths", floats(Dtype::F32, &[1]));
    let bad = tensors(&dir, "lengths.safetensors", vec![("input", x), lengths]);
    assert_eq!(
        error(&args(&model, Some(&bad))),
        "lengths: expected integers (int64)"
    );
    // A model of two dtypes.
    let mut dict = rnn.state_dict();
    dict.insert("weight_hh_l0", floats(Dtype::F64, &[2, 2]));
    let mixed = dir.join("mixed.safetensors");
    dict.write(&mixed).unwrap();
    let e = error(&args(&mixed, None));
    assert!(
        e.contains("weight_hh_l0 is F64 but weight_ih_l0 is F32"),
        "{e}"
    );
}

#[test]
fn wrong_shapes_and_ids_are_refused() {
    let dir = temp("shape");
    let (model, _) = f32_model(&dir, RnnConfig::rnn(3, 2).output(3));
    let cases: [(&str, Tensor, &str); 6] = [
        (
            "input",
            floats(Dtype::F32, &[2, 1, 4]),
            "input: expected shape (T, B, 3) with",
        ),
        (
            "input",
            floats(Dtype::F32, &[2, 3]),
            "input: expected shape (T, B, 3) (batch_first",
        ),
        ("input", floats(Dtype::F32, &[0, 1, 3]), "given [0, 1, 3]"),
        (
            "ids",
            Tensor::int(vec![3], vec![0, 1, 2]).unwrap(),
            "ids: expected shape (T, B)",
        ),
        (
            "ids",
            Tensor::int(vec![2, 1], vec![0, 3]).unwrap(),
            "entry 1 is 3, expected a value below 3",
        ),
        (
            "ids",
            Tensor::int(vec![2, 1], vec![0, -1]).unwrap(),
            "ids: entry 1 is -1, negative",
        ),
    ];
    for (i, (name, tensor, expected)) in cases.into_iter().enumerate() {
        let file = tensors(&dir, &format!("case{i}.safetensors"), vec![(name, tensor)]);
        let e = error(&args(&model, Some(&file)));
        assert!(e.contains(expected), "case {i}: {e}");
    }
    // An initial state of another batch.
    let x = ("input", floats(Dtype::F32, &[2, 1, 3]));
    let h0 = ("h0", floats(Dtype::F32, &[1, 2, 2]));
    let file = tensors(&dir, "h0.safetensors", vec![x, h0]);
    assert_eq!(
        error(&args(&model, Some(&file))),
        "h0: batch 2, but the input's is 1"
    );
}
