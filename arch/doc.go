// Package arch defines nasd's search spaces and architectures.
//
// A [Space] is a fixed sequence of [Decision]s; a controller emits one choice
// index per decision and [Space.Arch] checks them. An [Arch] is the space's
// name, its [Options] (defaults filled in) and those indices; it has a
// canonical JSON form ([Arch.MarshalJSON]; [WriteJSON] lays it out one line
// per layer for people; [Load] reads it back) and a stable [Arch.Hash] that
// journals and caches key on.
//
// [Space.Lower] turns an architecture into a [Graph] of a dozen primitives
// (convolution, depthwise convolution, pooling, batch norm, ReLU, concat,
// add, global average pooling, dense). The train package builds exactly these,
// so a new space needs no training code. [Graph.Infer] computes shapes,
// parameters and FLOPs without building anything; [Analyze], [Validate],
// [WriteTable] and [WriteDOT] present them per layer.
//
// Spaces, by name ([New], [Names], [DefaultOptions]):
//
//   - "nas": Zoph & Le 2017, §3.3 and §4.1. Per layer: filter height, filter
//     width, number of filters, stride, then one yes/no skip from each earlier
//     layer. A layer concatenates its chosen inputs along depth (smaller maps
//     zero-padded) and applies conv → batchnorm → relu; a layer with no chosen
//     input reads the image, as the paper says, not the previous layer. Layers
//     nothing reads are concatenated into the head: global average pooling
//     and a dense classifier.
//
//   - "enas-macro": Pham et al. 2018, §2.3, macro space. A conv stem, then per
//     layer one op (conv, separable conv, max or average pool) applied to the
//     previous layer and one yes/no skip from each earlier layer, summed with
//     the op's output and batch-normalised. A 2×2 max pool follows each layer
//     in ReduceAfter; skips from before a reduction are average-pooled down.
//
//   - "enas-micro": Pham et al. 2018, §2.4, micro (cell) space. A normal and
//     a reduction cell are searched; per cell, each of Nodes nodes picks two
//     inputs (the two previous cells' outputs or an earlier node) and an op
//     for each (sep conv, average or max pool, identity), and sums them. The
//     cell concatenates its unread nodes and convolves 1×1 back to its width.
//     Stages of Cells normal cells are separated by reduction cells (stride 2
//     on the cell inputs, channels doubled). Its factorized reductions use
//     [KindShift], the one primitive no other space needs.
//
//   - "enas-rnn" and "nas-rnn": recurrent cells (Pham et al. 2018, §2.2;
//     Zoph & Le 2017, §3.4). They lower to a cell graph (Graph.Hidden > 0) of
//     vector primitives evaluated once per token — cell inputs, linear maps,
//     add, mul, mean, activations and ENAS's highway node — that a language
//     model around it trains (docs/rnn-spaces.md).
//
// Errors name the package and the object ("arch: nas: ...", "arch: best.json:
// ..."), and checks report every problem at once, one per line.
package arch
