//! Property tests of bad input: a random valid case (see `common/cases.rs`) runs forward and
//! backward without error, and the same case with one fault put in gives an `Err`, never a
//! panic, whose message names the offending quantity (the id and its bound, the expected and
//! the given shape, the sequence and its length, ...).
//!
//! Faults: a token id out of range; a dense input of the wrong width; rows that are not a
//! multiple of the batch; no steps (`T = 0`) or batch 0; lengths that are zero, longer than
//! `T` or not one per sequence; an initial state with the wrong number of layers, a wrong
//! `h` or `c` shape, or a missing or extra `c`; a `d_logits` of the wrong shape; a trace made
//! by a model of another size. Lengths need not be sorted (unlike PyTorch's packed
//! sequences), so unsorted lengths are valid input here.

#[path = "common/cases.rs"]
mod cases;

use cases::{Case, FULL, cases};
use proptest::prelude::*;
use recurrent::{CellState, Input, NaiveCpu, Result, State};

type F64 = NaiveCpu<f64>;

/// Cases of each property.
const CASES: u32 = 256;

/// `cases` cases, with this file's regressions (see `cases::config`).
fn config(cases: u32) -> ProptestConfig {
    cases::config(cases, "tests/proptest-regressions/properties_rejects.txt")
}

/// One thing wrong with an otherwise valid case. The numbers pick where and by how much; each
/// is reduced modulo what the case allows.
#[derive(Debug, Clone)]
enum Fault {
    /// Token id `input + excess` at position `at`.
    IdOutOfRange { at: usize, excess: usize },
    /// A dense input `delta` columns wider (or narrower, for `narrower`).
    DenseWidth { delta: usize, narrower: bool },
    /// `extra` rows beyond `T*B` (not a multiple of the batch).
    RaggedRows { extra: usize },
    /// No steps at all.
    NoSteps,
    /// Batch 0.
    NoBatch,
    /// Sequence `at` gets length 0.
    ZeroLength { at: usize },
    /// Sequence `at` gets a length `by` steps beyond `T`.
    TooLong { at: usize, by: usize },
    /// `delta` lengths more, or fewer (`fewer`), than sequences.
    LengthCount { delta: usize, fewer: bool },
    /// `delta` states more, or fewer, than layers times directions.
    StateCount { delta: usize, fewer: bool },
    /// State `at` gets an `h` (or `c`) with rows and columns off by the deltas.
    StateShape {
        at: usize,
        rows: usize,
        cols: usize,
        cell: bool,
    },
    /// State `at` lacks its `c` (LSTM) or has one it should not (others).
    StateCell { at: usize },
    /// `d_logits` with rows and columns off by the deltas.
    DLogits { rows: usize, cols: usize },
    /// Backward on the trace of a model `extra` hidden units larger.
    ForeignTrace { extra: usize },
    /// A final-state gradient whose state `at` has an `h` `extra` units wider.
    DFinal { at: usize, extra: usize },
}

fn faults() -> impl Strategy<Value = Fault> {
    let (at, small) = (any::<usize>(), 1usize..=3);
    prop_oneof![
        (at, 0usize..=1000).prop_map(|(at, excess)| Fault::IdOutOfRange { at, excess }),
        (small.clone(), any::<bool>())
            .prop_map(|(delta, narrower)| Fault::DenseWidth { delta, narrower }),
        small.clone().prop_map(|extra| Fault::RaggedRows { extra }),
        Just(Fault::NoSteps),
        Just(Fault::NoBatch),
        at.prop_map(|at| Fault::ZeroLength { at }),
        (at, small.clone()).prop_map(|(at, by)| Fault::TooLong { at, by }),
        (small.clone(), any::<bool>())
            .prop_map(|(delta, fewer)| Fault::LengthCount { delta, fewer }),
        (small.clone(), any::<bool>())
            .prop_map(|(delta, fewer)| Fault::StateCount { delta, fewer }),
        (at, 0usize..=2, 0usize..=2, any::<bool>()).prop_map(|(at, rows, cols, cell)| {
            // At least one of the two is off.
            let cols = if rows == 0 && cols == 0 { 1 } else { cols };
            Fault::StateShape {
                at,
                rows,
                cols,
                cell,
            }
        }),
        at.prop_map(|at| Fault::StateCell { at }),
        (0usize..=2, 0usize..=2).prop_map(|(rows, cols)| Fault::DLogits {
            rows,
            cols: if rows == 0 && cols == 0 { 1 } else { cols },
        }),
        small
            .clone()
            .prop_map(|extra| Fault::ForeignTrace { extra }),
        (at, small).prop_map(|(at, extra)| Fault::DFinal { at, extra }),
    ]
}

/// `message` must contain every part.
fn names(message: &str, parts: &[String]) -> std::result::Result<(), TestCaseError> {
    for part in parts {
        prop_assert!(
            message.contains(part.as_str()),
            "{message:?} lacks {part:?}"
        );
    }
    Ok(())
}

/// The error of a forward (and, if it passes, backward) pass over `input` from `state`,
/// with `d_logits` made to `(rows, cols)` when given.
fn run(
    case: &Case,
    input: &Input<F64>,
    state: Option<&State<F64>>,
    d_logits: Option<(usize, usize)>,
) -> Result<()> {
    let rnn = case.model(F64::new());
    let trace = rnn.forward(input, state)?;
    let (rows, cols) = d_logits.unwrap_or((case.rows(), case.classes()));
    rnn.backward(&trace, &case.matrix(rnn.backend(), 2, rows, cols))?;
    Ok(())
}

/// A dense input of `rows x width` for `case`, with its lengths.
fn dense(case: &Case, rows: usize, width: usize, batch: usize) -> Input<F64> {
    let x = case.matrix(&F64::new(), 1, rows, width);
    let input = Input::dense(x, batch);
    match &case.lengths {
        Some(lengths) => input.with_lengths(lengths.clone()),
        None => input,
    }
}

/// `case` with lengths (all `T` but those changed).
fn with_lengths(case: &Case, change: impl FnOnce(&mut Vec<usize>)) -> Input<F64> {
    let mut lengths = case
        .lengths
        .clone()
        .unwrap_or_else(|| vec![case.steps; case.batch]);
    change(&mut lengths);
    case.input(&F64::new()).with_lengths(lengths)
}

/// The state of `case` (zeros if it has none), changed by `change`.
fn state_with(case: &Case, change: impl FnOnce(&mut Vec<CellState<F64>>)) -> State<F64> {
    let backend = F64::new();
    let state = case
        .initial_state(&backend)
        .unwrap_or_else(|| case.model(backend).zero_state(case.batch));
    let mut layers = state.into_layers();
    change(&mut layers);
    State::new(layers)
}

/// Puts `fault` into `case`, runs it, and checks the error names the problem.
fn check_fault(case: &Case, fault: &Fault) -> std::result::Result<(), TestCaseError> {
    let backend = F64::new();
    let (rows, batch, steps) = (case.rows(), case.batch, case.steps);
    let state = case.initial_state(&backend);
    let count = case.layers * case.directions();
    let (h, hidden) = (case.hidden, case.hidden);
    let result = match *fault {
        Fault::IdOutOfRange { at, excess } => {
            let (at, value) = (at % rows, case.input + excess);
            let mut ids = case.id_values();
            ids[at] = value;
            let input = Input::ids(ids, batch);
            let err = run(case, &input, state.as_ref(), None)
                .unwrap_err()
                .to_string();
            let want = [
                format!("entry {at} is {value}"),
                format!("below {}", case.input),
            ];
            return names(&err, &want);
        }
        Fault::DenseWidth { delta, narrower } => {
            let width = match narrower {
                true => case.input.saturating_sub(delta),
                false => case.input + delta,
            };
            let input = dense(case, rows, width, batch);
            let err = run(case, &input, state.as_ref(), None);
            let want = [
                format!("({rows}, {})", case.input),
                format!("({rows}, {width})"),
            ];
            (err, want.to_vec())
        }
        Fault::RaggedRows { extra } => {
            // With batch 1 every row count is a multiple: use batch + 1 then.
            let batch = batch.max(2);
            let rows = rows.div_ceil(batch) * batch + extra % (batch - 1) + 1;
            let input = dense(case, rows, case.input, batch);
            let err = run(case, &input, None, None);
            let want = [
                format!("a multiple of {batch} rows"),
                format!("{rows} rows"),
            ];
            (err, want.to_vec())
        }
        Fault::NoSteps => {
            let input = dense(case, 0, case.input, batch);
            (
                run(case, &input, None, None),
                vec!["input sequence is empty".into()],
            )
        }
        Fault::NoBatch => {
            let input = Input::ids(vec![], 0);
            (run(case, &input, None, None), vec!["batch is empty".into()])
        }
        Fault::ZeroLength { at } => {
            let at = at % batch;
            let input = with_lengths(case, |l| l[at] = 0);
            let err = run(case, &input, state.as_ref(), None);
            let want = [
                format!("length of sequence {at}"),
                format!("1..={steps}"),
                "given 0".into(),
            ];
            (err, want.to_vec())
        }
        Fault::TooLong { at, by } => {
            let at = at % batch;
            let input = with_lengths(case, |l| l[at] = steps + by);
            let err = run(case, &input, state.as_ref(), None);
            let want = [
                format!("length of sequence {at}"),
                format!("given {} steps", steps + by),
            ];
            (err, want.to_vec())
        }
        Fault::LengthCount { delta, fewer } => {
            let n = if fewer {
                batch.saturating_sub(delta)
            } else {
                batch + delta
            };
            let input = with_lengths(case, |l| l.resize(n, 1));
            let err = run(case, &input, state.as_ref(), None);
            let want = [format!("expected shape {batch}, given {n}")];
            (err, want.to_vec())
        }
        Fault::StateCount { delta, fewer } => {
            let n = if fewer {
                count.saturating_sub(delta)
            } else {
                count + delta
            };
            let state = state_with(case, |layers| {
                let spare = layers[0].clone();
                layers.resize(n, spare);
            });
            let err = run(case, &case.input(&backend), Some(&state), None);
            let want = [format!("expected shape {count}, given {n}")];
            (err, want.to_vec())
        }
        Fault::StateShape {
            at,
            rows: dr,
            cols: dc,
            cell,
        } => {
            let (at, cell) = (at % count, cell && case.kind.has_cell_state());
            let shape = (batch + dr, h + dc);
            let state = state_with(case, |layers| {
                let wrong = case.matrix(&backend, 9, shape.0, shape.1);
                match cell {
                    true => layers[at].c = Some(wrong),
                    false => layers[at].h = wrong,
                }
            });
            let err = run(case, &case.input(&backend), Some(&state), None);
            let part = if cell {
                "initial state c"
            } else {
                "initial state h"
            };
            let want = [
                part.into(),
                format!("({batch}, {hidden})"),
                format!("{shape:?}"),
            ];
            (err, want.to_vec())
        }
        Fault::StateCell { at } => {
            let at = at % count;
            let lstm = case.kind.has_cell_state();
            let state = state_with(case, |layers| {
                layers[at].c = match lstm {
                    true => None,
                    false => Some(case.matrix(&backend, 9, batch, hidden)),
                }
            });
            let err = run(case, &case.input(&backend), Some(&state), None);
            let want = match lstm {
                true => "needs a cell state c",
                false => "has no cell state, but c was given",
            };
            (err, vec![want.into()])
        }
        Fault::DLogits { rows: dr, cols: dc } => {
            let shape = (rows + dr, case.classes() + dc);
            let err = run(case, &case.input(&backend), state.as_ref(), Some(shape));
            let want = [
                "logits gradient".into(),
                format!("({rows}, {})", case.classes()),
                format!("{shape:?}"),
            ];
            (err, want.to_vec())
        }
        Fault::ForeignTrace { extra } => {
            let mut larger = case.clone();
            larger.hidden += extra;
            let trace = larger
                .model(backend)
                .forward(&larger.input(&backend), None)
                .expect("a valid case");
            let err = case
                .model(backend)
                .backward(&trace, trace.logits())
                .map(|_| ());
            (err, vec!["trace".into()])
        }
        Fault::DFinal { at, extra } => {
            let at = at % count;
            let rnn = case.model(backend);
            let trace = rnn
                .forward(&case.input(&backend), state.as_ref())
                .expect("a valid case");
            let mut d_final = trace.final_state().into_layers();
            d_final[at].h = case.matrix(&backend, 9, batch, hidden + extra);
            let err = rnn
                .backward_with_state(&trace, trace.logits(), Some(&State::new(d_final)))
                .map(|_| ());
            let want = [
                "final state gradient h".into(),
                format!("({batch}, {hidden})"),
                format!("({batch}, {})", hidden + extra),
            ];
            (err, want.to_vec())
        }
    };
    let (result, want) = result;
    let err = match result {
        Ok(()) => return Err(TestCaseError::fail(format!("{fault:?} was accepted"))),
        Err(e) => e.to_string(),
    };
    names(&err, &want)
}

proptest! {
    #![proptest_config(config(CASES))]

    /// Every generated valid case runs forward and backward without error.
    #[test]
    fn valid_input_is_accepted(case in cases(FULL)) {
        let state = case.initial_state(&F64::new());
        prop_assert!(run(&case, &case.input(&F64::new()), state.as_ref(), None).is_ok());
    }

    /// Backward on the trace of any other random model (another kind, size, depth, direction
    /// count, input kind or length) never panics: it fails, or, where the trace fits (the
    /// models differ only in biases, or in the input size for ids that fit both), it gives
    /// gradients of this model's parameter shapes.
    #[test]
    fn backward_on_the_trace_of_any_model_never_panics(case in cases(FULL), other in cases(FULL)) {
        let backend = F64::new();
        let rnn = case.model(backend);
        let trace = other
            .model(backend)
            .forward(&other.input(&backend), other.initial_state(&backend).as_ref())
            .expect("a valid case");
        match rnn.backward(&trace, trace.logits()) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(grads) => {
                let shapes = |named: Vec<(String, &<F64 as recurrent::Backend>::Matrix)>| {
                    named.into_iter().map(|(n, m)| (n, recurrent::Backend::shape(&backend, m))).collect::<Vec<_>>()
                };
                prop_assert_eq!(shapes(grads.named()), shapes(rnn.parameters()));
            }
        }
    }

    /// Every fault gives an `Err` naming the problem; none panics.
    #[test]
    fn invalid_input_is_rejected_with_a_message_that_names_it(
        case in cases(FULL),
        fault in faults(),
    ) {
        check_fault(&case, &fault)?;
    }
}
