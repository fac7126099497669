package evolution

import (
	"slices"
	"strings"
	"testing"

	"nasd/arch"
	"nasd/controller"
)

func TestDefaults(t *testing.T) {
	space := nasSpace(t, 3) // 15 decisions, all with ≥ 2 choices
	g := mk(t, NameGA, space, 1, nil).(*GA)
	want := gaConfig{Population: 20, Tournament: 3, CrossoverRate: 0.5, MutationRate: 1.0 / 15, Elite: 2,
		common: common{Dedupe: true, DedupeWindow: 10000}}
	if g.cfg != want {
		t.Errorf("ga defaults %+v, want %+v", g.cfg, want)
	}
	a := mk(t, NameAging, space, 1, nil).(*Aging)
	if w := (agingConfig{Population: 100, Sample: 25, common: common{Dedupe: true, DedupeWindow: 10000}}); a.cfg != w {
		t.Errorf("aging defaults %+v, want %+v", a.cfg, w)
	}
	// Defaults that would exceed a small population shrink with it.
	g = mk(t, NameGA, space, 1, map[string]any{"population": int64(2)}).(*GA)
	if g.cfg.Tournament != 2 || g.cfg.Elite != 1 {
		t.Errorf("population 2: tournament %d, elite %d; want 2, 1", g.cfg.Tournament, g.cfg.Elite)
	}
	a = mk(t, NameAging, space, 1, map[string]any{"population": int64(10)}).(*Aging)
	if a.cfg.Sample != 10 {
		t.Errorf("population 10: sample %d, want 10", a.cfg.Sample)
	}
	// TOML types, Go ints and integral floats are all accepted.
	g = mk(t, NameGA, space, 1, map[string]any{"population": 30.0, "tournament": 4, "elite": int64(0),
		"crossover_rate": int64(1), "mutation_rate": 0.25, "max_params": int64(1e6), "max_flops": int64(1e9),
		"max_activation_bytes": int64(1 << 30), "failure_reward": -0.5, "dedupe": false, "dedupe_window": int64(5)}).(*GA)
	want = gaConfig{Population: 30, Tournament: 4, CrossoverRate: 1, MutationRate: 0.25, Elite: 0,
		common: common{Budget: arch.Budget{MaxParams: 1e6, MaxFLOPs: 1e9, MaxActivationBytes: 1 << 30}, FailureReward: -0.5, DedupeWindow: 5}}
	if g.cfg != want {
		t.Errorf("ga options %+v, want %+v", g.cfg, want)
	}
	g = mk(t, NameGA, space, 1, map[string]any{"steady_state": true}).(*GA)
	if !g.cfg.SteadyState || g.cfg.Elite != 0 {
		t.Errorf("steady state: %+v", g.cfg)
	}
}

func TestOptionErrors(t *testing.T) {
	space := nasSpace(t, 2)
	for _, c := range []struct {
		name string
		opts map[string]any
		want []string // each must appear in the error
	}{
		{NameGA, map[string]any{"populaton": int64(5), "beta": 1.0},
			[]string{`ga: unknown options "beta", "populaton" (known: crossover_rate, dedupe, dedupe_window, elite, failure_reward, max_activation_bytes, max_flops, max_params, mutation_rate, population, steady_state, tournament)`}},
		{NameAging, map[string]any{"tournament": int64(3)},
			[]string{`aging-evolution: unknown option "tournament" (known: dedupe, dedupe_window, failure_reward, max_activation_bytes, max_flops, max_params, population, sample)`}},
		// Every problem at once.
		{NameGA, map[string]any{"population": int64(1), "crossover_rate": 1.5, "mutation_rate": 0.0, "dedupe": "yes", "x": 1},
			[]string{"ga: option population = 1: must be in 2..100000", "ga: option crossover_rate = 1.5: must be in [0, 1]",
				"ga: option mutation_rate = 0: must be in (0, 1]", `ga: option dedupe = "yes": must be true or false`, `unknown option "x"`}},
		{NameGA, map[string]any{"population": int64(5), "tournament": int64(6), "elite": int64(5)},
			[]string{"ga: option tournament = 6: must be ≤ population (5)", "ga: option elite = 5: must be < population (5)"}},
		{NameGA, map[string]any{"steady_state": true, "elite": int64(1)}, []string{"ga: option elite: not used with steady_state = true"}},
		{NameGA, map[string]any{"population": 2.5, "tournament": "3"},
			[]string{"ga: option population = 2.5: must be an integer", `ga: option tournament = "3": must be an integer`}},
		{NameGA, map[string]any{"max_params": int64(-1), "max_flops": int64(-5), "failure_reward": "low"},
			[]string{"ga: option max_params = -1: must be ≥ 0", "ga: option max_flops = -5: must be ≥ 0", `ga: option failure_reward = "low": must be a number`}},
		{NameAging, map[string]any{"population": int64(10), "sample": int64(11), "dedupe_window": int64(0)},
			[]string{"aging-evolution: option sample = 11: must be ≤ population (10)", "aging-evolution: option dedupe_window = 0: must be in 1..1000000"}},
		{NameAging, map[string]any{"sample": int64(0), "population": int64(200000)},
			[]string{"aging-evolution: option sample = 0: must be in 1..100000", "option population = 200000: must be in 2..100000"}},
	} {
		_, err := controller.New(c.name, controller.Env{Space: space, Seed: 1, Options: c.opts})
		if err == nil {
			t.Errorf("%s %v: no error", c.name, c.opts)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s %v:\n%v\nwant it to contain\n%s", c.name, c.opts, err, w)
			}
		}
	}
	if _, err := NewGA(controller.Env{}); err == nil || !strings.Contains(err.Error(), "no search space") {
		t.Errorf("no space: %v", err)
	}
	if _, err := NewAging(controller.Env{}); err == nil || !strings.Contains(err.Error(), "no search space") {
		t.Errorf("no space: %v", err)
	}
}

// TestOptionErrorsNameTheirFields: each problem is an *arch.FieldError whose
// Path is the option (the first unknown one for the list of unknown ones).
func TestOptionErrorsNameTheirFields(t *testing.T) {
	_, err := controller.New(NameGA, controller.Env{Space: nasSpace(t, 2), Seed: 1,
		Options: map[string]any{"population": int64(5), "tournament": int64(6), "mutation_rate": 0.0, "zeta": 1, "beta": 2}})
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		got = append(got, strings.Join(arch.FieldPath(e), "."))
	}
	if want := []string{"mutation_rate", "tournament", "beta"}; !slices.Equal(got, want) {
		t.Errorf("paths %q, want %q; error:\n%v", got, want, err)
	}
}
