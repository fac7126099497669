#!/usr/bin/env python3
"""PyTorch peer of nasd's LSTM language model benchmark (train.BenchmarkTrainLSTMLM).

The loop of PyTorch's own word_language_model example: Embedding -> nn.LSTM -> Linear, truncated BPTT with the
hidden state detached between windows, cross-entropy, clip_grad_norm_(0.25), plain SGD (p -= lr * grad), on the
same text (a PTB-layout directory, ids by the same rule: descending count, ties by first appearance) and sizes.
Every thread pool is pinned before torch is imported; CPU seconds per wall second are printed to check it.
"""
import argparse
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="PTB-layout directory")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--windows", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--bptt", type=int, default=35)
    a = ap.parse_args()
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(a.threads)
    import torch
    import torch.nn as nn

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(1)

    counts, first, train = {}, {}, []
    with open(os.path.join(a.data, "ptb.train.txt")) as f:
        for line in f:
            for w in line.split() + ["<eos>"]:
                if w not in counts:
                    counts[w], first[w] = 0, len(first)
                counts[w] += 1
                train.append(w)
    vocab = sorted(counts, key=lambda w: (-counts[w], first[w]))
    ids = {w: i for i, w in enumerate(vocab)}
    data = torch.tensor([ids[w] for w in train], dtype=torch.long)
    n = data.size(0) // a.batch
    data = data[: n * a.batch].view(a.batch, -1).t().contiguous()  # time-major streams, as batchify

    class LM(nn.Module):
        def __init__(self, V, H):
            super().__init__()
            self.encoder = nn.Embedding(V, H)
            self.rnn = nn.LSTM(H, H, 1)
            self.decoder = nn.Linear(H, V)

        def forward(self, x, h):
            out, h = self.rnn(self.encoder(x), h)
            return self.decoder(out).view(-1, self.decoder.out_features), h

    V, H = len(vocab), a.hidden
    model = LM(V, H)
    crit = nn.CrossEntropyLoss()
    lr, clip = 20.0, 0.25
    h = (torch.zeros(1, a.batch, H), torch.zeros(1, a.batch, H))

    def window(i):
        nonlocal h
        at = (i * a.bptt) % (data.size(0) - a.bptt - 1)
        x, y = data[at : at + a.bptt], data[at + 1 : at + 1 + a.bptt].reshape(-1)
        h = tuple(t.detach() for t in h)
        model.zero_grad(set_to_none=True)
        out, h = model(x, h)
        loss = crit(out, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        return loss.item()

    for i in range(a.warmup):
        window(i)
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(a.warmup, a.warmup + a.windows):
        window(i)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    tokens = a.windows * a.bptt * a.batch
    print(f"pytorch-lstm threads={a.threads} vocab={V} hidden={H} batch={a.batch} bptt={a.bptt} "
          f"tokens_per_s={tokens / wall:.1f} cpu_per_wall={cpu / wall:.2f} torch={torch.__version__}")


if __name__ == "__main__":
    sys.exit(main())
