package dataset

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

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

// A word corpus rewritten as characters keeps its lines and split: each
// word spelled out, "_" between words, <unk> one token, and LoadText reads
// it back with a vocabulary of characters.
func TestCharLevel(t *testing.T) {
	c := &Corpus{Files: [3][]byte{[]byte("the cat <unk> sat\nno\n"), []byte("a cat\n"), []byte("the end\n")}}
	c.CharLevel()
	want := [3]string{"t h e _ c a t _ <unk> _ s a t\nn o\n", "a _ c a t\n", "t h e _ e n d\n"}
	for i := range want {
		if string(c.Files[i]) != want[i] {
			t.Errorf("file %d: %q, want %q", i, c.Files[i], want[i])
		}
	}
	if c.Splits[0].Lines != 2 || c.Splits[0].Words != 15 || c.Splits[0].Unk != 1 {
		t.Errorf("train split %+v", c.Splits[0])
	}
	dir := t.TempDir()
	for i, name := range TextFiles {
		if err := os.WriteFile(filepath.Join(dir, name), c.Files[i], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text, err := LoadText(dir)
	if err != nil {
		t.Fatal(err)
	}
	// t h e _ c a <unk> s n o + <eos>; "d" of the test file is <unk> there.
	if len(text.Vocab) != c.Vocab || c.Vocab != 11 {
		t.Errorf("vocabulary %v (%d), the corpus says %d", text.Vocab, len(text.Vocab), c.Vocab)
	}
}

// Window k is the k-th window Next gives, and moves nothing.
func TestStreamsWindow(t *testing.T) {
	ids := make([]int32, 50)
	for i := range ids {
		ids[i] = int32(i)
	}
	s, err := NewStreams(ids, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	x, y := make([]int32, 12), make([]int32, 12)
	wx, wy := make([]int32, 12), make([]int32, 12)
	for k := 0; ; k++ {
		n := s.Next(x, y)
		if got := s.Window(k, wx, wy); got != n || !slices.Equal(x[:3*n], wx[:3*n]) || !slices.Equal(y[:3*n], wy[:3*n]) {
			t.Fatalf("window %d: %d steps %v %v; Next gave %d steps %v %v", k, got, wx, wy, n, x, y)
		}
		if n == 0 {
			break
		}
	}
	if s.Window(-1, wx, wy) != 0 {
		t.Error("window -1 has steps")
	}
}
