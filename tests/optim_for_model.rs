//! `Sgd::for_model`, `Adagrad::for_model`, `RmsProp::for_model`, `Adam::for_model`: the
//! optimiser's backend comes from the model, so no type annotation is needed; the optimiser is
//! the one `new` makes (same updates, bit for bit) and refuses the same learning rates.

use recurrent::prelude::*;

fn model() -> Rnn<Cpu<f64>> {
    let config = RnnConfig::lstm(4, 6).output(4);
    Rnn::new(
        Cpu::<f64>::with_threads(1),
        config,
        &mut StdRng::seed_from_u64(3),
    )
    .unwrap()
}

/// Three updates of a copy of `rnn` with `opt`: the parameters after them.
fn trained<O: Optimizer<Cpu<f64>>>(rnn: &Rnn<Cpu<f64>>, mut opt: O) -> recurrent::StateDict {
    let mut rnn = rnn.clone();
    let input = Input::ids(vec![0, 1, 2, 3, 1], 1);
    for _ in 0..3 {
        let trace = rnn.forward(&input, None).unwrap();
        let targets = [1, 2, 3, 1, 0];
        let (_, d) = CrossEntropy::sum()
            .forward(rnn.backend(), trace.logits(), &targets)
            .unwrap();
        let grads = rnn.backward(&trace, &d).unwrap();
        opt.step(&mut rnn, &grads).unwrap();
    }
    assert_eq!(opt.step_count(), 3);
    rnn.state_dict()
}

#[test]
fn for_model_needs_no_annotation_and_updates_as_new() {
    let rnn = model();
    let start = rnn.state_dict();
    // No `::<Cpu<f64>>` anywhere: the model gives the backend type.
    let sgd = Sgd::for_model(&rnn, 0.1).unwrap().momentum(0.9).unwrap();
    assert_eq!(sgd.lr(), 0.1);
    let same = Sgd::new(0.1).unwrap().momentum(0.9).unwrap();
    let after = trained(&rnn, sgd);
    assert_ne!(after, start, "SGD changed nothing");
    assert_eq!(after, trained(&rnn, same));

    let adam = Adam::for_model(&rnn, 1e-2).unwrap();
    assert_eq!(trained(&rnn, adam), trained(&rnn, Adam::new(1e-2).unwrap()));
    let rms = RmsProp::for_model(&rnn, 1e-2).unwrap().alpha(0.95).unwrap();
    let same = RmsProp::new(1e-2).unwrap().alpha(0.95).unwrap();
    assert_eq!(trained(&rnn, rms), trained(&rnn, same));
    let ada = Adagrad::for_model(&rnn, 1e-1).unwrap();
    assert_eq!(
        trained(&rnn, ada),
        trained(&rnn, Adagrad::new(1e-1).unwrap())
    );
}

#[test]
fn for_model_refuses_the_learning_rates_new_refuses() {
    let rnn = model();
    for lr in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let errors = [
            Sgd::for_model(&rnn, lr).unwrap_err(),
            Adagrad::for_model(&rnn, lr).unwrap_err(),
            RmsProp::for_model(&rnn, lr).unwrap_err(),
            Adam::for_model(&rnn, lr).unwrap_err(),
        ];
        let from_new = [
            Sgd::<Cpu<f64>>::new(lr).unwrap_err(),
            Adagrad::<Cpu<f64>>::new(lr).unwrap_err(),
            RmsProp::<Cpu<f64>>::new(lr).unwrap_err(),
            Adam::<Cpu<f64>>::new(lr).unwrap_err(),
        ];
        for (err, want) in errors.iter().zip(&from_new) {
            assert!(matches!(err, Error::Config { .. }), "lr {lr}: {err}");
            assert!(err.to_string().contains("learning rate"), "lr {lr}: {err}");
            assert_eq!(err, want);
        }
    }
}
