package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"nasd/arch"
	"nasd/controller"
	"nasd/jobs"
	"nasd/surrogate"
	"nasd/train"
	"nasd/train/dataset"
)

// searchConfig is a search's configuration: search.toml, then flags. It is
// also what rank 0 sends every worker (as JSON), so all ranks train alike.
type searchConfig struct {
	RunDir   string         `toml:"run_dir" json:"run_dir"`
	Seed     uint64         `toml:"seed" json:"seed"`
	Mode     string         `toml:"mode" json:"mode"`       // sync | async
	Workers  int            `toml:"workers" json:"workers"` // in-process workers when not launched by MPI
	Budget   budgetConfig   `toml:"budget" json:"budget"`
	Data     dataset.Spec   `toml:"data" json:"data"`
	Space    spaceConfig    `toml:"space" json:"space"`
	Strategy strategyConfig `toml:"strategy" json:"strategy"`
	Stopping strategyConfig `toml:"early_stopping" json:"early_stopping"`
	Limits   limitsConfig   `toml:"constraints" json:"constraints"`
	Trainer  trainerConfig  `toml:"trainer" json:"trainer"`
	// Job is the batch job `nasd jobs` writes for this search; nasd search
	// ignores it.
	Job jobs.Spec `toml:"job" json:"job,omitzero"`
}

// limitsConfig bounds architectures statically and optionally trades reward
// for size (MnasNet's soft constraint).
type limitsConfig struct {
	MaxParams          int     `toml:"max_params" json:"max_params"`
	MaxFLOPs           int64   `toml:"max_flops" json:"max_flops"`
	MaxActivationBytes int64   `toml:"max_activation_bytes" json:"max_activation_bytes"`
	PenaltyTargetFLOPs int64   `toml:"penalty_target_flops" json:"penalty_target_flops"`
	PenaltyWeight      float64 `toml:"penalty_weight" json:"penalty_weight"`
}

func (l limitsConfig) budget() arch.Budget {
	return arch.Budget{MaxParams: l.MaxParams, MaxFLOPs: l.MaxFLOPs, MaxActivationBytes: l.MaxActivationBytes}
}

type budgetConfig struct {
	Trials          int      `toml:"trials" json:"trials"`                     // finished trials; 0 = no limit
	Time            duration `toml:"time" json:"time"`                         // wall time of the search; 0 = no limit
	StopAt          string   `toml:"stop_at" json:"stop_at,omitempty"`         // the job's end, RFC3339; SLURM_JOB_END_TIME when unset
	StopMargin      duration `toml:"stop_margin" json:"stop_margin"`           // no trial starts this long before stop_at; 0: default
	TrialTimeout    duration `toml:"trial_timeout" json:"trial_timeout"`       // per trial; 0 = none
	HangGrace       duration `toml:"hang_grace" json:"hang_grace"`             // a worker silent for trial_timeout + this hangs; 0 = 1m
	CheckpointEvery duration `toml:"checkpoint_every" json:"checkpoint_every"` // async mode
}

type spaceConfig struct {
	Name         string `toml:"name" json:"name"`
	arch.Options `toml:",inline"`
}

type strategyConfig struct {
	Name    string         `toml:"name" json:"name"`
	Options map[string]any `toml:"options" json:"options,omitempty"`
}

type trainerConfig struct {
	Kind         string `toml:"kind" json:"kind"` // real | surrogate
	train.Config `toml:",inline"`
	Surrogate    surrogateConfig `toml:"surrogate" json:"surrogate"`
	// LM trains recurrent cells (nas-rnn, enas-rnn) on [data] name = "ptb".
	LM train.LMConfig `toml:"lm" json:"lm"`
}

type surrogateConfig struct {
	Duration duration `toml:"duration" json:"duration"`         // simulated training time per trial
	Noise    float64  `toml:"noise" json:"noise"`               // std of the reward noise
	HangOn   string   `toml:"hang_on" json:"hang_on,omitempty"` // fault injection: this trial's training never returns
}

// duration is a time.Duration written as "90s" or "1h30m" in TOML and JSON.
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 90s or 1h30m", b)
	}
	d.Duration = v
	return nil
}

func (d duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Modes and trainer kinds a config accepts.
var (
	modes        = []string{"sync", "async"}
	trainerKinds = []string{"real", "surrogate"}
)

// defaultSearchConfig holds every default of a search in one place.
// Space options left zero take the space's own defaults (arch.New), so they
// follow the space a file names.
// textData is the [data] name of a PTB-layout text corpus: the searched
// networks are recurrent cells of a language model.
const textData = "ptb"

// isCellSpace says whether space's architectures are recurrent cells.
func isCellSpace(space arch.Space) bool {
	g, err := space.Lower(space.Sample(rand.New(rand.NewPCG(0, 0))))
	return err == nil && g.Hidden > 0
}

func defaultSearchConfig() searchConfig {
	return searchConfig{
		Seed:     1,
		Mode:     "async",
		Workers:  1,
		Budget:   budgetConfig{Trials: 10, CheckpointEvery: duration{30 * time.Second}},
		Data:     dataset.Spec{Name: "fashion-mnist", ValSize: dataset.DefaultValSize},
		Space:    spaceConfig{Name: "enas-macro"},
		Strategy: strategyConfig{Name: "random"},
		Stopping: strategyConfig{Name: "none"},
		Trainer: trainerConfig{Kind: "real", Config: train.DefaultConfig(),
			Surrogate: surrogateConfig{Duration: duration{10 * time.Millisecond}, Noise: 0.01}, LM: train.DefaultLMConfig()},
	}
}

// configError is one problem, located in the file when its key is there.
type configError struct {
	file, section string
	line          int
	msg           string
}

func (e configError) Error() string {
	where := e.file
	if e.line > 0 {
		where = fmt.Sprintf("%s:%d", e.file, e.line)
	}
	if e.section != "" {
		return fmt.Sprintf("%s: [%s] %s", where, e.section, e.msg)
	}
	return fmt.Sprintf("%s: %s", where, e.msg)
}

// loadSearchConfig reads a TOML file strictly (unknown keys are errors) over the
// defaults, and reports every problem at once with file:line.
func loadSearchConfig(path string) (searchConfig, []byte, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return defaultSearchConfig(), nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := parseSearchConfig(path, src)
	return cfg, src, err
}

// parseSearchConfig decodes src, the content of the file path (named in
// errors only), as loadSearchConfig does.
func parseSearchConfig(path string, src []byte) (searchConfig, error) {
	cfg := defaultSearchConfig()
	if err := decodeStrict(src, &cfg); err != nil {
		return cfg, decodeProblems(path, src, err)
	}
	return cfg, nil
}

func decodeStrict(src []byte, cfg *searchConfig) error {
	dec := toml.NewDecoder(bytes.NewReader(src))
	dec.DisallowUnknownFields()
	return dec.Decode(cfg)
}

// decodeProblems reports every problem of a file that did not decode, each at
// its line. go-toml stops at the first value of a wrong type, and reports
// unknown keys only when everything else decoded; so each key of the file is
// decoded on its own, into the defaults, and the problems of all are joined.
// A syntax error is reported alone, at its position.
func decodeProblems(path string, src []byte, err error) error {
	var doc map[string]any
	if perr := toml.Unmarshal(src, &doc); perr != nil {
		return tomlError(path, perr, nil)
	}
	lines := keyLines(src)
	seen := map[string]bool{}
	var found []configError
	for _, leaf := range leaves(doc, nil) {
		one, lerr := toml.Marshal(nest(leaf.path, leaf.value))
		if lerr == nil {
			cfg := defaultSearchConfig()
			lerr = decodeStrict(one, &cfg)
		}
		if lerr == nil {
			continue
		}
		for _, e := range splitJoined(tomlError(path, lerr, func(key []string) int {
			if len(key) == 0 {
				key = leaf.path // a wrong type: the leaf itself
			}
			return lines.line(key)
		})) {
			ce, ok := e.(configError)
			if k := ce.Error(); ok && !seen[k] {
				seen[k] = true
				found = append(found, ce)
			}
		}
	}
	if len(found) == 0 { // no key fails alone: report what the whole file gave
		return tomlError(path, err, lines.line)
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].line < found[j].line })
	errs := make([]error, len(found))
	for i, e := range found {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// leaf is one value of a decoded TOML document that is not a table (or an
// empty table), with its key path.
type leaf struct {
	path  []string
	value any
}

// leaves lists the leaves of m under path, sorted by key.
func leaves(m map[string]any, path []string) []leaf {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []leaf
	for _, k := range keys {
		p := append(slices.Clone(path), k)
		if sub, ok := m[k].(map[string]any); ok && len(sub) > 0 {
			out = append(out, leaves(sub, p)...)
			continue
		}
		out = append(out, leaf{p, m[k]})
	}
	return out
}

// nest returns the document that holds only v at path.
func nest(path []string, v any) map[string]any {
	for i := len(path) - 1; i > 0; i-- {
		v = map[string]any{path[i]: v}
	}
	return map[string]any{path[0]: v}
}

// tomlError turns one of go-toml's errors into file:line messages (every
// unknown key of a strict decode), as configErrors joined. line (nil: the
// error's own position) gives the line of a key path; a type error passes
// the key go-toml names, which may be empty.
func tomlError(path string, err error, line func(key []string) int) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var errs []error
		for _, e := range strict.Errors {
			row, _ := e.Position()
			if line != nil {
				row = line(e.Key())
			}
			errs = append(errs, configError{file: path, line: row, msg: "unknown key " + strings.Join(e.Key(), ".")})
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		if line != nil {
			row = line(de.Key())
		}
		return configError{file: path, line: row, msg: de.Error()}
	}
	return configError{file: path, msg: err.Error()}
}

// keyPositions maps the key paths of a TOML source to the line where each is
// first written.
type keyPositions map[string]int

// pathKey joins a key path unambiguously (a quoted key may hold dots).
func pathKey(path []string) string { return strings.Join(path, "\x00") }

// line returns the line of path, or of its longest prefix written in the
// file (the table a default value belongs to), or 0.
func (kp keyPositions) line(path []string) int {
	for n := len(path); n > 0; n-- {
		if l, ok := kp[pathKey(path[:n])]; ok {
			return l
		}
	}
	return 0
}

// keyLines returns the line of every key path of a TOML source, from the
// parser's own positions: table headers ([a.b], and [[a.b]] at its first
// occurrence), plain and dotted keys (a.b.c = 1 defines a, a.b and a.b.c on
// its line), and the keys of inline tables, also inside arrays (without
// indices). A syntax error ends the walk; the decoder reports it.
func keyLines(src []byte) keyPositions {
	kp := keyPositions{}
	var p unstable.Parser
	p.Reset(src)
	record := func(path []string, n *unstable.Node) {
		k := pathKey(path)
		if _, ok := kp[k]; !ok {
			kp[k] = p.Shape(n.Raw).Start.Line
		}
	}
	// keyval records a key-value under table, its dotted prefixes and, for
	// an inline table or an array, the keys inside.
	var keyval func(table []string, kv *unstable.Node)
	var value func(path []string, v *unstable.Node)
	keyval = func(table []string, kv *unstable.Node) {
		path := slices.Clone(table)
		it := kv.Key()
		for it.Next() {
			path = append(path, string(it.Node().Data))
			record(path, it.Node())
		}
		value(path, kv.Value())
	}
	value = func(path []string, v *unstable.Node) {
		switch v.Kind {
		case unstable.InlineTable:
			it := v.Children()
			for it.Next() {
				if it.Node().Kind == unstable.KeyValue {
					keyval(path, it.Node())
				}
			}
		case unstable.Array:
			it := v.Children()
			for it.Next() {
				value(path, it.Node())
			}
		}
	}
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = table[:0:0]
			it := e.Key()
			for it.Next() {
				table = append(table, string(it.Node().Data))
				record(table, it.Node())
			}
		case unstable.KeyValue:
			keyval(table, e)
		}
	}
	return kp
}

// finish fills the defaults that depend on other keys, then checks everything
// that can be checked before any rank trains, reporting every problem at
// once; src (may be nil) locates keys in the file. Afterwards the space
// options are explicit, so the resolved config (config.json of a run) means
// the same thing whatever later versions choose as defaults.
func (c *searchConfig) finish(file string, src []byte) error {
	if c.RunDir == "" {
		c.RunDir = filepath.Join("runs", fmt.Sprintf("%s-seed%d", c.Strategy.Name, c.Seed))
	}
	err := c.validate(file, src)
	if err == nil {
		space, _ := arch.New(c.Space.Name, c.Space.Options)
		c.Space.Options = space.Options()
	}
	return err
}

// validate reports every problem of c at once, each at the line of its key
// in src (may be nil).
func (c *searchConfig) validate(file string, src []byte) error {
	lines := keyLines(src)
	var errs []error
	add := func(section string, err error) {
		if err == nil {
			return
		}
		var table []string
		if section != "" {
			table = strings.Split(section, ".")
		}
		for _, e := range splitJoined(err) {
			// Every package's option errors are arch.FieldErrors; any
			// other error is placed at its table.
			key := slices.Clone(table)
			if path := arch.FieldPath(e); path != nil {
				key = append(key, path...)
			}
			errs = append(errs, configError{file: file, section: section, line: lines.line(key), msg: e.Error()})
		}
	}
	bad := func(section, key string, v any, why string) {
		add(section, &arch.FieldError{Path: []string{key}, Msg: fmt.Sprintf("%s = %v: %s", key, v, why)})
	}
	if !contains(modes, c.Mode) {
		bad("", "mode", fmt.Sprintf("%q", c.Mode), "must be one of "+strings.Join(modes, ", "))
	}
	if c.Workers < 1 {
		bad("", "workers", c.Workers, "must be ≥ 1")
	}
	if c.RunDir == "" {
		bad("", "run_dir", `""`, "must name the run's directory")
	}
	b := c.Budget
	if b.Trials < 0 {
		bad("budget", "trials", b.Trials, "must be ≥ 0 (0 = no limit)")
	}
	if b.Time.Duration < 0 {
		bad("budget", "time", b.Time, "must be ≥ 0 (0 = no limit)")
	}
	if b.TrialTimeout.Duration < 0 {
		bad("budget", "trial_timeout", b.TrialTimeout, "must be ≥ 0 (0 = none)")
	}
	if b.HangGrace.Duration < 0 {
		bad("budget", "hang_grace", b.HangGrace, "must be ≥ 0 (0 = 1m)")
	}
	if b.StopMargin.Duration < 0 {
		bad("budget", "stop_margin", b.StopMargin, "must be ≥ 0 (0 = trial_timeout + 30s, else 5m)")
	}
	if b.CheckpointEvery.Duration <= 0 {
		bad("budget", "checkpoint_every", b.CheckpointEvery, "must be > 0")
	}
	if b.StopAt != "" {
		if _, err := time.Parse(time.RFC3339, b.StopAt); err != nil {
			bad("budget", "stop_at", fmt.Sprintf("%q", b.StopAt), "must be an RFC3339 time such as 2026-12-01T08:00:00Z")
		}
	}
	if b.Trials == 0 && b.Time.Duration == 0 && c.Strategy.Name != enasName { // ENAS's budget is its epochs
		add("budget", errors.New("trials and time are both unset: set at least one (stop_at is the job's end, not the search's: a chain of jobs would never finish)"))
	}
	text := c.Data.Name == textData
	if !text && !contains(dataset.Names(), c.Data.Name) {
		bad("data", "name", fmt.Sprintf("%q", c.Data.Name), "must be one of "+strings.Join(append(dataset.Names(), textData), ", "))
	}
	if text && c.Data.Dir == "" {
		bad("data", "name", `"ptb"`, "needs dir: a directory of ptb.train.txt, ptb.valid.txt and ptb.test.txt (make corpus builds one)")
	}
	space, err := arch.New(c.Space.Name, c.Space.Options)
	if err != nil {
		add("space", err)
	}
	if space != nil && c.Trainer.Kind == "real" {
		cell := isCellSpace(space)
		switch {
		case text && !cell:
			bad("space", "name", fmt.Sprintf("%q", c.Space.Name), `with [data] name = "ptb" the space must be a recurrent cell space (nas-rnn, enas-rnn)`)
		case !text && cell:
			bad("data", "name", fmt.Sprintf("%q", c.Data.Name), fmt.Sprintf(`space %s searches recurrent cells: set name = "ptb" and dir`, c.Space.Name))
		}
		if text {
			add("trainer.lm", c.Trainer.LM.Validate())
		}
	}
	if c.Strategy.Name == enasName {
		c.validateENAS(space, add)
	} else if !contains(controller.Names(), c.Strategy.Name) {
		bad("strategy", "name", fmt.Sprintf("%q", c.Strategy.Name), "must be one of "+strings.Join(append(controller.Names(), enasName), ", "))
	} else if space != nil {
		// The strategy checks its own options; its errors name the keys.
		if _, err := controller.New(c.Strategy.Name, controller.Env{Space: space, Seed: c.Seed, Options: c.Strategy.Options}); err != nil {
			add("strategy.options", err)
		}
	}
	if c.Stopping.Name != "" && c.Stopping.Name != "none" && c.Strategy.Name != enasName {
		if _, err := controller.NewStopper(c.Stopping.Name, controller.StopperEnv{Epochs: c.epochs(), Options: c.Stopping.Options}); err != nil {
			add("early_stopping.options", err)
		}
		if c.Mode == "sync" {
			add("early_stopping", &arch.FieldError{Path: []string{"name"},
				Msg: fmt.Sprintf("name = %q: early stopping needs mode = \"async\" (a sync round waits for all its trials anyway)", c.Stopping.Name)})
		}
	}
	l := c.Limits
	for key, v := range map[string]int64{"max_params": int64(l.MaxParams), "max_flops": l.MaxFLOPs,
		"max_activation_bytes": l.MaxActivationBytes, "penalty_target_flops": l.PenaltyTargetFLOPs} {
		if v < 0 {
			bad("constraints", key, v, "must be ≥ 0 (0 = none)")
		}
	}
	if l.PenaltyWeight != 0 && l.PenaltyTargetFLOPs == 0 {
		bad("constraints", "penalty_weight", l.PenaltyWeight, "needs penalty_target_flops")
	}
	if !contains(trainerKinds, c.Trainer.Kind) {
		bad("trainer", "kind", fmt.Sprintf("%q", c.Trainer.Kind), "must be one of "+strings.Join(trainerKinds, ", "))
	}
	add("trainer", c.Trainer.Config.Validate())
	if c.Trainer.Surrogate.Duration.Duration < 0 {
		bad("trainer.surrogate", "duration", c.Trainer.Surrogate.Duration, "must be ≥ 0")
	}
	if c.Trainer.Surrogate.Noise < 0 {
		bad("trainer.surrogate", "noise", c.Trainer.Surrogate.Noise, "must be ≥ 0")
	}
	return errors.Join(errs...)
}

// epochs is what each trial trains: the trainer's epochs (the surrogate's
// default when unset).
func (c *searchConfig) epochs() int {
	if c.Data.Name == textData && c.Trainer.Kind == "real" {
		return c.Trainer.LM.Epochs
	}
	if c.Trainer.Kind == "surrogate" && c.Trainer.Epochs == 0 {
		return surrogate.DefaultEpochs
	}
	return c.Trainer.Epochs
}

// stopAt is the configured deadline, or Slurm's job end time, or zero.
func (c *searchConfig) stopAt() time.Time {
	if c.Budget.StopAt != "" {
		t, _ := time.Parse(time.RFC3339, c.Budget.StopAt)
		return t
	}
	return slurmJobEnd()
}

// slurmJobEnd is the end of the Slurm job this process runs in, or zero:
// SLURM_JOB_END_TIME where Slurm sets it (23.02 and later), else squeue's
// answer for SLURM_JOB_ID (Debian 12 ships Slurm 22.05, which has no such
// variable). Asked once.
var slurmJobEnd = sync.OnceValue(querySlurmJobEnd)

func querySlurmJobEnd() time.Time {
	parse := func(v string) time.Time {
		var sec int64
		if _, err := fmt.Sscan(strings.TrimSpace(v), &sec); err == nil && sec > 0 {
			return time.Unix(sec, 0)
		}
		return time.Time{}
	}
	if v := os.Getenv("SLURM_JOB_END_TIME"); v != "" {
		return parse(v)
	}
	id := os.Getenv("SLURM_JOB_ID")
	if id == "" {
		return time.Time{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "squeue", "-h", "-j", id, "-o", "%e")
	cmd.Env = append(os.Environ(), "SLURM_TIME_FORMAT=%s")
	out, err := cmd.Output()
	if err != nil {
		return time.Time{}
	}
	return parse(string(out))
}

// DefaultStopMargin is the stop margin without a trial timeout.
const DefaultStopMargin = 5 * time.Minute

// stopMargin is how long before the job's end no trial starts: the
// configured margin, else a trial timeout and 30 s to spare (a trial started
// then can still finish), else DefaultStopMargin.
func (c *searchConfig) stopMargin() time.Duration {
	switch {
	case c.Budget.StopMargin.Duration > 0:
		return c.Budget.StopMargin.Duration
	case c.Budget.TrialTimeout.Duration > 0:
		return c.Budget.TrialTimeout.Duration + 30*time.Second
	}
	return DefaultStopMargin
}

// withoutJobEnd is c as config.json keeps it: stop_at is the job's, and
// a resumed job has its own.
func (c searchConfig) withoutJobEnd() searchConfig {
	c.Budget.StopAt = ""
	return c
}

func (c *searchConfig) marshal() ([]byte, error) { return json.Marshal(c) }

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// splitJoined undoes errors.Join so each problem gets its own location.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitJoined(e)...)
		}
		return out
	}
	return []error{err}
}
