package worker

import (
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"nasd/arch"
	"nasd/cluster"
	"nasd/train"
	"nasd/train/dataset"
)

// enasFixture is a small enas-macro space and a Fashion-MNIST subset.
func enasFixture(t *testing.T) (arch.Space, *dataset.Splits) {
	t.Helper()
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		t.Skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
	}
	space, err := arch.New("enas-macro", arch.Options{Layers: 3, Channels: 8})
	if err != nil {
		t.Fatal(err)
	}
	data, err := dataset.Load(dataset.Spec{TrainSubset: 256, ValSubset: 64, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	return space, data
}

// driveENAS runs workers 1..n of an in-process job and lets rank 0 run fn;
// it returns the workers' errors.
func driveENAS(t *testing.T, space arch.Space, data *dataset.Splits, n int, cfg ENASConfig, tamper func(rank int, sn *train.Supernet),
	fn func(ctx context.Context, t0 cluster.Transport, layout *cluster.Buckets)) []error {
	t.Helper()
	ends := cluster.NewInProcess(n + 1)
	ctx := context.Background()
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for r := 1; r <= n; r++ {
		sn, err := train.NewSupernet(space, 1, train.SupernetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if tamper != nil {
			tamper(r, sn)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = RunENAS(ctx, ends[r], space, sn, data, cfg)
		}()
	}
	got, err := ends[0].Gather(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var info cluster.ENASInfo
	if err := cluster.DecodeENAS(1, got[1], &info); err != nil {
		t.Fatal(err)
	}
	layout, err := cluster.NewBuckets(info.Size, info.Buckets)
	if err != nil {
		t.Fatal(err)
	}
	fn(ctx, ends[0], layout)
	wg.Wait()
	return errs[1:]
}

func bcastPlan(t *testing.T, ctx context.Context, t0 cluster.Transport, p cluster.ENASPlan) {
	t.Helper()
	b, err := cluster.EncodeENAS(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := t0.Bcast(ctx, 0, b); err != nil {
		t.Fatal(err)
	}
}

// One step on 2 ranks, each training its own child on its own minibatch,
// with the gradients averaged by AllreduceBuckets, equals 1 supernet that
// accumulates the same two children's gradients on the same minibatches and
// takes the mean: bit for bit (Pham et al. 2018's average over M sampled
// models, M = 2).
func TestENASTwoRanksEqualAccumulation(t *testing.T) {
	space, data := enasFixture(t)
	r := newRand(4)
	children := []arch.Arch{space.Sample(r), space.Sample(r)}
	cfg := ENASConfig{Batch: 32, Momentum: 0.9, L2: 2.5e-4, Seed: 5}
	const lr = 0.05
	var state []byte
	errs := driveENAS(t, space, data, 2, cfg, nil, func(ctx context.Context, t0 cluster.Transport, layout *cluster.Buckets) {
		for step := range 2 {
			runPlans(t, ctx, t0, layout, cluster.ENASPlan{Op: cluster.ENASTrain, Step: step, LR: lr,
				Children: [][]int{children[0].Decisions, children[1].Decisions}})
		}
		state = saveAndStop(t, ctx, t0)
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// The same two steps on one supernet: accumulate, then the mean.
	sn, err := train.NewSupernet(space, 1, train.SupernetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := &imageTask{sn: sn, data: data, seed: cfg.Seed, epochPerm: -1}
	perm := ref.order(0)
	for step := range 2 {
		sn.ZeroGrad()
		for k, c := range children {
			at := (step*2 + k) * cfg.Batch
			x, y := ref.batch(data.Train, perm[at:at+cfg.Batch])
			if _, err := sn.Step(c, x, y); err != nil {
				t.Fatal(err)
			}
		}
		sn.ScaleGrad(0.5)
		sn.ApplySGD(lr, cfg.Momentum, true, cfg.L2)
	}
	// Weights and momentum: the replicas' running statistics are their own.
	n := 4*len(sn.Weights()) + 8*len(sn.Momentum())
	if want := (&enasWorker{sn: sn}).state(); string(state[:n]) != string(want[:n]) {
		t.Fatal("2 ranks with Allreduce differ from 1 rank accumulating the same children")
	}
}

// A replica that drifts (here: one weight changed before the run) is caught
// by the checksum of the next checked step, and rank 0 can name it.
func TestENASChecksumCatchesDrift(t *testing.T) {
	space, data := enasFixture(t)
	cfg := ENASConfig{Batch: 32, Momentum: 0.9, Seed: 5}
	child := space.Sample(newRand(1))
	var sums [][]byte
	driveENAS(t, space, data, 3, cfg, func(rank int, sn *train.Supernet) {
		if rank == 3 {
			sn.Weights()[7] += 1e-6
		}
	}, func(ctx context.Context, t0 cluster.Transport, layout *cluster.Buckets) {
		bcastPlan(t, ctx, t0, cluster.ENASPlan{Op: cluster.ENASTrain, LR: 0.01, Check: true,
			Children: [][]int{child.Decisions, child.Decisions, child.Decisions}})
		if _, err := cluster.AllreduceBuckets(ctx, t0, make([]float32, layout.Size()), layout, layout.NewMask()); err != nil {
			t.Fatal(err)
		}
		var err error
		if sums, err = t0.Gather(ctx, 0, nil); err != nil {
			t.Fatal(err)
		}
		bcastPlan(t, ctx, t0, cluster.ENASPlan{Op: cluster.ENASStop})
	})
	if string(sums[1]) != string(sums[2]) || string(sums[3]) == string(sums[1]) {
		t.Fatalf("checksums %x %x %x: want ranks 1 and 2 equal, rank 3 different", sums[1], sums[2], sums[3])
	}
}

// A plan a worker cannot follow is an error naming what is wrong.
func TestENASBadPlan(t *testing.T) {
	space, data := enasFixture(t)
	errs := driveENAS(t, space, data, 1, ENASConfig{Batch: 32, Seed: 5}, nil, func(ctx context.Context, t0 cluster.Transport, _ *cluster.Buckets) {
		bcastPlan(t, ctx, t0, cluster.ENASPlan{Op: "dance"})
	})
	if errs[0] == nil || !strings.Contains(errs[0].Error(), `unknown plan "dance"`) {
		t.Fatalf("error %v", errs[0])
	}
}

// runPlans is rank 0's side of plans: a train plan's Allreduce (adding
// nothing) after its broadcast.
func runPlans(t *testing.T, ctx context.Context, t0 cluster.Transport, layout *cluster.Buckets, plans ...cluster.ENASPlan) {
	t.Helper()
	for _, p := range plans {
		bcastPlan(t, ctx, t0, p)
		if p.Op == cluster.ENASTrain {
			if _, err := cluster.AllreduceBuckets(ctx, t0, make([]float32, layout.Size()), layout, layout.NewMask()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// saveAndStop returns rank 1's supernet state and stops the workers.
func saveAndStop(t *testing.T, ctx context.Context, t0 cluster.Transport) []byte {
	t.Helper()
	bcastPlan(t, ctx, t0, cluster.ENASPlan{Op: cluster.ENASSave})
	got, err := t0.Gather(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	bcastPlan(t, ctx, t0, cluster.ENASPlan{Op: cluster.ENASStop})
	return got[1]
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 11)) }

// spaceSampler is a ChildSampler drawing uniformly from its space.
type spaceSampler struct{ space arch.Space }

func (s spaceSampler) Sample(r *rand.Rand) (arch.Arch, error) { return s.space.Sample(r), nil }

// After a policy plan, a train plan without children has each rank draw its
// own child with PCG(SampleSeed, rank): the step equals one whose plan lists
// those children. Without a policy plan such a step is an error.
func TestENASWorkersSampleTheirChildren(t *testing.T) {
	space, data := enasFixture(t)
	const seed = 77
	var states []string
	var mu sync.Mutex // workers are goroutines
	cfg := ENASConfig{Batch: 32, Momentum: 0.9, Seed: 5, NewSampler: func(state []byte) (ChildSampler, error) {
		mu.Lock()
		defer mu.Unlock()
		states = append(states, string(state))
		return spaceSampler{space}, nil
	}}
	step := func(plans ...cluster.ENASPlan) []byte {
		var state []byte
		errs := driveENAS(t, space, data, 2, cfg, nil, func(ctx context.Context, t0 cluster.Transport, layout *cluster.Buckets) {
			runPlans(t, ctx, t0, layout, plans...)
			state = saveAndStop(t, ctx, t0)
		})
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return state
	}
	sampled := step(cluster.ENASPlan{Op: cluster.ENASPolicy, Policy: []byte("policy v1")},
		cluster.ENASPlan{Op: cluster.ENASTrain, LR: 0.05, SampleSeed: seed})
	if len(states) != 2 || states[0] != "policy v1" || states[1] != "policy v1" {
		t.Fatalf("NewSampler saw %q, want the policy plan's state once per worker", states)
	}
	c1, c2 := space.Sample(rand.New(rand.NewPCG(seed, 1))), space.Sample(rand.New(rand.NewPCG(seed, 2)))
	listed := step(cluster.ENASPlan{Op: cluster.ENASTrain, LR: 0.05, Children: [][]int{c1.Decisions, c2.Decisions}})
	if string(sampled) != string(listed) {
		t.Fatal("the step with children drawn by the workers differs from the step listing PCG(seed, rank)'s draws")
	}

	errs := driveENAS(t, space, data, 1, cfg, nil, func(ctx context.Context, t0 cluster.Transport, _ *cluster.Buckets) {
		bcastPlan(t, ctx, t0, cluster.ENASPlan{Op: cluster.ENASTrain, LR: 0.05, SampleSeed: seed})
	})
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "no policy plan") {
		t.Fatalf("a train plan without children or policy: %v", errs[0])
	}
}
