package analyze

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"nasd/arch"
	"nasd/surrogate"
)

var update = flag.Bool("update", false, "rewrite the golden report in testdata/")

// testdata/run is a real surrogate rl search of 24 trials in two segments
// (the second resumed with -trials 24 -override).
const testRun = "testdata/run"

func TestReadRun(t *testing.T) {
	r, err := Read(testRun)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Segments) != 2 || !r.Segments[1].Resumed || len(r.Trials) != 24 || r.Strategy != "rl" || r.Space == nil || r.Space.Name() != "nas" {
		t.Fatalf("segments %+v, %d trials, strategy %q, space %v", r.Segments, len(r.Trials), r.Strategy, r.Space)
	}
	if r.Trials[20].Segment != 1 || r.Trials[0].Segment != 0 || r.Trials[0].Dispatched.IsZero() {
		t.Errorf("segment or dispatch of trials: %+v", r.Trials[0])
	}
	best := r.Best()
	for i := 1; i < len(best); i++ {
		if best[i].Reward > best[i-1].Reward {
			t.Fatalf("Best is not sorted at %d", i)
		}
	}
	bsf := r.BestSoFar()
	if bsf[len(bsf)-1] != best[0].Reward {
		t.Errorf("best so far ends at %v, the best is %v", bsf[len(bsf)-1], best[0].Reward)
	}
}

// A segment cut mid-write (a kill -9) still reads: the complete part, and
// a warning naming the cut.
func TestReadCutTail(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"config.json", "events-0001.jsonl.zst", "events-0002.jsonl.zst"} {
		b, err := os.ReadFile(filepath.Join(testRun, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "events-0002.jsonl.zst" {
			b = b[:len(b)*2/3]
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	r, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Trials) < 12 || len(r.Trials) >= 24 || len(r.Warnings) == 0 || !strings.Contains(strings.Join(r.Warnings, " "), "truncated") {
		t.Errorf("%d trials, warnings %q", len(r.Trials), r.Warnings)
	}
	var b bytes.Buffer
	r.Summary(&b, SummaryOptions{})
	if !strings.Contains(b.String(), "killed (no run_end)") {
		t.Errorf("the cut segment is not reported as killed:\n%s", b.String())
	}
	if _, err := Read(t.TempDir()); err == nil {
		t.Error("an empty directory read as a run")
	}
}

// The trial table has a row per trial and a column per decision, with the
// space's choice names; it reads back as the same cells.
func TestCSV(t *testing.T) {
	r, _ := Read(testRun)
	var b bytes.Buffer
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	nd := len(r.Space.Decisions())
	if len(rows) != 25 || len(rows[0]) != len(Columns)+nd {
		t.Fatalf("%d rows of %d columns, want 25 of %d", len(rows), len(rows[0]), len(Columns)+nd)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	first := r.Trials[0]
	d0 := r.Space.Decisions()[0]
	if rows[1][col["trial"]] != first.ID || rows[1][col[d0.Name]] != d0.Choices[first.Arch.Decisions[0]] || rows[1][col["arch_hash"]] != first.Hash {
		t.Errorf("row 1: %v", rows[1])
	}
}

// plantedRun is a random search over a space scored by the surrogate
// objective: the planted answer is its hidden optimum and weights.
func plantedRun(t *testing.T, n int, noise float64) (*Run, *surrogate.Objective, arch.Space) {
	t.Helper()
	space, err := arch.New("nas", arch.Options{Layers: 3})
	if err != nil {
		t.Fatal(err)
	}
	obj := surrogate.New(space, surrogate.Options{Seed: 3})
	r := &Run{Space: space, Strategy: "random"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		a := space.Sample(rng)
		acc := obj.Accuracy(a) + noise*rng.NormFloat64()
		r.Trials = append(r.Trials, Trial{ID: "t" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676)),
			Arch: a, Hash: a.Hash(), Status: "ok", Reward: acc * acc * acc, TestAcc: math.NaN(), TestPPL: math.NaN(), Order: i})
	}
	return r, obj, space
}

// On a log whose answer is known, the statistics find it: for the
// decisions that carry the most weight, the best choice is the planted
// optimum's, and the most important decision is among the heaviest.
func TestPlantedEffectRecovered(t *testing.T) {
	r, obj, space := plantedRun(t, 3000, 0.01)
	opt, _ := obj.Optimum()
	stats := r.DecisionStats(0.1)
	if len(stats) != len(space.Decisions()) {
		t.Fatalf("%d decision stats", len(stats))
	}
	// Effect of a decision: the variance of the accuracy it explains under
	// uniform sampling (fANOVA's main effect), Δ²·p(1−p) with Δ the gain of
	// its optimal choice and p = 1/choices.
	effect := map[int]float64{}
	for i, d := range space.Decisions() {
		a := opt
		a.Decisions = append([]int(nil), opt.Decisions...)
		a.Decisions[i] = (opt.Decisions[i] + 1) % len(d.Choices)
		gain := obj.Accuracy(opt) - obj.Accuracy(a)
		p := 1 / float64(len(d.Choices))
		effect[i] = gain * gain * p * (1 - p)
	}
	var heaviest []int
	for i := range effect {
		heaviest = append(heaviest, i)
	}
	sortByDesc(heaviest, effect)
	for _, i := range heaviest[:5] {
		for _, d := range stats {
			if d.Index == i && d.Best != opt.Decisions[i] {
				t.Errorf("decision %q (effect %.3f): best choice %d, the optimum's is %d", d.Name, effect[i], d.Best, opt.Decisions[i])
			}
		}
	}
	top := stats[0].Index
	rank := 0
	for k, i := range heaviest {
		if i == top {
			rank = k
		}
	}
	if rank > 2 {
		t.Errorf("the most important decision, %q, has the %d-th largest effect", stats[0].Name, rank+1)
	}
	t.Logf("most important: %s (importance %.3f, effect rank %d)", stats[0].Name, stats[0].Importance, rank+1)
}

func sortByDesc(ix []int, by map[int]float64) {
	for i := range ix {
		for j := i + 1; j < len(ix); j++ {
			if by[ix[j]] > by[ix[i]] || (by[ix[j]] == by[ix[i]] && ix[j] < ix[i]) {
				ix[i], ix[j] = ix[j], ix[i]
			}
		}
	}
}

// Repeated evaluations of one architecture pool into one distinct entry,
// measure the noise, and the next best are told apart from the best by the
// decisions that changed.
func TestSecondBestAndNoise(t *testing.T) {
	r, _, space := plantedRun(t, 50, 0)
	r.Trials[0].Reward = 0.91
	base := r.Trials[0]
	for k, v := range []float64{0.9, 0.92, 0.94} { // the best, three more times
		tr := base
		tr.ID, tr.Reward, tr.Order = "rep"+string(rune('0'+k)), v, 100+k
		r.Trials = append(r.Trials, tr)
	}
	near := base
	near.Arch.Decisions = append([]int(nil), base.Arch.Decisions...)
	near.Arch.Decisions[2] = (near.Arch.Decisions[2] + 1) % len(space.Decisions()[2].Choices)
	near.Hash, near.ID, near.Reward = "near-hash", "near", 0.89
	r.Trials = append(r.Trials, near)
	dist, noise := r.SecondBest(3)
	if dist[0].Trial.Hash != base.Hash || len(dist[0].Rewards) != 4 {
		t.Fatalf("best distinct %+v", dist[0])
	}
	if dist[1].Trial.ID != "near" || dist[1].Distance != 1 || dist[1].Changed[0] != 2 {
		t.Errorf("second %+v", dist[1])
	}
	if math.IsNaN(noise) || noise <= 0 {
		t.Errorf("noise %v", noise)
	}
}

// The report is the same bytes for the same log (testdata golden; go test
// ./analyze -update rewrites it), has no external URL, and holds every plot.
func TestReportGolden(t *testing.T) {
	r, err := Read(testRun)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := r.WriteHTML(&a, SummaryOptions{}); err != nil {
		t.Fatal(err)
	}
	r2, _ := Read(testRun)
	r2.WriteHTML(&b, SummaryOptions{})
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two reports of one log differ")
	}
	golden := filepath.Join("testdata", "report.html.golden")
	if *update {
		os.WriteFile(golden, a.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./analyze -update)", err)
	}
	if !bytes.Equal(a.Bytes(), want) {
		t.Errorf("the report differs from %s (go test ./analyze -update, then review)", golden)
	}
	html := a.String()
	for _, bad := range []string{"http://", "https://", "src=", "@import", "url("} {
		if strings.Contains(strings.ReplaceAll(html, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("the report refers outside itself: %q", bad)
		}
	}
	for _, id := range []string{"best-vs-trials", "best-vs-time", "reward-histogram", "learning-curves", "timeline", "acc-vs-params", "acc-vs-flops", "slice-1", "arch-1"} {
		if !strings.Contains(html, `id="`+id+`"`) {
			t.Errorf("no plot %s", id)
		}
	}
}

// The report renders in a real browser (Debian's chromium, headless): the
// DOM it builds holds the summary's text and every plot laid out with a
// non-zero size.
func TestReportInChromium(t *testing.T) {
	bin := ""
	for _, c := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(c); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium is not installed (apt-get install chromium; make deps)")
	}
	r, _ := Read(testRun)
	path := filepath.Join(t.TempDir(), "report.html")
	var b bytes.Buffer
	r.WriteHTML(&b, SummaryOptions{})
	os.WriteFile(path, b.Bytes(), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=2000", "--dump-dom", "file://"+path)
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	text := string(dom)
	for _, w := range []string{"Best trials:", "Decisions that matter", "Best reward so far, by trials", "How busy the ranks were"} {
		if !strings.Contains(text, w) {
			t.Errorf("the rendered page lacks %q", w)
		}
	}
	plots := len(regexp.MustCompile(`<svg [^>]*class="plot[" ]`).FindAllString(b.String(), -1))
	sizes := regexp.MustCompile(`data-rendered="(\d+)x(\d+)"`).FindAllStringSubmatch(text, -1)
	if len(sizes) != plots || plots < 9 {
		t.Fatalf("%d plots in the report, %d rendered", plots, len(sizes))
	}
	for _, s := range sizes {
		if s[1] == "0" || s[2] == "0" {
			t.Errorf("a plot rendered at %sx%s", s[1], s[2])
		}
	}
}

// The Parquet table reads back (parquet-go's reader) with the CSV's values,
// numbers typed.
func TestParquet(t *testing.T) {
	r, _ := Read(testRun)
	var b bytes.Buffer
	if err := r.WriteParquet(&b); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if n := f.NumRows(); n != int64(len(r.Trials)) {
		t.Fatalf("%d rows, want %d", n, len(r.Trials))
	}
	rd := parquet.NewGenericReader[map[string]any](bytes.NewReader(b.Bytes()), f.Schema())
	rows := make([]map[string]any, len(r.Trials))
	for i := range rows {
		rows[i] = map[string]any{}
	}
	if n, err := rd.Read(rows); n != len(rows) || (err != nil && err != io.EOF) {
		t.Fatalf("read %d rows: %v", n, err)
	}
	d0 := r.Space.Decisions()[0]
	for i, row := range rows {
		tr := r.Trials[i]
		if row["trial"] != tr.ID || row["reward"] != tr.Reward || row["params"] != tr.Params || seedOf(row["seed"]) != tr.Seed ||
			row[d0.Name] != d0.Choices[tr.Arch.Decisions[0]] || row["test_acc"] != nil {
			t.Fatalf("row %d: %v\ntrial %+v", i, row, tr)
		}
	}
}

// seedOf reads a uint64 column back: parquet-go's map reader gives the
// physical int64 of an unsigned logical type.
func seedOf(v any) uint64 {
	switch x := v.(type) {
	case int64:
		return uint64(x)
	case uint64:
		return x
	}
	return 0
}

// Exact p-values by hand: 3 vs 3 fully separated is 1/C(6,3) = 0.05; with
// a tie straddling, U = 8.5 and 2 of the 20 splits reach it.
func TestMannWhitneyExact(t *testing.T) {
	for _, c := range []struct {
		x, y []float64
		p    float64
	}{
		{[]float64{4, 5, 6}, []float64{1, 2, 3}, 0.05},
		{[]float64{1, 2, 3}, []float64{4, 5, 6}, 1},
		{[]float64{3, 5, 6}, []float64{1, 2, 3}, 0.10},
		{[]float64{2}, []float64{1}, 0.5},
	} {
		if got := MannWhitneyGreater(c.x, c.y); math.Abs(got-c.p) > 1e-12 {
			t.Errorf("%v > %v: p %v, want %v", c.x, c.y, got, c.p)
		}
	}
	// Large groups take the normal approximation, which agrees on the side.
	var a, b []float64
	for i := range 30 {
		a, b = append(a, float64(i)+0.5), append(b, float64(i))
	}
	if p := MannWhitneyGreater(a, b); !(p > 0.2 && p < 0.5) {
		t.Errorf("shifted by half a rank: p %v", p)
	}
	if p := MannWhitneyGreater(append(a, 100, 101), b[:10]); p > 0.001 {
		t.Errorf("well separated: p %v", p)
	}
}

// Runs grouped by strategy: the table has each group's final bests and the
// cost to reach a target; the plot has a curve per group.
func TestCompare(t *testing.T) {
	r1, _ := Read(testRun)
	r2, _ := Read(testRun)
	r2.Strategy = "random"
	gs := GroupRuns([]*Run{r1, r2, r1}, func(r *Run) string { return r.Strategy })
	if len(gs) != 2 || len(gs[0].Runs) != 2 || gs[0].Name != "rl" {
		t.Fatalf("groups %+v", gs)
	}
	best := r1.Best()[0].Reward
	c := r1.CostTo(best)
	if !c.Reached || c.Trials != r1.Best()[0].Order+1 || c.ChildEpochs != 3*c.Trials {
		t.Errorf("cost to the best: %+v (best is result %d)", c, r1.Best()[0].Order+1)
	}
	if c := r1.CostTo(best + 1); c.Reached {
		t.Errorf("reached an unreachable target: %+v", c)
	}
	var b bytes.Buffer
	WriteComparison(&b, gs, best)
	if !strings.Contains(b.String(), "rl      2") || !strings.Contains(b.String(), "p (A > B)") {
		t.Errorf("comparison:\n%s", b.String())
	}
	if svg := ComparisonPlot(gs); strings.Count(svg, "<polygon") != 2 {
		t.Errorf("plot has %d bands", strings.Count(svg, "<polygon"))
	}
}

// A perturbation run: the base trained 4 times (the noise floor), a
// neighbour far better, one within noise, one far worse.
func TestPerturbationVerdicts(t *testing.T) {
	r, _, space := plantedRun(t, 4, 0)
	base := r.Trials[0]
	cfg, _ := json.Marshal(map[string]any{"strategy": map[string]any{"name": "perturb", "options": map[string]any{"arch": base.Arch.Decisions}}})
	r.Config = cfg
	r.Trials = nil
	add := func(id string, d []int, reward float64) {
		a, err := space.Arch(d)
		if err != nil {
			t.Fatal(err)
		}
		r.Trials = append(r.Trials, Trial{ID: id, Arch: a, Hash: a.Hash(), Status: "ok", Reward: reward, TestAcc: math.NaN(), TestPPL: math.NaN()})
	}
	for k, v := range []float64{0.50, 0.52, 0.48, 0.50} {
		add("base"+string(rune('0'+k)), base.Arch.Decisions, v)
	}
	nb := func(i int) []int {
		d := append([]int(nil), base.Arch.Decisions...)
		d[i] = (d[i] + 1) % len(space.Decisions()[i].Choices)
		return d
	}
	add("better", nb(0), 0.60)
	add("equal", nb(1), 0.51)
	add("worse", nb(2), 0.30)
	p, ok := r.Perturbation()
	if !ok || len(p.Base.Rewards) != 4 || p.Better != 1 || p.Equal != 1 || p.Worse != 1 {
		t.Fatalf("perturbation %+v", p)
	}
	if p.Neighbours[0].Trial.ID != "better" || p.Neighbours[0].Distance != 1 || p.Neighbours[2].Verdict != "worse" {
		t.Errorf("neighbours %+v", p.Neighbours)
	}
	var b bytes.Buffer
	r.Summary(&b, SummaryOptions{})
	if !strings.Contains(b.String(), "1 better, 1 equal within noise, 1 worse") {
		t.Errorf("summary:\n%s", b.String())
	}
	if _, ok := (&Run{}).Perturbation(); ok {
		t.Error("a run of no strategy reads as a perturbation")
	}
}

// An evolutionary run gets a population-fitness plot over the configured
// population; other strategies do not.
func TestPopulationPlot(t *testing.T) {
	r, _, _ := plantedRun(t, 40, 0)
	has := func() bool {
		for _, p := range r.Plots(SummaryOptions{}) {
			if p.Name == "population" {
				return true
			}
		}
		return false
	}
	if has() {
		t.Error("a random search has a population plot")
	}
	r.Strategy = "aging-evolution"
	r.Config = []byte(`{"strategy": {"name": "aging-evolution", "options": {"population": 8}}}`)
	if n, _ := r.population(); n != 8 || !has() {
		t.Errorf("population %d, plot %v", n, has())
	}
}

func TestSteadyBusy(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	span := func(rank int, a, b float64) Span { return Span{rank, at(a), at(b)} }
	spans := []Span{
		span(1, 0, 1), span(1, 1.1, 2.1), span(1, 2.2, 3.0),
		span(2, 0.5, 1.5), span(2, 1.5, 2.5),
	}
	// Window [0.5, 2.5]: rank 1 busy 0.5 + 1.0 + 0.3, rank 2 the whole 2 s.
	frac, window, ok := SteadyBusy(spans, 2)
	if !ok || window != 2*time.Second || math.Abs(frac-3.8/4) > 1e-9 {
		t.Fatalf("SteadyBusy = %v, %v, %v; want 0.95 over 2s", frac, window, ok)
	}
	if _, _, ok := SteadyBusy(spans, 3); ok {
		t.Error("a worker without trials: want no steady figure")
	}
	if _, _, ok := SteadyBusy([]Span{span(1, 0, 1), span(2, 1, 2)}, 2); ok {
		t.Error("no moment when both had work: want no steady figure")
	}
	if _, _, ok := SteadyBusy(nil, 0); ok {
		t.Error("no workers: want no steady figure")
	}

	// A run of two segments: the first as above, the second (one worker)
	// busy half of its 4 s window; rejected trials do not count.
	trial := func(seg int, s Span) Trial {
		return Trial{Status: "ok", Rank: s.Rank, Start: s.Start, End: s.End, Segment: seg}
	}
	r := &Run{Workers: 2, Segments: []Segment{{Workers: 2}, {Workers: 1}}}
	for _, s := range spans {
		r.Trials = append(r.Trials, trial(0, s))
	}
	r.Trials = append(r.Trials, trial(1, span(1, 10, 11)), trial(1, span(1, 13, 14)),
		Trial{Status: "rejected", Rank: 1, Start: at(11), End: at(13), Segment: 1})
	// The second segment's window is [10, 14] for its one worker: 2 of 4 s.
	frac, window, ok = r.SteadyBusy()
	if want := (3.8 + 2) / (4 + 4); !ok || window != 6*time.Second || math.Abs(frac-want) > 1e-9 {
		t.Fatalf("Run.SteadyBusy = %v, %v, %v; want %v over 6s", frac, window, ok, want)
	}
}
