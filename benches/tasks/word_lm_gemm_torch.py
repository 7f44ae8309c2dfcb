"""PyTorch's side of `cargo bench --bench word_lm_step`: the three GEMMs of the word model's
output layer (700 rows, 200 units, 18,328 words) and its loss with gradient, median of 7 after a
warm-up, in float32 on `--threads` threads (default 2).

    python benches/tasks/word_lm_gemm_torch.py --threads 2
"""

import argparse
import time

import torch
import torch.nn.functional as F

ROWS, UNITS, WORDS = 700, 200, 18_328


def median_ms(f):
    f()
    times = []
    for _ in range(7):
        start = time.perf_counter()
        f()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[3]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, torch {torch.__version__}")
    h, w, dz = torch.randn(ROWS, UNITS), torch.randn(WORDS, UNITS), torch.randn(ROWS, WORDS)
    flops = 2.0 * ROWS * UNITS * WORDS
    for name, f in [
        ("logits = H W^T", lambda: h @ w.t()),
        ("dH = dZ W", lambda: dz @ w),
        ("dW = dZ^T H", lambda: dz.t() @ h),
    ]:
        ms = median_ms(f)
        print(f"gemm {name:16} {ms:8.2f} ms {flops / ms / 1e6:7.1f} GFLOP/s")
    targets = torch.randint(0, WORDS, (ROWS,))
    logits = dz.clone().requires_grad_()

    def loss_and_grad():
        logits.grad = None
        F.cross_entropy(logits, targets).backward()

    print(f"loss and gradient {median_ms(loss_and_grad):8.2f} ms")
    with torch.no_grad():
        print(f"loss alone        {median_ms(lambda: F.cross_entropy(dz, targets)):8.2f} ms")


if __name__ == "__main__":
    main()
