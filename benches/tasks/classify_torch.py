"""The PyTorch side of the Japanese Vowels benchmark (issue 18): the recipe `examples/classify/`
runs, written with torch.nn, so that test accuracies can be set side by side.

    python benches/tasks/classify_torch.py --seed 1

Same data and recipe as the example:
- the UEA `.ts` files in examples/data/japanese_vowels/ (the official split: 270 training and
  370 test utterances, 12 features, 7 to 29 steps, labels 1 to 9 read as classes 0 to 8);
- every feature standardised with the mean and standard deviation (population, divisor N) of
  its values over every step of every training utterance; the test set uses the same numbers;
- batches of `--batch` utterances in an order shuffled every epoch (PyTorch's generator, not
  the crate's, so the orders differ), padded to the batch's longest and packed with
  `pack_padded_sequence(enforce_sorted=False)`: padding never reaches the model or the loss;
- every standardised training value of a batch plus `--noise` times a fresh standard normal draw
  (augmentation; not the padding, not the test set);
- nn.GRU(12, H) (or nn.LSTM) and nn.Linear(H, 9) on h_n[-1], mean cross-entropy with label
  smoothing `--label-smoothing`, gradients clipped to a global norm of `--clip`, Adam(lr), `--epochs` passes, float32, `--threads` threads (2);
- the test accuracy of the model after the last epoch (no model selection on the test set).

Prints one JSON object per epoch ({"epoch", "train_loss", "seconds"}, seconds being the epoch's
training time), one with "done": true and the test accuracy, and last the line the example
ends with (`seed S test accuracy ...`).
"""

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "japanese_vowels"


def read_ts(path):
    """The utterances (each a (T, 12) tensor) and labels (0-based) of a UEA .ts file."""
    series, labels, in_data = [], [], False
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            in_data = in_data or line.lower() == "@data"
            continue
        if not in_data:
            raise SystemExit(f"{path}: a case before @data")
        *dims, label = line.split(":")
        values = [[float(v) for v in d.split(",")] for d in dims]
        series.append(torch.tensor(values, dtype=torch.float32).t().contiguous())
        labels.append(int(label) - 1)
    return series, torch.tensor(labels)


class Model(nn.Module):
    def __init__(self, cell, hidden, classes):
        super().__init__()
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(12, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, batch):
        lengths = torch.tensor([len(s) for s in batch])
        padded = pad_sequence(batch)  # (T, B, 12), time first as in the crate
        packed = pack_padded_sequence(padded, lengths, enforce_sorted=False)
        _, state = self.rnn(packed)
        h_n = state[0] if isinstance(state, tuple) else state
        return self.out(h_n[-1])


def accuracy(model, series, labels, batch=64):
    right = 0
    with torch.no_grad():
        for i in range(0, len(series), batch):
            logits = model(series[i : i + batch])
            right += (logits.argmax(1) == labels[i : i + batch]).sum().item()
    return right / len(series)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cell", choices=["lstm", "gru"], default="gru")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--constant-lr", action="store_true")
    p.add_argument("--noise", type=float, default=0.3)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    train_x, train_y = read_ts(DATA / "JapaneseVowels_TRAIN.ts")
    test_x, test_y = read_ts(DATA / "JapaneseVowels_TEST.ts")
    steps = torch.cat(train_x)
    mean, std = steps.mean(0), steps.std(0, unbiased=False)
    train_x = [(s - mean) / std for s in train_x]
    test_x = [(s - mean) / std for s in test_x]

    model = Model(args.cell, args.hidden, 9)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    updates = args.epochs * -(-len(train_x) // args.batch)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=updates)
    epochs = []
    for epoch in range(1, args.epochs + 1):
        start, total = time.perf_counter(), 0.0
        order = torch.randperm(len(train_x)).tolist()
        for i in range(0, len(order), args.batch):
            chosen = order[i : i + args.batch]
            batch = [train_x[j] + args.noise * torch.randn_like(train_x[j]) for j in chosen]
            logits = model(batch)
            loss = F.cross_entropy(logits, train_y[chosen], label_smoothing=args.label_smoothing)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            if not args.constant_lr:
                cosine.step()
            total += loss.item() * len(chosen)
        seconds = time.perf_counter() - start
        epochs.append(seconds)
        print(json.dumps({"epoch": epoch, "train_loss": total / len(order), "seconds": seconds}))
    result = {"done": True, "seed": args.seed, "test_accuracy": accuracy(model, test_x, test_y)}
    result["train_accuracy"] = accuracy(model, train_x, train_y)
    print(json.dumps(result))
    # The example's last line, in the example's words.
    right = round(result["test_accuracy"] * len(test_x))
    print(
        f"seed {args.seed} test accuracy {result['test_accuracy']:.4f} ({right} of {len(test_x)}), "
        f"train accuracy {result['train_accuracy']:.4f}, last loss {total / len(order):.4f}, "
        f"{sum(epochs) / len(epochs):.2f} s per epoch",
        flush=True,
    )


if __name__ == "__main__":
    main()
