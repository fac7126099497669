#!/usr/bin/python3
"""PyTorch peer for nasd's training benchmarks: the same networks, batch,
optimizer and data as train.BenchmarkTrainReferenceCNN and
train.BenchmarkTrainENASChild, timed the same way (median of repeated steps
after warm-up). Run with Debian's /usr/bin/python3 (python3-torch), one
thread count per process, with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
MKL_NUM_THREADS set to it before torch loads (bench/run.sh does):
torch.set_num_threads alone does not stop Debian's OpenBLAS from using
another core. Prints one line per measurement, with the CPU seconds the
process used per wall second while timing (it should match the threads):
    pytorch net=reference-cnn mode=train threads=2 batch=64 img_per_s=597.1 cpu_per_wall=1.98

Data: real Fashion-MNIST training images (Debian's dataset-fashion-mnist),
scaled to [0, 1] and normalised by their mean and std as nasd does, a new
batch every step (16 in turn, as nasd's benchmark); random data only with
--random. The loop is the one PyTorch's documentation shows:
zero_grad(set_to_none=True), forward, F.cross_entropy, backward, step.
Warm-up: 20 steps, enough for oneDNN's primitive cache.

enas-child is built from the lowered primitive graph nasd writes
(`go run ./bench/lower -o bench/enas-child.graph.json`, arch.Graph JSON);
--expect-params (the static count, `go run ./bench/lower -stats`) makes a
parameter-count mismatch a hard error.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Which allocator bench/peer-env.sh started this process with (for the log).
ALLOC = os.environ.get("NASD_PEER_ALLOC", "default")


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


class GraphNet(nn.Module):
    """A network from nasd's primitive IR (arch.Graph JSON): node 0 is the
    input, nodes are in topological order, the last node gives the logits.
    Activations are N×C×H×W throughout; dense nodes read (N)×1×1 maps."""

    def __init__(self, graph):
        super().__init__()
        self.nodes = graph["nodes"]
        self.input = graph["input"]
        self.mods = nn.ModuleDict()
        c, h, w = self.input["c"], self.input["h"], self.input["w"]
        shapes = []
        for i, n in enumerate(self.nodes):
            op, ins = n["op"], n.get("inputs", [])
            kind = op["kind"]
            shape = shapes[ins[0]] if ins else (c, h, w)
            c, h, w = shape
            kh, kw, s = op.get("kh", 0), op.get("kw", 0), op.get("stride", 0)
            key = str(i)
            if kind == "input":
                shape = (self.input["c"], self.input["h"], self.input["w"])
            elif kind in ("conv", "depthwise-conv"):
                out = op["out"] if kind == "conv" else c
                groups = 1 if kind == "conv" else c
                self.mods[key] = nn.Conv2d(c, out, (kh, kw), stride=s, padding=((kh - 1) // 2, (kw - 1) // 2),
                                           groups=groups, bias=op.get("bias", False))
                shape = (out, (h + 2 * ((kh - 1) // 2) - kh) // s + 1, (w + 2 * ((kw - 1) // 2) - kw) // s + 1)
            elif kind in ("maxpool", "avgpool"):
                p = op.get("pad", 0)
                if kind == "maxpool":  # implicit -inf padding: padding never wins
                    self.mods[key] = nn.MaxPool2d((kh, kw), stride=s, padding=p)
                else:  # padding not counted
                    self.mods[key] = nn.AvgPool2d((kh, kw), stride=s, padding=p, count_include_pad=False)
                shape = (c, (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1)
            elif kind == "batchnorm":
                self.mods[key] = nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
            elif kind in ("relu", "add", "shift"):
                pass
            elif kind == "concat":
                shape = (sum(shapes[j][0] for j in ins), max(shapes[j][1] for j in ins), max(shapes[j][2] for j in ins))
            elif kind == "gap":
                shape = (c, 1, 1)
            elif kind == "flatten":
                shape = (c * h * w, 1, 1)
            elif kind == "dense":
                self.mods[key] = nn.Linear(c * h * w, op["out"])
                shape = (op["out"], 1, 1)
            else:
                raise SystemExit(f"pytorch_ref: node {i}: unknown op kind {kind!r}")
            shapes.append(shape)
        self.shapes = shapes

    def forward(self, x):
        outs = []
        for i, n in enumerate(self.nodes):
            kind, ins = n["op"]["kind"], [outs[j] for j in n.get("inputs", [])]
            m = self.mods[str(i)] if str(i) in self.mods else None
            if kind == "input":
                y = x
            elif kind == "relu":
                y = F.relu(ins[0])
            elif kind == "add":
                y = ins[0]
                for z in ins[1:]:
                    y = y + z
            elif kind == "concat":
                h, w = max(z.shape[2] for z in ins), max(z.shape[3] for z in ins)
                y = torch.cat([F.pad(z, (0, w - z.shape[3], 0, h - z.shape[2])) for z in ins], 1)
            elif kind == "shift":  # y[i, j] = x[i+1, j+1], zero past the bottom/right edge
                y = F.pad(ins[0][:, :, 1:, 1:], (0, 1, 0, 1))
            elif kind == "gap":
                y = ins[0].mean(dim=(2, 3), keepdim=True)
            elif kind == "flatten":
                y = ins[0].reshape(ins[0].shape[0], -1, 1, 1)
            elif kind == "dense":
                y = m(ins[0].reshape(ins[0].shape[0], -1)).reshape(ins[0].shape[0], -1, 1, 1)
            else:
                y = m(ins[0])
            outs.append(y)
        return outs[-1].reshape(x.shape[0], -1)


def time_steps(step, steps, warmup):
    """Median seconds per step, and CPU seconds per wall second while timing."""
    for _ in range(warmup):
        step()
    times = []
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), (time.process_time() - c0) / (time.perf_counter() - w0)


def fashion_batches(batch, count, root="/usr/share/datasets/fashion-mnist/"):
    """count batches of real training images, normalised, and their labels."""
    import gzip
    import struct
    with gzip.open(root + "train-images-idx3-ubyte.gz") as f:
        data = f.read()
    n, rows, cols = struct.unpack(">III", data[4:16])
    x = torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).reshape(n, 1, rows, cols).float() / 255
    with gzip.open(root + "train-labels-idx1-ubyte.gz") as f:
        y = torch.frombuffer(bytearray(f.read()[8:]), dtype=torch.uint8).long()
    x = x[:batch * count]
    x = (x - x.mean()) / x.std()
    return [(x[k * batch:(k + 1) * batch].contiguous(), y[k * batch:(k + 1) * batch].contiguous()) for k in range(count)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--random", action="store_true", help="random inputs instead of Fashion-MNIST (the old, slower peer)")
    ap.add_argument("--nets", nargs="+", default=["reference-cnn"], choices=["reference-cnn", "enas-child"])
    ap.add_argument("--graph", default="bench/enas-child.graph.json", help="enas-child: lowered graph JSON")
    ap.add_argument("--expect-params", type=int, default=0,
                    help="enas-child: nasd's static parameter count; a different PyTorch count is an error")
    args = ap.parse_args()

    graph = None
    if "enas-child" in args.nets:
        with open(args.graph) as f:
            graph = json.load(f)
        n = sum(p.numel() for p in GraphNet(graph).parameters())
        print(f"pytorch net=enas-child params={n} nasd_params={args.expect_params or '?'}", file=sys.stderr, flush=True)
        if args.expect_params and n != args.expect_params:
            raise SystemExit(f"pytorch_ref: enas-child has {n} parameters in PyTorch but {args.expect_params} "
                             f"in nasd's static analysis: {args.graph} is not interpreted as nasd builds it")
    shapes = {"reference-cnn": ((1, 28, 28), 10)}
    if graph:
        shapes["enas-child"] = ((graph["input"]["c"], graph["input"]["h"], graph["input"]["w"]), graph["classes"])

    torch.manual_seed(1)
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, batch in [(name, batch) for name in args.nets for batch in args.batch]:
            net = reference_cnn() if name == "reference-cnn" else GraphNet(graph)
            opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
            (c, h, w), classes = shapes[name]
            if args.random or (c, h, w) != (1, 28, 28) or classes != 10:
                batches = [(torch.randn(batch, c, h, w), torch.randint(0, classes, (batch,))) for _ in range(16)]
                data = "random"
            else:
                batches = fashion_batches(batch, 16)
                data = "fashion-mnist"
            k = [0]

            def next_batch():
                k[0] = (k[0] + 1) % len(batches)
                return batches[k[0]]

            def train_step():
                x, y = next_batch()
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(x), y)
                loss.backward()
                opt.step()

            def eval_step():
                x, _ = next_batch()
                with torch.no_grad():
                    net(x)

            net.train()
            t, cpu = time_steps(train_step, args.steps, args.warmup)
            print(f"pytorch net={name} mode=train threads={threads} batch={batch} img_per_s={batch / t:.1f} cpu_per_wall={cpu:.2f} data={data} alloc={ALLOC}", flush=True)
            net.eval()
            t, cpu = time_steps(eval_step, args.steps, args.warmup)
            print(f"pytorch net={name} mode=eval threads={threads} batch={batch} img_per_s={batch / t:.1f} cpu_per_wall={cpu:.2f} data={data} alloc={ALLOC}", flush=True)

if __name__ == "__main__":
    main()
