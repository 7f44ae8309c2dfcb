"""The PyTorch side of the forecasting benchmark (issue 18): the recipe `examples/forecast/`
runs, written with torch.nn, so that the errors can be set side by side.

    python benches/tasks/forecast_torch.py --series co2 --seed 1

Same data and recipe as the example (its module docs have the equations):
- the CSV files in examples/data/; CO2's empty weeks filled by linear interpolation between the
  nearest known weeks;
- the first round(0.8 n) values train, the rest are forecast; CO2 is modelled as differences
  y_t - y_{t-1} (its trend), sunspots as values; standardised with the mean and population
  deviation of the training part;
- windows of W values (78 weeks, 16 years) predict the next; nn.GRU(1, 32) (or nn.LSTM) and
  nn.Linear(32, 1) on the last step's output; mean squared error; gradients clipped to a global
  norm of 1; Adam(3e-3); batches of 32 windows in an order shuffled every epoch (PyTorch's
  generator); 20 epochs; float32; `--threads` threads;
- RMSE in the series' units one step ahead over the test part, and over every origin and every
  step up to the horizon (52 weeks, 11 years) with the model's own forecasts fed back; the
  seasonal-naive baseline y_{t-S} (S = 52 weeks, 11 years).

Prints, last, the line the example ends with (`seed S rmse one-step ...`).
"""

import argparse
import csv
import time
from pathlib import Path

import torch
import torch.nn as nn

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"
SPEC = {
    "co2": ("co2_weekly_mauna_loa.csv", "co2", 52, 78, 52, True),
    "sunspots": ("sunspots_yearly.csv", "SUNACTIVITY", 11, 16, 11, False),
}


def read(name, column):
    with open(DATA / name, newline="") as f:
        raw = [row[column].strip() for row in csv.DictReader(f)]
    known = [i for i, v in enumerate(raw) if v]
    y = []
    for i in range(known[0], known[-1] + 1):
        if raw[i]:
            y.append(float(raw[i]))
        else:
            a = max(k for k in known if k < i)
            b = min(k for k in known if k > i)
            va, vb = float(raw[a]), float(raw[b])
            y.append(va + (i - a) / (b - a) * (vb - va))
    return y


class Model(nn.Module):
    def __init__(self, cell, hidden):
        super().__init__()
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(1, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):  # (W, B, 1)
        h, _ = self.rnn(x)
        return self.out(h[-1]).squeeze(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--series", choices=list(SPEC), default="co2")
    p.add_argument("--cell", choices=["gru", "lstm"], default="gru")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    name, column, season, w, h, diff = SPEC[args.series]
    y = read(name, column)
    n = len(y)
    split = round(n * 0.8)
    first = 1 if diff else 0
    u = [0.0] + [y[t] - y[t - 1] for t in range(1, n)] if diff else list(y)
    train = torch.tensor(u[first:split], dtype=torch.float64)
    mean, std = train.mean().item(), train.std(unbiased=False).item()
    z = torch.tensor([(v - mean) / std for v in u], dtype=torch.float32)

    def windows(series, ends):
        return torch.stack([series[e - w : e] for e in ends], 1).unsqueeze(2)

    model = Model(args.cell, args.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ends = torch.arange(w + first, split)
    seconds = []
    for _ in range(args.epochs):
        start, total = time.perf_counter(), 0.0
        order = ends[torch.randperm(len(ends))].tolist()
        for i in range(0, len(order), args.batch):
            chosen = order[i : i + args.batch]
            loss = nn.functional.mse_loss(model(windows(z, chosen)), z[chosen])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            total += loss.item() * len(chosen)
        seconds.append(time.perf_counter() - start)
    last = total / len(order)

    def levels(o, zs):
        vals = [mean + std * v for v in zs]
        if not diff:
            return vals
        out, level = [], y[o - 1]
        for v in vals:
            level += v
            out.append(level)
        return out

    def rmse(pairs):
        return (sum((a - b) ** 2 for a, b in pairs) / len(pairs)) ** 0.5

    with torch.no_grad():
        tests = list(range(split, n))
        zs = model(windows(z, tests)).tolist()
        one = [levels(t, [v])[0] for t, v in zip(tests, zs)]
        origins = list(range(split, n - h + 1))
        paths = [z[o - w : o].tolist() for o in origins]
        for k in range(h):
            batch = torch.tensor([p[k : k + w] for p in paths]).t().unsqueeze(2)
            for p_, v in zip(paths, model(batch).tolist()):
                p_.append(v)
        lv = [levels(o, p_[w:]) for o, p_ in zip(origins, paths)]
    r_one = rmse([(a, y[t]) for a, t in zip(one, tests)])
    r_h = rmse([(l[k], y[o + k]) for o, l in zip(origins, lv) for k in range(h)])
    r_naive = rmse([(y[t - season], y[t]) for t in tests])
    print(
        f"seed {args.seed} rmse one-step {r_one:.4f}, {h}-step {r_h:.4f}, seasonal-naive "
        f"{r_naive:.4f}; last loss {last:.5f}, {sum(seconds) / len(seconds):.2f} s per epoch",
        flush=True,
    )


if __name__ == "__main__":
    main()
