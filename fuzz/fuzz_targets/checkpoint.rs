//! A training checkpoint from outside: the model, vocabulary, optimiser state, carried state
//! and progress, parsed and checked by `Checkpoint::from_bytes`.
//!
//! Beyond "no panic": a checkpoint that loads saves again (nothing that loads is refused by
//! `save`), and reloads to the same contents; its model runs from its saved state; restoring
//! its optimiser into any kind of optimiser either fails cleanly or leaves one that can step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recurrent::{
    Adagrad, Adam, Backend, Checkpoint, Input, NaiveCpu, Optimizer, RmsProp, Rnn, Sgd,
};

type B = NaiveCpu<f64>;

fuzz_target!(|data: &[u8]| {
    let Ok(checkpoint) = Checkpoint::from_bytes(B::default(), data) else {
        return;
    };
    let dict = checkpoint
        .to_state_dict()
        .expect("a loaded checkpoint saves");
    let bytes = dict.to_bytes().expect("a checkpoint's state dict encodes");
    let again = Checkpoint::from_bytes(B::default(), &bytes).expect("a saved checkpoint loads");
    assert_eq!(again.to_state_dict().expect("saves again"), dict);
    assert_eq!(again.progress, checkpoint.progress);
    assert_eq!(again.vocab, checkpoint.vocab);
    assert_eq!(again.metadata, checkpoint.metadata);

    let Checkpoint { rnn, state, .. } = &checkpoint;
    if rnn.config().input_size() == 0 {
        return;
    }
    let backend = rnn.backend();
    let batch = state
        .as_ref()
        .map_or(1, |s| backend.shape(&s.layers()[0].h).0);
    if batch == 0 {
        return;
    }
    let input = Input::ids(vec![0; batch], batch);
    let trace = rnn
        .forward(&input, state.as_ref())
        .expect("a loaded model runs");
    let (rows, cols) = backend.shape(trace.logits());
    let d_logits = backend.zeros(rows, cols);
    let grads = rnn
        .backward(&trace, &d_logits)
        .expect("and back-propagates");
    step(&checkpoint, Sgd::new(0.1).expect("lr"), &grads);
    step(&checkpoint, Adam::new(0.1).expect("lr"), &grads);
    step(&checkpoint, Adagrad::new(0.1).expect("lr"), &grads);
    step(&checkpoint, RmsProp::new(0.1).expect("lr"), &grads);
});

/// Restores the checkpoint's optimiser state into `optimizer` and, if it fits, takes a step.
fn step<O: Optimizer<B>>(
    checkpoint: &Checkpoint<B>,
    mut optimizer: O,
    grads: &recurrent::Gradients<B>,
) {
    if checkpoint.restore_optimizer(&mut optimizer).is_ok() {
        let mut rnn: Rnn<B> = checkpoint.rnn.clone();
        let _ = optimizer.step(&mut rnn, grads);
    }
}
