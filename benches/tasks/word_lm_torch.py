"""The PyTorch side of the word-level language model benchmark (issue 18): the recipe of
PyTorch's own `word_language_model` example (main.py, model.py, data.py), which
`examples/word_lm/` follows, written out so that both run on the same files side by side.

    python benches/tasks/word_lm_torch.py --train wikitext-2/test.txt \
        --valid wikitext-2/valid.txt --epochs 6 --seed 1

The recipe, as in that example with `--tied` (its defaults otherwise):
- words split on whitespace with "<eos>" at every line end; the vocabulary every word of the
  training file, then of the validation file, numbered by first appearance;
- batchify: the ids as `--batch` contiguous columns (the remainder dropped); windows of
  `--bptt` steps, the last one shorter; the hidden state carried from window to window
  (detached), reset at each epoch's start; validation the same with `--eval-batch` columns;
- nn.Embedding(V, 200) -> Dropout(0.2) -> nn.LSTM(200, 200, 2, dropout=0.2) -> Dropout(0.2)
  -> nn.Linear(200, V) with its weight the embedding's; the embedding uniform in [-0.1, 0.1),
  the decoder's bias 0, the LSTM as nn.LSTM starts it;
- mean cross-entropy over the window's targets (log_softmax + nll_loss), the gradient clipped
  to a global norm of `--clip`, plain SGD (p -= lr * grad) at lr 20, divided by 4 after an
  epoch whose validation loss is not below the best so far; float32, `--threads` threads.

Prints a line per epoch as the crate's example does (`epoch E lr ... valid loss ... ppl ...
time ... s train ... s valid`), then its summary line (`seed S best valid ppl ...`).
"""

import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_words(path):
    words = []
    with open(path, encoding="utf8") as f:
        for line in f:
            words += line.split() + ["<eos>"]
    return words


def batchify(ids, columns):
    rows = len(ids) // columns
    return torch.tensor(ids[: rows * columns], dtype=torch.long).view(columns, rows).t().contiguous()


class Model(nn.Module):
    def __init__(self, words, size, layers, dropout):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(words, size)
        self.rnn = nn.LSTM(size, size, layers, dropout=dropout)
        self.decoder = nn.Linear(size, words)
        self.decoder.weight = self.encoder.weight
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(out)).view(-1, self.decoder.out_features), hidden


def windows(data, bptt):
    for i in range(0, data.size(0) - 1, bptt):
        n = min(bptt, data.size(0) - 1 - i)
        yield data[i : i + n], data[i + 1 : i + 1 + n].reshape(-1)


def evaluate(model, data, bptt, columns):
    model.eval()
    total, hidden = 0.0, None
    with torch.no_grad():
        for x, y in windows(data, bptt):
            logits, hidden = model(x, hidden)
            total += F.cross_entropy(logits, y, reduction="sum").item()
    return total / (columns * (data.size(0) - 1))


def train_epoch(model, data, args, lr):
    model.train()
    total, hidden = 0.0, None
    for x, y in windows(data, args.bptt):
        if hidden is not None:
            hidden = tuple(h.detach() for h in hidden)
        model.zero_grad()
        logits, hidden = model(x, hidden)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        total += loss.item() * y.numel()
    return total / (args.batch * (data.size(0) - 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True)
    p.add_argument("--valid", required=True)
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--lr", type=float, default=20.0)
    p.add_argument("--clip", type=float, default=0.25)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument("--eval-batch", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1111)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    train_words, valid_words = read_words(args.train), read_words(args.valid)
    vocab = {}
    for w in train_words + valid_words:
        vocab.setdefault(w, len(vocab))
    train = batchify([vocab[w] for w in train_words], args.batch)
    valid = batchify([vocab[w] for w in valid_words], args.eval_batch)
    print(
        f"{len(train_words)} training and {len(valid_words)} validation words, vocabulary "
        f"{len(vocab)}; LSTM {args.layers} x {args.size}, tied, batch {args.batch}, bptt "
        f"{args.bptt}, lr {args.lr}, {args.epochs} epochs, seed {args.seed}, torch "
        f"{torch.__version__}, {args.threads} threads",
        flush=True,
    )
    model = Model(len(vocab), args.size, args.layers, args.dropout)
    lr, best, epochs = args.lr, None, []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        train_loss = train_epoch(model, train, args, lr)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        valid_loss = evaluate(model, valid, args.bptt, args.eval_batch)
        valid_seconds = time.perf_counter() - start
        epochs.append((epoch, valid_loss, train_seconds, valid_seconds))
        print(
            f"epoch {epoch} lr {lr:g} train loss {train_loss:.4f} ppl {math.exp(train_loss):.2f} "
            f"valid loss {valid_loss:.4f} ppl {math.exp(valid_loss):.2f} time "
            f"{train_seconds:.2f} s train {valid_seconds:.2f} s valid",
            flush=True,
        )
        if best is None or valid_loss < best:
            best = valid_loss
        else:
            lr /= 4.0
    top = min(epochs, key=lambda e: e[1])
    n = len(epochs)
    print(
        f"seed {args.seed} best valid ppl {math.exp(top[1]):.2f} (epoch {top[0]}), last valid "
        f"ppl {math.exp(epochs[-1][1]):.2f}, {sum(e[2] for e in epochs) / n:.2f} s per epoch "
        f"training, {sum(e[3] for e in epochs) / n:.2f} s validating"
    )


if __name__ == "__main__":
    main()
