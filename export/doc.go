// Package export turns a found network into code of another framework, so it
// can be used outside nasd: today a PyTorch nn.Module (model.py) and, with
// trained weights, a safetensors file and a loader that needs only the Python
// standard library and torch (load.py).
//
// The network is exported from its lowered arch.Graph, the same primitives
// train builds, so every space that lowers to the CNN primitives exports with
// no code of its own. Recurrent cells (Graph.Hidden > 0) are refused.
//
// What is written is tested by running it: the tests compare PyTorch's logits
// with nasd's evaluation-mode forward on the same inputs and weights.
package export
