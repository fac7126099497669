package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestAllreduceMismatch: an allreduce against another collective, or with
// another length, fails every rank with an error that names both.
func TestAllreduceMismatch(t *testing.T) {
	ctx := context.Background()
	ts := NewInProcess(2)
	if _, err := ts[0].Bcast(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	err := ts[1].AllreduceFloat32(ctx, []float32{1})
	want := "cluster: rank 1: AllreduceFloat32: AllreduceFloat32 is collective call #0 of this rank, where rank 0 called Bcast(root 0): every rank must call the same collectives in the same order"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}

	errs := runRanks(t, 3, func(tr Transport) error {
		return tr.AllreduceFloat32(ctx, make([]float32, 4+min(tr.Rank(), 1)))
	})
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "every rank must pass the same length") {
			t.Errorf("rank %d: %v", r, err)
		}
	}
	errs = runRanks(t, 2, func(tr Transport) error {
		if tr.Rank() == 0 {
			return tr.AllreduceOr(ctx, []uint64{1})
		}
		return tr.AllreduceFloat32(ctx, []float32{1})
	})
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "every rank must call the same collectives") {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}

// TestAllreduceCloseAbort: a rank that closes fails the allreduce waiting
// for it; Abort ends a waiting one; a cancelled one leaves buf unchanged.
func TestAllreduceCloseAbort(t *testing.T) {
	ctx := context.Background()
	ts := NewInProcess(3)
	done := make(chan error, 2)
	for _, tr := range ts[:2] {
		go func() { done <- tr.AllreduceFloat32(ctx, []float32{1}) }()
	}
	waitJoined(t, ts[0], 0)
	waitJoined(t, ts[1], 0)
	if err := ts[2].Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-done; err == nil || !strings.Contains(err.Error(), "AllreduceFloat32, collective call #0: rank 2 closed before taking part") {
			t.Errorf("after rank 2 closed: %v", err)
		}
	}

	ts = NewInProcess(2)
	go func() { done <- ts[0].AllreduceOr(ctx, []uint64{1}) }()
	waitJoined(t, ts[0], 0)
	if err := ts[1].Abort(4); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != (ErrAborted{Code: 4}) {
		t.Errorf("after Abort: %v", err)
	}

	ts = NewInProcess(2)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	x := []float32{5}
	if err := ts[0].AllreduceFloat32(short, x); !errors.Is(err, context.DeadlineExceeded) || x[0] != 5 {
		t.Errorf("cancelled: %v, x = %v", err, x)
	}
	// Its part counted: rank 1 completes the round alone.
	y := []float32{2}
	if err := ts[1].AllreduceFloat32(ctx, y); err != nil || y[0] != 7 {
		t.Errorf("rank 1 after rank 0 gave up: %v, %v", y, err)
	}
}

func TestNewBuckets(t *testing.T) {
	bs, err := NewBuckets(10, []Bucket{{"a", 0, 3}, {"b", 5, 5}, {"empty", 3, 0}})
	if err != nil || bs.Len() != 3 || bs.Size() != 10 || bs.Bucket(1).Name != "b" {
		t.Fatalf("valid layout: %v, %v", bs, err)
	}
	m := bs.NewMask()
	m.Set(0)
	m.Set(1)
	if bs.Floats(m) != 8 || m.Count() != 2 || !m.Has(1) || m.Has(2) || m.Has(500) {
		t.Errorf("mask %x: %d floats, %d buckets", m, bs.Floats(m), m.Count())
	}
	_, err = NewBuckets(10, []Bucket{{"a", 0, 4}, {"b", 3, 2}, {"", 1, 0}, {"a", 8, 3}, {"c", -1, 1}})
	for _, want := range []string{
		"cluster: bucket 2: empty name",
		"cluster: bucket 3 (a): name used by bucket 0 too",
		"cluster: bucket 3 (a): [8, 8+3) does not fit 10 floats",
		"cluster: bucket 4 (c): [-1, -1+1) does not fit 10 floats",
		"cluster: buckets a [0, 4) and b [3, 5) overlap",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad layout: error lacks %q:\n%v", want, err)
		}
	}
}
