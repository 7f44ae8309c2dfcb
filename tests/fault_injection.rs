//! Real operating-system faults in the middle of a save: a file size limit that fails the
//! write part way (`EFBIG`, as a full disk fails it with `ENOSPC`), the same limit killing the
//! process part way through the write (`SIGXFSZ`), and `SIGKILL` at arbitrary points of a loop
//! of saves. Each runs the save in a child process (this test binary again, told what to do
//! through the environment) and checks from outside that the checkpoint at the path is always
//! a whole one, the previous or the new, and loads; and that the next save works.
//!
//! The injected faults (a full disk, write, sync and rename errors, a crash before the rename)
//! are unit tests beside the code, in `src/io/atomic/tests.rs`, where the seam is.
#![cfg(unix)]

mod common;

use common::tempdir::TempDir;
use rand::SeedableRng;
use rand::rngs::StdRng;
use recurrent::checkpoint::{Checkpoint, Progress};
use recurrent::prelude::*;
use recurrent::{Error, StateDict};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

type F64 = NaiveCpu<f64>;

/// What the child does: `save PATH SEED` once or `loop PATH` forever.
const CHILD: &str = "RECURRENT_FAULT_INJECTION_CHILD";

/// A checkpoint of a 64-unit LSTM with Adam's buffers: about 600 KB.
fn checkpoint(seed: u64) -> Checkpoint<F64> {
    let config = RnnConfig::lstm(40, 64).output(40);
    let rnn = Rnn::new(F64::new(), config, &mut StdRng::seed_from_u64(seed)).unwrap();
    let mut adam = Adam::new(0.01).unwrap();
    let trace = rnn.forward(&Input::ids(vec![1, 2, 3], 1), None).unwrap();
    let (_, d) = CrossEntropy::sum()
        .forward(rnn.backend(), trace.logits(), &[2, 3, 4])
        .unwrap();
    let grads = rnn.backward(&trace, &d).unwrap();
    let mut rnn = rnn;
    adam.step(&mut rnn, &grads).unwrap();
    Checkpoint::new(rnn, &adam, Progress::new(seed))
}

fn contents(seed: u64) -> StateDict {
    checkpoint(seed).to_state_dict().unwrap()
}

/// The child's side: runs only when [`CHILD`] is set, as a test that passes otherwise.
#[test]
fn child() {
    let Ok(task) = std::env::var(CHILD) else {
        return;
    };
    let args: Vec<&str> = task.split('\t').collect();
    match args.as_slice() {
        ["save", path, seed] => {
            let result = checkpoint(seed.parse().unwrap()).save(path);
            println!("SAVE-RESULT: {result:?}");
        }
        ["loop", path] => {
            let versions = [checkpoint(1), checkpoint(2)];
            for i in 0.. {
                versions[i % 2].save(path).unwrap();
            }
        }
        _ => panic!("unknown task {task:?}"),
    }
}

/// This binary, as the child doing `task`, under a shell that first runs `setup`.
fn spawn_child(setup: &str, task: &str) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{setup}\nexec \"$0\" \"$@\""))
        .arg(exe)
        .args(["--exact", "child", "--nocapture", "--test-threads", "1"])
        .env(CHILD, task)
        .stdin(Stdio::null());
    command
}

fn assert_loads_as(path: &Path, expected: &[StateDict]) {
    let loaded = Checkpoint::load(F64::new(), path).expect("the checkpoint at the path loads");
    let dict = loaded.to_state_dict().unwrap();
    assert!(
        expected.contains(&dict),
        "the checkpoint is none of the saved ones"
    );
}

/// Saves checkpoint 1 at `run.ckpt`, then runs a child that saves checkpoint 2 over it with
/// files limited to 64 blocks (32 or 64 KB, less than a tenth of the checkpoint).
fn save_under_a_size_limit(dir: &TempDir, setup: &str) -> Output {
    let path = dir.path("run.ckpt");
    checkpoint(1).save(&path).unwrap();
    let task = format!("save\t{}\t2", path.display());
    spawn_child(&format!("{setup}\nulimit -f 64"), &task)
        .output()
        .unwrap()
}

#[test]
fn a_write_that_fails_part_way_leaves_the_previous_checkpoint() {
    let dir = TempDir::new("efbig");
    // SIGXFSZ ignored: the write past the limit fails with EFBIG instead of killing the child.
    let output = save_under_a_size_limit(&dir, "trap '' XFSZ");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("SAVE-RESULT"))
        .expect("the child's result");
    assert!(
        line.contains("Err(Io {") && line.contains("run.ckpt"),
        "{line}"
    );
    assert!(line.contains("too large"), "{line}");
    assert_loads_as(&dir.path("run.ckpt"), &[contents(1)]);
    assert_eq!(dir.entries(), ["run.ckpt"], "the failed save cleaned up");
}

#[test]
fn a_process_killed_part_way_through_the_write_leaves_the_previous_checkpoint() {
    let dir = TempDir::new("sigxfsz");
    let output = save_under_a_size_limit(&dir, "");
    assert!(output.status.signal().is_some(), "{:?}", output.status);
    assert!(!String::from_utf8_lossy(&output.stdout).contains("SAVE-RESULT"));
    let path = dir.path("run.ckpt");
    assert_loads_as(&path, &[contents(1)]);
    let entries = dir.entries();
    assert_eq!(
        entries.len(),
        2,
        "the killed save left its temporary file: {entries:?}"
    );
    // The stale file stops neither the next save nor the load.
    checkpoint(3).save(&path).unwrap();
    assert_loads_as(&path, &[contents(3)]);
}

#[test]
fn sigkill_at_any_point_of_a_save_leaves_a_whole_checkpoint() {
    let dir = TempDir::new("sigkill");
    let path = dir.path("run.ckpt");
    let expected = [contents(1), contents(2)];
    for delay_ms in [0, 5, 17, 41, 97] {
        let _ = std::fs::remove_file(&path);
        let mut child = spawn_child("", &format!("loop\t{}", path.display()))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !path.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the child never saved"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "{status:?}");
        assert_loads_as(&path, &expected);
    }
    checkpoint(3).save(&path).unwrap();
    assert_loads_as(&path, &[contents(3)]);
}

#[test]
fn a_save_into_a_read_only_or_missing_directory_names_the_path() {
    let dir = TempDir::new("read-only");
    let missing = dir.path("no/such/dir/run.ckpt");
    let not_a_dir = dir.file("file", b"x").join("run.ckpt");
    // A read-only file system: creating a file in /sys fails even for root.
    let read_only = Path::new("/sys/recurrent-fault-injection.ckpt").to_path_buf();
    for path in [missing, not_a_dir, read_only] {
        match checkpoint(1).save(&path) {
            Err(Error::Io { path: p, .. }) => assert_eq!(p, path.display().to_string()),
            other => panic!("{}: expected Error::Io, given {other:?}", path.display()),
        }
        assert!(!path.exists());
    }
}

#[test]
fn a_save_into_a_directory_made_read_only_keeps_the_previous_checkpoint() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("read-only-dir");
    let path = dir.path("run.ckpt");
    checkpoint(1).save(&path).unwrap();
    let mode = |m| std::fs::set_permissions(dir.dir(), std::fs::Permissions::from_mode(m));
    mode(0o555).unwrap();
    // Root writes through permissions: then only the case above, in /sys, can be tested.
    let privileged = std::fs::write(dir.path("probe"), b"").is_ok();
    let result = checkpoint(2).save(&path);
    mode(0o755).unwrap();
    if !privileged {
        match result {
            Err(Error::Io { path: p, .. }) => assert_eq!(p, path.display().to_string()),
            other => panic!("expected Error::Io, given {other:?}"),
        }
        assert_loads_as(&path, &[contents(1)]);
        assert_eq!(dir.entries(), ["run.ckpt"]);
    }
}
