package dataset

import "testing"

func TestStreamsWindows(t *testing.T) {
	ids := make([]int32, 23) // 3 streams of 7, 2 dropped
	for i := range ids {
		ids[i] = int32(i)
	}
	s, err := NewStreams(ids, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.WindowsPerEpoch(); got != 2 {
		t.Fatalf("WindowsPerEpoch = %d, want 2 (6 input steps in windows of 4)", got)
	}
	x, y := make([]int32, 12), make([]int32, 12)
	var steps []int
	for range 2 {
		for n := s.Next(x, y); n > 0; n = s.Next(x, y) {
			steps = append(steps, n)
			for s2 := range n {
				for b := range 3 {
					if y[s2*3+b] != x[s2*3+b]+1 || x[s2*3+b]/7 != int32(b) {
						t.Fatalf("window %d step %d stream %d: x %d y %d", len(steps), s2, b, x[s2*3+b], y[s2*3+b])
					}
				}
			}
		}
	}
	if want := []int{4, 2, 4, 2}; len(steps) != 4 || steps[0] != 4 || steps[1] != 2 || steps[2] != 4 || steps[3] != 2 {
		t.Fatalf("window lengths over 2 epochs = %v, want %v", steps, want)
	}
	if s.Epoch() != 2 {
		t.Fatalf("Epoch = %d, want 2", s.Epoch())
	}
}

func TestStreamsRestore(t *testing.T) {
	ids := make([]int32, 100)
	for i := range ids {
		ids[i] = int32(i * 7 % 13)
	}
	a, _ := NewStreams(ids, 4, 5)
	x, y := make([]int32, 20), make([]int32, 20)
	a.Next(x, y)
	a.Next(x, y)
	b, _ := NewStreams(ids, 4, 5)
	if err := b.Restore(a.State()); err != nil {
		t.Fatal(err)
	}
	x2, y2 := make([]int32, 20), make([]int32, 20)
	na, nb := a.Next(x, y), b.Next(x2, y2)
	if na != nb || na == 0 {
		t.Fatalf("steps after restore: %d vs %d", na, nb)
	}
	for i := range na * 4 {
		if x[i] != x2[i] || y[i] != y2[i] {
			t.Fatalf("token %d differs after restore", i)
		}
	}
	if err := b.Restore(StreamsState{Pos: 1000}); err == nil {
		t.Fatal("Restore accepted a position past the streams")
	}
	if _, err := NewStreams(ids[:5], 4, 5); err == nil {
		t.Fatal("NewStreams accepted 5 tokens for 4 streams")
	}
}
