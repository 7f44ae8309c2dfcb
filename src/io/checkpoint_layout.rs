//! The layout of a training checkpoint's file ([`Checkpoint`](crate::Checkpoint)): the metadata
//! key that marks a file as one, and the prefixes that set its parts apart from the model's
//! tensors. Defined here, not in `checkpoint`, because [`load`](super::load) reads the model
//! out of a checkpoint and `io` does not import `checkpoint` (which imports `io`); `checkpoint`
//! takes them from here. What each part holds is `checkpoint`'s business.

use super::StateDict;

/// The metadata key that marks a file as a checkpoint; its value is the format version
/// ([`FORMAT_VERSION`](crate::checkpoint::FORMAT_VERSION)).
pub const FORMAT_KEY: &str = "recurrent.checkpoint";

/// The prefix of the optimiser's tensors and metadata.
pub(crate) const OPTIM: &str = "optim.";
/// The prefix of a stateful schedule's metadata (and tensors, should one have any).
pub(crate) const SCHEDULE: &str = "schedule.";
/// The prefix of the carried state's tensors.
pub(crate) const STATE: &str = "state.";
/// The prefix of the caller's metadata.
pub(crate) const USER: &str = "user.";

/// Whether `dict` is a checkpoint (it has [`FORMAT_KEY`]).
#[cfg(feature = "formats")]
pub(crate) fn is_checkpoint(dict: &StateDict) -> bool {
    dict.metadata().contains_key(FORMAT_KEY)
}

/// The model's part of a checkpoint: every tensor but the optimiser's, the schedule's and the
/// state's, and all the metadata.
pub(crate) fn model_part(dict: &StateDict) -> StateDict {
    let mut model = StateDict::new();
    for name in dict.names() {
        if ![OPTIM, SCHEDULE, STATE].iter().any(|p| name.starts_with(p)) {
            model.insert(name, dict.get(name).expect("a listed name").clone());
        }
    }
    for (key, value) in dict.metadata() {
        model.set_metadata(key.clone(), value.clone());
    }
    model
}
