package main

// The quality experiments of docs/enas.md ("Quality"): whether shared
// weights rank children as stand-alone training does, and whether the
// trained ENAS controller beats its own untrained (random) policy. Slow:
// they run only with NASD_ENAS_QUALITY=1 (make test-long sets it).

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"nasd/arch"
	"nasd/cluster"
	"nasd/controller"
	"nasd/controller/rl"
	"nasd/journal"
	"nasd/train"
	"nasd/train/dataset"
	"nasd/worker"
)

// The experiments' settings (docs/enas.md states them); not tuned.
const (
	qLayers, qChannels = 6, 12
	qTrain, qVal       = 5120, 1024 // Fashion-MNIST subsets (data seed 1)
	qBatch             = 64
	qMomentum, qL2     = 0.9, 2.5e-4
	qSharedEpochs      = 10 // shared-weight epochs (claim 1 and the ENAS runs)
	qAloneEpochs       = 2  // stand-alone training of each child
	qAloneLRMax        = 0.05
	qAloneLRMin        = 0.0005
	qChildren          = 16 // random children ranked per seed (claim 1)
	qBoot, qPerm       = 5000, 20000
)

func qualityGate(t *testing.T) {
	t.Helper()
	if os.Getenv("NASD_ENAS_QUALITY") == "" {
		t.Skip("slow quality experiment: set NASD_ENAS_QUALITY=1 (docs/enas.md)")
	}
	needFashionMNIST(t)
}

// qSeeds reads NASD_ENAS_QUALITY_SEEDS ("1,2,3"), else def.
func qSeeds(t *testing.T, def []uint64) []uint64 {
	s := os.Getenv("NASD_ENAS_QUALITY_SEEDS")
	if s == "" {
		return def
	}
	var out []uint64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil {
			t.Fatalf("NASD_ENAS_QUALITY_SEEDS=%q: %v", s, err)
		}
		out = append(out, v)
	}
	return out
}

func qSetup(t *testing.T) (arch.Space, *dataset.Splits) {
	t.Helper()
	space, err := arch.New("enas-macro", arch.Options{Layers: qLayers, Channels: qChannels})
	if err != nil {
		t.Fatal(err)
	}
	data, err := dataset.Load(dataset.Spec{TrainSubset: qTrain, ValSubset: qVal, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return space, data
}

// qBatches yields full training minibatches forever.
type qBatches struct {
	b    *dataset.Batches
	x    []float32
	y    []int32
	size int
}

func newQBatches(s *dataset.Set, seed uint64) *qBatches {
	return &qBatches{b: dataset.NewBatches(s, qBatch, true, dataset.Augment{}, seed),
		x: make([]float32, qBatch*s.Size()), y: make([]int32, qBatch)}
}

func (q *qBatches) next() ([]float32, []int32) {
	for q.b.Next(q.x, q.y) < qBatch {
	}
	return q.x, q.y
}

// sharedAcc is child's accuracy on the whole validation split with the
// shared weights (batch statistics, as the ENAS loop scores).
func sharedAcc(t *testing.T, sn *train.Supernet, child arch.Arch, val *dataset.Set) float64 {
	t.Helper()
	sz, sum, n := val.Size(), 0.0, 0
	for at := 0; at+qBatch <= val.Len(); at += qBatch {
		acc, err := sn.Evaluate(child, val.Images[at*sz:(at+qBatch)*sz], val.Labels[at:at+qBatch])
		if err != nil {
			t.Fatal(err)
		}
		sum, n = sum+acc, n+1
	}
	return sum / float64(n)
}

// runningAcc is child's validation accuracy with its weights copied out of
// sn and batch norm's running statistics (a stand-alone net's evaluation).
func runningAcc(t *testing.T, sn *train.Supernet, child arch.Arch, val *dataset.Set) float64 {
	t.Helper()
	g, err := sn.ChildGraph(child)
	if err != nil {
		t.Fatal(err)
	}
	w, err := sn.ChildWeights(child)
	if err != nil {
		t.Fatal(err)
	}
	n, err := train.Build(g, w, train.BuildOptions{Batch: qBatch, Prefix: train.SupernetPrefix})
	if err != nil {
		t.Fatal(err)
	}
	sz, correct, seen := val.Size(), 0, 0
	for at := 0; at+qBatch <= val.Len(); at += qBatch {
		_, c, err := n.Run(val.Images[at*sz:(at+qBatch)*sz], val.Labels[at:at+qBatch])
		if err != nil {
			t.Fatal(err)
		}
		correct, seen = correct+c, seen+qBatch
	}
	return float64(correct) / float64(seen)
}

// aloneResult is a child trained stand-alone.
type aloneResult struct{ running, batchStats float64 }

// trainAlone trains child from fresh weights (init seed) for qAloneEpochs,
// cosine LR, Nesterov SGD. A supernet that only ever steps one child
// trains it exactly as stand-alone (TestSupernetMatchesStandAlone), on the
// same network the shared weights score.
func trainAlone(t *testing.T, space arch.Space, child arch.Arch, data *dataset.Splits, seed uint64) aloneResult {
	t.Helper()
	sn, err := train.NewSupernet(space, seed, train.SupernetOptions{MaxNets: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	bs := newQBatches(data.Train, seed)
	steps := qAloneEpochs * (data.Train.Len() / qBatch)
	for k := range steps {
		x, y := bs.next()
		sn.ZeroGrad()
		if _, err := sn.Step(child, x, y); err != nil {
			t.Logf("stand-alone step %d: %v", k, err) // a non-finite loss adds nothing
		}
		lr := qAloneLRMin + 0.5*(qAloneLRMax-qAloneLRMin)*(1+math.Cos(math.Pi*float64(k)/float64(steps)))
		sn.ApplySGD(lr, qMomentum, true, qL2)
	}
	return aloneResult{running: runningAcc(t, sn, child, data.Val), batchStats: sharedAcc(t, sn, child, data.Val)}
}

// Claim 1: does the shared weights' ranking of random children agree with
// stand-alone training's (Kendall τ)?
func TestENASQualityRanking(t *testing.T) {
	qualityGate(t)
	space, data := qSetup(t)
	sched := controller.ENASDefaults()
	steps := data.Train.Len() / qBatch
	t.Logf("enas-macro %d layers, %d channels, %d ops; %d train / %d val; shared: %d epochs × %d steps of batch %d, uniform random children, SGDR lr %g→%g; stand-alone: %d epochs, cosine lr %g→%g",
		qLayers, qChannels, len(space.Options().Ops), data.Train.Len(), data.Val.Len(), qSharedEpochs, steps, qBatch,
		sched.LRMax, sched.LRMin, qAloneEpochs, qAloneLRMax, qAloneLRMin)
	for _, seed := range qSeeds(t, []uint64{1, 2}) {
		began := time.Now()
		sn, err := train.NewSupernet(space, seed, train.SupernetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(seed, 0x71))
		bs := newQBatches(data.Train, seed)
		for k := range qSharedEpochs * steps {
			x, y := bs.next()
			sn.ZeroGrad()
			if _, err := sn.Step(space.Sample(r), x, y); err != nil {
				t.Logf("shared step %d: %v", k, err)
			}
			sn.ApplySGD(sched.LR(float64(k)/float64(steps)), qMomentum, true, qL2)
		}
		cr := rand.New(rand.NewPCG(seed, 0x72))
		children := make([]arch.Arch, qChildren)
		shared, alone, aloneBS := make([]float64, qChildren), make([]float64, qChildren), make([]float64, qChildren)
		for i := range children {
			children[i] = space.Sample(cr)
			shared[i] = sharedAcc(t, sn, children[i], data.Val)
		}
		sn.Close()
		for i, c := range children {
			a := trainAlone(t, space, c, data, seed*1000+uint64(i))
			alone[i], aloneBS[i] = a.running, a.batchStats
		}
		var b strings.Builder
		fmt.Fprintf(&b, "seed %d (%s):\n  child  shared  alone(running BN)  alone(batch BN)\n", seed, time.Since(began).Round(time.Second))
		for i := range children {
			fmt.Fprintf(&b, "  %5d  %.4f  %.4f  %.4f\n", i, shared[i], alone[i], aloneBS[i])
		}
		for _, v := range []struct {
			name string
			y    []float64
		}{{"running BN", alone}, {"batch BN", aloneBS}} {
			tau := kendallTau(shared, v.y)
			lo, hi := bootstrapTau(shared, v.y, qBoot, seed)
			p := permutationP(shared, v.y, qPerm, seed)
			fmt.Fprintf(&b, "  τ(shared, alone %s) = %+.3f, bootstrap 95%% [%+.3f, %+.3f], permutation p = %.4f\n", v.name, tau, lo, hi, p)
		}
		fmt.Fprintf(&b, "  mean accuracy: shared %.4f, alone %.4f", mean(shared), mean(alone))
		t.Log(b.String())
	}
}

// Claim 2: the ENAS search with its RL controller against the same loop
// with the controller's untrained policy (rl's random-policy: the same
// network at the same initialisation, never updated), equal budgets.
func TestENASQualityController(t *testing.T) {
	qualityGate(t)
	space, data := qSetup(t)
	sched := controller.ENASDefaults()
	sched.Epochs, sched.Batch = qSharedEpochs, qBatch
	sched.ControllerSteps, sched.ControllerBatch = 10, 10
	sched.CheckpointSteps, sched.ChecksumSteps = 1<<20, 1<<20
	t.Logf("enas-macro %d layers, %d channels; %d train / %d val; 1 worker; %d epochs × %d steps of batch %d; %d policy updates of %d children per epoch (one val minibatch each); derive best of %d on the whole val split; retrain %d epochs",
		qLayers, qChannels, data.Train.Len(), data.Val.Len(), sched.Epochs, data.Train.Len()/qBatch, qBatch,
		sched.ControllerSteps, sched.ControllerBatch, sched.DeriveSamples, qAloneEpochs)
	type outcome struct{ derivedShared, policyMean, alone float64 }
	seeds := qSeeds(t, []uint64{1, 2, 3})
	res := map[string][]outcome{}
	names := []string{rl.Name, rl.RandomPolicyName}
	for _, seed := range seeds {
		for _, name := range names {
			began := time.Now()
			sum, sn, p := runENASQuality(t, space, data, seed, name, sched)
			// The final policy's children, scored by the final shared weights.
			var pm []float64
			for _, c := range p.Sample(20) {
				pm = append(pm, sharedAcc(t, sn, c, data.Val))
			}
			sn.Close()
			a := trainAlone(t, space, *sum.Best, data, seed*1000+999)
			o := outcome{sum.BestValAcc, mean(pm), a.running}
			res[name] = append(res[name], o)
			t.Logf("seed %d %-13s derived: shared %.4f, retrained %.4f; 20 policy samples: shared mean %.4f (%s)",
				seed, name, o.derivedShared, o.alone, o.policyMean, time.Since(began).Round(time.Second))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d seeds %v; rl − random-policy, paired by seed:\n", len(seeds), seeds)
	for _, m := range []struct {
		name string
		get  func(outcome) float64
	}{{"derived child, shared weights", func(o outcome) float64 { return o.derivedShared }},
		{"derived child, retrained", func(o outcome) float64 { return o.alone }},
		{"policy's 20 samples, shared (mean)", func(o outcome) float64 { return o.policyMean }}} {
		var x, y, d []float64
		for i := range seeds {
			x, y = append(x, m.get(res[rl.Name][i])), append(y, m.get(res[rl.RandomPolicyName][i]))
			d = append(d, x[i]-y[i])
		}
		fmt.Fprintf(&b, "  %-36s rl %.4f, random %.4f, diffs %s, mean %+.4f; Wilcoxon exact p = %.3f; paired t p = %.3f\n",
			m.name, mean(x), mean(y), fmtFloats(d), mean(d), wilcoxonExact(d), pairedTP(d))
	}
	t.Log(b.String())
}

// runENASQuality runs an in-process ENAS search (rank 0 and one worker)
// with the named policy; it returns the summary, the worker's shared
// weights and the policy.
func runENASQuality(t *testing.T, space arch.Space, data *dataset.Splits, seed uint64, policy string, sched controller.ENASOptions) (controller.ENASSummary, *train.Supernet, controller.ENASPolicy) {
	t.Helper()
	s, err := controller.New(policy, controller.Env{Space: space, Seed: seed, Options: maps.Clone(enasPolicyDefaults)})
	if err != nil {
		t.Fatal(err)
	}
	p := s.(controller.ENASPolicy)
	sn, err := train.NewSupernet(space, seed, train.SupernetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ends := cluster.NewInProcess(2)
	ctx := context.Background()
	werr := make(chan error, 1)
	go func() {
		werr <- worker.RunENAS(ctx, ends[1], space, sn, data, enasWorkerConfig(space, sched, seed))
	}()
	run, err := journal.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	log, err := run.NewLog("quality")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	sum, err := controller.RunENAS(ctx, controller.ENASConfig{RunID: "quality", Seed: seed, Space: space, Options: sched}, p, ends[0], run, log, false)
	if e := <-werr; err == nil {
		err = e
	}
	if err != nil {
		t.Fatal(err)
	}
	if sum.Best == nil {
		t.Fatalf("%s seed %d: no derived child (%s)", policy, seed, sum.Reason)
	}
	return sum, sn, p
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func fmtFloats(xs []float64) string {
	f := make([]string, len(xs))
	for i, x := range xs {
		f[i] = fmt.Sprintf("%+.4f", x)
	}
	return "[" + strings.Join(f, " ") + "]"
}

// kendallTau is Kendall's τ-b (ties in either ranking allowed).
func kendallTau(x, y []float64) float64 {
	var conc, disc, tx, ty float64
	for i := range x {
		for j := i + 1; j < len(x); j++ {
			a, b := sign(x[i]-x[j]), sign(y[i]-y[j])
			switch {
			case a == 0 && b == 0:
			case a == 0:
				tx++
			case b == 0:
				ty++
			case a == b:
				conc++
			default:
				disc++
			}
		}
	}
	d := math.Sqrt((conc + disc + tx) * (conc + disc + ty))
	if d == 0 {
		return 0
	}
	return (conc - disc) / d
}

func sign(v float64) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// bootstrapTau is the percentile 95% interval of τ-b over n resamples of
// the children (pairs) with replacement.
func bootstrapTau(x, y []float64, n int, seed uint64) (lo, hi float64) {
	r := rand.New(rand.NewPCG(seed, 0xb0))
	taus := make([]float64, n)
	bx, by := make([]float64, len(x)), make([]float64, len(x))
	for k := range taus {
		for i := range bx {
			j := r.IntN(len(x))
			bx[i], by[i] = x[j], y[j]
		}
		taus[k] = kendallTau(bx, by)
	}
	slices.Sort(taus)
	return taus[int(0.025*float64(n))], taus[int(0.975*float64(n))-1]
}

// permutationP is the two-sided permutation p-value of τ-b = 0 (y's
// values shuffled among the children), (hits + 1)/(n + 1).
func permutationP(x, y []float64, n int, seed uint64) float64 {
	r := rand.New(rand.NewPCG(seed, 0xbe))
	obs := math.Abs(kendallTau(x, y))
	py := slices.Clone(y)
	hits := 0
	for range n {
		r.Shuffle(len(py), func(i, j int) { py[i], py[j] = py[j], py[i] })
		if math.Abs(kendallTau(x, py)) >= obs-1e-12 {
			hits++
		}
	}
	return float64(hits+1) / float64(n+1)
}

// wilcoxonExact is the two-sided exact p-value of the Wilcoxon signed-rank
// test of paired differences d (zeros dropped, tied |d| get mean ranks), by
// enumerating all 2^n sign assignments.
func wilcoxonExact(d []float64) float64 {
	var nz []float64
	for _, v := range d {
		if v != 0 {
			nz = append(nz, v)
		}
	}
	n := len(nz)
	if n == 0 {
		return 1
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmpF(math.Abs(nz[a]), math.Abs(nz[b])) })
	rank := make([]float64, n)
	for i := 0; i < n; {
		j := i
		for j+1 < n && math.Abs(nz[idx[j+1]]) == math.Abs(nz[idx[i]]) {
			j++
		}
		for k := i; k <= j; k++ {
			rank[idx[k]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	total, wPlus := 0.0, 0.0
	for i, v := range nz {
		total += rank[i]
		if v > 0 {
			wPlus += rank[i]
		}
	}
	obs := math.Abs(wPlus - total/2)
	hits := 0
	for m := range 1 << n {
		w := 0.0
		for i := range n {
			if m&(1<<i) != 0 {
				w += rank[i]
			}
		}
		if math.Abs(w-total/2) >= obs-1e-9 {
			hits++
		}
	}
	return float64(hits) / float64(int(1)<<n)
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pairedTP is the two-sided p-value of the paired t-test (mean of d = 0),
// the t density integrated numerically (Simpson).
func pairedTP(d []float64) float64 {
	n := float64(len(d))
	if n < 2 {
		return 1
	}
	m, ss := mean(d), 0.0
	for _, v := range d {
		ss += (v - m) * (v - m)
	}
	se := math.Sqrt(ss / (n - 1) / n)
	if se == 0 {
		return 1
	}
	tv, df := math.Abs(m/se), n-1
	lg1, _ := math.Lgamma((df + 1) / 2)
	lg2, _ := math.Lgamma(df / 2)
	c := math.Exp(lg1-lg2) / math.Sqrt(df*math.Pi)
	f := func(x float64) float64 { return c * math.Pow(1+x*x/df, -(df+1)/2) }
	const k = 20000
	h, s := tv/k, f(0)+f(tv)
	for i := 1; i < k; i++ {
		w := 2.0
		if i%2 == 1 {
			w = 4
		}
		s += w * f(float64(i)*h)
	}
	return math.Max(0, 1-2*s*h/3)
}

// The statistics helpers on cases worked by hand.
func TestQualityStats(t *testing.T) {
	if got := kendallTau([]float64{1, 2, 3, 4}, []float64{1, 2, 3, 4}); got != 1 {
		t.Errorf("τ of equal rankings = %v", got)
	}
	if got := kendallTau([]float64{1, 2, 3, 4}, []float64{4, 3, 2, 1}); got != -1 {
		t.Errorf("τ of reversed rankings = %v", got)
	}
	// 5 concordant, 1 discordant of 6 pairs.
	if got := kendallTau([]float64{1, 2, 3, 4}, []float64{1, 3, 2, 4}); math.Abs(got-4.0/6) > 1e-12 {
		t.Errorf("τ = %v, want 2/3", got)
	}
	// All positive: only the all-plus and all-minus assignments are as extreme.
	if got := wilcoxonExact([]float64{1, 2, 3}); math.Abs(got-0.25) > 1e-12 {
		t.Errorf("Wilcoxon p = %v, want 0.25", got)
	}
	// t = 1 with 1 degree of freedom (Cauchy): p = 0.5.
	if got := pairedTP([]float64{0, 2}); math.Abs(got-0.5) > 1e-4 {
		t.Errorf("paired t p = %v, want 0.5", got)
	}
}

// The noise floor of claim 1: the same random children trained stand-alone
// twice, from two initialisations (the first is TestENASQualityRanking's),
// and τ between the two rankings. No ranking by proxies can be expected to
// agree with stand-alone training better than it agrees with itself.
func TestENASQualityAloneNoise(t *testing.T) {
	qualityGate(t)
	space, data := qSetup(t)
	for _, seed := range qSeeds(t, []uint64{1}) {
		began := time.Now()
		cr := rand.New(rand.NewPCG(seed, 0x72))
		a, b := make([]float64, qChildren), make([]float64, qChildren)
		for i := range a {
			c := space.Sample(cr)
			a[i] = trainAlone(t, space, c, data, seed*1000+uint64(i)).running
			b[i] = trainAlone(t, space, c, data, seed*1000+500+uint64(i)).running
		}
		lo, hi := bootstrapTau(a, b, qBoot, seed)
		t.Logf("seed %d (%s): alone init A %s\n  alone init B %s\n  τ(A, B) = %+.3f, bootstrap 95%% [%+.3f, %+.3f], permutation p = %.4f",
			seed, time.Since(began).Round(time.Second), fmtFloats(a), fmtFloats(b), kendallTau(a, b), lo, hi, permutationP(a, b, qPerm, seed))
	}
}
