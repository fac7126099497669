package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeConfig(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "search.toml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExampleConfigsAreValid(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.toml")
	if len(files) < 3 {
		t.Fatalf("expected the example configs, found %v", files)
	}
	for _, f := range files {
		cfg, src, err := loadSearchConfig(f)
		if err == nil {
			err = cfg.finish(f, src)
		}
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestConfigDefaultsAndOverrides(t *testing.T) {
	p := writeConfig(t, `
seed = 9
[space]
name = "nas"
layers = 3
filter_sizes = [3]
[trainer]
epochs = 4
`)
	cfg, src, err := loadSearchConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.finish(p, src); err != nil {
		t.Fatal(err)
	}
	// The nas space's own defaults fill what the file leaves out; a list in the file replaces the default list.
	if cfg.Space.Name != "nas" || cfg.Space.Layers != 3 || !reflect.DeepEqual(cfg.Space.FilterSizes, []int{3}) ||
		!reflect.DeepEqual(cfg.Space.FilterCounts, []int{24, 36, 48, 64}) || cfg.Space.Channels != 0 {
		t.Errorf("space = %+v", cfg.Space)
	}
	if cfg.Seed != 9 || cfg.Trainer.Epochs != 4 || cfg.Trainer.BatchSize != 64 || cfg.Mode != "async" || cfg.Budget.Trials != 10 ||
		cfg.RunDir != filepath.Join("runs", "random-seed9") {
		t.Errorf("config = %+v", cfg)
	}
	sf := searchFlags{set: map[string]bool{"trials": true, "mode": true, "time": true}, trials: 3, mode: "sync", time: time.Minute}
	sf.apply(&cfg)
	if cfg.Budget.Trials != 3 || cfg.Mode != "sync" || cfg.Budget.Time.Duration != time.Minute || cfg.Seed != 9 {
		t.Errorf("after flags: %+v", cfg)
	}
}

// TestResolvedConfigRoundTripsThroughJSON: config.json of a run and the
// setup sent to workers must mean exactly what rank 0 resolved.
func TestResolvedConfigRoundTripsThroughJSON(t *testing.T) {
	for _, f := range []string{"../../examples/search.toml", "../../examples/surrogate.toml"} {
		cfg, src, err := loadSearchConfig(f)
		if err == nil {
			err = cfg.finish(f, src)
		}
		if err != nil {
			t.Fatal(err)
		}
		cfg.Strategy.Options = map[string]any{"population": float64(20)}
		cfg.Space.ReduceAfter = []int{} // explicit "no reductions" must survive
		b, err := cfg.marshal()
		if err != nil {
			t.Fatal(err)
		}
		var got searchConfig
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, cfg) {
			t.Errorf("%s: JSON round trip changed the config:\n got %+v\nwant %+v", f, got, cfg)
		}
	}
}

func TestConfigReportsEveryProblemWithItsLine(t *testing.T) {
	p := writeConfig(t, `seed = 1
mode = "fast"
workers = 0

[budget]
trials = -2

[space]
name = "enas-macro"
layers = 500

[trainer]
epochs = -3
optimizer = "rmsprop"
`)
	cfg, src, err := loadSearchConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.finish(p, src)
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "run_dir") {
		t.Errorf("run_dir has a default:\n%v", err)
	}
	for _, want := range []string{
		p + `:2: mode = "fast"`, p + ":3: workers = 0", p + ":6: [budget] trials = -2",
		p + ":10: [space]", "layers = 500", p + ":13: [trainer]", "epochs = -3", p + ":14: [trainer]", "rmsprop",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestConfigStrategyOptionsAreChecked(t *testing.T) {
	p := writeConfig(t, "[strategy]\nname = \"random\"\n[strategy.options]\npopulation = 3\n")
	cfg, src, err := loadSearchConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.finish(p, src); err == nil || !strings.Contains(err.Error(), p+":4: [strategy.options]") {
		t.Errorf("unknown strategy option: %v", err)
	}
}

func TestConfigUnknownKeysAndSyntax(t *testing.T) {
	p := writeConfig(t, "seed = 1\nbogus = 2\n[trainer]\nepoch = 3\n")
	_, _, err := loadSearchConfig(p)
	if err == nil || !strings.Contains(err.Error(), p+":2: unknown key bogus") || !strings.Contains(err.Error(), p+":4: unknown key trainer.epoch") {
		t.Errorf("unknown keys: %v", err)
	}
	p = writeConfig(t, "seed = \n")
	if _, _, err := loadSearchConfig(p); err == nil || !strings.Contains(err.Error(), p+":1") {
		t.Errorf("syntax error: %v", err)
	}
	p = writeConfig(t, "[budget]\ntime = \"forever\"\n")
	if _, _, err := loadSearchConfig(p); err == nil || !strings.Contains(err.Error(), "forever") {
		t.Errorf("bad duration: %v", err)
	}
	if _, _, err := loadSearchConfig(filepath.Join(t.TempDir(), "none.toml")); err == nil || !strings.Contains(err.Error(), "none.toml") {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzLoadConfig(f *testing.F) {
	for _, name := range []string{"quick", "search", "surrogate"} {
		if b, err := os.ReadFile("../../examples/" + name + ".toml"); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("[space]\nname = \"nas\"\nlayers = 100000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.toml")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, src, err := loadSearchConfig(p)
		if err == nil {
			_ = cfg.finish(p, src)
		}
	})
}
