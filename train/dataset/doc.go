// Package dataset loads the data sets that nasd trains child networks on,
// splits them reproducibly and serves them in minibatches.
//
// Image sets (see Names): Fashion-MNIST and MNIST from their IDX files, raw
// or gzip-compressed, and CIFAR-10 from its binary batches. Load reads a set,
// holds out a seeded validation split of the training images (5,000 by
// default, as Zoph & Le 2017 held out 5,000 CIFAR-10 images for the reward),
// takes optional seeded subsets for cheap proxy training, and returns float32
// images scaled to [0, 1] and normalised per channel with the training split's
// mean and standard deviation.
//
// Batches serves a Set in shuffled minibatches with optional random-crop and
// horizontal-flip augmentation, without allocating; its position is a small
// BatchesState, so training can resume exactly.
//
// Text, for recurrent cells, comes in the Penn Treebank layout (ptb.train.txt,
// ptb.valid.txt, ptb.test.txt; see docs/data.md): LoadText reads it into a
// Text, adding <eos> at each line end and building the vocabulary from the
// training file; Streams serves a split for truncated back-propagation through
// time. BuildCorpus, behind `nasd corpus`, turns plain English text (the
// fortunes package) into that layout.
//
// Randomness comes only from seeds (math/rand/v2 PCG, with the bounded draws
// written out here), so the same Spec gives the same sets bit for bit on every
// machine and Go release. Errors name the package, the file and the problem;
// malformed input never panics.
package dataset
