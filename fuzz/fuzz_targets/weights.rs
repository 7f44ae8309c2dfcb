//! A `safetensors` weights file from outside: parsed, loaded into a model, saved and reloaded.
//!
//! Beyond "no panic": what parses re-encodes to a fixed point; a model that loads saves to a
//! file that loads back to the same parameters, in either scalar type; and a loaded model runs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recurrent::{Backend, Input, NaiveCpu, Rnn, StateDict, io};

fuzz_target!(|data: &[u8]| {
    if let Ok(dict) = StateDict::from_bytes(data) {
        let bytes = dict.to_bytes().expect("a parsed state dict encodes");
        let again = StateDict::from_bytes(&bytes).expect("an encoded state dict parses");
        assert_eq!(
            again.names().collect::<Vec<_>>(),
            dict.names().collect::<Vec<_>>()
        );
        assert_eq!(again.metadata(), dict.metadata());
    }
    if let Ok(rnn) = io::from_bytes(NaiveCpu::<f32>::default(), data) {
        round_trip(&rnn);
    }
    if let Ok(rnn) = io::from_bytes(NaiveCpu::<f64>::default(), data) {
        round_trip(&rnn);
    }
});

/// Saves `rnn`, loads the bytes back, and checks the parameters and that one step runs.
fn round_trip<B: Backend>(rnn: &Rnn<B>) {
    let dict = rnn.state_dict();
    let bytes = dict.to_bytes().expect("a model's state dict encodes");
    let loaded = io::from_bytes(rnn.backend().clone(), &bytes).expect("a saved model loads");
    assert_eq!(loaded.state_dict(), dict, "reloaded parameters differ");
    assert_eq!(loaded.config(), rnn.config());
    if rnn.config().input_size() > 0 {
        let input = Input::ids(vec![0], 1);
        rnn.forward(&input, None)
            .expect("a loaded model runs one step");
    }
}
