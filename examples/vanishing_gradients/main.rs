//! Vanishing and exploding gradients, seen on this crate's own models.
//!
//! ```text
//! cargo run --release --example vanishing_gradients              # about 70 s on 2 cores
//! cargo run --example vanishing_gradients -- --quick --out DIR    # seconds: a smoke run for CI
//! ```
//!
//! The task has a known answer and a known distance (Hochreiter & Schmidhuber 1997): a sequence
//! opens with one of 4 symbols, then come `N` random distractors (4 other ids), then a query
//! mark; at the query the model must name the opening symbol. The loss is at that last step
//! only, so every bit of gradient that reaches the first step has travelled `N + 1` steps back
//! through time. For `N = 10, 20, 50, 100` the example
//!
//! 1. records `||dE/dh_t||` at every step (with `Rnn::backward_recorded`) for an Elman RNN, an
//!    LSTM and a GRU, at initialisation and after training: `gradient_flow.svg`;
//! 2. scales a tanh Elman RNN's `W_hh` to spectral radii below and above 1 (`N = 50`) and
//!    records the same curve, then trains a tanh net at radius 3 and a ReLU net at radius 1.5
//!    with plain SGD, unclipped and clipped at global norm 1: `spectral_radius.svg`;
//! 3. trains each cell on each `N` with the same budget (Adam, the same number of updates and
//!    sequences) and measures its accuracy on held-out sequences: `accuracy.svg`.
//!
//! The LSTM's forget-gate bias starts 1 above PyTorch's initialisation (`--forget-bias 0` for
//! PyTorch's own), as is common practice for long memories.
//!
//! It writes the three figures and `vanishing_gradients.csv` (every number behind them) to
//! `--out` (default `target/vanishing_gradients`) and prints the accuracy table and how many
//! steps back each cell's gradient falls below 1e-6 of its last-step value.

mod experiment;
mod plot;

use clap::Parser;
use experiment::{Budget, Cutoffs, Exploding, SgdRun, TaskRun};
use plot::{Corner, PALETTE, Panel, Series};
use recurrent::Cpu;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Vanishing and exploding gradients in RNN, LSTM and GRU, measured and plotted")]
struct Args {
    /// A few updates on small models: checks that everything runs, in seconds
    #[arg(long)]
    quick: bool,
    /// Where the figures and the CSV go
    #[arg(long, default_value = "target/vanishing_gradients")]
    out: PathBuf,
    /// Seed of the weights and the data
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Adam updates per cell and N [default: 1000, --quick 4]
    #[arg(long)]
    updates: Option<usize>,
    /// Learning rate of the SGD runs on the exploding Elman net
    #[arg(long, default_value_t = 0.1)]
    sgd_lr: f64,
    /// Added to the LSTM's forget-gate bias at initialisation (0: PyTorch's initialisation)
    #[arg(long, default_value_t = 1.0)]
    forget_bias: f64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let mut budget = if args.quick {
        Budget::quick()
    } else {
        Budget::default()
    };
    budget.updates = args.updates.unwrap_or(budget.updates);
    budget.sgd_lr = args.sgd_lr;
    budget.forget_bias = args.forget_bias;
    std::fs::create_dir_all(&args.out)?;
    let start = Instant::now();
    println!("{budget}");
    let mut runs = Vec::new();
    for &n in &budget.distractors {
        for cell in experiment::CELLS {
            let run = experiment::train_task(Cpu::<f64>::default(), cell, n, &budget, args.seed)?;
            println!(
                "  N = {n:>3} {:<4}: accuracy {:5.1}%  ({:.0} s)",
                run.cell,
                100.0 * run.accuracy,
                start.elapsed().as_secs_f64()
            );
            runs.push(run);
        }
    }
    let exploding = experiment::exploding(Cpu::<f32>::default(), &budget, args.seed)?;
    print_tables(&budget, &runs, &exploding);
    write_csv(&args.out.join("vanishing_gradients.csv"), &runs, &exploding)?;
    draw_figures(&args.out, &budget, &runs, &exploding)?;
    println!(
        "\nwrote gradient_flow.svg, spectral_radius.svg, accuracy.svg and vanishing_gradients.csv \
         to {} in {:.0} s",
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn cutoff(c: Option<usize>) -> String {
    c.map_or("never".to_string(), |k| k.to_string())
}

fn print_tables(budget: &Budget, runs: &[TaskRun], exploding: &Exploding) {
    let header: String = budget
        .distractors
        .iter()
        .map(|n| format!(" N={n:<5}"))
        .collect();
    println!(
        "\naccuracy on {} held-out sequences (chance 25%)",
        budget.eval
    );
    println!("cell {header}");
    for cell in experiment::CELLS {
        let row: String = runs
            .iter()
            .filter(|r| r.cell == cell.name())
            .map(|r| format!(" {:>5.1}% ", 100.0 * r.accuracy))
            .collect();
        println!("{:<4} {row}", cell.name());
    }
    println!("\nsteps back from the answer where ||dE/dh_t|| first falls below 1e-6 of its value");
    println!("at the last step (init / trained; 'never': not within the N + 1 steps)");
    println!("cell {header}");
    for cell in experiment::CELLS {
        let row: String = runs
            .iter()
            .filter(|r| r.cell == cell.name())
            .map(|r| {
                let Cutoffs { init, trained } = r.cutoffs();
                format!(" {:>3}/{:<4}", cutoff(init), cutoff(trained))
            })
            .collect();
        println!("{:<4} {row}", cell.name());
    }
    println!(
        "\nElman RNN, N = {}: W_hh scaled to spectral radius rho (largest singular value sigma)",
        exploding.n
    );
    for curve in &exploding.curves {
        let first = curve.dh.first().copied().unwrap_or(0.0);
        let last = curve.dh.last().copied().unwrap_or(0.0);
        println!(
            "  rho {:4.2} (sigma {:5.2}): ||dE/dh_0|| / ||dE/dh_T-1|| = {:9.2e}",
            curve.rho,
            curve.sigma,
            first / last
        );
    }
    for pair in &exploding.pairs {
        for (name, run) in [("unclipped", &pair.unclipped), ("clipped", &pair.clipped)] {
            let largest = run.norms.iter().copied().fold(0.0f64, f64::max);
            println!(
                "  SGD, {} at rho {}, {name:<9}: {}; largest gradient norm {largest:.3e}",
                pair.nonlinearity,
                pair.rho,
                outcome(run)
            );
        }
    }
}

/// How an SGD run ended.
fn outcome(run: &SgdRun) -> String {
    match run.nan_at {
        Some(u) => format!("NaN at update {u}"),
        None => format!(
            "final loss {:.3}",
            run.losses.last().copied().unwrap_or(f64::NAN)
        ),
    }
}

fn write_csv(path: &Path, runs: &[TaskRun], exploding: &Exploding) -> Result<(), Box<dyn Error>> {
    let mut csv = String::from("section,cell,n,setting,x,value\n");
    for r in runs {
        let n = r.n;
        for (setting, curve) in [("init", &r.init.dh), ("trained", &r.trained.dh)] {
            for (t, v) in curve.iter().enumerate() {
                writeln!(csv, "dh_norm,{},{n},{setting},{t},{v:e}", r.cell)?;
            }
        }
        let Cutoffs { init, trained } = r.cutoffs();
        for (setting, c) in [("init", init), ("trained", trained)] {
            let value = c.map_or("never".to_string(), |k| k.to_string());
            writeln!(csv, "steps_to_1e-6,{},{n},{setting},,{value}", r.cell)?;
        }
        for (u, loss) in r.losses.iter().enumerate() {
            writeln!(csv, "train_loss,{},{n},adam,{u},{loss:e}", r.cell)?;
        }
        writeln!(csv, "accuracy,{},{n},trained,,{}", r.cell, r.accuracy)?;
    }
    let n = exploding.n;
    for c in &exploding.curves {
        writeln!(csv, "spectral,RNN,{n},rho={},sigma,{:e}", c.rho, c.sigma)?;
        for (t, v) in c.dh.iter().enumerate() {
            writeln!(csv, "dh_norm_rho,RNN,{n},rho={},{t},{v:e}", c.rho)?;
        }
    }
    for pair in &exploding.pairs {
        let setting = format!("{} rho={}", pair.nonlinearity, pair.rho);
        for (name, run) in [("unclipped", &pair.unclipped), ("clipped", &pair.clipped)] {
            for (u, (loss, norm)) in run.losses.iter().zip(&run.norms).enumerate() {
                writeln!(csv, "sgd_loss_{name},RNN,{n},{setting},{u},{loss:e}")?;
                writeln!(
                    csv,
                    "sgd_norm_before_clip_{name},RNN,{n},{setting},{u},{norm:e}"
                )?;
            }
            if let Some(u) = run.nan_at {
                writeln!(csv, "sgd_nan_at_{name},RNN,{n},{setting},{u},")?;
            }
        }
    }
    std::fs::write(path, csv)?;
    Ok(())
}

fn draw_figures(
    out: &Path,
    budget: &Budget,
    runs: &[TaskRun],
    exploding: &Exploding,
) -> Result<(), Box<dyn Error>> {
    draw_flow(&out.join("gradient_flow.svg"), budget, runs)?;
    draw_spectral(&out.join("spectral_radius.svg"), budget, exploding)?;
    draw_accuracy(&out.join("accuracy.svg"), budget, runs)
}

/// `(t, v[t])` for every entry.
fn steps(v: &[f64]) -> Vec<(f64, f64)> {
    v.iter().enumerate().map(|(t, &y)| (t as f64, y)).collect()
}

/// `||dE/dh_t||` of every cell, at initialisation and trained, one panel per `N`.
fn draw_flow(path: &Path, budget: &Budget, runs: &[TaskRun]) -> Result<(), Box<dyn Error>> {
    let flow_panels: Vec<Panel> = budget
        .distractors
        .iter()
        .map(|&n| {
            let mut series = Vec::new();
            for (i, r) in runs.iter().filter(|r| r.n == n).enumerate() {
                for (faint, when, flow) in [(true, "init", &r.init), (false, "trained", &r.trained)]
                {
                    series.push(Series {
                        label: format!("{} {when}", r.cell),
                        color: PALETTE[i],
                        faint,
                        points: steps(&flow.dh),
                    });
                }
            }
            Panel {
                title: format!("N = {n}: answer at t = {}", n + 1),
                x_label: "time step t",
                y_label: "||dE/dh_t||",
                log_y: true,
                legend: Corner::UpperLeft,
                series,
            }
        })
        .collect();
    let grid = (flow_panels.len().div_ceil(2), 2);
    plot::figure(path, (1200, 900), grid, &flow_panels)
}

/// The tanh net's curves at several spectral radii, and the SGD runs.
fn draw_spectral(
    path: &Path,
    budget: &Budget,
    exploding: &Exploding,
) -> Result<(), Box<dyn Error>> {
    let rho_series = exploding
        .curves
        .iter()
        .enumerate()
        .map(|(i, c)| Series {
            label: format!("rho {:.2} (sigma {:.2})", c.rho, c.sigma),
            color: PALETTE[i % PALETTE.len()],
            faint: false,
            points: steps(&c.dh),
        })
        .collect();
    let mut training = Vec::new();
    for (i, pair) in exploding.pairs.iter().enumerate() {
        let runs = [
            ("unclipped", &pair.unclipped, true),
            ("clipped", &pair.clipped, false),
        ];
        for (name, run, faint) in runs {
            let end = match run.nan_at {
                Some(u) => format!("NaN at update {u}"),
                None => "finite throughout".to_string(),
            };
            training.push(Series {
                label: format!("{} rho {} {name}: {end}", pair.nonlinearity, pair.rho),
                color: PALETTE[2 * i],
                faint,
                points: steps(&run.losses),
            });
        }
    }
    let panels = [
        Panel {
            title: format!("Elman RNN at initialisation, N = {}", exploding.n),
            x_label: "time step t",
            y_label: "||dE/dh_t||",
            log_y: true,
            legend: Corner::LowerRight,
            series: rho_series,
        },
        Panel {
            title: format!("SGD (lr {}): training loss", budget.sgd_lr),
            x_label: "update",
            y_label: "cross-entropy",
            log_y: true,
            legend: Corner::UpperRight,
            series: training,
        },
    ];
    plot::figure(path, (1200, 450), (1, 2), &panels)
}

/// Held-out accuracy against `N`, one line per cell.
fn draw_accuracy(path: &Path, budget: &Budget, runs: &[TaskRun]) -> Result<(), Box<dyn Error>> {
    let accuracy_series = experiment::CELLS
        .iter()
        .enumerate()
        .map(|(i, cell)| Series {
            label: cell.name().to_string(),
            color: PALETTE[i],
            faint: false,
            points: runs
                .iter()
                .filter(|r| r.cell == cell.name())
                .map(|r| (r.n as f64, r.accuracy))
                .collect(),
        })
        .chain(std::iter::once(Series {
            label: "chance".to_string(),
            color: plot::GRAY,
            faint: true,
            points: budget
                .distractors
                .iter()
                .map(|&n| (n as f64, 0.25))
                .collect(),
        }))
        .collect();
    let panel = Panel {
        title: format!("held-out accuracy after {} updates", budget.updates),
        x_label: "distractors N",
        y_label: "accuracy",
        log_y: false,
        legend: Corner::UpperRight,
        series: accuracy_series,
    };
    plot::figure(path, (700, 450), (1, 1), &[panel])
}
