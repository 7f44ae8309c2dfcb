//! The walkthrough's worked example, run: a character-level Elman RNN over the vocabulary
//! h, e, l, o reads "hell" and learns to predict "ello", so that after "hell" comes "o".
//!
//! It prints every step the way the walkthrough does (the input and recurrent products, the
//! hidden state, the output and its softmax), the cross-entropy loss and the gradients of one
//! backward pass, then trains with SGD until the model predicts "o" after "hell".
//!
//! ```text
//! cargo run --release --example hello
//! ```

use recurrent::prelude::*;
use recurrent::{DenseMatrix, softmax};

/// The vocabulary, in one-hot order.
pub const VOCAB: [char; 4] = ['h', 'e', 'l', 'o'];

/// The walkthrough's weights, transcribed from its figures: `W_xh` (3 x 4) and `W_hy` (4 x 3).
const W_XH: [f64; 12] = [
    0.287027, 0.84606, 0.572392, 0.486813, //
    0.902874, 0.871522, 0.691079, 0.18998, //
    0.537524, 0.09234, 0.55815, 0.491528,
];
const W_HY: [f64; 12] = [
    0.37168,
    0.974829459,
    0.830034886, //
    0.39141,
    0.282585823,
    0.659835709, //
    0.64985,
    0.09821557,
    0.3342870884, //
    0.91266,
    0.32581642,
    0.144630018,
];
/// `W_hh` is this scalar times the identity; every hidden unit has this bias.
const W_HH: f64 = 0.427043;
const BIAS: f64 = 0.567001;

/// The backend the example runs on: the reference CPU backend in `f64`.
pub type Backend64 = NaiveCpu<f64>;

/// The walkthrough's network: 4 inputs, 3 hidden units, 4 outputs, tanh, no output bias.
/// The walkthrough has one bias `b`; PyTorch's two are `bias_ih = b` and `bias_hh = 0`.
pub fn walkthrough_model() -> recurrent::Result<Rnn<Backend64>> {
    let config = RnnConfig::rnn(4, 3).output(4).output_bias(false);
    // Every parameter is overwritten below; the seed only fills them first.
    let mut rng = StdRng::seed_from_u64(0);
    let mut rnn = Rnn::new(NaiveCpu::new(), config, &mut rng)?;
    let identity = (0..9)
        .map(|i| if i % 4 == 0 { W_HH } else { 0.0 })
        .collect();
    rnn.set_parameter("weight_ih_l0", W_XH.to_vec())?;
    rnn.set_parameter("weight_hh_l0", identity)?;
    rnn.set_parameter("bias_ih_l0", vec![BIAS; 3])?;
    rnn.set_parameter("bias_hh_l0", vec![0.0; 3])?;
    rnn.set_parameter("out.weight", W_HY.to_vec())?;
    Ok(rnn)
}

/// Token ids of `text` in [`VOCAB`]; `None` for a character outside it.
pub fn encode(text: &str) -> Option<Vec<usize>> {
    text.chars()
        .map(|c| VOCAB.iter().position(|&v| v == c))
        .collect()
}

/// The input "hell" (batch 1) and its targets "ello".
pub fn hell() -> (Input<Backend64>, Vec<usize>) {
    let input = encode("hell").expect("in the vocabulary");
    let targets = encode("ello").expect("in the vocabulary");
    (Input::ids(input, 1), targets)
}

/// The most likely next character after each step of `input`.
pub fn predictions(rnn: &Rnn<Backend64>, input: &Input<Backend64>) -> recurrent::Result<String> {
    let trace = rnn.forward(input, None)?;
    let logits = trace.logits();
    Ok((0..logits.rows())
        .map(|r| VOCAB[argmax(logits.row(r))])
        .collect())
}

/// SGD on "hell" -> "ello" until the model predicts "o" after "hell", at most `max_steps`
/// updates. Returns the number of updates made.
pub fn train(rnn: &mut Rnn<Backend64>, lr: f64, max_steps: usize) -> recurrent::Result<usize> {
    let (input, targets) = hell();
    let mut sgd = Sgd::new(lr)?;
    for step in 0..max_steps {
        if predictions(rnn, &input)?.ends_with('o') && step > 0 {
            return Ok(step);
        }
        let trace = rnn.forward(&input, None)?;
        let (_, d_logits) = CrossEntropy::sum().forward(rnn.backend(), trace.logits(), &targets)?;
        let grads = rnn.backward(&trace, &d_logits)?;
        sgd.step(rnn, &grads)?;
    }
    Ok(max_steps)
}

fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

fn fmt(row: &[f64]) -> String {
    let cells: Vec<String> = row.iter().map(|v| format!("{v:9.6}")).collect();
    format!("[{}]", cells.join(", "))
}

/// Prints the forward pass step by step, as the walkthrough lays it out.
fn print_forward(rnn: &Rnn<Backend64>, input: &Input<Backend64>) -> recurrent::Result<()> {
    let backend = rnn.backend();
    let trace = rnn.forward(input, None)?;
    let probs = softmax(backend, trace.logits());
    let w_ih: &DenseMatrix<f64> = rnn.parameter("weight_ih_l0")?;
    let w_hh: &DenseMatrix<f64> = rnn.parameter("weight_hh_l0")?;
    let b_ih = rnn.parameter("bias_ih_l0")?.as_slice();
    let b_hh = rnn.parameter("bias_hh_l0")?.as_slice();
    let ids = input.as_ids().expect("token input");
    let mut h_prev = DenseMatrix::zeros(1, 3);
    for (t, &id) in ids.iter().enumerate() {
        // W_ih x_t for a one-hot x_t is column `id` of W_ih.
        let w_x: Vec<f64> = (0..3).map(|j| w_ih.get(j, id)).collect();
        // W_hh h_{t-1} + b, with the walkthrough's b = bias_ih + bias_hh.
        let recurrent: Vec<f64> = (0..3)
            .map(|j| {
                let w_h: f64 = (0..3).map(|k| w_hh.get(j, k) * h_prev.get(0, k)).sum();
                w_h + b_ih[j] + b_hh[j]
            })
            .collect();
        let h_t = trace.hidden().row(t);
        println!("step {} input '{}'", t + 1, VOCAB[id]);
        println!("  W_ih x_t            = {}", fmt(&w_x));
        println!("  W_hh h_(t-1) + b    = {}", fmt(&recurrent));
        println!("  h_t                 = {}", fmt(h_t));
        println!("  y_t                 = {}", fmt(trace.logits().row(t)));
        println!("  softmax(y_t) h,e,l,o = {}", fmt(probs.row(t)));
        h_prev = backend.from_vec(1, 3, h_t.to_vec())?;
    }
    Ok(())
}

fn main() -> recurrent::Result<()> {
    let mut rnn = walkthrough_model()?;
    let (input, targets) = hell();
    println!("The walkthrough: vocabulary h, e, l, o; input \"hell\"; targets \"ello\".\n");
    print_forward(&rnn, &input)?;

    let trace = rnn.forward(&input, None)?;
    let (loss, d_logits) = CrossEntropy::sum().forward(rnn.backend(), trace.logits(), &targets)?;
    println!("\ncross-entropy loss, summed over the 4 steps: {loss:.6}");
    let grads = rnn.backward(&trace, &d_logits)?;
    println!("gradients after one backward pass through time:");
    for (name, g) in grads.named() {
        println!("  d{name:<13} = {}", fmt(g.as_slice()));
    }

    println!(
        "\nprediction after each step before training: {:?}",
        predictions(&rnn, &input)?
    );
    let steps = train(&mut rnn, 0.1, 10_000)?;
    println!("trained with SGD (lr 0.1) for {steps} steps\n");
    print_forward(&rnn, &input)?;
    let predicted = predictions(&rnn, &input)?;
    println!("\nprediction after each step after training: {predicted:?}");
    println!(
        "after \"hell\" the model predicts '{}'",
        predicted.chars().last().unwrap_or('?')
    );
    Ok(())
}
