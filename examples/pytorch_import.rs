//! Loads a PyTorch model from a safetensors `state_dict` and runs it.
//!
//! ```text
//! cargo run --release --example pytorch_import                     # a committed parity fixture
//! cargo run --release --example pytorch_import -- model.safetensors
//! ```
//!
//! Export from PyTorch with
//! `safetensors.torch.save_file(model.state_dict(), "model.safetensors")`, where `model` holds
//! an `nn.RNN`, `nn.LSTM` or `nn.GRU` and optionally an `nn.Linear` called `out`. The cell, sizes,
//! layers and directions are read off the names and shapes.
//!
//! The parity fixtures also hold an input and what PyTorch computed from it (`logits`, `loss`):
//! for those the example prints PyTorch's numbers beside its own. For a plain state dict it runs
//! a short sequence of ones.

use recurrent::prelude::*;
use recurrent::{CellState, RnnConfig, StateDict};
use std::path::PathBuf;

type F64 = NaiveCpu<f64>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/lstm_l2_bi_b3_h0_lengths.safetensors")
        });
    let dict = StateDict::read(&path)?;
    let config = RnnConfig::from_state_dict(&dict)?;
    let backend = F64::new();
    // Lenient: a fixture holds more than the parameters (its input and PyTorch's results).
    let rnn = Rnn::from_state_dict(backend, config.clone(), &dict, false)?;
    println!("{}", path.display());
    println!(
        "{} with {} input(s), {} hidden, {} layer(s), {} direction(s), output {:?}",
        config.kind().name(),
        config.input_size(),
        config.hidden_size(),
        config.num_layers(),
        config.directions(),
        config.output_size()
    );
    for (name, m) in rnn.parameters() {
        println!("  {name:<22} {:?}", backend.shape(m));
    }

    let (input, state) = match dict.get("input") {
        Some(t) => sequence_from_fixture(&backend, &dict, t.shape())?,
        None => (
            Input::dense(
                backend.from_vec(5, config.input_size(), vec![1.0; 5 * config.input_size()])?,
                1,
            ),
            None,
        ),
    };
    let trace = rnn.forward(&input, state.as_ref())?;
    let logits = trace.logits();
    let (rows, width) = backend.shape(logits);
    println!("\nlogits, one row per (step, sequence), time-major:");
    let pytorch = dict.get("logits").and_then(|t| t.floats());
    for r in 0..rows {
        let ours = &logits.as_slice()[r * width..(r + 1) * width];
        println!("  recurrent {}", fmt(ours));
        if let Some(theirs) = pytorch {
            println!("  PyTorch   {}", fmt(&theirs[r * width..(r + 1) * width]));
        }
    }
    if let (Some(targets), Some(t)) = (dict.get("targets").and_then(|t| t.ints()), dict.get("loss"))
    {
        let targets: Vec<usize> = targets.iter().map(|&v| v as usize).collect();
        let (loss, _) =
            CrossEntropy::sum().forward_masked(&backend, logits, &targets, trace.mask())?;
        println!(
            "\nsummed cross-entropy: recurrent {loss:.15}, PyTorch {:.15}",
            t.floats().unwrap_or(&[f64::NAN])[0]
        );
    }
    if let Some(theirs) = pytorch {
        let worst = logits
            .as_slice()
            .iter()
            .zip(theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!("largest difference from PyTorch's logits: {worst:.1e}");
    }
    Ok(())
}

/// The fixture's input `(T, B, I)`, its lengths when they differ, and its `h0` / `c0`.
fn sequence_from_fixture(
    backend: &F64,
    dict: &StateDict,
    shape: &[usize],
) -> recurrent::Result<(Input<F64>, Option<State<F64>>)> {
    let (steps, batch, width) = (shape[0], shape[1], shape[2]);
    let data = dict
        .get("input")
        .and_then(|t| t.floats())
        .unwrap_or_default()
        .to_vec();
    let mut input = Input::dense(backend.from_vec(steps * batch, width, data)?, batch);
    if let Some(lengths) = dict.get("lengths").and_then(|t| t.ints()) {
        input = input.with_lengths(lengths.iter().map(|&l| l as usize).collect());
    }
    let part = |name: &str, k: usize, hidden: usize| {
        let all = dict.get(name)?.floats()?;
        let block = all[k * batch * hidden..(k + 1) * batch * hidden].to_vec();
        backend.from_vec(batch, hidden, block).ok()
    };
    let state = dict.get("h0").map(|h0| {
        let (count, hidden) = (h0.shape()[0], h0.shape()[2]);
        let layers = (0..count)
            .filter_map(|k| {
                Some(CellState {
                    h: part("h0", k, hidden)?,
                    c: part("c0", k, hidden),
                })
            })
            .collect();
        State::new(layers)
    });
    Ok((input, state))
}

fn fmt(row: &[f64]) -> String {
    let cells: Vec<String> = row.iter().map(|v| format!("{v:>10.6}")).collect();
    cells.join(" ")
}
