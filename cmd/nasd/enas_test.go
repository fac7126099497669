package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"nasd/arch"
	"nasd/journal"
)

// enasTOML is a small ENAS search on real Fashion-MNIST: 2 epochs of a
// 4-layer, 8-channel supernet, seconds on 2 cores.
const enasTOML = `
seed = 3
workers = 2
[data]
train_subset = 2000
val_subset = 500
[space]
name = "enas-macro"
layers = 4
channels = 8
[strategy]
name = "enas"
[strategy.options]
epochs = 2
batch_size = 32
controller_steps = 3
controller_batch = 4
derive_samples = 4
checkpoint_steps = 10
checksum_steps = 5
[trainer]
kind = "real"
`

func needFashionMNIST(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		t.Skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
	}
}

// enasOutcome is what identifies an ENAS search's result: the derived
// architecture and the final shared weights.
type enasOutcome struct {
	best        []byte
	weightsHash string
	epochs      []map[string]any
	derive      map[string]any
	starts      []map[string]any
}

func readENAS(t *testing.T, dir string) enasOutcome {
	t.Helper()
	var o enasOutcome
	var err error
	if o.best, err = os.ReadFile(filepath.Join(dir, "best.json")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := arch.Load(filepath.Join(dir, "best.json")); err != nil {
		t.Fatalf("best.json: %v", err)
	}
	run, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	c, _, err := run.LoadCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		WeightsHash string `json:"weights_sha256"`
	}
	if err := json.Unmarshal(c.Loop, &st); err != nil {
		t.Fatal(err)
	}
	o.weightsHash = st.WeightsHash
	if _, err := journal.ReadEvents(dir, func(e journal.Event) error {
		var m map[string]any
		if err := json.Unmarshal(e.Raw, &m); err != nil {
			return err
		}
		switch e.Kind {
		case "enas_epoch":
			o.epochs = append(o.epochs, m)
		case "enas_derive":
			o.derive = m
		case "run_start":
			o.starts = append(o.starts, m)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return o
}

// An ENAS search in process: it trains the shared weights with the replicas
// checked identical, trains the policy, derives a child that arch.Load
// reads, and the same seed gives the same search (derived child and final
// shared weights, bit for bit).
func TestENASSearch(t *testing.T) {
	needFashionMNIST(t)
	cfg := writeConfig(t, enasTOML)
	var outs []enasOutcome
	for i := range 2 {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("run%d", i))
		code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", dir)
		if code != exitOK || !strings.Contains(out, "Derived: validation accuracy") || !strings.Contains(out, "epoch 2/2  31 steps  shared loss") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		outs = append(outs, readENAS(t, dir))
	}
	o := outs[0]
	if len(o.epochs) != 2 || o.derive == nil {
		t.Fatalf("%d enas_epoch events, derive %v", len(o.epochs), o.derive)
	}
	for _, e := range o.epochs {
		// 2000 examples / (32 × 2 workers) = 31 steps, a child per worker each.
		if e["children_trained"] != 62.0 || e["checksums_verified"].(float64) < 6 || e["updates"] == nil {
			t.Errorf("enas_epoch %v", e)
		}
	}
	// Traffic is exact, so the same in both runs; times are only present.
	size := o.starts[0]["shared_weights"].(float64)
	for i, e := range o.epochs {
		u, _ := e["union_floats"].(float64)
		by, _ := e["allreduce_bytes"].(float64)
		if e["train_steps"] != 31.0 || u <= 0 || u > size || by <= 0 || e["union_buckets"] == nil ||
			e["step_s"] == nil || e["allreduce_s"] == nil || e["train_s"] == nil {
			t.Errorf("enas_epoch traffic and times: %v", e)
		}
		if e2 := outs[1].epochs[i]; e2["union_floats"] != u || e2["allreduce_bytes"] != by {
			t.Errorf("epoch %d: union %v, %v bytes; the same seed's rerun %v, %v", i+1, u, by, e2["union_floats"], e2["allreduce_bytes"])
		}
	}
	if cs := o.derive["candidates"].([]any); len(cs) != 4 {
		t.Errorf("derive: %d candidates, want 4", len(cs))
	}
	if !bytes.Equal(outs[0].best, outs[1].best) || outs[0].weightsHash != outs[1].weightsHash || outs[0].weightsHash == "" {
		t.Errorf("same seed, different searches: weights %s vs %s\n%s\n%s", outs[0].weightsHash, outs[1].weightsHash, outs[0].best, outs[1].best)
	}
}

// enasMicroTOML is a tiny ENAS search over cells: normal, reduction,
// normal cell of 2 nodes and 4 channels, one epoch on 512 images.
const enasMicroTOML = `
seed = 5
workers = 2
[data]
train_subset = 512
val_subset = 128
[space]
name = "enas-micro"
nodes = 2
channels = 4
cells = 1
stages = 2
ops = ["sep3x3", "max3x3", "identity"]
[strategy]
name = "enas"
[strategy.options]
epochs = 1
batch_size = 32
controller_steps = 2
controller_batch = 4
derive_samples = 3
checkpoint_steps = 4
checksum_steps = 2
[trainer]
kind = "real"
`

// An ENAS search over enas-micro in process: the shared weights of the
// cells train with the replicas checked identical, a derived cell
// architecture is written, and the same seed gives the same search.
func TestENASMicroSearch(t *testing.T) {
	needFashionMNIST(t)
	cfg := writeConfig(t, enasMicroTOML)
	var outs []enasOutcome
	for i := range 2 {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("run%d", i))
		code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", dir)
		if code != exitOK || !strings.Contains(out, "Derived: validation accuracy") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		outs = append(outs, readENAS(t, dir))
	}
	o := outs[0]
	if len(o.epochs) != 1 || o.derive == nil {
		t.Fatalf("%d enas_epoch events, derive %v", len(o.epochs), o.derive)
	}
	// 512 examples / (32 × 2 workers) = 8 steps, a child per worker each.
	if e := o.epochs[0]; e["children_trained"] != 16.0 || e["checksums_verified"].(float64) < 4 {
		t.Errorf("enas_epoch %v", e)
	}
	if !strings.Contains(string(o.best), `"enas-micro"`) {
		t.Errorf("best.json is not an enas-micro architecture:\n%s", o.best)
	}
	if !bytes.Equal(outs[0].best, outs[1].best) || outs[0].weightsHash != outs[1].weightsHash || outs[0].weightsHash == "" {
		t.Errorf("same seed, different searches: weights %s vs %s\n%s\n%s", outs[0].weightsHash, outs[1].weightsHash, outs[0].best, outs[1].best)
	}
}

// kill -9 in the middle of an epoch: the resumed search loses only the steps
// since the last checkpoint and ends exactly where the uninterrupted one did.
func TestENASKillResume(t *testing.T) {
	needFashionMNIST(t)
	cfg := writeConfig(t, enasTOML)
	ref := filepath.Join(t.TempDir(), "ref")
	if code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", ref); code != exitOK {
		t.Fatalf("reference: exit %d\n%s\n%s", code, out, errOut)
	}
	want := readENAS(t, ref)

	dir := filepath.Join(t.TempDir(), "killed")
	killAtCheckpoint(t, cfg, dir, 3) // the third checkpoint is mid-epoch 1 (steps 10, 20, 30 of 31)
	code, out, errOut := nasd(t, "search", "-resume", dir)
	if code != exitOK {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, errOut)
	}
	got := readENAS(t, dir)
	if n := len(got.starts); n != 2 || got.starts[1]["from_step"].(float64) < 10 || got.starts[1]["from_epoch"] != 0.0 {
		t.Fatalf("%d run_start events; the resumed one %v: want a resume in the middle of epoch 1", n, got.starts[n-1])
	}
	if !bytes.Equal(got.best, want.best) || got.weightsHash != want.weightsHash {
		t.Errorf("resumed search differs from the uninterrupted one: weights %s vs %s\n%s\n%s", got.weightsHash, want.weightsHash, got.best, want.best)
	}
}

// The job's end (-stop-at, minus the stop margin) stops the search at a
// step boundary with a checkpoint and exit 3, twice in a row, and the second
// job goes on from where the first stopped. (That a resumed search ends
// where an uninterrupted one does is TestENASKillResume's.)
func TestENASDeadline(t *testing.T) {
	needFashionMNIST(t)
	// 40 epochs: no job below ends the search, however fast the machine.
	cfg := writeConfig(t, strings.Replace(enasTOML, "epochs = 2", "epochs = 40", 1))
	dir := filepath.Join(t.TempDir(), "deadline")
	var steps []float64
	for job := range 2 {
		stopAt := time.Now().Add(8 * time.Second).UTC().Format(time.RFC3339Nano)
		args := []string{"search", "-config", cfg, "-run-dir", dir}
		if job > 0 {
			args = []string{"search", "-resume", dir}
		}
		code, out, errOut := nasd(t, append(args, "-stop-at", stopAt, "-stop-margin", "1s")...)
		if code != exitCheckpointed || !strings.Contains(out, "checkpointed before it") {
			t.Fatalf("job %d, -stop-at %s: exit %d, want %d\n%s\n%s", job+1, stopAt, code, exitCheckpointed, out, errOut)
		}
		var end map[string]any
		if _, err := journal.ReadEvents(dir, func(e journal.Event) error {
			if e.Kind == "run_end" {
				return json.Unmarshal(e.Raw, &end)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if end["reason"] != "deadline" || end["interrupted"] != true {
			t.Fatalf("job %d: run_end %v", job+1, end)
		}
		steps = append(steps, end["steps"].(float64))
	}
	if steps[0] < 1 || steps[1] <= steps[0] {
		t.Errorf("steps at the two deadlines: %v; want progress in each job", steps)
	}
}

// killAtCheckpoint starts an ENAS search of cfg in dir and kills it (-9)
// as soon as its checkpoint n's shared weights are written.
func killAtCheckpoint(t *testing.T, cfg, dir string, n int) {
	t.Helper()
	cmd := nasdProcess(t, nil, "search", "-config", cfg, "-run-dir", dir)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(dir, weightsFile(n))); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint %d within 2 minutes", n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

func weightsFile(n int) string { return fmt.Sprintf("supernet-%06d.bin.zst", n) }

// A worker that cannot start (no data) ends the ENAS search at once with
// its error, exit 1.
func TestENASWorkerErrorEndsRun(t *testing.T) {
	cfg := writeConfig(t, strings.Replace(enasTOML, "train_subset = 2000", `dir = "/nonexistent"`, 1))
	code, errOut := exitWithin(t, 30*time.Second, "search", "-config", cfg, "-run-dir", filepath.Join(t.TempDir(), "r"))
	if code != exitError || !strings.Contains(errOut, ": dataset: fashion-mnist: /nonexistent: directory does not exist") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
}

// What ENAS cannot do is a configuration error naming the field.
func TestENASConfigErrors(t *testing.T) {
	cfg := writeConfig(t, `
[space]
name = "nas"
[strategy]
name = "enas"
[strategy.options]
epochs = 0
hidden = -1
[trainer]
kind = "surrogate"
`)
	code, _, errOut := nasd(t, "search", "-config", cfg)
	for _, want := range []string{"enas-macro, enas-micro and enas-rnn spaces only", "options.epochs = 0", "hidden", `kind = "surrogate"`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q", want)
		}
	}
	if code != exitError || t.Failed() {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
}

// Under mpirun the ENAS search is the same as in process with as many
// workers: the collectives sum in rank order on both transports, so the
// derived child and the final shared weights agree bit for bit.
func TestMPIENASEqualsInProcess(t *testing.T) {
	bin := mpiBinary(t)
	needFashionMNIST(t)
	cfg := writeConfig(t, enasTOML)
	local := filepath.Join(t.TempDir(), "local")
	// The same binary in process: the test's own may have other kernels
	// (build tags), which round differently.
	if out, err := exec.Command(bin, "search", "-config", cfg, "-run-dir", local).CombinedOutput(); err != nil {
		t.Fatalf("in process: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "mpi")
	if code, out, errOut := mpirunWait(t, 3, "search", "-config", cfg, "-run-dir", dir); code != exitOK {
		t.Fatalf("mpirun -n 3: exit %d\n%s\n%s", code, out, errOut)
	}
	want, got := readENAS(t, local), readENAS(t, dir)
	if !bytes.Equal(got.best, want.best) || got.weightsHash != want.weightsHash {
		t.Errorf("mpirun -n 3 differs from 2 in-process workers: weights %s vs %s", got.weightsHash, want.weightsHash)
	}
}

// A derived child retrains wider (-channels with -arch): the same
// decisions, more parameters; flags that would change the decisions are
// refused.
func TestTrainWidensArch(t *testing.T) {
	space, err := arch.New("enas-macro", arch.Options{Layers: 4, Channels: 8})
	if err != nil {
		t.Fatal(err)
	}
	a := space.Sample(rand.New(rand.NewPCG(1, 2)))
	b, wide, err := widen(a, space, 32, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	na, _ := arch.Analyze(space, a)
	nb, _ := arch.Analyze(wide, b)
	if !slices.Equal(a.Decisions, b.Decisions) || wide.Options().Channels != 32 || nb.Params <= 4*na.Params {
		t.Fatalf("widened to 32 channels: %d → %d params, decisions %v → %v", na.Params, nb.Params, a.Decisions, b.Decisions)
	}
	c, final, err := widen(a, space, 0, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	nc, _ := arch.Analyze(final, c)
	if !slices.Equal(a.Decisions, c.Decisions) || !final.Options().FinalNetwork || nc.Params <= na.Params {
		t.Fatalf("final network: %d → %d params, options %+v", na.Params, nc.Params, final.Options())
	}
	f := filepath.Join(t.TempDir(), "a.json")
	var buf bytes.Buffer
	arch.WriteJSON(&buf, a)
	os.WriteFile(f, buf.Bytes(), 0o644)
	if code, _, errOut := nasd(t, "train", "-arch", f, "-layers", "6"); code != exitUsage || !strings.Contains(errOut, "-layers with -arch") {
		t.Fatalf("-layers with -arch: exit %d, %s", code, errOut)
	}
}
