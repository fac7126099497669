#!/usr/bin/python3
"""PyTorch peer for nasd's training benchmarks: the same reference CNN, batch,
optimizer and data shape as train.BenchmarkTrainReferenceCNN, timed the same
way (median of repeated steps after warm-up). Run with Debian's /usr/bin/python3
(python3-torch). Prints one line per measurement:
    pytorch net=reference-cnn mode=train threads=2 batch=64 img_per_s=597.1
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn


def reference_cnn():
    # Same layers as train.ReferenceCNN: pad 1, 3x3 convs with bias, 2x2 max pools.
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(3136, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def time_steps(step, steps, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    torch.manual_seed(1)
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batch:
            net = reference_cnn()
            opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
            loss_fn = nn.CrossEntropyLoss()
            x = torch.randn(batch, 1, 28, 28)
            y = torch.randint(0, 10, (batch,))

            def train_step():
                opt.zero_grad(set_to_none=False)
                loss = loss_fn(net(x), y)
                loss.backward()
                opt.step()

            def eval_step():
                with torch.no_grad():
                    net(x)

            net.train()
            t = time_steps(train_step, args.steps, args.warmup)
            print(f"pytorch net=reference-cnn mode=train threads={threads} batch={batch} img_per_s={batch / t:.1f}", flush=True)
            net.eval()
            t = time_steps(eval_step, args.steps, args.warmup)
            print(f"pytorch net=reference-cnn mode=eval threads={threads} batch={batch} img_per_s={batch / t:.1f}", flush=True)


if __name__ == "__main__":
    main()
