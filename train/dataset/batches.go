package dataset

import (
	"fmt"
	"math/rand/v2"
)

// Augment is the training-time augmentation applied by Batches. The zero value
// applies none.
type Augment struct {
	// Pad > 0 zero-pads each image by Pad on every side and crops a random
	// H×W window, so content shifts by at most Pad pixels each way. The images
	// are already normalised, so the padding is the training mean.
	Pad int `json:"pad" toml:"pad"`
	// FlipH mirrors each image left–right with probability 1/2 (after the crop).
	FlipH bool `json:"flip_h" toml:"flip_h"`
}

func (a Augment) active() bool { return a.Pad > 0 || a.FlipH }

// Batches serves a Set in minibatches, epoch after epoch. The order of each
// epoch and every augmentation draw are functions of (seed, epoch, position),
// so a run is reproducible and resumable from State alone, independent of the
// batch size. Next does not allocate.
type Batches struct {
	set     *Set
	batch   int
	shuffle bool
	aug     Augment
	seed    uint64
	order   []int
	pos     int
	epoch   int
	pcg     rand.PCG
}

// NewBatches returns batches of up to batch examples of s. With shuffle each
// epoch visits s in a new seeded order, otherwise in s's order. It panics if
// batch < 1 or aug.Pad < 0, which are programming errors.
func NewBatches(s *Set, batch int, shuffle bool, aug Augment, seed uint64) *Batches {
	if batch < 1 || aug.Pad < 0 {
		panic(fmt.Sprintf("dataset: NewBatches: batch %d, Pad %d: want batch ≥ 1 and Pad ≥ 0", batch, aug.Pad))
	}
	b := &Batches{set: s, batch: batch, shuffle: shuffle, aug: aug, seed: seed, order: make([]int, s.Len())}
	b.reorder()
	return b
}

// reorder sets the visiting order of the current epoch.
func (b *Batches) reorder() {
	identity(b.order)
	if b.shuffle {
		seedPCG(&b.pcg, b.seed, saltEpoch, uint64(b.epoch))
		shuffle(&b.pcg, b.order)
	}
}

// Epoch returns the 0-based number of the epoch being served: the number of
// times Next has returned 0.
func (b *Batches) Epoch() int { return b.epoch }

// Next copies up to batch examples into x (C*H*W values each) and their labels
// into y, and returns how many; the last batch of an epoch may be short. At the
// end of an epoch it returns 0, and the next call starts the next epoch. x and
// y must hold a full batch; shorter buffers are a programming error and panic.
func (b *Batches) Next(x []float32, y []int32) int {
	s := b.set
	sz := s.Size()
	if len(x) < b.batch*sz || len(y) < b.batch {
		panic(fmt.Sprintf("dataset: Batches.Next: len(x) = %d, len(y) = %d: want ≥ %d and ≥ %d for batch %d of %d×%d×%d",
			len(x), len(y), b.batch*sz, b.batch, b.batch, s.C, s.H, s.W))
	}
	n := min(b.batch, len(b.order)-b.pos)
	if n == 0 {
		b.epoch++
		b.pos = 0
		b.reorder()
		return 0
	}
	for i := range n {
		k := b.order[b.pos+i]
		dst := x[i*sz : (i+1)*sz]
		if b.aug.active() {
			b.augment(dst, s.Images[k*sz:(k+1)*sz], b.pos+i)
		} else {
			copy(dst, s.Images[k*sz:(k+1)*sz])
		}
		y[i] = s.Labels[k]
	}
	b.pos += n
	return n
}

// augment writes a randomly cropped and flipped copy of src into dst. The
// draws for an example hash (seed, epoch, position in epoch); taking the crop
// offsets from 32-bit fractions biases them by < 2⁻³², which is immaterial.
func (b *Batches) augment(dst, src []float32, pos int) {
	s := b.set
	h := mix64(mix64(mix64(b.seed^saltAugment)+uint64(b.epoch)) + uint64(pos))
	pad := b.aug.Pad
	span := uint64(2*pad + 1)
	oy := int((h&0xffffffff)*span>>32) - pad     // source row = output row + oy
	ox := int((h>>32&0x7fffffff)*span>>31) - pad // source col = output col + ox (before the flip)
	flip := b.aug.FlipH && h>>63 == 1
	H, W := s.H, s.W
	for c := range s.C {
		for y := range H {
			out := dst[(c*H+y)*W : (c*H+y+1)*W]
			sy := y + oy
			if sy < 0 || sy >= H {
				clear(out)
				continue
			}
			in := src[(c*H+sy)*W : (c*H+sy+1)*W]
			// Output columns [lo, hi) read inside the image; the rest is padding.
			lo, hi := max(0, -ox), min(W, W-ox)
			if lo >= hi {
				clear(out)
				continue
			}
			if !flip {
				clear(out[:lo])
				copy(out[lo:hi], in[lo+ox:hi+ox])
				clear(out[hi:])
				continue
			}
			// Mirror of the crop: out[x] = crop[W-1-x], inside for x in [W-hi, W-lo).
			clear(out[:W-hi])
			for x := W - hi; x < W-lo; x++ {
				out[x] = in[W-1-x+ox]
			}
			clear(out[W-lo:])
		}
	}
}

// BatchesState is the position of a Batches, for resumable training.
type BatchesState struct {
	Seed  uint64 // must match the Batches restored into
	Len   int    // size of the set, must match
	Epoch int
	Pos   int // examples already served in Epoch
}

// State returns the current position.
func (b *Batches) State() BatchesState {
	return BatchesState{Seed: b.seed, Len: len(b.order), Epoch: b.epoch, Pos: b.pos}
}

// Restore moves b to a position taken by State from a Batches over the same
// set with the same seed; the batch size may differ.
func (b *Batches) Restore(st BatchesState) error {
	switch {
	case st.Seed != b.seed:
		return fmt.Errorf("dataset: Batches.Restore: state has seed %d, batches have seed %d", st.Seed, b.seed)
	case st.Len != len(b.order):
		return fmt.Errorf("dataset: Batches.Restore: state is for a set of %d examples, batches have %d", st.Len, len(b.order))
	case st.Epoch < 0 || st.Pos < 0 || st.Pos > st.Len:
		return fmt.Errorf("dataset: Batches.Restore: invalid position epoch %d, pos %d of %d", st.Epoch, st.Pos, st.Len)
	}
	b.epoch, b.pos = st.Epoch, st.Pos
	b.reorder()
	return nil
}
