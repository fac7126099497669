package controller_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"nasd/arch"
	"nasd/cluster"
	"nasd/controller"
	_ "nasd/controller/random"
	"nasd/journal"
	"nasd/surrogate"
	"nasd/worker"
)

// search describes one in-process search: rank 0 runs controller.Run, the
// other ranks worker.Run with the surrogate objective wrapped by a trainer
// that counts its calls.
type search struct {
	mode    string
	ranks   int
	trials  int
	seed    uint64
	maxTime time.Duration
	stopAt  time.Time
	margin  time.Duration // StopMargin
	timeout time.Duration // per trial
	dir     string        // run directory; "" for a new one under t.TempDir()
	resume  bool

	strategy  string         // "" : random
	stratOpts map[string]any // the strategy's options
	override  bool
	mutate    string // a trial ID whose proposal gets another architecture

	delay      func(id string) time.Duration // simulated training time of a trial
	panicOn    string                        // trial ID whose training panics
	hangOn     string                        // trial ID whose training ignores its context until rank 0 returns
	hangGrace  time.Duration
	onTrain    func(calls int, cancel func())          // before each training; cancel ends rank 0's ctx
	onReport   func(reports, epoch int, cancel func()) // before each epoch report (early stopping)
	afterWrite func(n int)
	afterSync  func() // after each fsync of the log
	checkEvery time.Duration
	observed   *[]string          // if set, the trial IDs in the order the strategy observed them
	rewards    map[string]float64 // if set, the rewards the strategy observed, by trial

	epochs        int // per trial (surrogate and Config.Epochs); 0: 3
	stopper       string
	stopperOpts   map[string]any
	budget        arch.Budget
	penaltyTarget int64
	penaltyWeight float64
}

// recorder is a strategy that notes the order of its observations and the
// rewards observed.
type recorder struct {
	controller.Strategy
	ids     *[]string
	rewards map[string]float64
}

func (r recorder) Observe(res controller.Result) error {
	if r.ids != nil {
		*r.ids = append(*r.ids, res.TrialID)
	}
	if r.rewards != nil {
		r.rewards[res.TrialID] = res.Reward
	}
	return r.Strategy.Observe(res)
}

// mutator is a strategy that proposes another architecture for one trial
// ID, as a strategy that does not repeat itself after a restore would.
type mutator struct {
	controller.Strategy
	id string
}

func (m mutator) Propose(n int) ([]controller.Trial, error) {
	trials, err := m.Strategy.Propose(n)
	for i := range trials {
		if trials[i].ID == m.id {
			a := trials[i].Arch
			a.Decisions = append([]int(nil), a.Decisions...)
			a.Decisions[0] ^= 1
			trials[i].Arch = a
		}
	}
	return trials, err
}

type outcome struct {
	sum   controller.Summary
	err   error
	dir   string
	calls []string // trial IDs trained, in call order
	hooks int      // epoch reports the trainer made (calls of epochEnd)
	last  controller.Progress
	nprog int // progress reports
}

const runID = "test-run"

func testSpace(t testing.TB) arch.Space {
	t.Helper()
	s, err := arch.New("nas", arch.Options{Layers: 3})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s search) run(t testing.TB) outcome {
	t.Helper()
	if s.ranks == 0 {
		s.ranks = 3
	}
	if s.seed == 0 {
		s.seed = 1
	}
	if s.dir == "" {
		s.dir = filepath.Join(t.TempDir(), "run")
	}
	if s.epochs == 0 {
		s.epochs = 3
	}
	space := testSpace(t)
	obj := surrogate.New(space, surrogate.Options{Seed: 7, Noise: 0.02, Epochs: s.epochs})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	var calls []string
	release := make(chan struct{})
	var hooks int
	trainer := worker.EpochTrainerFunc(func(tctx context.Context, tr cluster.Trial, epochEnd func(int, float64) bool) cluster.Result {
		mu.Lock()
		calls = append(calls, tr.ID)
		n := len(calls)
		mu.Unlock()
		if s.onTrain != nil {
			s.onTrain(n, cancel)
		}
		if tr.ID == s.panicOn {
			panic("trainer bug in " + tr.ID)
		}
		if tr.ID == s.hangOn {
			<-release // a stuck kernel: only the job's end (here rank 0's return) ends it
			return cluster.Result{TrialID: tr.ID, Status: "canceled"}
		}
		if s.delay != nil {
			select {
			case <-time.After(s.delay(tr.ID)):
			case <-tctx.Done():
				return cluster.Result{TrialID: tr.ID, Status: "timeout", Reason: tctx.Err().Error()}
			}
		}
		if epochEnd != nil {
			hook := epochEnd
			epochEnd = func(epoch int, acc float64) bool {
				mu.Lock()
				hooks++
				n := hooks
				mu.Unlock()
				if s.onReport != nil {
					s.onReport(n, epoch, cancel)
				}
				return hook(epoch, acc)
			}
		}
		return obj.TrainEpochs(tctx, tr, epochEnd)
	})

	ends := cluster.NewInProcess(s.ranks)
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	werrs := make([]error, s.ranks)
	var wg sync.WaitGroup
	for r := 1; r < s.ranks; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			werrs[r] = worker.Run(wctx, ends[r], trainer, s.mode, s.timeout, zerolog.Nop())
		}()
	}

	var run *journal.Run
	var err error
	if s.resume {
		run, err = journal.Open(s.dir)
	} else {
		run, err = journal.Create(s.dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	log, err := run.NewLog(runID)
	if err != nil {
		t.Fatal(err)
	}
	if s.strategy == "" {
		s.strategy = "random"
	}
	strat, err := controller.New(s.strategy, controller.Env{Space: space, Seed: s.seed, Options: s.stratOpts})
	if err != nil {
		t.Fatal(err)
	}
	if s.observed != nil || s.rewards != nil {
		strat = recorder{strat, s.observed, s.rewards}
	}
	if s.mutate != "" {
		strat = mutator{strat, s.mutate}
	}
	cfg := controller.Config{Mode: s.mode, MaxTrials: s.trials, MaxTime: s.maxTime, StopAt: s.stopAt, StopMargin: s.margin, TrialTimeout: s.timeout, HangGrace: s.hangGrace, Override: s.override, Seed: s.seed,
		RunID: runID, CheckpointEvery: s.checkEvery, ConfigJSON: json.RawMessage(`{"test": true}`), Hosts: []string{"localhost"},
		Stopper: s.stopper, StopperOptions: s.stopperOpts, Epochs: s.epochs, Budget: s.budget, Space: space,
		PenaltyTargetFLOPs: s.penaltyTarget, PenaltyWeight: s.penaltyWeight}
	out := outcome{dir: s.dir}
	progress := func(p controller.Progress) {
		if p.Done < out.last.Done {
			t.Errorf("progress went back from %d to %d trials", out.last.Done, p.Done)
		}
		out.last = p
		out.nprog++
	}
	out.sum, out.err = controller.RunHooked(ctx, cfg, strat, ends[0], run, log, s.resume, progress, s.afterWrite, s.afterSync)
	close(release)
	if out.err != nil || out.sum.Interrupted {
		ends[0].Abort(3) // as the lead does
	}
	wg.Wait()
	if err := log.Close(); err != nil {
		t.Error(err)
	}
	if err := run.Close(); err != nil {
		t.Error(err)
	}
	for r, err := range werrs[1:] {
		var ab cluster.ErrAborted
		if err != nil && !errors.As(err, &ab) {
			t.Errorf("worker %d: %v", r+1, err)
		}
	}
	out.calls = calls
	out.hooks = hooks
	return out
}

// event is one decoded event with the fields the tests look at.
type event struct {
	Seq         uint64          `json:"seq"`
	Time        time.Time       `json:"time"`
	Event       string          `json:"event"`
	Trial       string          `json:"trial"`
	Rank        int             `json:"rank"`
	Arch        json.RawMessage `json:"arch"`
	ArchHash    string          `json:"arch_hash"`
	Status      string          `json:"status"`
	Reason      string          `json:"reason"`
	Reward      float64         `json:"reward"`
	ValAcc      accs            `json:"val_acc"` // trial_progress: one value
	BestValAcc  float64         `json:"best_val_acc"`
	Params      int             `json:"params"`
	FLOPs       int64           `json:"flops"`
	Host        string          `json:"host"`
	Start       time.Time       `json:"start"`
	End         time.Time       `json:"end"`
	Seconds     *float64        `json:"seconds"`
	Trials      int             `json:"trials"`
	Interrupted bool            `json:"interrupted"`
	InFlight    int             `json:"in_flight"`
	Bytes       int             `json:"bytes"`
	Schema      int             `json:"schema"`
	Mode        string          `json:"mode"`
	Ranks       int             `json:"ranks"`
	Resumed     bool            `json:"resumed"`
	BestTrial   string          `json:"best_trial"`
	Message     string          `json:"message"`
	Config      json.RawMessage `json:"config"`

	Epoch        int      `json:"epoch"`
	Stop         bool     `json:"stop"`
	Report       bool     `json:"report"`
	EpochsRun    *int     `json:"epochs_run"`
	EpochsBudget int      `json:"epochs_budget"`
	EpochsSaved  *int     `json:"epochs_saved"`
	Stopped      int      `json:"stopped"`
	Rejected     int      `json:"rejected"`
	RawReward    *float64 `json:"raw_reward"`
	Penalty      *float64 `json:"penalty"`
	Stopper      string   `json:"stopper"`
	IDs          []string `json:"ids"`         // strategy_propose
	Hashes       []string `json:"arch_hashes"` // strategy_propose
	OK           int      `json:"ok"`
	Failed       int      `json:"failed"`
	EventsRead   int      `json:"events_read"` // run_start, resumed
	ReadFrom     *struct {
		Segment int    `json:"segment"`
		Offset  int64  `json:"offset"`
		Seq     uint64 `json:"seq"`
	} `json:"read_from"`
}

// accs is val_acc: an array in trial_result, a number in trial_progress.
type accs []float64

func (a *accs) UnmarshalJSON(b []byte) error {
	var v []float64
	if len(b) > 0 && b[0] == '[' || string(b) == "null" {
		err := json.Unmarshal(b, &v)
		*a = v
		return err
	}
	var x float64
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*a = accs{x}
	return nil
}

func readEvents(t testing.TB, dir string) []event {
	t.Helper()
	var evs []event
	if _, err := journal.ReadEvents(dir, func(e journal.Event) error {
		var ev event
		if err := json.Unmarshal(e.Raw, &ev); err != nil {
			return fmt.Errorf("seq %d: %w: %s", e.Seq, err, e.Raw)
		}
		evs = append(evs, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return evs
}

func ofKind(evs []event, kind string) []event {
	var out []event
	for _, e := range evs {
		if e.Event == kind {
			out = append(out, e)
		}
	}
	return out
}

// result is the part of a trial's result that depends only on the trial.
type result struct {
	Trial, ArchHash, Status string
	Reward, BestValAcc      float64
	ValAcc                  string
	Params                  int
	FLOPs                   int64
}

// results lists the logged results in log order.
func results(evs []event) []result {
	var out []result
	for _, e := range ofKind(evs, controller.EventTrialResult) {
		out = append(out, result{e.Trial, e.ArchHash, e.Status, e.Reward, e.BestValAcc, fmt.Sprint(e.ValAcc), e.Params, e.FLOPs})
	}
	return out
}

func sortedByTrial(rs []result) []result {
	out := append([]result(nil), rs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Trial < out[j].Trial })
	return out
}

// checkOnce checks that trials t000001..t00000n each have exactly one
// logged result and nothing else does.
func checkOnce(t testing.TB, rs []result, n int) {
	t.Helper()
	count := map[string]int{}
	for _, r := range rs {
		count[r.Trial]++
	}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("t%06d", i)
		if count[id] != 1 {
			t.Errorf("trial %s has %d logged results, want 1", id, count[id])
		}
		delete(count, id)
	}
	for id, c := range count {
		t.Errorf("unexpected trial %s with %d results", id, c)
	}
}

// copyDir copies a run directory as a kill -9 would leave it. The
// checkpoints are copied first: the writer flushes the log before it writes
// a checkpoint, so a log copied later is at least as new, as on a real disk.
// A file renamed away meanwhile (a checkpoint's temporary file) is skipped.
func copyDir(t testing.TB, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Error(err)
		return
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Error(err)
		return
	}
	sort.SliceStable(ents, func(i, j int) bool {
		return strings.HasPrefix(ents[i].Name(), "checkpoint") && !strings.HasPrefix(ents[j].Name(), "checkpoint")
	})
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(to, e.Name()), b, 0o644)
		}
		if err != nil {
			t.Error(err)
		}
	}
}
