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

// TestConfigLinesOfInlineTablesAndDottedKeys: a problem found after decoding
// is reported at the line of its key however the key is written: in an
// inline table, as a dotted key, as a dotted key inside a table.
func TestConfigLinesOfInlineTablesAndDottedKeys(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"[strategy]\noptions = { population = -1 }\n",
			`:2: [strategy.options] random: unknown option "population" (random takes no options)`},
		{"seed = 2\nstrategy.options.population = -1\n",
			`:2: [strategy.options] random: unknown option "population" (random takes no options)`},
		{"[strategy]\nname = \"ga\"\n\noptions.population = -1\n",
			":4: [strategy.options] ga: option population = -1: must be in 2..100000"},
		{"[strategy]\nname = \"rl\"\noptions = { hidden = 32, lr = -1 }\n",
			":3: [strategy.options] rl: option lr = -1: must be in (0, 10]"},
		{"[trainer]\nepochs = 2\naugment = { pad = -1 }\n",
			":3: [trainer] train: config augment.pad = -1: must be ≥ 0"},
		{"\n\ntrainer.augment.pad = -1\n",
			":3: [trainer] train: config augment.pad = -1: must be ≥ 0"},
		{"[space]\nname = \"nas\"\ninput = { c = 0, h = 28, w = 28 }\n",
			":3: [space] arch: nas: options.input.c = 0: must be in 1..65536"},
		{"space = { name = \"nas\", channels = 3 }\n",
			":1: [space] arch: nas: options.channels: not used by space nas"},
		// The stoppers' errors name no field structurally yet: located by the key they name.
		{"[early_stopping]\nname = \"median\"\noptions = { statistic = \"mean\", min_trials = \"x\" }\n",
			":3: [early_stopping.options] controller: stopper median: option min_trials = x: must be an integer"},
	} {
		p := writeConfig(t, tc.src)
		cfg, src, err := loadSearchConfig(p)
		if err != nil {
			t.Errorf("%q: load: %v", tc.src, err)
			continue
		}
		err = cfg.finish(p, src)
		if err == nil || !strings.Contains(err.Error(), p+tc.want) {
			t.Errorf("%q: error\n%v\nlacks\n%s", tc.src, err, p+tc.want)
		}
	}
}

// TestConfigReportsDecodeErrorsAndUnknownKeysTogether: a value of the wrong
// type does not hide an unknown key (go-toml stops at the first), and each
// is reported at its line.
func TestConfigReportsDecodeErrorsAndUnknownKeysTogether(t *testing.T) {
	p := writeConfig(t, "seed = \"x\"\n[budgett]\n")
	_, _, err := loadSearchConfig(p)
	for _, want := range []string{p + ":1: toml: cannot decode TOML string into struct field main.searchConfig.Seed of type uint64",
		p + ":2: unknown key budgett"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	p = writeConfig(t, "seed = 1\n[budgett]\ntrials = 3\n[trainer]\nepochs = \"a\"\nbogus = 1\n[strategy]\noptions = { x = 1 }\nbad = { y = 2 }\n")
	_, _, err = loadSearchConfig(p)
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{
		p + ":2: unknown key budgett",
		p + ":5: toml: cannot decode TOML string into struct field main.trainerConfig.Epochs of type int",
		p + ":6: unknown key trainer.bogus",
		p + ":9: unknown key strategy.bad",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestKeyLines: the TOML parser's positions of every key path.
func TestKeyLines(t *testing.T) {
	src := `top = 1
a.b.c = 2 # dotted
[t]
x = { y = 1, z = { w = 2 } }
"q.k" = 3
[t.u]
v = [ { in = 1 }, { in = 2, more = 3 } ]
[[arr]]
k = 1
[[arr]]
k = 2
j = 3
`
	got := keyLines([]byte(src))
	want := map[string]int{}
	for path, line := range map[string]int{
		"top": 1, "a": 2, "a b": 2, "a b c": 2,
		"t": 3, "t x": 4, "t x y": 4, "t x z": 4, "t x z w": 4, "t q.k": 5,
		"t u": 6, "t u v": 7, "t u v in": 7, "t u v more": 7,
		"arr": 8, "arr k": 9, "arr j": 12,
	} {
		want[pathKey(strings.Split(path, " "))] = line
	}
	if !reflect.DeepEqual(map[string]int(got), want) {
		t.Errorf("keyLines:\n got %v\nwant %v", map[string]int(got), want)
	}
	if l := got.line([]string{"t", "u", "missing"}); l != 6 {
		t.Errorf("line of an absent key = %d, want its table's line 6", l)
	}
	if l := keyLines([]byte("a = 1\nb = \n")).line([]string{"a"}); l != 1 {
		t.Errorf("before a syntax error: line %d, want 1", l)
	}
}

func FuzzLoadConfig(f *testing.F) {
	examples, _ := filepath.Glob("../../examples/*.toml")
	if len(examples) == 0 {
		f.Fatal("no examples/*.toml to seed from")
	}
	for _, name := range examples {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("[space]\nname = \"nas\"\nlayers = 100000\n"))
	// From memory: with a file per input, minimizing one new input (60 s by
	// default) held the run for most of its time.
	f.Fuzz(func(t *testing.T, b []byte) {
		const p = "f.toml"
		cfg, err := parseSearchConfig(p, b)
		if err == nil {
			_ = cfg.finish(p, b)
		}
	})
}
