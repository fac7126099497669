package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"nasd/arch"
	"nasd/journal"
)

const perturbTOML = `
seed = 3
mode = "%s"
workers = 3
[budget]
trials = 100
[space]
name = "nas"
layers = 2
[early_stopping]
name = "median"
[trainer]
kind = "surrogate"
epochs = 3
[trainer.surrogate]
duration = "1ms"
noise = 0.01
`

// writeArch writes the architecture of space with decisions d as a JSON file.
func writeArch(t *testing.T, space arch.Space, d []int) (arch.Arch, string) {
	t.Helper()
	a, err := space.Arch(d)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "best.json")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := arch.WriteJSON(f, a); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return a, p
}

// trialArchs reads the run's trial_result events: trial ID → architecture hash.
func trialArchs(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_, err := journal.ReadEvents(dir, func(e journal.Event) error {
		if e.Kind != "trial_result" {
			return nil
		}
		var f struct {
			Trial string    `json:"trial"`
			Arch  arch.Arch `json:"arch"`
		}
		if err := json.Unmarshal(e.Raw, &f); err != nil {
			return err
		}
		if _, dup := out[f.Trial]; dup {
			t.Errorf("%s: trial %s has two results", dir, f.Trial)
		}
		out[f.Trial] = f.Arch.Hash()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPerturbSurrogate writes a perturb config, runs it as a search, and
// checks that the log holds the base 3 times and every neighbour once; then
// that a run stopped after 10 trials and resumed ends with the same results.
func TestPerturbSurrogate(t *testing.T) {
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			cfg := writeConfig(t, fmt.Sprintf(perturbTOML, mode))
			space, err := arch.New("nas", arch.Options{Layers: 2})
			if err != nil {
				t.Fatal(err)
			}
			base, archFile := writeArch(t, space, []int{3, 2, 2, 0, 0, 0, 2, 0, 1})
			neighbours := space.Neighbours(base)
			total := 3 + len(neighbours)

			tmp := t.TempDir()
			out := filepath.Join(tmp, "perturb.toml")
			dir := filepath.Join(tmp, "run")
			code, stdout, stderr := nasd(t, "perturb", "-arch", archFile, "-config", cfg, "-repeats", "3", "-o", out, "-run-dir", dir)
			if code != exitOK {
				t.Fatalf("perturb: code %d\n%s\n%s", code, stdout, stderr)
			}
			for _, want := range []string{
				fmt.Sprintf("%d valid, 0 invalid", len(neighbours)),
				fmt.Sprintf("= %d\n", total),
				"Dropped [early_stopping]",
				"nasd search -config " + out,
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("perturb output lacks %q:\n%s", want, stdout)
				}
			}
			if code, stdout, stderr := nasd(t, "search", "-config", out); code != exitOK {
				t.Fatalf("search: code %d\n%s\n%s", code, stdout, stderr)
			}
			// nasd analyze finds the base in run_start's config.
			var logged []int
			if _, err := journal.ReadEvents(dir, func(e journal.Event) error {
				if e.Kind != "run_start" {
					return nil
				}
				var f struct {
					Config struct {
						Strategy struct {
							Name    string
							Options struct{ Arch []int }
						}
					}
				}
				logged = nil
				if err := json.Unmarshal(e.Raw, &f); err != nil || f.Config.Strategy.Name != "perturb" {
					return fmt.Errorf("run_start: %v, strategy %q", err, f.Config.Strategy.Name)
				}
				logged = f.Config.Strategy.Options.Arch
				return nil
			}); err != nil || !slices.Equal(logged, base.Decisions) {
				t.Errorf("run_start's strategy options: arch %v (%v), want %v", logged, err, base.Decisions)
			}
			got := trialArchs(t, dir)
			if len(got) != total {
				t.Fatalf("%d trial results, want %d", len(got), total)
			}
			count := map[string]int{}
			for _, h := range got {
				count[h]++
			}
			if count[base.Hash()] != 3 {
				t.Errorf("the base was trained %d times, want 3", count[base.Hash()])
			}
			for _, n := range neighbours {
				if count[n.Hash()] != 1 {
					t.Errorf("neighbour %v trained %d times, want 1", n.Decisions, count[n.Hash()])
				}
			}
			ids := make([]string, 0, len(got))
			for id := range got {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids[:3] {
				if got[id] != base.Hash() {
					t.Errorf("trial %s is not the base: the repeats come first", id)
				}
			}

			// Stopped after 10 trials, then resumed: the same trials, none twice.
			part := filepath.Join(tmp, "part")
			if code, stdout, stderr := nasd(t, "search", "-config", out, "-run-dir", part, "-trials", "10"); code != exitOK {
				t.Fatalf("first part: code %d\n%s\n%s", code, stdout, stderr)
			}
			if n := len(trialArchs(t, part)); n < 10 || n >= total {
				t.Fatalf("first part: %d results, want 10 up to the workers in flight", n)
			}
			if code, stdout, stderr := nasd(t, "search", "-resume", part, "-trials", fmt.Sprint(total), "-override"); code != exitOK {
				t.Fatalf("resume: code %d\n%s\n%s", code, stdout, stderr)
			}
			resumed := trialArchs(t, part)
			if fmt.Sprint(resumed) != fmt.Sprint(got) {
				t.Errorf("resumed run's trials differ from the uninterrupted run's:\n%v\n%v", resumed, got)
			}
		})
	}
}

func TestPerturbRunAndSample(t *testing.T) {
	cfg := writeConfig(t, fmt.Sprintf(perturbTOML, "async"))
	space, _ := arch.New("nas", arch.Options{Layers: 2})
	_, archFile := writeArch(t, space, make([]int, 9))
	tmp := t.TempDir()
	out := filepath.Join(tmp, "p.toml")
	dir := filepath.Join(tmp, "run")
	code, stdout, stderr := nasd(t, "perturb", "-arch", archFile, "-config", cfg, "-sample", "4", "-repeats", "2",
		"-neighbour-repeats", "2", "-o", out, "-run-dir", dir, "-run")
	if code != exitOK {
		t.Fatalf("code %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"4 sampled (seed 3)", "2 repeats of the architecture + 4 neighbours × 2 = 10", "Trials: 10 (10 ok"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if n := len(trialArchs(t, dir)); n != 10 {
		t.Errorf("%d trial results, want 10", n)
	}
}

func TestPerturbErrors(t *testing.T) {
	cfg := writeConfig(t, fmt.Sprintf(perturbTOML, "sync"))
	nas3, _ := arch.New("nas", arch.Options{Layers: 3})
	_, other := writeArch(t, nas3, make([]int, len(nas3.Decisions())))
	macro, _ := arch.New("enas-macro", arch.Options{})
	_, macroFile := writeArch(t, macro, make([]int, len(macro.Decisions())))
	nas2, _ := arch.New("nas", arch.Options{Layers: 2})
	_, good := writeArch(t, nas2, make([]int, 9))
	out := filepath.Join(t.TempDir(), "p.toml")
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-config", cfg}, exitUsage, []string{"-arch and -config are required"}},
		{[]string{"-arch", good, "-config", cfg, "-o", cfg}, exitUsage, []string{"is the -config file"}},
		{[]string{"-arch", other, "-config", cfg}, exitError, []string{other, `"layers":3`, `"layers":2`, cfg}},
		{[]string{"-arch", macroFile, "-config", cfg}, exitError, []string{"space enas-macro", "searches space nas"}},
		{[]string{"-arch", good, "-config", cfg, "-repeats", "0", "-sample", "-2"}, exitError, []string{"-repeats = 0", "-sample = -2"}},
		{[]string{"-arch", filepath.Join(t.TempDir(), "none.json"), "-config", cfg}, exitError, []string{"none.json"}},
	} {
		code, _, stderr := nasd(t, append([]string{"perturb", "-o", out}, c.args...)...)
		if code != c.code {
			t.Errorf("%v: code %d, want %d\n%s", c.args, code, c.code, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", c.args, w, stderr)
			}
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed perturb wrote its config")
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "4")
	if code, _, stderr := nasd(t, "perturb", "-o", out, "-arch", good, "-config", cfg, "-run"); code != exitUsage || !strings.Contains(stderr, "mpirun nasd search -config "+out) {
		t.Errorf("-run under mpirun: code %d\n%s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("perturb -run under mpirun wrote its config")
	}
	if code, stdout, _ := nasd(t, "perturb", "-h"); code != exitOK || stdout != "" {
		t.Errorf("-h: code %d", code)
	}
}
