#!/usr/bin/env python3
"""The peers' half of the side-by-side comparison (run by benches/compare/run.sh): the model of
recurrent_timing.rs in PyTorch and in JAX, on the same grid, timed the same way, printed as the
same JSON lines.

The model: one recurrent layer (Elman tanh, LSTM or GRU; PyTorch's gate order i, f, g, o and
r, z, n; both biases), then a linear layer to the 65 logits, summed cross-entropy over the T*B
time-major tokens, zero initial state, float32. PyTorch's initialisation (uniform in
[-1/sqrt(H), 1/sqrt(H)]) everywhere.

- train: forward, summed cross-entropy, backward, global-norm clipping at 5
  (coef = min(1, 5 / (norm + 1e-6)), as torch.nn.utils.clip_grad_norm_), an SGD update (lr 1e-3).
- forward: the logits alone (PyTorch under torch.no_grad()).

Token input, and how fair it is:

- PyTorch: nn.RNN / nn.LSTM / nn.GRU(input_size=65) fed one-hot rows
  (torch.nn.functional.one_hot, built once outside the timing), then nn.Linear(H, 65) and
  F.cross_entropy(reduction="sum"); torch.optim.SGD; torch.set_num_threads(2). This is what a
  PyTorch user writes, and it lets PyTorch use its fused CPU kernels (oneDNN where it applies).
  It does more arithmetic than recurrent, which gathers columns of weight_ih by token id: the
  input projection, 2*65*G*H flops per token forward (one GEMM over all T*B rows) plus its
  weight gradient. At hidden 128 that is +45% (LSTM) over recurrent's count, at hidden 512 +12%.
  The table's GFLOP/s count recurrent's flops for everyone; tokens/s are what they are.
- JAX: written out by hand, so it does what recurrent does: the input projection is a gather of
  weight_ih's columns by token id (jnp.take; a scatter-add in the gradient), then lax.scan over
  the steps, all under jax.jit, value_and_grad, clipping and SGD by hand (no optax), the
  parameters donated to the step. XLA on CPU: its thread pool has one thread per core, two here.

Timing, as recurrent_timing.rs: one call (JAX compiles in it), warm-up for at least 0.3 s and 3
calls, then about 1.5 s of calls timed one by one (5 to 5000); the median is printed.

    python peers.py                          # both peers, whole grid
    python peers.py --impl pytorch --filter lstm/h512/b32/t64/train
    python peers.py --impl pytorch --import-only   # the import alone (a memory baseline)
    python peers.py --check-rust check.jsonl       # rust_peers --check's candle and burn vs PyTorch
"""

import argparse
import json
import math
import time

VOCAB = 65
BUDGET_S = 1.5
WARMUP_S = 0.3
MIN_WARMUP_CALLS = 3
MIN_REPS, MAX_REPS = 5, 5000
LR = 1e-3
MAX_NORM = 5.0
PEAK_N = 2048
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def grid():
    """(cell, hidden, batch, seq) in recurrent_timing.rs's order."""
    cases = [
        (cell, hidden, batch, 64)
        for cell in ("rnn", "lstm", "gru")
        for batch in (1, 32)
        for hidden in (128, 256, 512)
    ]
    cases.append(("rnn", 100, 1, 25))  # min-char-rnn's shape
    return cases


def case_id(cell, hidden, batch, seq, op):
    return f"{cell}/h{hidden}/b{batch}/t{seq}/{op}"


def median_seconds(f):
    f()  # JAX compiles here
    start, calls = time.perf_counter(), 0
    while calls < MIN_WARMUP_CALLS or time.perf_counter() - start < WARMUP_S:
        f()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    reps = min(max(math.ceil(BUDGET_S / per_call), MIN_REPS), MAX_REPS)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    times.sort()
    mid = len(times) // 2
    return times[mid] if len(times) % 2 else 0.5 * (times[mid - 1] + times[mid])


def emit(**fields):
    print(json.dumps(fields), flush=True)


def emit_case(impl, case, op, median_s, **extra):
    cell, hidden, batch, seq = case
    emit(impl=impl, cell=cell, hidden=hidden, batch=batch, seq=seq, op=op,
         median_s=median_s, **extra)


def data(rng, batch, seq):
    """Token ids (seq, batch) and targets (seq * batch,), uniform over the vocabulary."""
    ids = rng.integers(0, VOCAB, size=(seq, batch))
    targets = rng.integers(0, VOCAB, size=seq * batch)
    return ids, targets


# ---------------------------------------------------------------------------------------------
# PyTorch


def run_pytorch(cases, wanted):
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(2)
    config = torch.__config__.show().strip().splitlines()
    emit(impl="pytorch", op="info", version=torch.__version__,
         threads=torch.get_num_threads(), mkldnn=torch.backends.mkldnn.is_available(),
         config=[line.strip() for line in config[:6]])
    modules = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
    for case in cases:
        cell, hidden, batch, seq = case
        ops = [op for op in ("train", "forward") if wanted(case_id(*case, op))]
        if not ops:
            continue
        torch.manual_seed(7)
        rnn = modules[cell](input_size=VOCAB, hidden_size=hidden)
        out = nn.Linear(hidden, VOCAB)
        params = list(rnn.parameters()) + list(out.parameters())
        ids, targets = data(np.random.default_rng(7), batch, seq)
        x = F.one_hot(torch.from_numpy(ids), VOCAB).float()  # (T, B, V)
        targets = torch.from_numpy(targets)
        sgd = torch.optim.SGD(params, lr=LR)

        def train():
            sgd.zero_grad(set_to_none=True)
            h, _ = rnn(x)
            logits = out(h.reshape(seq * batch, hidden))
            loss = F.cross_entropy(logits, targets, reduction="sum")
            loss.backward()
            nn.utils.clip_grad_norm_(params, MAX_NORM)
            sgd.step()
            return loss

        def forward():
            with torch.no_grad():
                h, _ = rnn(x)
                return out(h.reshape(seq * batch, hidden))

        if "train" in ops:
            loss0 = train().item() / (seq * batch)
            emit_case("pytorch", case, "train", median_seconds(train), loss0_per_token=loss0)
        if "forward" in ops:
            emit_case("pytorch", case, "forward", median_seconds(forward))
    if wanted("gemm_peak"):
        a, b = torch.rand(PEAK_N, PEAK_N) - 0.5, torch.rand(PEAK_N, PEAK_N) - 0.5
        median = median_seconds(lambda: torch.mm(a, b))
        emit(impl="pytorch", op="gemm_peak", n=PEAK_N, median_s=median,
             gflops=2 * PEAK_N**3 / median / 1e9)


# ---------------------------------------------------------------------------------------------
# JAX


def jax_model(cell, hidden, batch, seq):
    """The jitted training step, forward pass and (loss, gradients) of one shape."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def step(carry, xw, p):
        """One time step; xw = x W_ih^T + b_ih for the batch, (B, G*H)."""
        if cell == "lstm":
            h, c = carry
            gates = xw + h @ p["w_hh"].T + p["b_hh"]
            i, f, g, o = jnp.split(gates, 4, axis=1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h
        h = carry
        hw = h @ p["w_hh"].T + p["b_hh"]
        if cell == "rnn":
            h = jnp.tanh(xw + hw)
            return h, h
        x_r, x_z, x_n = jnp.split(xw, 3, axis=1)
        h_r, h_z, h_n = jnp.split(hw, 3, axis=1)
        r = jax.nn.sigmoid(x_r + h_r)
        z = jax.nn.sigmoid(x_z + h_z)
        n = jnp.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        return h, h

    def forward(p, ids):
        xw = jnp.take(p["w_ih"].T, ids, axis=0) + p["b_ih"]  # gather: (T, B, G*H)
        h0 = jnp.zeros((batch, hidden), jnp.float32)
        carry = (h0, h0) if cell == "lstm" else h0
        _, hs = lax.scan(lambda c, x: step(c, x, p), carry, xw)
        return hs.reshape(seq * batch, hidden) @ p["w_out"].T + p["b_out"]

    def loss_fn(p, ids, targets):
        logp = jax.nn.log_softmax(forward(p, ids))
        return -jnp.sum(jnp.take_along_axis(logp, targets[:, None], axis=1))

    def train(p, ids, targets):
        loss, grads = jax.value_and_grad(loss_fn)(p, ids, targets)
        leaves = jax.tree_util.tree_leaves(grads)
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in leaves))
        coef = jnp.minimum(1.0, MAX_NORM / (norm + 1e-6))
        p = jax.tree_util.tree_map(lambda w, g: w - LR * coef * g, p, grads)
        return p, loss

    loss_and_grad = jax.jit(jax.value_and_grad(loss_fn))
    return jax.jit(train, donate_argnums=0), jax.jit(forward), loss_and_grad


def jax_params(cell, hidden, rng):
    import jax.numpy as jnp

    g = GATES[cell] * hidden
    bound = 1 / math.sqrt(hidden)
    shapes = {"w_ih": (g, VOCAB), "w_hh": (g, hidden), "b_ih": (g,), "b_hh": (g,),
              "w_out": (VOCAB, hidden), "b_out": (VOCAB,)}
    return {name: jnp.asarray(rng.uniform(-bound, bound, shape), jnp.float32)
            for name, shape in shapes.items()}


def run_jax(cases, wanted):
    import jax
    import jax.numpy as jnp
    import jaxlib
    import numpy as np

    emit(impl="jax", op="info", version=jax.__version__, jaxlib=jaxlib.__version__,
         devices=[str(d) for d in jax.devices()], float=str(jnp.zeros(1).dtype))
    for case in cases:
        cell, hidden, batch, seq = case
        ops = [op for op in ("train", "forward") if wanted(case_id(*case, op))]
        if not ops:
            continue
        rng = np.random.default_rng(7)
        ids, targets = data(rng, batch, seq)
        ids, targets = jnp.asarray(ids, jnp.int32), jnp.asarray(targets, jnp.int32)
        train, forward, _ = jax_model(cell, hidden, batch, seq)
        state = {"p": jax_params(cell, hidden, rng)}

        def train_step():
            state["p"], loss = train(state["p"], ids, targets)
            return loss.block_until_ready()

        def forward_pass():
            return forward(state["p"], ids).block_until_ready()

        if "train" in ops:
            loss0 = float(train_step()) / (seq * batch)
            emit_case("jax", case, "train", median_seconds(train_step), loss0_per_token=loss0)
        if "forward" in ops:
            emit_case("jax", case, "forward", median_seconds(forward_pass))
    if wanted("gemm_peak"):
        rng = np.random.default_rng(11)
        a, b = (jnp.asarray(rng.uniform(-1, 1, (PEAK_N, PEAK_N)), jnp.float32) for _ in "ab")
        mm = jax.jit(jnp.matmul)
        median = median_seconds(lambda: mm(a, b).block_until_ready())
        emit(impl="jax", op="gemm_peak", n=PEAK_N, median_s=median,
             gflops=2 * PEAK_N**3 / median / 1e9)


def check_same_model():
    """The JAX model and the PyTorch one compute the same loss and gradients on the same weights
    (hidden 8, batch 3, 5 steps, every cell): the largest difference, relative to max(1, |x|),
    below 1e-4 or an exit with the cell's name."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    modules = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
    names = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0",
             "b_hh": "bias_hh_l0"}
    hidden, batch, seq = 8, 3, 5
    for cell in GATES:
        rng = np.random.default_rng(3)
        ids, targets = data(rng, batch, seq)
        p = jax_params(cell, hidden, rng)
        rnn, out = modules[cell](VOCAB, hidden), nn.Linear(hidden, VOCAB)
        with torch.no_grad():
            for ours, torch_name in names.items():
                getattr(rnn, torch_name).copy_(torch.tensor(np.array(p[ours])))
            out.weight.copy_(torch.tensor(np.array(p["w_out"])))
            out.bias.copy_(torch.tensor(np.array(p["b_out"])))
        h, _ = rnn(F.one_hot(torch.from_numpy(ids), VOCAB).float())
        loss = F.cross_entropy(out(h.reshape(-1, hidden)), torch.from_numpy(targets),
                               reduction="sum")
        loss.backward()
        jax_loss, grads = jax_model(cell, hidden, batch, seq)[2](p, ids, targets)
        torch_grads = {k: getattr(rnn, v).grad for k, v in names.items()}
        torch_grads.update(w_out=out.weight.grad, b_out=out.bias.grad)
        worst = abs(float(jax_loss) - loss.item()) / abs(loss.item())
        for k, g in torch_grads.items():
            mine = np.asarray(grads[k])
            scale = max(1.0, g.abs().max().item())
            worst = max(worst, float(np.max(np.abs(mine - g.numpy()))) / scale)
        if not worst < 1e-4:
            raise SystemExit(f"{cell}: JAX and PyTorch differ by {worst}")
        emit(impl="check", op="same_model", cell=cell, largest_difference=worst)


def check_rust_peers(path):
    """candle's and burn's models (rust_peers --check, JSON lines in `path`) compute PyTorch's
    loss and gradients on the same weights: hidden 8, batch 3, 5 steps, every cell, parameter p
    (w_ih, w_hh, b_ih, b_hh, w_out, b_out) at flat index k = 0.5 sin(0.7 k + 1.3 p + 0.25), token
    ids[t][b] = (7t + 11b + 3) mod 65, targets[t*B + b] = (13t + 5b + 1) mod 65. The largest
    difference, relative to max(1, |x|) as in check_same_model, below 1e-4 for every peer
    (candle, burn-ndarray, burn-flex) and cell, or an exit naming what differs or is missing."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    modules = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
    names = ["w_ih", "w_hh", "b_ih", "b_hh", "w_out", "b_out"]
    failed = []
    with open(path) as f:
        records = [json.loads(line) for line in f if line.lstrip().startswith("{")]
    for r in records:
        if r.get("op") != "check":
            continue
        cell, hidden, batch, seq = r["cell"], r["hidden"], r["batch"], r["seq"]
        rnn, out = modules[cell](VOCAB, hidden), nn.Linear(hidden, VOCAB)
        params = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0,
                  out.weight, out.bias]
        with torch.no_grad():
            for p, w in enumerate(params):
                k = np.arange(w.numel(), dtype=np.float64)
                w.copy_(torch.tensor((0.5 * np.sin(0.7 * k + 1.3 * p + 0.25)).astype(np.float32)
                                     .reshape(w.shape)))
        ids = np.array([[(7 * t + 11 * b + 3) % VOCAB for b in range(batch)] for t in range(seq)])
        targets = np.array([(13 * (i // batch) + 5 * (i % batch) + 1) % VOCAB
                            for i in range(seq * batch)])
        h, _ = rnn(F.one_hot(torch.from_numpy(ids), VOCAB).float())
        loss = F.cross_entropy(out(h.reshape(-1, hidden)), torch.from_numpy(targets),
                               reduction="sum")
        loss.backward()
        worst = abs(r["loss"] - loss.item()) / abs(loss.item())
        for name, p in zip(names, params):
            theirs = np.asarray(r["grads"][name], dtype=np.float64).reshape(p.shape)
            scale = max(1.0, p.grad.abs().max().item())
            worst = max(worst, float(np.max(np.abs(theirs - p.grad.double().numpy()))) / scale)
        emit(impl="check", op="same_model_rust", peer=r["impl"], cell=cell,
             loss=r["loss"], torch_loss=loss.item(), largest_difference=worst)
        if not worst < 1e-4:
            failed.append(f"{r['impl']} {cell}: differs from PyTorch by {worst}")
    # Every peer and cell must have been checked: an empty or partial file is a failure.
    checked = {(r["impl"], r["cell"]) for r in records if r.get("op") == "check"}
    for peer in ("candle", "burn-ndarray", "burn-flex"):
        for cell in modules:
            if (peer, cell) not in checked:
                failed.append(f"{peer} {cell}: no check record")
    if failed:
        raise SystemExit("; ".join(failed))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("all", "pytorch", "jax"), default="all")
    parser.add_argument("--filter", default="", help="run the cases whose id contains this")
    parser.add_argument("--check", action="store_true",
                        help="check that the JAX and PyTorch models agree, then stop")
    parser.add_argument("--check-rust", metavar="FILE",
                        help="check rust_peers --check's output (FILE) against PyTorch, then stop")
    parser.add_argument("--import-only", action="store_true",
                        help="import the framework and stop (a memory baseline)")
    args = parser.parse_args()

    def wanted(name):
        return not args.import_only and args.filter in name

    if args.check:
        check_same_model()
        return
    if args.check_rust:
        check_rust_peers(args.check_rust)
        return
    if args.impl in ("all", "pytorch"):
        run_pytorch(grid(), wanted)
    if args.impl in ("all", "jax"):
        run_jax(grid(), wanted)


if __name__ == "__main__":
    main()
