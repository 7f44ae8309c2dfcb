//! Gradient clipping: by value clamps every entry; by global norm rescales to the threshold and
//! returns the norm before clipping.

mod common;

use approx::assert_relative_eq;
use common::{model, random_ids, rng};
use recurrent::Kernels;
use recurrent::{Backend, CrossEntropy, Gradients, Input, NaiveCpu, Rnn, RnnConfig, clip};

fn gradients<B: Kernels>(rnn: &Rnn<B>) -> Gradients<B> {
    let mut r = rng(21);
    let input = Input::ids(random_ids(12, 5, &mut r), 2);
    let targets = random_ids(12, 5, &mut r);
    let trace = rnn.forward(&input, None).unwrap();
    let (_, d) = CrossEntropy::sum()
        .forward(rnn.backend(), trace.logits(), &targets)
        .unwrap();
    rnn.backward(&trace, &d).unwrap()
}

fn all_entries(grads: &Gradients<NaiveCpu<f64>>) -> Vec<f64> {
    grads
        .named()
        .iter()
        .flat_map(|(_, g)| g.as_slice().to_vec())
        .collect()
}

#[test]
fn by_value_clamps_every_parameter_gradient() {
    let rnn = model(RnnConfig::rnn(5, 6).layers(2).output(5), 20);
    let mut grads = gradients(&rnn);
    let before = all_entries(&grads);
    let threshold = 0.05;
    assert!(
        before.iter().any(|g| g.abs() > threshold),
        "nothing to clip"
    );
    clip::by_value(&mut grads, threshold).unwrap();
    for (b, a) in before.iter().zip(all_entries(&grads)) {
        assert_eq!(a, b.clamp(-threshold, threshold));
    }
}

#[test]
fn global_norm_rescales_to_the_threshold_and_returns_the_norm_before() {
    let rnn = model(RnnConfig::rnn(5, 6).layers(2).output(5), 22);
    let mut grads = gradients(&rnn);
    let before = all_entries(&grads);
    let by_hand = before.iter().map(|g| g * g).sum::<f64>().sqrt();
    let max_norm = by_hand / 3.0;
    let returned = clip::global_norm(&mut grads, max_norm).unwrap();
    assert_relative_eq!(returned, by_hand, max_relative = 1e-14);
    assert_relative_eq!(
        clip::norm(rnn.backend(), &grads),
        max_norm,
        max_relative = 1e-14
    );
    // The direction is kept: every entry scaled by the same factor.
    for (b, a) in before.iter().zip(all_entries(&grads)) {
        assert_relative_eq!(a, b / 3.0, epsilon = 1e-18, max_relative = 1e-13);
    }
    // Below the threshold nothing changes.
    let clipped = all_entries(&grads);
    let again = clip::global_norm(&mut grads, 2.0 * max_norm).unwrap();
    assert_relative_eq!(again, max_norm, max_relative = 1e-14);
    assert_eq!(all_entries(&grads), clipped);
}

#[test]
fn global_norm_of_huge_finite_f32_gradients_clips_instead_of_failing() {
    let rnn = Rnn::new(
        NaiveCpu::<f32>::new(),
        RnnConfig::rnn(5, 6).output(5),
        &mut rng(23),
    )
    .unwrap();
    let mut grads = gradients(&rnn);
    // Entries near 1e20 overflow a sum of squares in f32 (max ~3.4e38) but are finite.
    for (_, g) in grads.params_mut().named_mut() {
        rnn.backend().scale(g, 1e21);
    }
    let pre = clip::global_norm(&mut grads, 1.0).unwrap();
    assert!(pre > 1e19, "pre-clip norm {pre}");
    assert_relative_eq!(clip::norm(rnn.backend(), &grads), 1.0, max_relative = 1e-5);
}
