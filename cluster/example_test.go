package cluster_test

import (
	"context"
	"fmt"
	"sync"

	"nasd/arch"
	"nasd/cluster"
)

func ExampleEncode() {
	b, err := cluster.Encode(cluster.Message{Kind: cluster.KindResult, Result: &cluster.Result{
		TrialID: "t000007", Status: "ok", Reward: 0.91, BestValAcc: 0.91, Rank: 2,
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("header % x\n", b[:cluster.HeaderSize-4]) // the last 4 bytes are the checksum
	m, err := cluster.Decode(2, b)
	fmt.Println(m.Kind, m.Result.TrialID, m.Result.Reward, err)

	b[4] = 9 // a build speaking another wire version
	_, err = cluster.Decode(2, b)
	fmt.Println(err)

	_, err = cluster.Encode(cluster.Message{Kind: cluster.KindResult, Result: &cluster.Result{TrialID: "t000008", Status: "ok", Reward: -1 / zero}})
	fmt.Println(err)
	// Output:
	// header 4e 41 53 44 01 04 00 00 00 00 00 a7 00 00 00 a7
	// result t000007 0.91 <nil>
	// cluster: message from rank 2: wire version 9, this build speaks 1
	// cluster: encode result t000008: reward is -Inf: JSON cannot carry NaN or Inf (a diverged trial reports status "diverged")
}

var zero float64

// Rank 0 scatters one task to each worker (an idle message to itself); the
// workers train and send their results back point to point.
func ExampleNewInProcess() {
	space, _ := arch.New("enas-macro", arch.Options{Layers: 2})
	a, _ := space.Arch([]int{0, 4, 1})
	ts := cluster.NewInProcess(3)
	ctx := context.Background()

	var wg sync.WaitGroup
	for _, t := range ts[1:] {
		wg.Go(func() { // a worker
			defer t.Close()
			part, err := t.Scatter(ctx, 0, nil)
			if err != nil {
				fmt.Println(err)
				return
			}
			m, err := cluster.Decode(0, part)
			if err != nil {
				fmt.Println(err)
				return
			}
			res := &cluster.Result{TrialID: m.Trial.ID, Status: "ok", Reward: 0.5 + 0.1*float64(t.Rank()), Rank: t.Rank()}
			b, _ := cluster.Encode(cluster.Message{Kind: cluster.KindResult, Result: res})
			if err := t.Send(0, b); err != nil {
				fmt.Println(err)
			}
		})
	}

	// Rank 0.
	idle, _ := cluster.Encode(cluster.Message{Kind: cluster.KindIdle})
	parts := [][]byte{idle}
	for i := 1; i < ts[0].Size(); i++ {
		b, err := cluster.Encode(cluster.Message{Kind: cluster.KindTask, Trial: &cluster.Trial{ID: fmt.Sprintf("t%06d", i), Arch: a, Seed: uint64(i)}})
		if err != nil {
			fmt.Println(err)
			return
		}
		parts = append(parts, b)
	}
	if _, err := ts[0].Scatter(ctx, 0, parts); err != nil {
		fmt.Println(err)
		return
	}
	rewards := map[string]float64{}
	for range ts[0].Size() - 1 {
		from, b, err := ts[0].Recv(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		m, err := cluster.Decode(from, b)
		if err != nil {
			fmt.Println(err)
			return
		}
		rewards[m.Result.TrialID] = m.Result.Reward
	}
	wg.Wait()
	fmt.Println(rewards)
	// Output:
	// map[t000001:0.6 t000002:0.7]
}

// One ENAS ω step on three ranks: rank 0 (the controller) trains nothing,
// ranks 1 and 2 each used some of the shared weights' buckets; only the
// union's buckets travel, and every replica ends with the same gradients.
func ExampleAllreduceBuckets() {
	bs, err := cluster.NewBuckets(6, []cluster.Bucket{
		{Name: "cell0/conv3x3", Off: 0, Len: 2},
		{Name: "cell0/conv5x5", Off: 2, Len: 2},
		{Name: "cell0/maxpool", Off: 4, Len: 2},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ts := cluster.NewInProcess(3)
	grads := make([][]float32, 3)
	var wg sync.WaitGroup
	for r, tr := range ts {
		wg.Go(func() {
			g := make([]float32, 6)
			used := bs.NewMask()
			if r > 0 {
				used.Set(r - 1) // rank 1 used conv3x3, rank 2 conv5x5
				for i := 2 * (r - 1); i < 2*r; i++ {
					g[i] = float32(10*r + i)
				}
			}
			union, err := cluster.AllreduceBuckets(context.Background(), tr, g, bs, used)
			if err != nil {
				fmt.Println(err)
			}
			if r == 0 {
				fmt.Println("buckets sent:", union.Count(), "floats:", bs.Floats(union))
			}
			grads[r] = g
		})
	}
	wg.Wait()
	fmt.Println(grads)
	// Output:
	// buckets sent: 2 floats: 4
	// [[10 11 22 23 0 0] [10 11 22 23 0 0] [10 11 22 23 0 0]]
}
