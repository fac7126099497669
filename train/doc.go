// Package train builds a Gorgonia graph from any lowered architecture
// (arch.Graph), trains it on a dataset.Splits, evaluates it and scores it with
// the reward a search controller sees.
//
// # Layers
//
//   - Weights is a store of named parameter tensors ("node7/conv/W"), separate
//     from any graph. Each is initialised from (seed, name) alone — He-uniform
//     for convolutions and dense layers, zero biases, batch norm γ = 1, β = 0 —
//     never from Gorgonia's clock-seeded initialisers. Nets read and train
//     the store's tensors in place, so several nets (batch sizes, training and
//     evaluation, or ENAS children mapping nodes to shared names through
//     BuildOptions.Prefix) share one store.
//   - Build turns an arch.Graph into a compiled Gorgonia graph (NCHW, float32
//     for training or float64 for gradient checks) for one batch size and mode.
//     Every primitive goes through one small internal interface (kernels,
//     layers.go), one constructor per arch.Kind, so a CUDA backend can
//     replace the CPU kernels without touching the builder or the trainer
//     (docs/performance.md, "Backends").
//   - Train runs the loop: seeded minibatches (dataset.Batches), SGD with
//     momentum or Nesterov momentum, or Adam, L2 weight decay, cosine / step /
//     constant learning-rate schedules, validation after every epoch in
//     evaluation mode (batch-norm running statistics), an optional test
//     evaluation, and Reward (Zoph & Le 2017: the best validation accuracy of
//     the last 5 epochs, cubed).
//   - Supernet holds the shared weights of an enas-macro or enas-micro space
//     (ENAS, Pham et al. 2018) in one flat buffer split into buckets: macro,
//     one per (layer, op) and per factorized reduction; micro, one per
//     (cell, node, input slot, input, op) with weights, per input
//     calibration and per node's block of a cell's output conv. Step trains one sampled child, built once
//     and cached, whose parameter tensors alias the buffer, and adds its
//     gradients into a flat gradient buffer that a caller can sum over ranks
//     before ApplySGD.
//
// # Ops
//
// Gorgonia 0.9.18 supplies the graph and symbolic differentiation (G.Grad);
// the primitives are this package's own ops (Gorgonia Op + SDOp), because the
// stock ones are missing (depthwise convolution, zero-padded concat, average
// pooling that excludes padding), wrong for our use (BatchNorm resets its
// running statistics whenever training mode is set; Reshape's in-place form
// reshapes a buffer its producer reuses) or slow (Conv2d, MaxPool2D and
// Rectify are correct — the tests compare ours with the first two — but
// allocate their outputs every step: 283 MB per step of the reference CNN).
// Our ops own their buffers and reuse them. The hot loops are C (im2col,
// depthwise convolution, pooling, batch norm; vectorised by GCC and cloned
// for AVX-512, AVX2 and baseline x86-64, picked at load) and the build's
// gemm (oneDNN, OpenBLAS or gonum); with oneDNN, float32 convolutions run on
// its direct convolution primitives (JIT kernels for the CPU at hand, faster
// than im2col + gemm; NASD_CONV=gemm turns them off), with pure-Go loops for builds without cgo; copies (concat, flatten, the one-pixel
// shift) are Go in every build, since memmove is already vectorised. The
// builder fuses a convolution with the ReLU that alone reads it (one op,
// conv_relu: a oneDNN post-op forward, one pass for ReLU's and the bias's
// gradients), and keeps a tensor between two such ops (conv + ReLU → conv,
// → 2×2 max pool → conv) in oneDNN's channel-blocked layout, so that no
// convolution reorders it (convFusions, linkBlocked; NASD_FUSE=relu fuses
// without that, NASD_FUSE=off does neither). Every
// op's gradient is checked against finite differences in the tests.
//
// The graph runs on the package's own executor (exec.go), not Gorgonia's
// TapeMachine: it computes the same bits (a test compares them) without the
// TapeMachine's per-instruction allocations, so a training step allocates
// nothing. Nets that never run at the same time (a trainer's training and
// evaluation nets, the children of a NetCache) share their buffers through a
// Buffers, so memory is that of the largest; NetCache keeps built nets by
// architecture, so a weight-sharing search switches children with a map
// lookup (docs/performance.md measures both). Within a net on a Buffers, the
// program places op outputs by liveness (plan.go): an activation or gradient
// is shared once its last reader has run, and per-call scratch (im2col
// columns) is one region for all ops, so a training net holds about a fifth
// of the memory it would with one buffer per output.
//
// # Determinism and failure
//
// The same architecture, data, Config and seed give identical metrics: every
// random stream is seeded from the trial seed, and no kernel's result depends
// on the thread count (work is split so that each sum is accumulated in a
// fixed order). Only a Config.Deadline budget makes a result depend on speed.
// A NaN or infinite loss ends training with Status "diverged"; a canceled or
// expired context gives "canceled" or "timeout"; a failing or panicking op
// gives Status "error" and an error, never a crashed process.
package train
