package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"nasd/analyze"
	"nasd/arch"
	"nasd/surrogate"
)

// nasd analyze on a real (surrogate) run writes every output; two runs
// compare; bad input gets a clear error.
func TestAnalyzeCommand(t *testing.T) {
	cfg := writeConfig(t, strings.Replace(jobsSearchTOML, `duration = "100ms"`, `duration = "1ms"`, 1))
	dir := t.TempDir()
	var runs []string
	for _, seed := range []string{"1", "2"} {
		run := filepath.Join(dir, "run"+seed)
		if code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", run, "-seed", seed, "-trials", "20"); code != exitOK {
			t.Fatalf("search: exit %d\n%s\n%s", code, out, errOut)
		}
		runs = append(runs, run)
	}
	out := filepath.Join(dir, "out")
	code, stdout, errOut := nasd(t, "analyze", "-csv", out+".csv", "-parquet", out+".parquet", "-html", out+".html", "-svg", out, runs[0])
	if code != exitOK {
		t.Fatalf("analyze: exit %d\n%s\n%s", code, stdout, errOut)
	}
	for _, w := range []string{"Best trials:", "Best architecture", "Decisions that matter", "Utilisation"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("summary lacks %q:\n%s", w, stdout)
		}
	}
	for _, f := range []string{out + ".csv", out + ".parquet", out + ".html", filepath.Join(out, "best-vs-trials.svg")} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	code, stdout, errOut = nasd(t, "analyze", "-group", "run", runs[0], runs[1])
	if code != exitOK || !strings.Contains(stdout, "Mann–Whitney") {
		t.Errorf("compare: exit %d\n%s\n%s", code, stdout, errOut)
	}
	if code, _, errOut = nasd(t, "analyze", filepath.Join(dir, "nothing")); code != exitError || !strings.Contains(errOut, "nothing") {
		t.Errorf("a missing run: exit %d: %s", code, errOut)
	}
	if code, _, _ = nasd(t, "analyze", "-top-q", "2", runs[0]); code != exitUsage {
		t.Errorf("-top-q 2: exit %d", code)
	}
}

// -png renders every plot with headless chromium (a minute: make test-long).
func TestAnalyzePNG(t *testing.T) {
	if os.Getenv("NASD_LONG") == "" {
		t.Skip("renders ~20 plots in chromium (a minute): make test-long")
	}
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Skip("chromium is not installed")
	}
	cfg := writeConfig(t, strings.Replace(jobsSearchTOML, `duration = "100ms"`, `duration = "1ms"`, 1))
	run := filepath.Join(t.TempDir(), "run")
	if code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", run, "-trials", "10"); code != exitOK {
		t.Fatalf("search: exit %d\n%s\n%s", code, out, errOut)
	}
	dir := filepath.Join(t.TempDir(), "png")
	code, out, errOut := nasd(t, "analyze", "-png", dir, run)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	b, err := os.ReadFile(filepath.Join(dir, "best-vs-trials.png"))
	if err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Errorf("best-vs-trials.png: %d bytes, %v", len(b), err)
	}
}

// On a real run whose answer is planted — a random search of the surrogate
// objective, whose hidden optimum the test knows — the decision statistics
// name the optimum's choice as the best for the decisions they rank most
// important.
func TestAnalyzeFindsPlantedOptimum(t *testing.T) {
	body := strings.NewReplacer(`duration = "100ms"`, `duration = "0s"`, "trials = 60", "trials = 600", `name = "rl"`, `name = "random"`,
		"layers = 4", "layers = 2").Replace(jobsSearchTOML)
	cfg := writeConfig(t, body)
	run := filepath.Join(t.TempDir(), "run")
	if code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", run); code != exitOK {
		t.Fatalf("search: exit %d\n%s\n%s", code, out, errOut)
	}
	r, err := analyze.Read(run)
	if err != nil {
		t.Fatal(err)
	}
	opt, _ := surrogate.New(r.Space, surrogate.Options{Seed: r.Seed}).Optimum()
	stats := r.DecisionStats(0.1)
	for _, d := range stats[:3] {
		if d.Best != opt.Decisions[d.Index] {
			t.Errorf("%s (importance %.3f): best choice %s, the planted optimum's is %s", d.Name, d.Importance,
				r.Choice(d.Index, d.Best), r.Choice(d.Index, opt.Decisions[d.Index]))
		}
	}
}

// The local-optimum check end to end: perturb the surrogate objective's
// planted optimum, train the neighbours and repeats, and nasd analyze finds
// every neighbour worse and none better.
func TestPerturbTheOptimum(t *testing.T) {
	cfg := writeConfig(t, fmt.Sprintf(perturbTOML, "sync"))
	space, err := arch.New("nas", arch.Options{Layers: 2})
	if err != nil {
		t.Fatal(err)
	}
	opt, _ := surrogate.New(space, surrogate.Options{Seed: 3}).Optimum()
	_, best := writeArch(t, space, opt.Decisions)
	out := filepath.Join(t.TempDir(), "perturb.toml")
	run := filepath.Join(t.TempDir(), "run")
	if code, stdout, errOut := nasd(t, "perturb", "-arch", best, "-config", cfg, "-repeats", "3", "-run-dir", run, "-o", out); code != exitOK {
		t.Fatalf("perturb: exit %d\n%s\n%s", code, stdout, errOut)
	}
	if code, stdout, errOut := nasd(t, "search", "-config", out); code != exitOK {
		t.Fatalf("search: exit %d\n%s\n%s", code, stdout, errOut)
	}
	r, err := analyze.Read(run)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := r.Perturbation()
	if !ok || len(p.Base.Rewards) != 3 || len(p.Neighbours) < 10 || p.Better != 0 || p.Worse != len(p.Neighbours) {
		t.Fatalf("perturbation of the optimum: ok %v, base %d trainings, %d neighbours: %d better, %d equal, %d worse",
			ok, len(p.Base.Rewards), len(p.Neighbours), p.Better, p.Equal, p.Worse)
	}
	code, stdout, _ := nasd(t, "analyze", run)
	if code != exitOK || !strings.Contains(stdout, "is a local optimum under one-decision changes") {
		t.Errorf("analyze: exit %d\n%s", code, stdout)
	}
}
