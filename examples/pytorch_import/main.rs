//! Loads a PyTorch model from a safetensors `state_dict`, runs it on an input of yours, and
//! prints what it computed in a form to compare with PyTorch's.
//!
//! ```text
//! cargo run --release --example pytorch_import                     # a committed parity fixture
//! cargo run --release --example pytorch_import -- model.safetensors
//! cargo run --release --example pytorch_import -- model.safetensors --input input.safetensors
//! ```
//!
//! Export from PyTorch with
//! `safetensors.torch.save_file(model.state_dict(), "model.safetensors")`, where `model` holds
//! an `nn.RNN`, `nn.LSTM` or `nn.GRU` and optionally an `nn.Linear` called `out`. The cell, sizes,
//! layers and directions are read off the names and shapes. The model runs on [`Cpu`] in the
//! file's dtype: `Cpu<f32>` for a float32 model, `Cpu<f64>` for a float64 one (`model.double()`),
//! so its numbers are comparable with PyTorch's in that dtype.
//!
//! The input file (`save_file({"input": x}, "input.safetensors")`) holds one of
//! - `input`, floats of shape `(T, B, I)` in the model's dtype (`batch_first=False`), or
//! - `ids`, integers of shape `(T, B)`: token ids below `I`, each standing for a one-hot row,
//!
//! and optionally `lengths` (integers, `(B,)`: `pack_padded_sequence`'s), `h0` and, for an LSTM,
//! `c0` (`(L*D, B, H)`). Without `--input`, the model file's own `input` is used if it has one
//! (the parity fixtures do), else five steps of ones. Where the files hold what PyTorch computed
//! (`logits`, `h_n`, as the parity fixtures do), the largest differences are printed too.
//!
//! What is printed: the output (the logits, or the top layer's hidden states without an
//! `out` layer) one row per `[t, b]`, as PyTorch's `print(y[t, b])` with
//! `torch.set_printoptions(precision=8)` shows them, and `h_n` one row per `[layer*D + d, b]`.

use recurrent::io::Dtype;
use recurrent::prelude::*;
use recurrent::{RnnConfig, Scalar, StateDict};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// A command-line or input error, as printed.
type Res<T> = std::result::Result<T, String>;

/// The command line.
#[derive(Debug, Clone, PartialEq)]
struct Args {
    model: PathBuf,
    input: Option<PathBuf>,
}

const USAGE: &str = "usage: pytorch_import [MODEL.safetensors] [--input INPUT.safetensors]";

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)).and_then(|args| run(&args)) {
        Ok(run) => {
            print!("{}", run.report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pytorch_import: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The arguments after the program's name.
fn parse(args: impl IntoIterator<Item = String>) -> Res<Args> {
    let (mut model, mut input) = (None, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Err(USAGE.to_string()),
            "--input" => {
                let file = args
                    .next()
                    .ok_or("--input needs a file: --input INPUT.safetensors")?;
                input = Some(PathBuf::from(file));
            }
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}; {USAGE}")),
            _ if model.is_some() => return Err(format!("more than one model file; {USAGE}")),
            _ => model = Some(PathBuf::from(arg)),
        }
    }
    let model = model.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/lstm_l2_bi_b3_h0_lengths.safetensors")
    });
    Ok(Args { model, input })
}

/// What a run printed, and how far it was from PyTorch's numbers where the files hold them.
#[derive(Debug)]
// `dtype` and `worst` are in the report too; the tests read them as values.
#[cfg_attr(not(test), allow(dead_code))]
struct Run {
    report: String,
    dtype: Dtype,
    /// The largest difference from PyTorch's `logits` and `h_n`, where given.
    worst: Option<f64>,
}

/// Reads the files and runs the model in its dtype.
fn run(args: &Args) -> Res<Run> {
    let model = args.model.display();
    let dict = StateDict::read(&args.model).map_err(|e| format!("model file {e}"))?;
    let config = RnnConfig::from_state_dict(&dict).map_err(|e| format!("{model}: {e}"))?;
    let inputs = match &args.input {
        Some(path) => Some(StateDict::read(path).map_err(|e| format!("--input {e}"))?),
        None => None,
    };
    let dtype = model_dtype(&dict, &config).map_err(|e| format!("{model}: {e}"))?;
    let data = inputs.as_ref().unwrap_or(&dict);
    let mut report = format!("{model}\n");
    let worst = match dtype {
        Dtype::F32 => compute(Cpu::<f32>::new(), &config, &dict, data, &mut report)?,
        _ => compute(Cpu::<f64>::new(), &config, &dict, data, &mut report)?,
    };
    Ok(Run {
        report,
        dtype,
        worst,
    })
}

/// The dtype every parameter has, F32 or F64.
fn model_dtype(dict: &StateDict, config: &RnnConfig) -> Res<Dtype> {
    let shapes = config.parameter_shapes().map_err(|e| e.to_string())?;
    let (first, _) = &shapes[0];
    let dtype = dict.get(first).ok_or(format!("no tensor {first}"))?.dtype();
    if !matches!(dtype, Dtype::F32 | Dtype::F64) {
        return Err(format!(
            "{first} is {dtype:?}: a model's weights are F32 or F64"
        ));
    }
    for (name, _) in &shapes {
        match dict.get(name).map(|t| t.dtype()) {
            Some(other) if other != dtype => {
                return Err(format!(
                    "{name} is {other:?} but {first} is {dtype:?}: save the model in one dtype \
                     (model.float() or model.double() before state_dict())"
                ));
            }
            _ => {} // a missing one is named by the model's own check
        }
    }
    Ok(dtype)
}

/// Runs the model on `backend` and writes the report; the largest difference from PyTorch's
/// numbers where `data` or the model file holds them.
fn compute<B: Kernels>(
    backend: B,
    config: &RnnConfig,
    dict: &StateDict,
    data: &StateDict,
    report: &mut String,
) -> Res<Option<f64>> {
    // Lenient: a fixture holds more than the parameters (its input and PyTorch's results).
    let rnn = Rnn::from_state_dict(backend.clone(), config.clone(), dict, false)
        .map_err(|e| e.to_string())?;
    let dtype = dtype_of::<B::Scalar>();
    let _ = writeln!(
        report,
        "{} with {} input(s), {} hidden, {} layer(s), {} direction(s), output {:?}; computed \
         in {dtype:?} on Cpu",
        config.kind().name(),
        config.input_size(),
        config.hidden_size(),
        config.num_layers(),
        config.directions(),
        config.output_size(),
    );
    let Sequence {
        input,
        state,
        steps,
        batch,
    } = read_input(&backend, data, config)?;
    let trace = rnn
        .forward(&input, state.as_ref())
        .map_err(|e| format!("running the model: {e}"))?;
    let logits = to_f64(&backend, trace.logits());
    let width = logits.len() / (steps * batch);
    rows::<B>(report, "output", &logits, [steps, batch, width]);
    let (h_n, _) = trace
        .final_state()
        .to_pytorch(&backend)
        .map_err(|e| e.to_string())?;
    let h_n: Vec<f64> = h_n.into_iter().map(Scalar::to_f64).collect();
    let hidden = config.hidden_size();
    rows::<B>(
        report,
        "h_n",
        &h_n,
        [h_n.len() / (batch * hidden), batch, hidden],
    );
    let mut worst = None;
    for (name, ours) in [("logits", &logits), ("h_n", &h_n)] {
        let theirs = data.get(name).or_else(|| dict.get(name));
        let theirs = theirs.and_then(|t| t.floats());
        if let Some(theirs) = theirs.filter(|t| t.len() == ours.len()) {
            let diff = ours.iter().zip(theirs).map(|(a, b)| (a - b).abs());
            let diff = diff.fold(0.0, f64::max);
            let _ = writeln!(
                report,
                "largest difference from PyTorch's {name}: {diff:.1e}"
            );
            worst = Some(diff.max(worst.unwrap_or(0.0)));
        }
    }
    Ok(worst)
}

/// `values` of PyTorch's shape `(n, B, W)`, one row per `[i, b]`.
fn rows<B: Backend>(
    report: &mut String,
    name: &str,
    values: &[f64],
    [n, batch, width]: [usize; 3],
) {
    let _ = writeln!(report, "\n{name}, shape ({n}, {batch}, {width}):");
    for (r, row) in values.chunks(width).enumerate() {
        let _ = writeln!(report, "  [{}, {}] {}", r / batch, r % batch, fmt::<B>(row));
    }
}

/// The input sequence with its lengths, its initial state, and its `(T, B)`.
struct Sequence<B: Backend> {
    input: Input<B>,
    state: Option<State<B>>,
    steps: usize,
    batch: usize,
}

/// The sequence `data` holds, or five steps of ones if it is the model file and holds none.
fn read_input<B: Backend>(backend: &B, data: &StateDict, config: &RnnConfig) -> Res<Sequence<B>> {
    let width = config.input_size();
    let (mut input, steps, batch) = match (data.get("input"), data.get("ids")) {
        (Some(x), _) if x.floats().is_some() => dense_input(backend, x, width)?,
        (Some(ids), _) | (None, Some(ids)) => id_input(ids, width)?,
        (None, None) if data.get("weight_ih_l0").is_some() => {
            // The model file itself, without an input: five steps of ones.
            let ones = backend.from_vec(5, width, vec![B::Scalar::of(1.0); 5 * width]);
            (Input::dense(ones.map_err(|e| e.to_string())?, 1), 5, 1)
        }
        (None, None) => {
            let names: Vec<&str> = data.names().collect();
            return Err(format!(
                "--input holds no tensor `input` (floats, (T, B, {width})) or `ids` \
                 (integers, (T, B)); it has: {}",
                names.join(", ")
            ));
        }
    };
    if let Some(lengths) = data.get("lengths") {
        let lengths = lengths.ints().ok_or("lengths: expected integers (int64)")?;
        let lengths = lengths
            .iter()
            .map(|&l| usize::try_from(l).unwrap_or(usize::MAX));
        input = input.with_lengths(lengths.collect());
    }
    let state = match data.get("h0") {
        Some(h0) => Some(initial_state(backend, data, h0, batch)?),
        None => None,
    };
    Ok(Sequence {
        input,
        state,
        steps,
        batch,
    })
}

/// `input`, floats `(T, B, I)` in the model's dtype.
fn dense_input<B: Backend>(
    backend: &B,
    x: &recurrent::Tensor,
    width: usize,
) -> Res<(Input<B>, usize, usize)> {
    let dtype = dtype_of::<B::Scalar>();
    if x.dtype() != dtype {
        return Err(format!(
            "input is {:?} but the model is {dtype:?}: save the input in the model's dtype \
             (x.float() for F32, x.double() for F64)",
            x.dtype()
        ));
    }
    let &[steps, batch, given] = x.shape() else {
        return Err(format!(
            "input: expected shape (T, B, {width}) (batch_first=False), given {:?}",
            x.shape()
        ));
    };
    if given != width || steps == 0 || batch == 0 {
        return Err(format!(
            "input: expected shape (T, B, {width}) with T, B >= 1, given {:?}",
            x.shape()
        ));
    }
    let values = x
        .floats()
        .unwrap_or_default()
        .iter()
        .map(|&v| B::Scalar::of(v));
    let m = backend.from_vec(steps * batch, width, values.collect());
    Ok((
        Input::dense(m.map_err(|e| e.to_string())?, batch),
        steps,
        batch,
    ))
}

/// `ids` (or an integer `input`), `(T, B)` token ids below `width`.
fn id_input<B: Backend>(ids: &recurrent::Tensor, width: usize) -> Res<(Input<B>, usize, usize)> {
    let values = ids.ints().ok_or(format!(
        "ids: expected integers (int64) of shape (T, B), given {:?}",
        ids.dtype()
    ))?;
    let &[steps, batch] = ids.shape() else {
        return Err(format!(
            "ids: expected shape (T, B), given {:?}",
            ids.shape()
        ));
    };
    if steps == 0 || batch == 0 {
        return Err(format!("ids: expected T, B >= 1, given {:?}", ids.shape()));
    }
    let ids: Vec<usize> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| usize::try_from(v).map_err(|_| format!("ids: entry {i} is {v}, negative")))
        .collect::<Res<_>>()?;
    if let Some(i) = ids.iter().position(|&id| id >= width) {
        return Err(format!(
            "ids: entry {i} is {}, expected a value below {width}",
            ids[i]
        ));
    }
    Ok((Input::ids(ids, batch), steps, batch))
}

/// `h0` and `c0`, PyTorch's `(L*D, B, H)`.
fn initial_state<B: Backend>(
    backend: &B,
    data: &StateDict,
    h0: &recurrent::Tensor,
    batch: usize,
) -> Res<State<B>> {
    let floats = |name: &str, t: &recurrent::Tensor| -> Res<Vec<B::Scalar>> {
        let values = t.floats().ok_or(format!("{name}: expected floats"))?;
        Ok(values.iter().map(|&v| B::Scalar::of(v)).collect())
    };
    let &[count, b, hidden] = h0.shape() else {
        return Err(format!(
            "h0: expected shape (L*D, B, H), given {:?}",
            h0.shape()
        ));
    };
    if b != batch {
        return Err(format!("h0: batch {b}, but the input's is {batch}"));
    }
    let c0 = match data.get("c0") {
        Some(c0) => Some(floats("c0", c0)?),
        None => None,
    };
    State::from_pytorch(backend, [count, batch, hidden], floats("h0", h0)?, c0)
        .map_err(|e| e.to_string())
}

fn to_f64<B: Backend>(backend: &B, m: &B::Matrix) -> Vec<f64> {
    backend.to_vec(m).into_iter().map(Scalar::to_f64).collect()
}

/// A row with the digits its dtype holds: 8 for f32, 16 for f64.
fn fmt<B: Backend>(row: &[f64]) -> String {
    let digits = if dtype_of::<B::Scalar>() == Dtype::F32 {
        8
    } else {
        16
    };
    let cells: Vec<String> = row.iter().map(|v| format!("{v:+.digits$e}")).collect();
    cells.join(" ")
}

/// The dtype a `T` is saved as.
fn dtype_of<T>() -> Dtype {
    match std::mem::size_of::<T>() {
        4 => Dtype::F32,
        _ => Dtype::F64,
    }
}

#[cfg(test)]
mod tests;
