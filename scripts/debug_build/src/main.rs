//! A small user program: a GRU (vocabulary 16, hidden 64, one layer) trained with Adam for 50
//! updates on windows of 32 steps at batch 8 of a repeating pattern. `run.sh` times it built in
//! debug, with and without README's `[profile.dev]` lines, and in release.

use recurrent::prelude::*;

fn main() -> recurrent::Result<()> {
    let (vocab, hidden, steps, batch) = (16, 64, 32, 8);
    let mut rng = StdRng::seed_from_u64(0);
    let config = RnnConfig::gru(vocab, hidden).output(vocab);
    let mut rnn = Rnn::new(Cpu::<f32>::with_threads(1), config, &mut rng)?;
    let mut adam = Adam::for_model(&rnn, 1e-2)?;
    // Sequence b starts at b; each next token is (token * 5 + 3) mod 16.
    let next = |id: usize| (id * 5 + 3) % vocab;
    let mut ids = vec![0; (steps + 1) * batch];
    for b in 0..batch {
        ids[b] = b;
        for t in 1..=steps {
            ids[t * batch + b] = next(ids[(t - 1) * batch + b]);
        }
    }
    let input = Input::ids(ids[..steps * batch].to_vec(), batch);
    let targets = &ids[batch..];
    let mut losses = Vec::new();
    for _ in 0..50 {
        let trace = rnn.forward(&input, None)?;
        let (loss, d) = CrossEntropy::mean().forward(rnn.backend(), trace.logits(), targets)?;
        let mut grads = rnn.backward(&trace, &d)?;
        clip::global_norm(&mut grads, 5.0)?;
        adam.step(&mut rnn, &grads)?;
        losses.push(loss);
    }
    println!("loss {:.4} -> {:.4}", losses[0], losses[49]);
    assert!(losses[49] < 0.5 * losses[0], "the GRU did not learn: {losses:?}");
    Ok(())
}
