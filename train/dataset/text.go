package dataset

import "fmt"

// Text is a tokenised corpus in the Penn Treebank layout: a vocabulary built
// from the training file and the three splits as token ids, each line's end
// marked by the "<eos>" token, rare words by "<unk>".
type Text struct {
	Vocab            []string // Vocab[id] is the word of token id
	Train, Val, Test []int32
}

// Streams serves a split of a Text for truncated back-propagation through time,
// as Zaremba et al. (2014) and ENAS batch it: the ids are cut into Batch
// contiguous streams of ⌊n/Batch⌋ tokens (the remainder dropped), and each call
// to Next gives the next window of up to BPTT steps of every stream together
// with its targets, the tokens one step later. A recurrent model carries its
// state from one window to the next; at the end of an epoch the streams start
// over. Next does not allocate.
type Streams struct {
	ids   []int32
	batch int
	bptt  int
	steps int // tokens per stream
	pos   int // next window's first step within a stream
	epoch int
}

// NewStreams returns streams over ids. It fails when a stream would hold
// fewer than 2 tokens (one input and its target).
func NewStreams(ids []int32, batch, bptt int) (*Streams, error) {
	if batch < 1 || bptt < 1 {
		return nil, fmt.Errorf("dataset: streams: batch %d, bptt %d: want both ≥ 1", batch, bptt)
	}
	steps := len(ids) / batch
	if steps < 2 {
		return nil, fmt.Errorf("dataset: streams: %d tokens cannot fill %d streams of at least 2 tokens", len(ids), batch)
	}
	return &Streams{ids: ids, batch: batch, bptt: bptt, steps: steps}, nil
}

// Batch is the number of parallel streams.
func (s *Streams) Batch() int { return s.batch }

// BPTT is the longest window Next returns.
func (s *Streams) BPTT() int { return s.bptt }

// Epoch is the 0-based number of the epoch being served: the number of times
// Next has returned 0.
func (s *Streams) Epoch() int { return s.epoch }

// WindowsPerEpoch is the number of windows Next returns in one epoch.
func (s *Streams) WindowsPerEpoch() int { return (s.steps - 1 + s.bptt - 1) / s.bptt }

// Next fills x and y (each at least BPTT·Batch long) time-major, x[t·Batch+b]
// being step t of stream b and y the token that follows it, and returns the
// window's number of steps. It returns 0, filling nothing, when the epoch is
// over; the next call starts the next epoch.
func (s *Streams) Next(x, y []int32) int {
	n := min(s.bptt, s.steps-1-s.pos)
	if n <= 0 {
		s.pos = 0
		s.epoch++
		return 0
	}
	for b := range s.batch {
		stream := s.ids[b*s.steps : (b+1)*s.steps]
		for t := range n {
			x[t*s.batch+b] = stream[s.pos+t]
			y[t*s.batch+b] = stream[s.pos+t+1]
		}
	}
	s.pos += n
	return n
}

// Window fills x and y as Next does with window k of an epoch (0-based;
// windows are BPTT steps, the last one shorter) and returns its steps, or 0
// for a window past the epoch's end. It does not move the position.
func (s *Streams) Window(k int, x, y []int32) int {
	pos := k * s.bptt
	if k < 0 || pos >= s.steps-1 {
		return 0
	}
	saved := s.pos
	s.pos = pos
	n := s.Next(x, y)
	s.pos = saved
	return n
}

// StreamsState is the position of Streams, enough to resume exactly.
type StreamsState struct {
	Epoch int `json:"epoch"`
	Pos   int `json:"pos"`
}

// State returns the current position.
func (s *Streams) State() StreamsState { return StreamsState{Epoch: s.epoch, Pos: s.pos} }

// Restore moves to a position returned by State of streams over the same ids
// and batch.
func (s *Streams) Restore(st StreamsState) error {
	if st.Epoch < 0 || st.Pos < 0 || st.Pos > s.steps-1 {
		return fmt.Errorf("dataset: streams: restore epoch %d position %d: want position in [0, %d]", st.Epoch, st.Pos, s.steps-1)
	}
	s.epoch, s.pos = st.Epoch, st.Pos
	return nil
}
