//! Thread safety: every type a training program keeps is `Send + Sync` (checked at compile
//! time), and `forward` and `backward` called on one shared model from several threads at once
//! give, bit for bit, what the same calls give one after another, on `NaiveCpu` and on `Cpu`
//! at sizes where `Cpu` splits its products across its own thread pool as well.

use rand::SeedableRng;
use rand::rngs::StdRng;
use recurrent::Kernels;
use recurrent::prelude::*;
use recurrent::{
    Checkpoint, Corpus, Input, Progress, Sampler, Scalar, Stream, Tbptt, TbpttStep, Vocab,
};

/// Compiles only for `T: Send + Sync`.
fn send_sync<T: Send + Sync>() {}

#[test]
fn what_a_training_program_keeps_is_send_and_sync() {
    send_sync::<Rnn<Cpu<f32>>>();
    send_sync::<Rnn<NaiveCpu<f64>>>();
    send_sync::<Trace<Cpu<f32>>>();
    send_sync::<Gradients<Cpu<f32>>>();
    send_sync::<State<Cpu<f32>>>();
    send_sync::<Input<Cpu<f32>>>();
    send_sync::<Sgd<Cpu<f32>>>();
    send_sync::<Adagrad<Cpu<f32>>>();
    send_sync::<RmsProp<Cpu<f32>>>();
    send_sync::<Adam<NaiveCpu<f64>>>();
    send_sync::<Box<dyn Optimizer<Cpu<f32>> + Send + Sync>>();
    send_sync::<Checkpoint<Cpu<f32>>>();
    send_sync::<Progress>();
    send_sync::<Tbptt<Cpu<f32>>>();
    send_sync::<TbpttStep<Cpu<f32>>>();
    send_sync::<Stream<Cpu<f32>>>();
    send_sync::<Vocab>();
    send_sync::<Corpus>();
    send_sync::<Sampler>();
    send_sync::<Error>();
}

/// Every number of one forward and backward pass, as bits.
fn pass<B: Kernels>(rnn: &Rnn<B>, ids: &[usize], batch: usize) -> Vec<u64> {
    let trace = rnn.forward(&Input::ids(ids.to_vec(), batch), None).unwrap();
    let targets: Vec<usize> = ids
        .iter()
        .map(|&i| (i * 7 + 3) % ids.len().max(1))
        .collect();
    let classes = rnn.config().output_size().unwrap();
    let targets: Vec<usize> = targets.into_iter().map(|t| t % classes).collect();
    let (_, d_logits) = CrossEntropy::mean()
        .forward(rnn.backend(), trace.logits(), &targets)
        .unwrap();
    let grads = rnn.backward(&trace, &d_logits).unwrap();
    let backend = rnn.backend();
    let mut all = backend.to_vec(trace.logits());
    for layer in trace.final_state().layers() {
        all.extend(backend.to_vec(&layer.h));
    }
    for (_, g) in grads.named() {
        all.extend(backend.to_vec(g));
    }
    all.into_iter().map(|v| v.to_f64().to_bits()).collect()
}

/// `count` different inputs of `steps * batch` ids below `vocab`.
fn inputs(count: usize, steps: usize, batch: usize, vocab: usize) -> Vec<Vec<usize>> {
    (0..count)
        .map(|k| {
            (0..steps * batch)
                .map(|i| (i * 31 + k * 17 + i / 3) % vocab)
                .collect()
        })
        .collect()
}

/// Runs every input on its own thread at once, and then one by one, and compares the bits.
fn concurrent_equals_sequential<B: Kernels>(rnn: &Rnn<B>, inputs: &[Vec<usize>], batch: usize) {
    let together: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|ids| scope.spawn(move || pass(rnn, ids, batch)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (k, ids) in inputs.iter().enumerate() {
        let alone = pass(rnn, ids, batch);
        assert!(together[k] == alone, "input {k}: a concurrent call differs");
    }
    // The inputs differ, so a mix-up between threads would show.
    assert!(together.windows(2).all(|w| w[0] != w[1]));
}

#[test]
fn concurrent_passes_on_the_reference_backend_equal_sequential_ones() {
    let config = RnnConfig::gru(11, 8)
        .layers(2)
        .bidirectional(true)
        .output(11);
    let rnn = Rnn::new(
        NaiveCpu::<f64>::new(),
        config,
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    concurrent_equals_sequential(&rnn, &inputs(4, 6, 3, 11), 3);
}

#[test]
fn concurrent_passes_on_the_threaded_backend_equal_sequential_ones() {
    // Batch 32, hidden 192, on 4 threads that split every kernel they can (whatever the
    // machine's measured costs would say): each step's recurrence, cell step and every product
    // run in 4 parts while other passes run on the caller's threads.
    let (vocab, batch) = (65, 32);
    let config = RnnConfig::lstm(vocab, 192).layers(2).output(vocab);
    let backend = Cpu::<f32>::with_threads(4).split_always();
    let rnn = Rnn::new(backend, config, &mut StdRng::seed_from_u64(2)).unwrap();
    concurrent_equals_sequential(&rnn, &inputs(3, 4, batch, vocab), batch);
}

#[test]
fn a_time_loop_gives_the_same_bits_on_the_pool_and_alone() {
    // Batch 8, hidden 64, LSTM: 8 x 256 x 64 multiply-adds a step, so `Cpu` times its loops on
    // two threads, alternating the pool and the caller's thread alone until it has a verdict
    // (`src/cpu/loops.rs`); 24 passes take each loop through that trial. Every pass must give
    // the bits of the first, and of one thread.
    let (vocab, batch) = (13, 8);
    let config = RnnConfig::lstm(vocab, 64).output(vocab);
    let ids = &inputs(1, 9, batch, vocab)[0];
    let make = |threads| {
        let backend = Cpu::<f32>::with_threads(threads);
        Rnn::new(backend, config.clone(), &mut StdRng::seed_from_u64(3)).unwrap()
    };
    let want = pass(&make(1), ids, batch);
    let two = make(2);
    for k in 0..24 {
        assert!(
            pass(&two, ids, batch) == want,
            "pass {k} differs from one thread's"
        );
    }
}
