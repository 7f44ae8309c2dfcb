"""How much of a run one CPU works while the other waits, and in what.

An on-CPU profile cannot show it: a thread that waits asleep takes no samples. A system-wide
profile samples every CPU at the same rate, the idle ones too, so the samples of one tick say
what each CPU was doing at that moment. This script buckets the samples of
`perf record -a -g` by millisecond and CPU, calls a CPU *waiting* when its sample is the idle
task or a thread in the scheduler, rayon's idle loop or `Cpu`'s spinning wait, and *working*
otherwise, and charges every tick where exactly one CPU works to that CPU's stack: its leaf
symbol and its innermost frame in this crate.

Usage, on a quiet two-core machine (the numbers mean nothing next to another process):

    perf record -a -g -F 999 -o serial.data target/release/examples/char_rnn \\
        --corpus input.txt --hidden 512 --layers 2 --dropout 0.5 \\
        --output-dropout 0.3 --optimizer adam --batch 32 --seq 64 --steps 100 \\
        --eval-every 1000 --threads 2 --force --save serial.safetensors
    perf script -i serial.data -F comm,tid,cpu,time,ip,sym | python3 benches/serial_ticks.py

Call stacks need frame pointers to reach the crate's frames: build the example with
`RUSTFLAGS="-C force-frame-pointers=yes"` (into another `CARGO_TARGET_DIR`).
"""

import collections
import re
import sys

# Leaf symbols of a CPU that waits: the idle task's halt, the scheduler, rayon's idle loop and
# work stealing, and `Cpu`'s spinning wait for jobs.
WAITING = (
    "sched_yield", "wait_until_cold", "__schedule", "finish_task_switch", "schedule",
    "_raw_spin_unlock_irqrestore", "do_syscall_64", "entry_SYSCALL", "exit_to_user_mode",
    "syscall", "futex", "pv_native_safe_halt", "default_idle", "cpuidle", "do_idle",
    "rayon_core::sleep", "crossbeam", "Stealer", "steal", "find_work", "take_local_job",
    "yield_now", "take_jobs_until",
)

HEADER = re.compile(r"\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):")


def samples(lines):
    """Each sample of `perf script`: its command, CPU, time and stack (leaf first)."""
    sample = None
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            if sample:
                yield sample
            sample = None
        elif not line.startswith((" ", "\t")):
            match = HEADER.match(line)
            if match:
                sample = {"comm": match.group(1), "cpu": int(match.group(3)),
                          "time": float(match.group(4)), "stack": []}
        elif sample is not None:
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                sample["stack"].append(re.sub(r"\s+\(.*\)$", "", parts[1]))
    if sample:
        yield sample


def working(sample):
    """`None` for a waiting CPU, else (leaf symbol, innermost frame of the crate)."""
    if sample["comm"] == "swapper" or not sample["stack"]:
        return None
    leaf = sample["stack"][0]
    if any(w in leaf for w in WAITING):
        return None
    frame = next((f for f in sample["stack"]
                  if ("recurrent::" in f or "char_rnn::" in f) and "rayon" not in f), "?")
    return leaf[:70], frame[:90]


def main():
    ticks = collections.defaultdict(dict)
    for sample in samples(sys.stdin):
        ticks[round(sample["time"] * 1000)][sample["cpu"]] = working(sample)
    alone_leaf, alone_frame = collections.Counter(), collections.Counter()
    counts = collections.Counter()
    for cpus in ticks.values():
        if len(cpus) < 2:
            continue
        busy = [w for w in cpus.values() if w is not None]
        counts[len(busy)] += 1
        if len(busy) == 1:
            alone_leaf[busy[0][0]] += 1
            alone_frame[busy[0][1]] += 1
    total = sum(counts.values())
    print(f"{total} ticks: both CPUs working {counts[2] / total:.1%}, "
          f"one {counts[1] / total:.1%}, none {counts[0] / total:.1%}")
    for title, counter in (("one CPU alone, by frame of the crate", alone_frame),
                           ("one CPU alone, by leaf", alone_leaf)):
        print(title + ":")
        for name, n in counter.most_common(15):
            print(f"  {n / total:6.2%}  {name}")


if __name__ == "__main__":
    main()
