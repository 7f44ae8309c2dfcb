//! Atomic file replacement: a save either leaves the new file at its path or the old one, never
//! a mix, whatever fails (a full disk, a write error, the process killed at any point).
//!
//! The bytes go to a new temporary file beside the target, `.{name}.tmp-{pid}-{n}`, which is
//! synced to disk and then renamed over the target (`rename` replaces a file in one step on
//! POSIX file systems); the directory is synced after, so that the rename survives a power
//! loss too. On an error the temporary file is removed. A process killed before the rename
//! leaves its temporary file behind: the target is still the previous file, the next save uses
//! another name, and the stale file can be deleted at leisure.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Saves made by this process so far: the `n` of the next temporary file's name.
static SAVES: AtomicU64 = AtomicU64::new(0);

/// The steps of a save that can fail on their own: writing and syncing the temporary file, and
/// what happens between that and the rename. [`Disk`] is the real thing; the fault-injection
/// tests (`atomic/tests.rs`) put failures and simulated crashes in their place. Generic, so
/// the real saves pay nothing for the seam; crate-private, so nothing else can reach it.
pub(crate) trait Steps {
    /// Writes `bytes` to the new, empty `file` and syncs it to disk.
    fn write(&mut self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)?;
        file.sync_all()
    }

    /// Runs after the write and before the rename of `tmp` over the target.
    fn before_rename(&mut self, _tmp: &Path) -> io::Result<()> {
        Ok(())
    }
}

/// The steps as they are: write, sync, nothing before the rename.
struct Disk;

impl Steps for Disk {}

/// Writes `bytes` to `path` atomically (see the [module documentation](self)).
///
/// The temporary file's name is unique to the process and the call, and it is created only if
/// nothing has that name (never through a link planted there), so two saves running at once,
/// in one process or in several, cannot write into each other's file.
///
/// # Errors
/// [`Error::Io`] naming `path`; the file at `path`, if any, is untouched then.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, &mut Disk)
}

/// [`write_atomic`] with its steps given.
fn write_atomic_with(path: &Path, bytes: &[u8], steps: &mut impl Steps) -> Result<()> {
    let io_error = |e| Error::io(path, e);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "not a file path");
        Error::io(path, e)
    })?;
    let (tmp, mut file) = create_temporary(dir, &name.to_string_lossy()).map_err(io_error)?;
    let written = steps
        .write(&mut file, bytes)
        .and_then(|()| steps.before_rename(&tmp))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        drop(file);
        let _ = fs::remove_file(&tmp);
        return Err(io_error(e));
    }
    // Best effort: not every platform can open a directory to sync it.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The name of the temporary file of save `n` of process `pid` to a file called `name`.
fn temporary_name(name: &str, pid: u32, n: u64) -> String {
    format!(".{name}.tmp-{pid}-{n}")
}

/// Creates a new file `.{name}.tmp-{pid}-{n}` in `dir`, with `n` counting this process's saves;
/// a name already taken (left by a crashed process with the same id) moves on to the next `n`.
fn create_temporary(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..16 {
        let n = SAVES.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(temporary_name(name, std::process::id(), n));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("the loop ran"))
}

#[cfg(test)]
mod tests;
