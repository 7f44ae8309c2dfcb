"""The PyTorch side of the char-rnn quality benchmark (issue 5): the recipe `examples/char_rnn.rs`
runs, written with torch.nn, so that validation losses and wall times can be set side by side.

    benches/compare/.venv/bin/python benches/compare/char_rnn_torch.py \
        --corpus input.txt --steps 4000 --eval-every 500

Same data pipeline as the crate (`recurrent::data`):
- vocabulary: the distinct characters sorted by code point;
- validation: the last round(5%) of the ids;
- B parallel streams: with K = (N - 1) // (B * T) windows, stream b is ids[b*K*T : (b+1)*K*T + 1],
  window k feeds ids[k*T + t] of every stream at step t and predicts the next id; the hidden state
  is carried from window to window and reset at the start of each pass;
- validation over the whole held-out text with batch min(B, 8), the state carried, the mean of
  the windows' mean losses.
Same model and training: nn.LSTM(V, H, num_layers=L) + nn.Linear(H, V), PyTorch's initialisation
(its own random numbers, not the crate's), mean cross-entropy, gradients clamped to [-5, 5],
RMSprop(lr, alpha=0.95, eps=1e-8), learning rate times 0.97 per epoch once 10 epochs are done,
float32, torch.set_num_threads(2).

Prints one JSON object per evaluation: {"step", "epoch", "train_loss", "val_loss", "seconds"},
seconds being training time only (evaluations excluded), and a last one with "done": true.
"""

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def windows(ids, batch, steps):
    count = (len(ids) - 1) // (batch * steps)
    if count == 0:
        raise SystemExit(f"text of {len(ids)} ids too short for batch {batch} x steps {steps}")
    used = torch.tensor(ids[: batch * count * steps + 1])
    # streams[b, j] = used[b*K*T + j] for j in 0..=K*T
    span = count * steps
    streams = torch.stack([used[b * span : (b + 1) * span + 1] for b in range(batch)])
    out = []
    for k in range(count):
        x = streams[:, k * steps : (k + 1) * steps].t().contiguous()  # (T, B)
        y = streams[:, k * steps + 1 : (k + 1) * steps + 1].t().contiguous()
        out.append((x, y))
    return out


class Model(nn.Module):
    def __init__(self, vocab, hidden, layers):
        super().__init__()
        self.vocab = vocab
        self.rnn = nn.LSTM(vocab, hidden, num_layers=layers)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x, state):
        one_hot = F.one_hot(x, self.vocab).float()
        h, state = self.rnn(one_hot, state)
        return self.out(h), state


def evaluate(model, data):
    total, state = 0.0, None
    with torch.no_grad():
        for x, y in data:
            logits, state = model(x, state)
            total += F.cross_entropy(logits.reshape(-1, model.vocab), y.reshape(-1)).item()
    return total / len(data)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", required=True)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--seq", type=int, default=50)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument(
        "--init",
        help="start from these weights (a recurrent checkpoint or PyTorch-named safetensors file; "
        "needs the safetensors package) instead of PyTorch's initialisation",
    )
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)

    text = open(args.corpus, encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = [index[c] for c in text]
    held = round(len(ids) * 0.05)
    train_ids, val_ids = ids[: len(ids) - held], ids[len(ids) - held :]
    train = windows(train_ids, args.batch, args.seq)
    val = windows(val_ids, min(args.batch, 8), args.seq)

    model = Model(len(chars), args.hidden, args.layers)
    if args.init:
        from safetensors.torch import load_file

        saved = load_file(args.init)
        weights = {}
        for name, tensor in saved.items():
            if name.startswith(("weight_", "bias_")):
                weights["rnn." + name] = tensor.float().reshape(-1) if name.startswith("bias") else tensor.float()
            elif name.startswith("out."):
                weights[name] = tensor.float().reshape(-1) if name.endswith("bias") else tensor.float()
        model.load_state_dict(weights, strict=True)
    opt = torch.optim.RMSprop(model.parameters(), lr=args.lr, alpha=0.95, eps=1e-8)
    state, seconds, step, loss = None, 0.0, 0, float("nan")
    while step < args.steps:
        k = step % len(train)
        epoch = step // len(train)
        for group in opt.param_groups:
            group["lr"] = args.lr * 0.97 ** max(0, epoch + 1 - 10)
        if k == 0:
            state = None
        start = time.perf_counter()
        x, y = train[k]
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss_t = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss_t.backward()
        for param in model.parameters():
            param.grad.clamp_(-5.0, 5.0)
        opt.step()
        loss = loss_t.item()
        seconds += time.perf_counter() - start
        step += 1
        if step % args.eval_every == 0 or step == args.steps:
            print(
                json.dumps(
                    {
                        "impl": "pytorch",
                        "step": step,
                        "epoch": step / len(train),
                        "train_loss": loss,
                        "val_loss": evaluate(model, val),
                        "seconds": seconds,
                        "done": step == args.steps,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
