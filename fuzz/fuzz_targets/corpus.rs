//! Corpus decoding: any bytes as text (UTF-8 with replacement characters), a vocabulary of
//! it, a training/validation split and a corpus of windows with any batch and step count.
//!
//! Beyond "no panic": the split keeps every id in order; every window holds exactly the ids
//! its stream has at its position, targets one step ahead; iteration agrees both ways and
//! with `window` and `fill`; the counts agree with the documented formulas.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recurrent::{Corpus, Vocab, data};

fuzz_target!(|data: &[u8]| {
    let [b, t, f, rest @ ..] = data else {
        return;
    };
    let (batch, steps) = (size(*b), size(*t));
    let fraction = match f {
        255 => f64::NAN,
        254 => 1.0,
        f => f64::from(*f) / 256.0,
    };
    let text = String::from_utf8_lossy(rest);
    let Ok(vocab) = Vocab::from_text(&text) else {
        return;
    };
    let ids = vocab.encode(&text).expect("the text's own characters");
    let (train, val) = match data::split(ids.clone(), fraction) {
        Ok(parts) => parts,
        Err(_) => return,
    };
    assert_eq!([train.as_slice(), val.as_slice()].concat(), ids);
    match Corpus::new(train.clone(), batch, steps) {
        Ok(corpus) => check(&corpus, &train, batch, steps),
        Err(_) => assert!(
            batch == 0 || steps == 0 || batch.checked_mul(steps).is_none_or(|n| train.len() <= n)
        ),
    }
});

/// A batch or step count: small ones mostly, and the extremes.
fn size(byte: u8) -> usize {
    match byte {
        255 => usize::MAX,
        254 => usize::MAX / 2 + 1,
        b => usize::from(b % 32),
    }
}

fn check(corpus: &Corpus, ids: &[usize], batch: usize, steps: usize) {
    let k = (ids.len() - 1) / (batch * steps);
    assert_eq!(corpus.len(), k);
    assert_eq!(corpus.dropped(), ids.len() - (k * batch * steps + 1));
    let forward: Vec<_> = corpus.windows().collect();
    let mut backward: Vec<_> = corpus.windows().rev().collect();
    backward.reverse();
    assert_eq!(forward, backward);
    assert_eq!(corpus.windows().len(), k);
    let mut reused = corpus.window(0).expect("window 0");
    for (w, window) in forward.iter().enumerate() {
        corpus.fill(w, &mut reused).expect("a window in range");
        assert_eq!(&reused, window);
        assert_eq!(window.reset, w == 0);
        for t in 0..steps {
            for s in 0..batch {
                let i = s * k * steps + w * steps + t;
                assert_eq!(window.inputs[t * batch + s], ids[i]);
                assert_eq!(window.targets[t * batch + s], ids[i + 1]);
            }
        }
    }
    assert!(corpus.window(k).is_err());
}
