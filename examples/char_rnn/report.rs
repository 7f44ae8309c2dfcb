//! What a run shows: the progress bar and its status line, the lines above it, and the summary
//! at the end, none of which shows a number that was not measured (no `NaN` for a validation
//! loss not yet computed or a speed of no update).

use crate::checkpoints::Files;
use indicatif::ProgressBar;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

#[path = "../common/progress_bar.rs"]
mod bar;
pub use bar::say;

/// A bar over `steps` updates, or over the time budget when the run stops on time.
pub fn progress_bar(steps: Option<u64>, budget: Duration) -> ProgressBar {
    match steps {
        Some(steps) => bar::new(steps, "steps"),
        None => bar::new(budget.as_secs().max(1), "s"),
    }
}

/// The measurements of a run so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    /// The last update's training loss.
    pub loss: f64,
    /// The last evaluation's validation loss, if there was one.
    pub val: Option<f64>,
    /// Characters trained on in this run.
    pub chars: f64,
    /// Time spent in updates alone, without evaluations, samples and checkpoints.
    pub training: Duration,
    /// Updates in this run.
    pub updates: u64,
}

impl Tally {
    fn chars_per_second(&self, seconds: f64) -> String {
        if self.updates == 0 || seconds <= 0.0 {
            "-".to_string()
        } else {
            format!("{:.0}", self.chars / seconds)
        }
    }

    fn val_text(&self, digits: usize) -> String {
        self.val
            .map_or("-".to_string(), |v| format!("{v:.digits$}"))
    }
}

/// The bar's status after an update.
pub fn status(tally: &Tally, seconds: f64, step: u64, lr: f64) -> String {
    format!(
        "loss {:.3} val {} | {} char/s | step {step} lr {lr:.1e}",
        tally.loss,
        tally.val_text(3),
        tally.chars_per_second(seconds),
    )
}

/// The line above the sample printed at an evaluation.
pub fn evaluation(tally: &Tally, step: u64, epoch: f64, best: bool) -> String {
    format!(
        "--- step {step} (epoch {epoch:.2}, {:.1} s of updates), loss {:.4}, validation {}{}",
        tally.training.as_secs_f64(),
        tally.loss,
        tally.val_text(4),
        if best { " (best: saved)" } else { "" },
    )
}

/// The last line of a run. `best_val` is the best validation loss of the run and those it
/// continues; a best checkpoint is named only if this run wrote it.
pub fn summary(
    tally: &Tally,
    step: u64,
    seconds: f64,
    best_val: Option<f64>,
    best_saved: bool,
    files: &Files,
) -> String {
    let updates = if tally.updates == 0 {
        "no update in this run".to_string()
    } else {
        format!(
            "{} steps in {seconds:.1} s, {:.1} s of them updates ({} characters/s); loss {:.4}",
            tally.updates,
            tally.training.as_secs_f64(),
            tally.chars_per_second(tally.training.as_secs_f64()),
            tally.loss,
        )
    };
    let validation = match (tally.val, best_val) {
        (Some(val), Some(best)) => format!(
            ", validation {val:.4}, best validation {best:.4} ({})",
            if best_saved {
                format!("in {}", files.best.display())
            } else {
                "before this run, which did not improve on it".to_string()
            }
        ),
        _ => String::new(),
    };
    let saved = if best_saved && files.best != files.last {
        format!("{} and {}", files.best.display(), files.last.display())
    } else {
        files.last.display().to_string()
    };
    format!("step {step}: {updates}{validation}; saved {saved}")
}

/// What an interrupted run says: where it saved and how to go on.
pub fn interrupted(step: u64, last: &Path) -> String {
    format!(
        "interrupted at step {step}: saved {last}; go on with --resume {last}",
        last = last.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Files {
        Files {
            best: "m.safetensors".into(),
            last: "m.last.safetensors".into(),
        }
    }

    fn trained() -> Tally {
        Tally {
            loss: 1.5,
            val: Some(1.75),
            chars: 1000.0,
            training: Duration::from_secs(2),
            updates: 10,
        }
    }

    #[test]
    fn nothing_unmeasured_is_shown_as_nan() {
        let before_evaluation = Tally {
            val: None,
            ..trained()
        };
        let line = status(&before_evaluation, 4.0, 10, 2e-3);
        assert_eq!(line, "loss 1.500 val - | 250 char/s | step 10 lr 2.0e-3");
        let line = evaluation(&before_evaluation, 10, 0.5, true);
        assert!(line.ends_with("validation - (best: saved)"), "{line}");
        let nothing = summary(&Tally::default(), 7, 0.0, None, false, &files());
        assert_eq!(
            nothing,
            "step 7: no update in this run; saved m.last.safetensors"
        );
        for line in [line, nothing, status(&Tally::default(), 0.0, 0, 1e-3)] {
            assert!(!line.contains("NaN") && !line.contains("inf"), "{line}");
        }
    }

    #[test]
    fn the_summary_names_only_the_files_this_run_wrote() {
        let line = summary(&trained(), 10, 3.0, Some(1.75), true, &files());
        assert_eq!(
            line,
            "step 10: 10 steps in 3.0 s, 2.0 s of them updates (500 characters/s); loss 1.5000, \
             validation 1.7500, best validation 1.7500 (in m.safetensors); saved m.safetensors \
             and m.last.safetensors"
        );
        let line = summary(&trained(), 10, 3.0, Some(1.5), false, &files());
        assert!(
            line.ends_with(
                "best validation 1.5000 (before this run, which did not improve on it); saved \
                 m.last.safetensors"
            ),
            "{line}"
        );
        assert!(!line.contains("in m.safetensors"), "{line}");
    }

    #[test]
    fn an_interrupted_run_says_how_to_go_on() {
        assert_eq!(
            interrupted(42, Path::new("m.last.safetensors")),
            "interrupted at step 42: saved m.last.safetensors; go on with --resume \
             m.last.safetensors"
        );
    }
}

/// `--log`: one CSV row per evaluation, appended (a resumed run goes on in the same file), with
/// full-precision losses so that two runs can be compared to the bit.
pub struct CsvLog {
    file: File,
    path: String,
}

impl CsvLog {
    /// The columns, in order.
    pub const HEADER: &'static str =
        "step,epoch,update_seconds,wall_seconds,train_loss,val_loss,best";

    /// Opens `path` for appending, writing the header if the file is new or empty; the error
    /// names the flag.
    pub fn open(path: &Path) -> Result<CsvLog, String> {
        let fail = |e: std::io::Error| format!("--log {}: {e}", path.display());
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(fail)?;
        if file.metadata().map_err(fail)?.len() == 0 {
            writeln!(file, "{}", Self::HEADER).map_err(fail)?;
        }
        let path = path.display().to_string();
        Ok(CsvLog { file, path })
    }

    /// The row of an evaluation at `step`; the validation loss is empty when there is none.
    pub fn row(
        &mut self,
        tally: &Tally,
        step: u64,
        epoch: f64,
        wall: Duration,
        best: bool,
    ) -> Result<(), String> {
        let val = tally.val.map_or(String::new(), |v| format!("{v:.9e}"));
        writeln!(
            self.file,
            "{step},{epoch:.4},{:.3},{:.3},{:.9e},{val},{best}",
            tally.training.as_secs_f64(),
            wall.as_secs_f64(),
            tally.loss,
        )
        .map_err(|e| format!("--log {}: {e}", self.path))
    }
}
