// Package rl registers two strategies: "rl", the neural-architecture-search
// controller of Zoph & Le 2017 ("Neural Architecture Search with
// Reinforcement Learning", ICLR), and "random-policy", the same controller
// sampled at its random initialisation and never updated (the paper's
// control). Import it for its side effect:
//
//	import _ "nasd/controller/rl"
//
// # The controller (Zoph & Le 2017, §3.1 and §3.3)
//
// An LSTM (default 2 layers × 35 units, §4.1) emits the space's decisions in
// the order arch.Space.Decisions gives them. Its first input is a learned
// start token; each later input is the embedding of the decision just made.
// Every decision that is not a skip connection has a softmax head, a linear
// layer from the top hidden state to its choices' logits (one head and one
// embedding per decision, or with share_heads one per decision kind such as
// "filter height" across layers).
//
// Skip connections use the paper's anchor points (§3.3). The decisions
// named "layer i skip from layer j" with choices {no, yes} are recognised in
// the decision table. After layer i's last other decision the LSTM takes one
// more step whose top hidden state is the anchor h_i, and each of layer i's
// skip decisions is drawn with
//
//	P(layer j feeds layer i) = sigmoid(vᵀ tanh(W_prev·h_j + W_curr·h_i)).
//
// The input after the skip group is the mean of the chosen anchors,
// Σ_j a_j·h_j / (1 + Σ_j a_j), as in ENAS's controller (Pham et al. 2018,
// "Efficient Neural Architecture Search via Parameter Sharing", ICML), and
// the start token after an anchor with no skips (layer 0). A decision that
// looks like a skip but does not fit this pattern gets a softmax head.
//
// Logits, skip logits included, are divided by the temperature and, with
// tanh_constant c > 0, squashed to c·tanh(logits/c). Pham et al. 2018 used
// temperature 5 and c = 2.5 in the form c·tanh(logits/T); here the
// temperature is applied first, so the two forms agree only when T = 1.
//
// # Training (Zoph & Le 2017, §3.2)
//
// REINFORCE with a baseline: after every batch of m results the loss
//
//	−(1/m) Σ_k (R_k − b)·log P(a_k) − β·(1/m) Σ_k H(π | a_k)
//
// (H: the sum of the entropies of the decisions' distributions along the
// sequence) is differentiated by Gorgonia and the weights take one Adam step
// (learning rate 6e-4 by default as in §4.1, optionally after clipping the
// gradient to a global norm). The baseline b is an exponential moving
// average of the rewards before the batch (the first batch's mean to start
// with); it then takes in the batch's rewards one by one. Weights start
// uniform in ±0.08 (§4.1), drawn from a PCG seeded with the run seed.
//
// Rewards are used as the workers report them (already accuracy³ in this
// project). A trial whose status is neither "ok" nor "stopped" (an
// early-stopped trial, rewarded over the epochs it ran) gets failure_reward:
// failed, diverged, timed out, and "rejected" by the loop as over the
// run's budget, so the controller learns to avoid those too. A non-finite
// reward counts as a failure.
//
// The batch is the option batch, or when it is 0 the n of the first
// Propose: in synchronous mode the loop proposes one round of P−1 trials at
// a time, so each round is one update, as the paper's m children per
// update; in asynchronous mode the controller updates every batch results
// and keeps proposing meanwhile from its current weights. The staleness of a
// result is the number of updates between its proposal and its observation;
// LastUpdate reports the batch's largest, with its mean reward, baseline,
// loss and entropy, for the loop to log. Sampling the same architecture
// twice is allowed, as in the paper.
//
// # Sampling and the graph
//
// Architectures are sampled in plain Go from the weights (about 0.25 ms per
// architecture for the default nas and enas-macro spaces), and the update
// evaluates the same function as a Gorgonia graph over the whole batch,
// teacher-forced on the sampled actions. The tests hold the two to 1e-9 in
// log-probability and entropy and the graph's gradient to central finite
// differences of the plain-Go loss. Gorgonia allocates every node's value
// on every run, so the graph takes at most 64 sequences (≈7,000 nodes for
// the default spaces) and a bigger batch runs in chunks whose gradients are
// summed. The graph is built once (≈0.7 s for the default spaces) and
// reused; an update on 512 results takes ≈0.5 s on two cores and peaks at a
// few hundred MB.
//
// # Options
//
//	layers          LSTM layers                              2      (1..8)
//	hidden          LSTM units, also the embedding size      35     (2..1024)
//	temperature     logits divided by it                     1      (> 0)
//	tanh_constant   c > 0: logits ← c·tanh(logits/c)         0 off  (≥ 0)
//	entropy_weight  β, the entropy bonus                     0      (≥ 0)
//	baseline_decay  EMA decay of the baseline                0.95   ([0, 1))
//	lr              Adam learning rate                       6e-4   ((0, 10])
//	grad_clip       global gradient-norm clip                0 off  (≥ 0)
//	batch           results per update                       0 = first Propose's n
//	failure_reward  reward of a failed trial                 0
//	init_range      weights start uniform in ±init_range     0.08   ((0, 10])
//	share_heads     one head per decision kind, not per decision   false
//	skip_weight     weight of the skip-rate penalty          0 off  (≥ 0)
//	skip_target     the skip probability it pulls toward     0.4    ((0, 1))
//
// The skip penalty is ENAS's (Pham et al. 2018, §2.3): skip_weight times the
// batch mean of Σ over a child's skip decisions of KL(Bernoulli(p) ‖
// Bernoulli(skip_target)), p the decision's sampling probability. The
// authors' code penalises σ(q) while it samples with σ(2q), which drives the
// sampled rate to ≈ 0.31 for a target of 0.4; here the sampled and the
// penalised probability are the same, so the rate goes to the target.
//
// ENAS's macro controller corresponds to layers = 1, hidden = 100, lr =
// 0.00035, temperature = 5, tanh_constant = 2.5 (with the caveat above),
// entropy_weight = 1e-4.
//
// # State
//
// Trial IDs are strategy.TrialID(1), strategy.TrialID(2), ... and seeds
// strategy.TrialSeed(run seed, ID). Snapshot holds the weights, Adam's
// moments and step, the baseline, the generator, the next ID, the update
// count, the trials in flight and the results of the current batch with
// their sampled actions, so a restored strategy makes the same updates and
// proposals as the original. Its size is bounded by the weights and one
// batch (≈0.8 MB for nas with 3 layers), not by the run's length.
package rl
