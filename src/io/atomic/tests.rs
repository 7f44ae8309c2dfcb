//! Fault injection: every way a save can fail part way (a full disk, a write or sync error, a
//! failed rename, the process stopping before the rename or in the middle of the write) leaves
//! the previous file byte for byte as it was, and loadable; what a crash leaves behind does not
//! stop the next save or the load. The files are models' state dicts, as [`crate::io::save`]
//! writes them; a checkpoint is written by the same [`write_atomic`]. Real OS faults (a file
//! size limit, SIGKILL) are in `tests/fault_injection.rs`, on checkpoints.

use super::*;
use crate::{NaiveCpu, Rnn, RnnConfig};
use rand::SeedableRng;
use std::panic::{AssertUnwindSafe, catch_unwind};

type B = NaiveCpu<f64>;

/// A directory of one test's own, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("recurrent-atomic-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The bytes of the saved weights of a small LSTM made from `seed`: longer than every cut
/// below, so that each one tears the file.
fn weights(seed: u64) -> Vec<u8> {
    let config = RnnConfig::lstm(3, 4).output(3);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let rnn = Rnn::new(B::default(), config, &mut rng).unwrap();
    let bytes = rnn.state_dict().to_bytes().unwrap();
    assert!(bytes.len() > 1000, "{} bytes", bytes.len());
    bytes
}

/// `path` holds exactly `bytes`, and they load as a model.
fn assert_intact(path: &Path, bytes: &[u8]) {
    assert_eq!(fs::read(path).unwrap(), bytes, "the previous file changed");
    crate::io::load(B::default(), path).expect("the previous file loads");
}

/// Writes the first `cut` bytes, then fails with `error` (or panics, for a crash, if `None`);
/// `at_rename` moves the failure after the complete write, before the rename.
struct Fault {
    cut: usize,
    error: Option<io::ErrorKind>,
    at_rename: bool,
}

impl Fault {
    fn fail(&self) -> io::Error {
        match self.error {
            Some(kind) => io::Error::new(kind, format!("injected {kind:?}")),
            None => panic!("injected crash"),
        }
    }
}

impl Steps for Fault {
    fn write(&mut self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        if self.at_rename {
            return file.write_all(bytes).and_then(|()| file.sync_all());
        }
        file.write_all(&bytes[..self.cut.min(bytes.len())])?;
        Err(self.fail())
    }

    fn before_rename(&mut self, _tmp: &Path) -> io::Result<()> {
        Err(self.fail())
    }
}

/// Saves the weights of seed 1 to a fresh directory, then those of seed 2 through `fault`.
fn save_over(test: &str, mut fault: Fault) -> (Dir, PathBuf, Vec<u8>, Result<()>) {
    let dir = Dir::new(test);
    let path = dir.0.join("run.ckpt");
    let old = weights(1);
    write_atomic(&path, &old).unwrap();
    let new = weights(2);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        write_atomic_with(&path, &new, &mut fault)
    }));
    let result = outcome.unwrap_or_else(|_| Err(Error::config("crashed")));
    (dir, path, old, result)
}

/// A failure that `write_atomic` saw: an `Err` naming the path, the previous file intact, and
/// no temporary file left.
fn assert_clean_failure(test: &str, fault: Fault, message: &str) {
    let (dir, path, old, result) = save_over(test, fault);
    match result {
        Err(Error::Io {
            path: p,
            message: m,
            ..
        }) => {
            assert_eq!(p, path.display().to_string());
            assert!(m.contains(message), "{m}");
        }
        other => panic!("expected Error::Io, given {other:?}"),
    }
    assert_intact(&path, &old);
    assert_eq!(dir.entries(), ["run.ckpt"], "a temporary file was left");
}

#[test]
fn a_full_disk_midway_leaves_the_previous_file() {
    for cut in [0, 1, 100, 1000] {
        let error = Some(io::ErrorKind::StorageFull);
        let fault = Fault {
            cut,
            error,
            at_rename: false,
        };
        assert_clean_failure("full", fault, "injected StorageFull");
    }
}

#[test]
fn a_write_error_midway_leaves_the_previous_file() {
    for cut in [0, 8, 517] {
        let error = Some(io::ErrorKind::Other);
        let fault = Fault {
            cut,
            error,
            at_rename: false,
        };
        assert_clean_failure("write", fault, "injected Other");
    }
}

#[test]
fn a_failed_sync_or_rename_leaves_the_previous_file() {
    let error = Some(io::ErrorKind::PermissionDenied);
    let fault = Fault {
        cut: 0,
        error,
        at_rename: true,
    };
    assert_clean_failure("rename", fault, "injected PermissionDenied");
}

/// A crash (here a panic, which unwinds past the clean-up as a killed process skips it) leaves
/// the temporary file and the previous file; the next save and the load work.
fn assert_survives_crash(test: &str, fault: Fault) {
    let (dir, path, old, result) = save_over(test, fault);
    assert!(result.is_err());
    assert_intact(&path, &old);
    let entries = dir.entries();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries[0].starts_with(".run.ckpt.tmp-"), "{entries:?}");
    let newer = weights(3);
    write_atomic(&path, &newer).expect("a save after a crash");
    assert_intact(&path, &newer);
    assert_eq!(
        dir.entries().len(),
        2,
        "the stale file is left, nothing else"
    );
}

#[test]
fn a_crash_between_write_and_rename_leaves_the_previous_file() {
    let fault = Fault {
        cut: 0,
        error: None,
        at_rename: true,
    };
    assert_survives_crash("crash-rename", fault);
}

#[test]
fn a_crash_midway_through_the_write_leaves_the_previous_file() {
    let fault = Fault {
        cut: 300,
        error: None,
        at_rename: false,
    };
    assert_survives_crash("crash-write", fault);
}

#[test]
fn stale_temporary_files_with_the_next_names_are_passed_over() {
    let dir = Dir::new("stale");
    let path = dir.0.join("run.ckpt");
    let next = SAVES.load(Ordering::Relaxed);
    let stale: Vec<String> = (next..next + 4)
        .map(|n| temporary_name("run.ckpt", std::process::id(), n))
        .collect();
    for name in &stale {
        fs::write(dir.0.join(name), b"torn").unwrap();
    }
    let bytes = weights(4);
    write_atomic(&path, &bytes).unwrap();
    assert_intact(&path, &bytes);
    for name in &stale {
        assert_eq!(
            fs::read(dir.0.join(name)).unwrap(),
            b"torn",
            "{name} was touched"
        );
    }
}

#[test]
fn concurrent_saves_to_one_path_never_mix() {
    let dir = Dir::new("concurrent");
    let path = dir.0.join("run.ckpt");
    let versions: Vec<Vec<u8>> = (10..14).map(weights).collect();
    std::thread::scope(|scope| {
        for bytes in &versions {
            let path = &path;
            scope.spawn(move || {
                for _ in 0..10 {
                    write_atomic(path, bytes).unwrap();
                }
            });
        }
    });
    let last = fs::read(&path).unwrap();
    assert!(versions.contains(&last), "a mix of two saves");
    assert_intact(&path, &last);
    assert_eq!(dir.entries(), ["run.ckpt"]);
}
