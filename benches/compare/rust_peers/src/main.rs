//! candle and burn on the grid of the side-by-side comparison (`benches/compare/run.sh`): the
//! model of `recurrent_timing.rs` and `peers.py`, timed the same way, printed as the same JSON
//! lines, with `"impl"` one of `candle`, `burn-ndarray`, `burn-flex`.
//!
//! Versions: candle-core and candle-nn 0.11.1, burn 0.22.1 (Cargo.lock pins the rest).
//! Build, measured from clean on this workplace's 2-core machine (`time cargo build --release`
//! into an empty target directory): 17 min 34 s wall, 17 min 37 s of CPU (user + sys), while
//! other jobs kept the load average near 4, so about half the machine; on a quiet 2-core machine
//! expect roughly 9 to 11 minutes. Most of it is burn-flex and burn-ndarray (each several CPU
//! minutes, built side by side); candle-core and candle-nn take about a minute. A rebuild after
//! editing this file takes about 6 s.
//!
//! The model, as in peers.py: vocabulary 65, one recurrent layer (Elman tanh, LSTM or GRU;
//! PyTorch's gate order and both biases), a linear layer H -> 65, summed cross-entropy over the
//! T*B tokens, zero initial state, f32, weights uniform in [-1/sqrt(H), 1/sqrt(H)].
//!
//! - train: forward, loss, the library's backward pass (its autodiff), global-norm clipping at 5
//!   written out (coef = min(1, 5 / (norm + 1e-6)); neither library has a global-norm clip:
//!   burn's `GradientClipping::Norm` clips each parameter on its own), then the library's SGD
//!   with learning rate 1e-3 * coef, which is the same update as SGD on the clipped gradients
//!   (no momentum, no weight decay).
//! - forward: the logits alone (candle: the same module call, candle has no no-grad mode;
//!   burn: the model's `valid()` copy, off the autodiff backend).
//!
//! Token input: one-hot rows (built once, outside the timing) fed to the library's recurrent
//! module, as a user of these modules writes it, and as peers.py feeds PyTorch: the modules
//! multiply the one-hot step input by the input weights at every step. Both libraries' modules
//! are batch-first, so the input is (B, T, 65) and the targets are put in the same batch-major
//! order; the summed loss and the gradients do not depend on the order.
//!
//! - candle: `candle_nn::rnn::{lstm, gru}` (`RNN::seq`, one step per time step: a GEMM for the
//!   input, one for the hidden state, the gates as separate element-wise ops); candle-nn has no
//!   Elman RNN, so that one is written with tensor ops: the input product of all T*B tokens in
//!   one matmul, then h = tanh(xw_t + h W_hh^T + b_hh) per step, stacked. `candle_nn::linear`
//!   weights, `candle_nn::ops::log_softmax` + `gather` for the summed loss, `loss.backward()`,
//!   `candle_nn::SGD`.
//! - burn: `burn::nn::{Rnn, Lstm, Gru}` (burn has all three; each gate is its own pair of
//!   Linear layers, so an LSTM step is 8 small GEMMs), `burn::nn::Linear`, log_softmax + gather
//!   for the loss, the Autodiff decorator (`Device::ndarray().autodiff()`), `SgdConfig` and
//!   `GradientsParams`. Two CPU backends: ndarray (deprecated since burn 0.22 in favour of
//!   flex) and flex (burn 0.22's pure-Rust CPU backend, GEMMs by the `gemm` crate).
//!
//! Threads: this program sets RAYON_NUM_THREADS=2 and MATMUL_NUM_THREADS=2 (unless already set)
//! before any pool starts. candle's CPU GEMM reads RAYON_NUM_THREADS (`get_num_threads`), and so
//! does the size of its element-wise pool (CANDLE_NUM_THREADS, defaulting to RAYON_NUM_THREADS:
//! the caller plus one spinning worker, for ops on 64k elements or more); burn's flex and ndarray
//! backends run their parallel kernels on rayon's global pool, which reads RAYON_NUM_THREADS too,
//! and ndarray's matrixmultiply (feature "threading") reads MATMUL_NUM_THREADS.
//!
//! candle's element-wise pool waits for its worker by spinning, so it is very sensitive to other
//! processes: with the machine shared (load average about 4), an LSTM training step at hidden
//! 128, batch 1 took 186 ms with that worker and 16 ms with CANDLE_NUM_THREADS=1 (perf: 80% of
//! the time in the pool's barrier). Its numbers mean something only on a quiet machine.
//!
//! Timing, as recurrent_timing.rs: one call, warm-up for at least 0.3 s and 3 calls, then about
//! 1.5 s of calls timed one by one (5 to 5000); the median is printed.
//!
//! ```text
//! rust_peers [FILTER] [--impl all|candle|burn-ndarray|burn-flex]   # cases whose id contains FILTER
//! rust_peers --check    # loss and gradients on fixed weights, for peers.py --check-rust
//! ```

// The timing loop `recurrent_timing.rs` uses too.
#[path = "../../median.rs"]
mod median;
use median::median_seconds;

const VOCAB: usize = 65;
const LR: f64 = 1e-3;
const MAX_NORM: f64 = 5.0;
const THREADS: &str = "2";

#[derive(Clone, Copy)]
struct Case {
    cell: &'static str,
    hidden: usize,
    batch: usize,
    seq: usize,
}

impl Case {
    fn id(&self, op: &str) -> String {
        format!(
            "{}/h{}/b{}/t{}/{op}",
            self.cell, self.hidden, self.batch, self.seq
        )
    }
}

fn gates(cell: &str) -> usize {
    match cell {
        "rnn" => 1,
        "lstm" => 4,
        "gru" => 3,
        _ => unreachable!(),
    }
}

/// recurrent_timing.rs's order.
fn grid() -> Vec<Case> {
    let mut cases = Vec::new();
    for cell in ["rnn", "lstm", "gru"] {
        for batch in [1, 32] {
            for hidden in [128, 256, 512] {
                cases.push(Case {
                    cell,
                    hidden,
                    batch,
                    seq: 64,
                });
            }
        }
    }
    cases.push(Case {
        cell: "rnn",
        hidden: 100,
        batch: 1,
        seq: 25,
    });
    cases
}


fn emit_case(imp: &str, case: &Case, op: &str, median: f64, loss0: Option<f64>) {
    let extra = loss0.map_or(String::new(), |l| format!(", \"loss0_per_token\": {l}"));
    println!(
        "{{\"impl\": \"{imp}\", \"cell\": \"{}\", \"hidden\": {}, \"batch\": {}, \"seq\": {}, \
         \"op\": \"{op}\", \"median_s\": {median:.9}{extra}}}",
        case.cell, case.hidden, case.batch, case.seq
    );
}

/// The batch-first model input: one-hot rows (B * T * 65, row b*T + t) and the targets in the
/// same order, from time-major token ids `ids[t][b]` and targets `targets[t*B + b]`.
struct Input {
    onehot: Vec<f32>,
    targets: Vec<u32>,
}

fn input(ids: &[Vec<usize>], targets: &[usize]) -> Input {
    let (seq, batch) = (ids.len(), ids[0].len());
    let mut onehot = vec![0f32; batch * seq * VOCAB];
    let mut tgt = vec![0u32; batch * seq];
    for (t, row) in ids.iter().enumerate() {
        for (b, &id) in row.iter().enumerate() {
            onehot[(b * seq + t) * VOCAB + id] = 1.0;
            tgt[b * seq + t] = targets[t * batch + b] as u32;
        }
    }
    Input {
        onehot,
        targets: tgt,
    }
}

/// Uniform random tokens (a xorshift generator; the values do not matter to the timing).
fn random_data(batch: usize, seq: usize) -> Input {
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % VOCAB as u64) as usize
    };
    let ids: Vec<Vec<usize>> = (0..seq)
        .map(|_| (0..batch).map(|_| next()).collect())
        .collect();
    let targets: Vec<usize> = (0..seq * batch).map(|_| next()).collect();
    input(&ids, &targets)
}

/// Parameters in PyTorch's layout: w_ih (G*H, 65), w_hh (G*H, H), b_ih, b_hh (G*H),
/// w_out (65, H), b_out (65), row-major.
const NAMES: [&str; 6] = ["w_ih", "w_hh", "b_ih", "b_hh", "w_out", "b_out"];

struct TorchParams {
    p: [Vec<f32>; 6],
}

impl TorchParams {
    /// The check's weights: parameter number p (NAMES order), flat index k:
    /// 0.5 * sin(0.7 k + 1.3 p + 0.25). peers.py --check-rust builds the same.
    fn formula(cell: &str, hidden: usize) -> Self {
        let g = gates(cell) * hidden;
        let sizes = [g * VOCAB, g * hidden, g, g, VOCAB * hidden, VOCAB];
        let p = std::array::from_fn(|i| {
            (0..sizes[i])
                .map(|k| (0.5 * (0.7 * k as f64 + 1.3 * i as f64 + 0.25).sin()) as f32)
                .collect()
        });
        TorchParams { p }
    }
}

/// The check's shape and tokens: hidden 8, batch 3, 5 steps, ids[t][b] = (7t + 11b + 3) mod 65,
/// targets[t*B + b] = (13t + 5b + 1) mod 65.
const CHECK_HIDDEN: usize = 8;
const CHECK_BATCH: usize = 3;
const CHECK_SEQ: usize = 5;

fn check_data() -> Input {
    let ids: Vec<Vec<usize>> = (0..CHECK_SEQ)
        .map(|t| {
            (0..CHECK_BATCH)
                .map(|b| (7 * t + 11 * b + 3) % VOCAB)
                .collect()
        })
        .collect();
    let targets: Vec<usize> = (0..CHECK_SEQ * CHECK_BATCH)
        .map(|i| (13 * (i / CHECK_BATCH) + 5 * (i % CHECK_BATCH) + 1) % VOCAB)
        .collect();
    input(&ids, &targets)
}

fn emit_check(imp: &str, cell: &str, loss: f64, grads: &[Vec<f32>; 6]) {
    let fields: Vec<String> = NAMES
        .iter()
        .zip(grads)
        .map(|(n, g)| {
            let v: Vec<String> = g.iter().map(|x| format!("{x:e}")).collect();
            format!("\"{n}\": [{}]", v.join(", "))
        })
        .collect();
    println!(
        "{{\"impl\": \"{imp}\", \"op\": \"check\", \"cell\": \"{cell}\", \"hidden\": {CHECK_HIDDEN}, \
         \"batch\": {CHECK_BATCH}, \"seq\": {CHECK_SEQ}, \"loss\": {loss}, \"grads\": {{{}}}}}",
        fields.join(", ")
    );
}

// ---------------------------------------------------------------------------------------------
// candle

mod candle_peer {
    use super::*;
    use candle_core::{DType, Device, IndexOp, Result, Tensor, D};
    use candle_nn::rnn::{GRUConfig, LSTMConfig, GRU, LSTM, RNN};
    use candle_nn::{Init, Linear, Module, Optimizer, VarBuilder, VarMap, SGD};

    enum Cell {
        /// Elman tanh, by hand: candle-nn has no such module.
        Rnn {
            w_ih: Tensor,
            w_hh: Tensor,
            b_ih: Tensor,
            b_hh: Tensor,
        },
        Lstm(LSTM),
        Gru(GRU),
    }

    pub struct Model {
        cell: Cell,
        out: Linear,
        varmap: VarMap,
        hidden: usize,
    }

    impl Model {
        pub fn new(cell: &str, hidden: usize, dev: &Device) -> Result<Self> {
            let varmap = VarMap::new();
            let vb = VarBuilder::from_varmap(&varmap, DType::F32, dev);
            let k = 1.0 / (hidden as f64).sqrt();
            let u = Init::Uniform { lo: -k, up: k };
            let g = gates(cell) * hidden;
            let r = vb.pp("rnn");
            let cell = match cell {
                "rnn" => Cell::Rnn {
                    w_ih: r.get_with_hints((g, VOCAB), "weight_ih_l0", u)?,
                    w_hh: r.get_with_hints((g, hidden), "weight_hh_l0", u)?,
                    b_ih: r.get_with_hints(g, "bias_ih_l0", u)?,
                    b_hh: r.get_with_hints(g, "bias_hh_l0", u)?,
                },
                "lstm" => {
                    let config = LSTMConfig {
                        w_ih_init: u,
                        w_hh_init: u,
                        b_ih_init: Some(u),
                        b_hh_init: Some(u),
                        ..Default::default()
                    };
                    Cell::Lstm(candle_nn::rnn::lstm(VOCAB, hidden, config, r)?)
                }
                "gru" => {
                    let config = GRUConfig {
                        w_ih_init: u,
                        w_hh_init: u,
                        b_ih_init: Some(u),
                        b_hh_init: Some(u),
                    };
                    Cell::Gru(candle_nn::rnn::gru(VOCAB, hidden, config, r)?)
                }
                _ => unreachable!(),
            };
            let o = vb.pp("out");
            let out = Linear::new(
                o.get_with_hints((VOCAB, hidden), "weight", u)?,
                Some(o.get_with_hints(VOCAB, "bias", u)?),
            );
            Ok(Model {
                cell,
                out,
                varmap,
                hidden,
            })
        }

        /// Logits (B*T, 65), batch-major rows, from one-hot x (B, T, 65).
        pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
            let (batch, seq, _) = x.dims3()?;
            let hs: Vec<Tensor> = match &self.cell {
                Cell::Lstm(m) => m.seq(x)?.into_iter().map(|s| s.h).collect(),
                Cell::Gru(m) => m.seq(x)?.into_iter().map(|s| s.h).collect(),
                Cell::Rnn {
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                } => {
                    let xw = x
                        .reshape((batch * seq, VOCAB))?
                        .matmul(&w_ih.t()?)?
                        .broadcast_add(b_ih)?
                        .reshape((batch, seq, self.hidden))?;
                    let mut h = Tensor::zeros((batch, self.hidden), DType::F32, x.device())?;
                    let mut hs = Vec::with_capacity(seq);
                    for t in 0..seq {
                        let hw = h.matmul(&w_hh.t()?)?.broadcast_add(b_hh)?;
                        h = (xw.i((.., t, ..))? + hw)?.tanh()?;
                        hs.push(h.clone());
                    }
                    hs
                }
            };
            let hs = Tensor::stack(&hs, 1)?.reshape((batch * seq, self.hidden))?;
            self.out.forward(&hs)
        }

        pub fn loss(&self, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
            let logp = candle_nn::ops::log_softmax(&self.forward(x)?, D::Minus1)?;
            logp.gather(&targets.unsqueeze(1)?, 1)?.sum_all()?.neg()
        }

        fn var(&self, name: &str) -> candle_core::Var {
            self.varmap.data().lock().unwrap()[name].clone()
        }

        /// The variables in NAMES order.
        fn torch_names() -> [&'static str; 6] {
            [
                "rnn.weight_ih_l0",
                "rnn.weight_hh_l0",
                "rnn.bias_ih_l0",
                "rnn.bias_hh_l0",
                "out.weight",
                "out.bias",
            ]
        }
    }

    pub fn run(cases: &[Case], wanted: &dyn Fn(&str) -> bool) -> Result<()> {
        let dev = Device::Cpu;
        println!(
            "{{\"impl\": \"candle\", \"op\": \"info\", \"version\": \"0.11.1\", \"threads\": {}}}",
            candle_core::utils::get_num_threads()
        );
        for case in cases {
            let ops: Vec<&str> = ["train", "forward"]
                .into_iter()
                .filter(|op| wanted(&case.id(op)))
                .collect();
            if ops.is_empty() {
                continue;
            }
            let data = random_data(case.batch, case.seq);
            let x = Tensor::from_vec(data.onehot, (case.batch, case.seq, VOCAB), &dev)?;
            let targets = Tensor::from_vec(data.targets, case.batch * case.seq, &dev)?;
            let model = Model::new(case.cell, case.hidden, &dev)?;
            let vars = model.varmap.all_vars();
            let mut sgd = SGD::new(vars.clone(), LR)?;
            let mut train = || -> f64 {
                let loss = model.loss(&x, &targets).unwrap();
                let grads = loss.backward().unwrap();
                let mut sq = Tensor::zeros((), DType::F32, &dev).unwrap();
                for v in &vars {
                    if let Some(g) = grads.get(v.as_tensor()) {
                        sq = (sq + g.sqr().unwrap().sum_all().unwrap()).unwrap();
                    }
                }
                let norm = (sq.to_scalar::<f32>().unwrap() as f64).sqrt();
                let coef = (MAX_NORM / (norm + 1e-6)).min(1.0);
                sgd.set_learning_rate(LR * coef);
                sgd.step(&grads).unwrap();
                loss.to_scalar::<f32>().unwrap() as f64
            };
            let tokens = (case.seq * case.batch) as f64;
            if ops.contains(&"train") {
                let loss0 = train() / tokens;
                let median = median_seconds(|| {
                    train();
                });
                emit_case("candle", case, "train", median, Some(loss0));
            }
            if ops.contains(&"forward") {
                let median = median_seconds(|| {
                    std::hint::black_box(model.forward(&x).unwrap());
                });
                emit_case("candle", case, "forward", median, None);
            }
        }
        Ok(())
    }

    pub fn check(cell: &str) -> Result<()> {
        let dev = Device::Cpu;
        let model = Model::new(cell, CHECK_HIDDEN, &dev)?;
        let p = TorchParams::formula(cell, CHECK_HIDDEN);
        for (name, values) in Model::torch_names().iter().zip(&p.p) {
            let var = model.var(name);
            let t = Tensor::from_vec(values.clone(), var.shape(), &dev)?;
            var.set(&t)?;
        }
        let data = check_data();
        let x = Tensor::from_vec(data.onehot, (CHECK_BATCH, CHECK_SEQ, VOCAB), &dev)?;
        let targets = Tensor::from_vec(data.targets, CHECK_BATCH * CHECK_SEQ, &dev)?;
        let loss = model.loss(&x, &targets)?;
        let grads = loss.backward()?;
        let g: Vec<Vec<f32>> = Model::torch_names()
            .iter()
            .map(|name| {
                let var = model.var(name);
                grads
                    .get(var.as_tensor())
                    .unwrap()
                    .flatten_all()?
                    .to_vec1::<f32>()
            })
            .collect::<Result<_>>()?;
        emit_check(
            "candle",
            cell,
            loss.to_scalar::<f32>()? as f64,
            &g.try_into().unwrap(),
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// burn

mod burn_peer {
    use super::*;
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::nn::{
        GateController, Gru, GruConfig, Initializer, Linear, LinearConfig, Lstm, LstmConfig, Rnn,
        RnnConfig,
    };
    use burn::optim::{GradientsParams, SgdConfig};
    use burn::tensor::activation::log_softmax;
    use burn::tensor::{Device, Int, Tensor, TensorData};

    #[derive(Module, Debug)]
    pub struct Net {
        rnn: Option<Rnn>,
        lstm: Option<Lstm>,
        gru: Option<Gru>,
        out: Linear,
    }

    impl Net {
        fn new(cell: &str, hidden: usize, device: &Device) -> Self {
            let k = 1.0 / (hidden as f64).sqrt();
            let init = Initializer::Uniform { min: -k, max: k };
            let (mut rnn, mut lstm, mut gru) = (None, None, None);
            match cell {
                "rnn" => {
                    rnn = Some(
                        RnnConfig::new(VOCAB, hidden, true)
                            .with_initializer(init.clone())
                            .with_batch_first(true)
                            .init(device),
                    )
                }
                "lstm" => {
                    lstm = Some(
                        LstmConfig::new(VOCAB, hidden, true)
                            .with_initializer(init.clone())
                            .with_batch_first(true)
                            .init(device),
                    )
                }
                "gru" => {
                    gru = Some(
                        GruConfig::new(VOCAB, hidden, true)
                            .with_initializer(init.clone())
                            .init(device),
                    )
                }
                _ => unreachable!(),
            }
            let out = LinearConfig::new(hidden, VOCAB)
                .with_initializer(init)
                .init(device);
            Net {
                rnn,
                lstm,
                gru,
                out,
            }
        }

        /// Logits (B*T, 65), batch-major rows, from one-hot x (B, T, 65).
        fn forward(&self, x: Tensor<3>) -> Tensor<2> {
            let [batch, seq, _] = x.dims();
            let h = if let Some(m) = &self.rnn {
                m.forward(x, None).0
            } else if let Some(m) = &self.lstm {
                m.forward(x, None).0
            } else {
                self.gru.as_ref().unwrap().forward(x, None)
            };
            let hidden = h.dims()[2];
            self.out.forward(h.reshape([batch * seq, hidden]))
        }

        fn loss(&self, x: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
            log_softmax(self.forward(x), 1)
                .gather(1, targets)
                .sum()
                .neg()
        }

        /// The gate controllers in PyTorch's gate order (i, f, g, o; r, z, n).
        fn gates(&self) -> Vec<&GateController> {
            if let Some(m) = &self.rnn {
                vec![&m.gate]
            } else if let Some(m) = &self.lstm {
                vec![
                    &m.input_gate,
                    m.forget_gate.as_ref().unwrap(),
                    &m.cell_gate,
                    &m.output_gate,
                ]
            } else {
                let m = self.gru.as_ref().unwrap();
                vec![&m.reset_gate, &m.update_gate, &m.new_gate]
            }
        }

        fn gates_mut(&mut self) -> Vec<&mut GateController> {
            if let Some(m) = &mut self.rnn {
                vec![&mut m.gate]
            } else if let Some(m) = &mut self.lstm {
                vec![
                    &mut m.input_gate,
                    m.forget_gate.as_mut().unwrap(),
                    &mut m.cell_gate,
                    &mut m.output_gate,
                ]
            } else {
                let m = self.gru.as_mut().unwrap();
                vec![&mut m.reset_gate, &mut m.update_gate, &mut m.new_gate]
            }
        }
    }

    /// The sum of squares of every parameter's gradient.
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }

    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }

    fn tensors(
        data: &Input,
        batch: usize,
        seq: usize,
        device: &Device,
    ) -> (Tensor<3>, Tensor<2, Int>) {
        let x = Tensor::from_data(
            TensorData::new(data.onehot.clone(), [batch, seq, VOCAB]),
            device,
        );
        let t: Vec<i64> = data.targets.iter().map(|&t| t as i64).collect();
        let targets = Tensor::from_data(TensorData::new(t, [batch * seq, 1]), device);
        (x, targets)
    }

    #[allow(deprecated)] // burn 0.22 deprecates the ndarray backend in favour of flex
    pub fn device(name: &str) -> Device {
        match name {
            "burn-ndarray" => Device::ndarray(),
            "burn-flex" => Device::flex(),
            _ => unreachable!(),
        }
    }

    pub fn run(name: &str, cases: &[Case], wanted: &dyn Fn(&str) -> bool) {
        let device = device(name).autodiff();
        println!(
            "{{\"impl\": \"{name}\", \"op\": \"info\", \"version\": \"0.22.1\", \"rayon_threads\": {}}}",
            rayon_threads()
        );
        for case in cases {
            let ops: Vec<&str> = ["train", "forward"]
                .into_iter()
                .filter(|op| wanted(&case.id(op)))
                .collect();
            if ops.is_empty() {
                continue;
            }
            let data = random_data(case.batch, case.seq);
            let (x, targets) = tensors(&data, case.batch, case.seq, &device);
            let mut model = Some(Net::new(case.cell, case.hidden, &device));
            let mut optim = SgdConfig::new().init();
            let mut train = || -> f64 {
                let net = model.take().unwrap();
                let loss = net.loss(x.clone(), targets.clone());
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                let mut sq = SumSquares {
                    grads: &grads,
                    total: None,
                };
                net.visit(&mut sq);
                let norm = (sq.total.unwrap().into_scalar::<f32>() as f64).sqrt();
                let coef = (MAX_NORM / (norm + 1e-6)).min(1.0);
                model = Some(optim.step(LR * coef, net, grads));
                loss.into_scalar::<f32>() as f64
            };
            let tokens = (case.seq * case.batch) as f64;
            if ops.contains(&"train") {
                let loss0 = train() / tokens;
                let median = median_seconds(|| {
                    train();
                });
                emit_case(name, case, "train", median, Some(loss0));
            }
            if ops.contains(&"forward") {
                let net = model.as_ref().unwrap().valid();
                let x = x.clone().inner();
                let median = median_seconds(|| {
                    std::hint::black_box(net.forward(x.clone()));
                });
                emit_case(name, case, "forward", median, None);
            }
        }
    }

    fn param<const D: usize>(
        values: Vec<f32>,
        shape: [usize; D],
        device: &Device,
    ) -> Param<Tensor<D>> {
        Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
    }

    /// Rows [k*h, (k+1)*h) of the (G*H, n) row-major matrix m, transposed to (n, h).
    fn rows_t(m: &[f32], n: usize, k: usize, h: usize) -> Vec<f32> {
        let mut out = vec![0f32; n * h];
        for j in 0..h {
            for i in 0..n {
                out[i * h + j] = m[(k * h + j) * n + i];
            }
        }
        out
    }

    /// The inverse of rows_t: writes the (n, h) block g into rows [k*h, (k+1)*h) of m.
    fn put_rows_t(m: &mut [f32], g: &[f32], n: usize, k: usize, h: usize) {
        for j in 0..h {
            for i in 0..n {
                m[(k * h + j) * n + i] = g[i * h + j];
            }
        }
    }

    pub fn check(name: &str, cell: &str) {
        let device = device(name).autodiff();
        let h = CHECK_HIDDEN;
        let mut net = Net::new(cell, h, &device);
        let p = TorchParams::formula(cell, h);
        for (k, gate) in net.gates_mut().into_iter().enumerate() {
            let input = &mut gate.input_transform;
            input.weight = param(rows_t(&p.p[0], VOCAB, k, h), [VOCAB, h], &device);
            input.bias = Some(param(p.p[2][k * h..(k + 1) * h].to_vec(), [h], &device));
            let hid = &mut gate.hidden_transform;
            hid.weight = param(rows_t(&p.p[1], h, k, h), [h, h], &device);
            hid.bias = Some(param(p.p[3][k * h..(k + 1) * h].to_vec(), [h], &device));
        }
        net.out.weight = param(rows_t(&p.p[4], h, 0, VOCAB), [h, VOCAB], &device);
        net.out.bias = Some(param(p.p[5].clone(), [VOCAB], &device));

        let data = check_data();
        let (x, targets) = tensors(&data, CHECK_BATCH, CHECK_SEQ, &device);
        let loss = net.loss(x, targets);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let read = |id| -> Vec<f32> {
            let g: Tensor<2> = grads.get(id).unwrap();
            g.into_data().try_to_vec::<f32>().unwrap()
        };
        let read1 = |id| -> Vec<f32> {
            let g: Tensor<1> = grads.get(id).unwrap();
            g.into_data().try_to_vec::<f32>().unwrap()
        };
        let gh = gates(cell) * h;
        let mut g: [Vec<f32>; 6] = [
            vec![0.0; gh * VOCAB],
            vec![0.0; gh * h],
            vec![0.0; gh],
            vec![0.0; gh],
            vec![0.0; VOCAB * h],
            vec![],
        ];
        for (k, gate) in net.gates().into_iter().enumerate() {
            put_rows_t(
                &mut g[0],
                &read(gate.input_transform.weight.id),
                VOCAB,
                k,
                h,
            );
            put_rows_t(&mut g[1], &read(gate.hidden_transform.weight.id), h, k, h);
            g[2][k * h..(k + 1) * h]
                .copy_from_slice(&read1(gate.input_transform.bias.as_ref().unwrap().id));
            g[3][k * h..(k + 1) * h]
                .copy_from_slice(&read1(gate.hidden_transform.bias.as_ref().unwrap().id));
        }
        put_rows_t(&mut g[4], &read(net.out.weight.id), h, 0, VOCAB);
        g[5] = read1(net.out.bias.as_ref().unwrap().id);
        emit_check(name, cell, loss.into_scalar::<f32>() as f64, &g);
    }

    fn rayon_threads() -> String {
        std::env::var("RAYON_NUM_THREADS").unwrap_or_default()
    }
}

fn main() {
    for var in ["RAYON_NUM_THREADS", "MATMUL_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, THREADS);
        }
    }
    let mut filter = String::new();
    let mut imp = String::from("all");
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check = true,
            "--impl" => imp = args.next().expect("--impl needs a value"),
            s if s.starts_with("--") => {}
            s => filter = s.to_string(),
        }
    }
    let impls = ["candle", "burn-ndarray", "burn-flex"];
    let chosen: Vec<&str> = impls
        .into_iter()
        .filter(|i| imp == "all" || imp == *i)
        .collect();
    if chosen.is_empty() {
        panic!("--impl: one of all, {}", impls.join(", "));
    }
    if check {
        for i in &chosen {
            for cell in ["rnn", "lstm", "gru"] {
                match *i {
                    "candle" => candle_peer::check(cell).unwrap(),
                    name => burn_peer::check(name, cell),
                }
            }
        }
        return;
    }
    let wanted = |id: &str| id.contains(filter.as_str());
    let cases = grid();
    for i in &chosen {
        match *i {
            "candle" => candle_peer::run(&cases, &wanted).unwrap(),
            name => burn_peer::run(name, &cases, &wanted),
        }
    }
}
