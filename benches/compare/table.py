#!/usr/bin/env python3
"""Sets the JSON lines of recurrent_timing.rs, peers.py and rust_peers side by side in Markdown.

    python table.py recurrent.jsonl peers.jsonl [check.jsonl ...]

The first table has recurrent against PyTorch and JAX; a second one, if candle or burn ran
(rust_peers/, the same grid and timing), has recurrent's tokens/s again beside theirs.

Per case (cell, hidden H, batch B, sequence T) and operation (train: forward, loss, BPTT, clip,
SGD; forward: the forward pass alone):

- the median time of one call per implementation, and tokens/s = T*B / median;
- recurrent's speed against each peer: recurrent's tokens/s over the peer's (above 1: faster);
- recurrent's GFLOP/s and its fraction of the GEMM peak recurrent measured (a 2048^3 f32 product
  through Backend::gemm). Flops per token, token-id input (no input GEMM): forward 2*H*G*H
  (recurrence) + 2*H*V (output), G = 1, 4, 3 for rnn, lstm, gru, V = 65 (the vocabulary); a
  training step counts 3 times that. The same count is used for every implementation;
- issue 4's target: min(1.5 x the best peer's tokens/s, 85% of the GEMM-peak bound), the bound
  being peak / flops per token; "x target" is recurrent's tokens/s over it (1 or more: met).
  The best peer is the fastest of every peer that ran, candle and burn included: they are
  peers like PyTorch and JAX, so the target column of the first table counts them too.

Only the standard library: runs on any python3.
"""

import json
import sys

VOCAB = 65
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
PEERS = ("pytorch", "jax")
RUST_PEERS = ("candle", "burn-ndarray", "burn-flex")


def flops_per_token(cell, hidden, op):
    forward = 2 * hidden * GATES[cell] * hidden + 2 * hidden * VOCAB
    return 3 * forward if op == "train" else forward


def read(paths):
    records = []
    for path in paths:
        with open(path) as f:
            records += [json.loads(line) for line in f if line.lstrip().startswith("{")]
    return records


def rate(x):
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k"


def ms(seconds):
    return f"{seconds * 1e3:.3g}"


def timings(records):
    """Every implementation's median per case, {(cell, H, B, T, op): {impl: seconds}}, and the
    cases in the order they first appear."""
    times, order = {}, []
    for r in records:
        if r["op"] not in ("train", "forward"):
            continue
        key = (r["cell"], r["hidden"], r["batch"], r["seq"], r["op"])
        if key not in times:
            order.append(key)
        times.setdefault(key, {})[r["impl"]] = r["median_s"]
    return times, order


def table(records):
    peak = {r["impl"]: r["gflops"] for r in records if r["op"] == "gemm_peak"}
    times, order = timings(records)
    peers = [p for p in PEERS if any(p in t for t in times.values())]
    every_peer = peers + [p for p in RUST_PEERS if any(p in t for t in times.values())]
    head = (["cell", "H", "B", "T", "op"]
            + [f"{i} ms" for i in ("recurrent", *peers)]
            + [f"{i} tok/s" for i in ("recurrent", *peers)]
            + [f"x {p}" for p in peers]
            + ["GFLOP/s", "% peak", "target tok/s", "x target"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    summary, ratios = [], []
    for key in order:
        cell, hidden, batch, seq, op = key
        t = times[key]
        tokens = seq * batch
        tps = {i: tokens / s for i, s in t.items()}
        row = [cell, str(hidden), str(batch), str(seq), op]
        row += [ms(t[i]) if i in t else "-" for i in ("recurrent", *peers)]
        row += [rate(tps[i]) if i in tps else "-" for i in ("recurrent", *peers)]
        mine = tps.get("recurrent")
        row += [f"{mine / tps[p]:.2f}" if mine and p in tps else "-" for p in peers]
        fpt = flops_per_token(cell, hidden, op)
        if mine:
            gflops = mine * fpt / 1e9
            row += [f"{gflops:.1f}"]
            row += [f"{100 * gflops / peak['recurrent']:.1f}" if "recurrent" in peak else "-"]
        else:
            row += ["-", "-"]
        best_peer = max((tps[p] for p in every_peer if p in tps), default=None)
        if mine and best_peer:
            ratios.append(mine / best_peer)
        if mine and best_peer and "recurrent" in peak:
            target = min(1.5 * best_peer, 0.85 * peak["recurrent"] * 1e9 / fpt)
            row += [rate(target), f"{mine / target:.2f}"]
            summary.append(mine >= target)
        else:
            row += ["-", "-"]
        lines.append("| " + " | ".join(row) + " |")
    if every_peer:
        lines += ["", f"target tok/s: min(1.5 x the best of {', '.join(every_peer)}, "
                      "85% of the GEMM-peak bound)"]
    return lines, peak, (summary, ratios), times


def rust_table(records):
    """recurrent's tokens/s beside candle's and burn's, or no lines if none of them ran."""
    times, order = timings(records)
    peers = [p for p in RUST_PEERS if any(p in t for t in times.values())]
    if not peers:
        return []
    head = (["cell", "H", "B", "T", "op", "recurrent tok/s"]
            + [f"{p} ms" for p in peers] + [f"{p} tok/s" for p in peers]
            + [f"x {p}" for p in peers])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in order:
        cell, hidden, batch, seq, op = key
        t = times[key]
        if not any(p in t for p in peers):
            continue
        tps = {i: seq * batch / s for i, s in t.items()}
        mine = tps.get("recurrent")
        row = [cell, str(hidden), str(batch), str(seq), op, rate(mine) if mine else "-"]
        row += [ms(t[p]) if p in t else "-" for p in peers]
        row += [rate(tps[p]) if p in tps else "-" for p in peers]
        row += [f"{mine / tps[p]:.2f}" if mine and p in tps else "-" for p in peers]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def main():
    records = read(sys.argv[1:])
    lines, peak, (met, ratios), times = table(records)
    print("\n".join(lines))
    print()
    rust = rust_table(records)
    if rust:
        print("candle and burn (rust_peers), recurrent's tokens/s repeated; x: recurrent's tokens/s "
              "over the peer's")
        print()
        print("\n".join(rust))
        print()
    for impl, gflops in peak.items():
        print(f"f32 GEMM peak, 2048^3, {impl}: {gflops:.1f} GFLOP/s")
    if met:
        print(f"issue 4 targets met: {sum(met)} of {len(met)} cases")
    if ratios:
        print(f"issue 16: ahead of the best peer in {sum(r > 1 for r in ratios)} of "
              f"{len(ratios)} cases, at least 1.5 times it in {sum(r >= 1.5 for r in ratios)}")
    if "recurrent" in peak:
        for cell in GATES:
            key = (cell, 512, 32, 64, "train")
            if "recurrent" in times.get(key, {}):
                tps = 32 * 64 / times[key]["recurrent"]
                frac = tps * flops_per_token(cell, 512, "train") / 1e9 / peak["recurrent"]
                print(f"{cell} h512 b32 train: {100 * frac:.1f}% of the GEMM peak (target 60%)")
    losses = [r["loss0_per_token"] for r in records if "loss0_per_token" in r]
    if losses:
        print(f"first-step loss per token, every case and implementation: {min(losses):.3f} to "
              f"{max(losses):.3f} (ln 65 = 4.174)")
    for r in records:
        if r["op"] == "same_model":
            print(f"JAX vs PyTorch, {r['cell']}: same loss and gradients within "
                  f"{r['largest_difference']:.1e}")
        if r["op"] == "same_model_rust":
            print(f"{r['peer']} vs PyTorch, {r['cell']}: same loss and gradients within "
                  f"{r['largest_difference']:.1e}")


if __name__ == "__main__":
    main()
