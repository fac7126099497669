#!/usr/bin/python3
"""PyTorch side of bench/tta.sh (time to accuracy): trains the reference CNN or
the enas-macro child (the network builders of bench/pytorch_ref.py) on
Fashion-MNIST with the schedule `nasd train` uses, and prints after every
epoch the training wall time so far and the test accuracy:
    tta side=pytorch net=reference-cnn threads=1 epoch=3 clock=98.2 test_acc=0.9012 alloc=tcmalloc

Run it as bench/tta.sh does, through peer_run (bench/peer-env.sh), one thread
count per process.

Data: every training image (nasd train -val-size -1), scaled to [0, 1] and
normalised by the training images' mean and population std, as nasd's
dataset package does; test images with the same mean and std. --subset and
--test-subset keep the first N images (smoke runs only: nasd's -subset draws
a random subset, so the two sides then see different images).

Training: minibatches of --batch in a new random order every epoch (the last,
short batch trains too, as in nasd), SGD with PyTorch's momentum (nasd's sgd
is the same update), no Nesterov, --weight-decay (coupled L2, as nasd), the
learning rate set before every step from the schedule nasd uses: cosine
lr·½(1 + cos(π·step/total)) with step the 0-based global step and total =
epochs × steps per epoch, or constant. The loop is the documented one:
zero_grad(set_to_none=True), forward, F.cross_entropy, backward, step.

Initialisation (--init nasd, the default): nasd's scheme, He uniform
U(±sqrt(6/fan_in)) for convolution and dense weights (kaiming_uniform_ with
nonlinearity="relu"), zero biases, batch norm γ = 1, β = 0; the draws differ
(another generator). --init pytorch keeps PyTorch's default initialisation.

The clock (what "clock" is): wall time from just before the network is built
and initialised to the end of the epoch's last step, evaluations excluded;
it holds initialisation, minibatch assembly (indexing the normalised tensor)
and the steps; data loading and normalisation come before it. nasd's
epochs[].train_clock holds the same things (train.EpochStats.TrainClock).
"""
import argparse
import gzip
import math
import os
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_ref import ALLOC, GraphNet, reference_cnn  # noqa: E402


def idx_images(path):
    with gzip.open(path) as f:
        data = f.read()
    n, rows, cols = struct.unpack(">III", data[4:16])
    return torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).reshape(n, 1, rows, cols).float() / 255


def idx_labels(path):
    with gzip.open(path) as f:
        return torch.frombuffer(bytearray(f.read()[8:]), dtype=torch.uint8).long()


def load(root, subset, test_subset):
    xtr, ytr = idx_images(root + "train-images-idx3-ubyte.gz"), idx_labels(root + "train-labels-idx1-ubyte.gz")
    xte, yte = idx_images(root + "t10k-images-idx3-ubyte.gz"), idx_labels(root + "t10k-labels-idx1-ubyte.gz")
    if subset:
        xtr, ytr = xtr[:subset], ytr[:subset]
    if test_subset:
        xte, yte = xte[:test_subset], yte[:test_subset]
    mean, std = xtr.mean(), xtr.std(unbiased=False)
    return ((xtr - mean) / std).contiguous(), ytr, ((xte - mean) / std).contiguous(), yte


def nasd_init(net):
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")  # bound sqrt(6/fan_in)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def accuracy(net, x, y, batch):
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += (net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    net.train()
    return correct / len(y)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net", required=True, choices=["reference-cnn", "enas-child"])
    ap.add_argument("--graph", default="bench/enas-child.graph.json", help="enas-child: lowered graph JSON")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--schedule", default="cosine", choices=["cosine", "constant"])
    ap.add_argument("--init", default="nasd", choices=["nasd", "pytorch"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--subset", type=int, default=0, help="train on the first N images (0 = all)")
    ap.add_argument("--test-subset", type=int, default=0, help="test on the first N test images (0 = all)")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist/")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xtr, ytr, xte, yte = load(args.data_dir.rstrip("/") + "/", args.subset, args.test_subset)
    graph = None
    if args.net == "enas-child":
        import json
        with open(args.graph) as f:
            graph = json.load(f)
    n, b = len(ytr), args.batch
    per_epoch = (n + b - 1) // b
    total = args.epochs * per_epoch
    print(f"tta-setup side=pytorch net={args.net} threads={args.threads} train={n} test={len(yte)} batch={b} "
          f"lr={args.lr} schedule={args.schedule} epochs={args.epochs} init={args.init} alloc={ALLOC}", file=sys.stderr, flush=True)

    evaluating = 0.0
    t0 = time.perf_counter()  # the clock starts: build, initialise, train
    net = reference_cnn() if args.net == "reference-cnn" else GraphNet(graph)
    if args.init == "nasd":
        nasd_init(net)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    net.train()
    step = 0
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(n)
        loss_sum = 0.0
        for i in range(0, n, b):
            idx = order[i:i + b]
            x, y = xtr[idx], ytr[idx]
            lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / total)) if args.schedule == "cosine" else args.lr
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)  # nasd reads every step's loss too
            step += 1
        clock = time.perf_counter() - t0 - evaluating
        e0 = time.perf_counter()
        acc = accuracy(net, xte, yte, b)
        evaluating += time.perf_counter() - e0
        print(f"tta side=pytorch net={args.net} threads={args.threads} epoch={epoch} clock={clock:.2f} "
              f"test_acc={acc:.4f} train_loss={loss_sum / n:.4f} alloc={ALLOC}", flush=True)


if __name__ == "__main__":
    main()
