"""Train an exported nasd network (model.py, no weights) in PyTorch on
Fashion-MNIST with the schedule nasd used, and print its test accuracy.

usage: train_exported.py MODEL_DIR SUBSET EPOCHS BATCH LR SEED
Data: Debian's dataset-fashion-mnist (gzip IDX files); images scaled to
[0, 1] and normalised by the training subset's mean and std, as nasd does.
The loop is PyTorch's documented one: zero_grad, forward, cross_entropy,
backward, step (SGD, momentum 0.9, Nesterov, weight decay 1e-4, constant rate).
"""
import gzip
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

model_dir, subset, epochs, batch, lr, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
sys.path.insert(0, model_dir)
import model  # noqa: E402

torch.manual_seed(seed)
torch.set_num_threads(1)
root = "/usr/share/datasets/fashion-mnist/"


def idx(name):
    with gzip.open(root + name) as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, rows, cols).astype(np.float32) / 255
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)


x, y = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
xt, yt = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")
rng = np.random.default_rng(seed)
pick = rng.permutation(len(x))[:subset]
x, y = x[pick], y[pick]
mean, std = x.mean(), x.std()
x, xt = (x - mean) / std, (xt - mean) / std
x, y, xt, yt = map(torch.from_numpy, (x, y, xt, yt))

net = model.Net()
opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-4)
for epoch in range(epochs):
    net.train()
    order = torch.randperm(len(x))
    for i in range(0, len(x) - batch + 1, batch):
        b = order[i:i + batch]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x[b]), y[b])
        loss.backward()
        opt.step()
net.eval()
with torch.no_grad():
    correct = sum((net(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum().item() for i in range(0, len(xt), 1000))
print(f"test_acc {correct / len(xt):.4f}")
