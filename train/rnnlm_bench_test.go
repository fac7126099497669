package train

import (
	"os"
	"testing"

	"nasd/train/dataset"
)

// BenchmarkTrainLSTMLM: training windows of the LSTM language model on real
// text, the sizes of bench/pytorch_lstm.py (vocabulary 10 000 from the
// fortunes corpus, or the PTB-layout directory in NASD_LM_DATA; embedding =
// hidden = 200, 20 streams × 35 steps), reported in tokens/s.
func BenchmarkTrainLSTMLM(b *testing.B) {
	var text *dataset.Text
	var err error
	if dir := os.Getenv("NASD_LM_DATA"); dir != "" {
		text, err = dataset.LoadText(dir)
	} else {
		var c *dataset.Corpus
		if c, err = dataset.BuildCorpus(dataset.CorpusSpec{Inputs: []string{"/usr/share/games/fortunes"}, Seed: 1}); err == nil {
			text, err = c.Text()
		}
	}
	if err != nil {
		b.Skip(err)
	}
	cfg := DefaultLMConfig()
	spec, err := cellSpecOf(LSTMCell(200, 200))
	if err != nil {
		b.Fatal(err)
	}
	m, err := newLM(spec, len(text.Vocab), 200, 200, cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	r, err := m.newRun(cfg.Batch)
	if err != nil {
		b.Fatal(err)
	}
	st, err := dataset.NewStreams(text.Train, cfg.Batch, cfg.BPTT)
	if err != nil {
		b.Fatal(err)
	}
	step := func() int {
		T := st.Next(r.ids, r.tgt)
		if T == 0 {
			T = st.Next(r.ids, r.tgt)
		}
		r.window(T, true)
		m.clipAndStep(cfg.LR)
		return T * cfg.Batch
	}
	for range 5 { // warm-up, as the peer
		step()
	}
	tokens := 0
	b.ResetTimer()
	for range b.N {
		tokens += step()
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
}
