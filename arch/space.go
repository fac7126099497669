package arch

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Decision is one choice a controller makes, e.g. Name "layer 3 filter
// height" with Choices {"1","3","5","7"}; skip decisions are {"no","yes"}.
type Decision struct {
	Name    string   `json:"name" toml:"name"`
	Choices []string `json:"choices" toml:"choices"`
}

// Options configures a space. One struct serves all spaces; a field a space
// does not use must stay zero (it is omitted from JSON). A zero field takes the
// space's default; for slices only nil is zero, so an explicit empty list
// (JSON []) is kept: enas-macro's "reduce_after": [] means no reductions.
type Options struct {
	Layers  int   `json:"layers,omitzero" toml:"layers"`
	Input   Shape `json:"input,omitzero" toml:"input"`
	Classes int   `json:"classes,omitzero" toml:"classes"`

	// nas
	FilterSizes  []int `json:"filter_sizes,omitzero" toml:"filter_sizes"`
	FilterCounts []int `json:"filter_counts,omitzero" toml:"filter_counts"`
	Strides      []int `json:"strides,omitzero" toml:"strides"`

	// enas-macro
	Channels    int      `json:"channels,omitzero" toml:"channels"`
	Ops         []string `json:"ops,omitzero" toml:"ops"`
	ReduceAfter []int    `json:"reduce_after,omitzero" toml:"reduce_after"`

	// enas-micro (also Channels and Ops)
	Nodes  int `json:"nodes,omitzero" toml:"nodes"`   // searched nodes per cell
	Cells  int `json:"cells,omitzero" toml:"cells"`   // normal cells per stage (N)
	Stages int `json:"stages,omitzero" toml:"stages"` // stages; a reduction cell separates two

	// enas-macro: the network ENAS trains from scratch after a search, in
	// place of the sampled child's shape (skips joined by concatenation and a
	// 1×1 conv instead of a sum; channels doubled after each reduction).
	FinalNetwork bool `json:"final_network,omitzero" toml:"final_network"`

	// nas-rnn and enas-rnn (enas-rnn also uses Nodes). These spaces search a
	// recurrent cell; Input and Classes stay zero (the vocabulary is the
	// language model's, not the cell's).
	Hidden int    `json:"hidden,omitzero" toml:"hidden"` // units of h_t (and c_t)
	Embed  int    `json:"embed,omitzero" toml:"embed"`   // units of x_t; default: Hidden
	Base   int    `json:"base,omitzero" toml:"base"`     // nas-rnn: leaves of the tree, a power of 2
	Output string `json:"output,omitzero" toml:"output"` // enas-rnn: h_t is the mean of "loose_ends" or of "all" nodes
}

// clone copies the slices so a caller cannot mutate a space through them.
// withDefaults returns o with each unset option (zero or nil) taken from def;
// not ReduceAfter, whose default depends on the number of layers, nor Embed,
// whose default is Hidden.
func (o Options) withDefaults(def Options) Options {
	if o.Layers == 0 {
		o.Layers = def.Layers
	}
	if o.Input == (Shape{}) {
		o.Input = def.Input
	}
	if o.Classes == 0 {
		o.Classes = def.Classes
	}
	if o.FilterSizes == nil {
		o.FilterSizes = def.FilterSizes
	}
	if o.FilterCounts == nil {
		o.FilterCounts = def.FilterCounts
	}
	if o.Strides == nil {
		o.Strides = def.Strides
	}
	if o.Channels == 0 {
		o.Channels = def.Channels
	}
	if o.Ops == nil {
		o.Ops = def.Ops
	}
	if o.Nodes == 0 {
		o.Nodes = def.Nodes
	}
	if o.Cells == 0 {
		o.Cells = def.Cells
	}
	if o.Stages == 0 {
		o.Stages = def.Stages
	}
	if o.Hidden == 0 {
		o.Hidden = def.Hidden
	}
	if o.Base == 0 {
		o.Base = def.Base
	}
	if o.Output == "" {
		o.Output = def.Output
	}
	return o
}

func (o Options) clone() Options {
	o.FilterSizes = slices.Clone(o.FilterSizes)
	o.FilterCounts = slices.Clone(o.FilterCounts)
	o.Strides = slices.Clone(o.Strides)
	o.Ops = slices.Clone(o.Ops)
	o.ReduceAfter = slices.Clone(o.ReduceAfter)
	return o
}

// Space is a search space: a fixed sequence of decisions and the rules that
// turn a choice for each into a network. Implementations are immutable and
// safe for concurrent use.
type Space interface {
	Name() string
	// Options returns the space's options with every default filled in.
	Options() Options
	// Decisions returns a fresh copy of the decisions in the fixed order a
	// controller emits them.
	Decisions() []Decision
	// Arch checks the count and every choice index, naming the decision.
	Arch(decisions []int) (Arch, error)
	// Lower turns an architecture of this space into primitives.
	Lower(a Arch) (*Graph, error)
	// Log10Size is log10 of the number of architectures.
	Log10Size() float64
	// Sample draws each decision uniformly.
	Sample(r *rand.Rand) Arch
	// Neighbours returns every architecture that differs from a in exactly one
	// decision, by decision then choice index; nil if a is not of this space.
	Neighbours(a Arch) []Arch
}

// Arch is one architecture: the space it belongs to, that space's options
// (defaults filled in when made by a Space) and one choice index per decision.
// Its JSON form is described at MarshalJSON.
type Arch struct {
	Space     string
	Options   Options
	Decisions []int
}

// maxLayers bounds Options.Layers: the skip decisions grow quadratically, and a
// stray "layers": 1e6 in a file must not allocate gigabytes. The NAS paper's
// largest network has 39 layers.
const maxLayers = 128

// maxDim bounds sizes, channels and filters. Costs can still pass int64 (a
// 65536×65536 image through 65536 filters of 99×99): Graph.Infer checks its
// arithmetic and reports such a network as an error.
const maxDim = 1 << 16

type spaceDef struct {
	defaults func() Options
	// build fills defaults into opt, checks it and returns the space, or nil
	// after adding every problem to p.
	build func(opt Options, p *problems) builtin
}

// buildSpace is def.build through a cache of the spaces built without a
// problem, by name and options. A search checks and encodes every trial's
// architecture, each time from its space, and building the space was most of
// that cost on rank 0; spaces are immutable, so one serves every caller.
func buildSpace(name string, def spaceDef, opt Options, p *problems) builtin {
	key := name + "\x00" + optionsKey(opt)
	builtSpaces.Lock()
	s, ok := builtSpaces.m[key]
	builtSpaces.Unlock()
	if ok {
		return s
	}
	had := len(p.errs)
	s = def.build(opt, p)
	if s != nil && len(p.errs) == had {
		builtSpaces.Lock()
		if len(builtSpaces.m) >= maxBuiltSpaces {
			clear(builtSpaces.m) // a process uses a handful; this only bounds a pathological caller
		}
		builtSpaces.m[key] = s
		builtSpaces.Unlock()
	}
	return s
}

const maxBuiltSpaces = 64

var builtSpaces = struct {
	sync.Mutex
	m map[string]builtin
}{m: map[string]builtin{}}

var registry = map[string]spaceDef{
	"nas":        {defaults: nasDefaults, build: newNAS},
	"enas-macro": {defaults: enasDefaults, build: newENAS},
	"enas-micro": {defaults: microDefaults, build: newMicro},
	"enas-rnn":   {defaults: enasRNNDefaults, build: newENASRNN},
	"nas-rnn":    {defaults: nasRNNDefaults, build: newNASRNN},
}

// Names lists the registered spaces, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func unknownSpace(name string) string {
	return fmt.Sprintf("space %q: unknown (known: %s)", name, strings.Join(Names(), ", "))
}

// New returns the named space. Zero fields of opt take the space's defaults;
// every bad option is reported at once, each naming its field and value.
func New(name string, opt Options) (Space, error) {
	def, ok := registry[name]
	if !ok {
		return nil, &FieldError{Path: []string{"name"}, Msg: "arch: " + unknownSpace(name)}
	}
	p := &problems{prefix: "arch: " + name + ": "}
	s := buildSpace(name, def, opt, p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// DefaultOptions returns the named space's defaults.
func DefaultOptions(name string) (Options, error) {
	def, ok := registry[name]
	if !ok {
		return Options{}, errors.New("arch: " + unknownSpace(name))
	}
	return def.defaults(), nil
}

// problems collects errors that all share a prefix naming the package and the
// object ("arch: nas: ", "arch: run/best.json: "), so each line of the joined
// error stands on its own.
type problems struct {
	prefix string
	errs   []error
}

func (p *problems) add(format string, args ...any) {
	p.errs = append(p.errs, errors.New(p.prefix+fmt.Sprintf(format, args...)))
}

// option adds a problem with the option at path (keys of Options, as in
// its JSON and TOML), as a *FieldError.
func (p *problems) option(path []string, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Path: path, Msg: p.prefix + fmt.Sprintf(format, args...)})
}

func (p *problems) err() error { return errors.Join(p.errs...) }

func (p *problems) ok() bool { return len(p.errs) == 0 }

// builtin is what this package's spaces share beyond Space: JSON decoding and
// analysis need the decision table with custom error prefixes and the
// layer-level description that goes with a lowering.
type builtin interface {
	Space
	core() *base
	// build lowers checked decisions and describes every layer group.
	build(d []int) (*Graph, []layerDesc)
	// opHint says why op is not an op this space can describe, or "" if it is
	// one (it may still disagree with the decisions).
	opHint(op string) string
}

// layerDesc describes one group of graph nodes (one Node.Layer value).
type layerDesc struct {
	name   string
	index  int // searchable layer number, -1 for image, stem, pools and head
	op     string
	inputs []string
	skips  []string // enas-macro: layers summed into the branch output
	cell   string   // enas-micro: "normal" or "reduce" for a searched node
}

// base holds what every built-in space shares: name, options and the
// decision table.
type base struct {
	name      string
	opt       Options
	decisions []Decision
}

func (b *base) core() *base        { return b }
func (b *base) Name() string       { return b.name }
func (b *base) Options() Options   { return b.opt.clone() }
func (b *base) Log10Size() float64 { return log10Size(b.decisions) }

func (b *base) Decisions() []Decision {
	out := make([]Decision, len(b.decisions))
	for i, d := range b.decisions {
		out[i] = Decision{Name: d.Name, Choices: slices.Clone(d.Choices)}
	}
	return out
}

func log10Size(ds []Decision) float64 {
	sum := 0.0
	for _, d := range ds {
		sum += math.Log10(float64(len(d.Choices)))
	}
	return sum
}

func (b *base) arch(d []int) Arch {
	return Arch{Space: b.name, Options: b.opt.clone(), Decisions: slices.Clone(d)}
}

func (b *base) Arch(d []int) (Arch, error) {
	p := &problems{prefix: "arch: " + b.name + ": "}
	b.checkDecisions(p, d)
	if err := p.err(); err != nil {
		return Arch{}, err
	}
	return b.arch(d), nil
}

// checkDecisions reports a wrong count and every out-of-range choice.
func (b *base) checkDecisions(p *problems, d []int) {
	if len(d) != len(b.decisions) {
		p.add("decisions: got %d, want %d", len(d), len(b.decisions))
	}
	for i, c := range d[:min(len(d), len(b.decisions))] {
		dec := b.decisions[i]
		if c < 0 || c >= len(dec.Choices) {
			p.add("decisions[%d] (%s) = %d: want 0..%d (%s)", i, dec.Name, c, len(dec.Choices)-1, strings.Join(dec.Choices, ", "))
		}
	}
}

// checkArch checks that a belongs to this space: same name, same options once
// defaults are filled, valid decisions.
func (b *base) checkArch(p *problems, a Arch) {
	if a.Space != b.name {
		p.add("architecture is from space %q", a.Space)
		return
	}
	want := optionsKey(b.opt)
	if got := optionsKey(a.Options); got != want && optionsKey(fillOptions(a)) != want {
		p.add("architecture's options %s differ from the space's %s", got, want)
		return
	}
	b.checkDecisions(p, a.Decisions)
}

// fillOptions returns a's options with the defaults of its space filled in,
// or unchanged if the space or the options are invalid.
func fillOptions(a Arch) Options {
	if def, ok := registry[a.Space]; ok {
		if s := buildSpace(a.Space, def, a.Options, &problems{}); s != nil {
			return s.core().opt
		}
	}
	return a.Options
}

func (b *base) Sample(r *rand.Rand) Arch {
	d := make([]int, len(b.decisions))
	for i, dec := range b.decisions {
		d[i] = r.IntN(len(dec.Choices))
	}
	return b.arch(d)
}

func (b *base) Neighbours(a Arch) []Arch {
	p := &problems{}
	b.checkArch(p, a)
	if !p.ok() {
		return nil
	}
	var out []Arch
	for i, dec := range b.decisions {
		for c := range dec.Choices {
			if c == a.Decisions[i] {
				continue
			}
			n := b.arch(a.Decisions)
			n.Decisions[i] = c
			out = append(out, n)
		}
	}
	return out
}

// lower is Lower for every built-in space: it checks that a belongs to s and
// builds its full graph, every primitive of which train builds.
func lower(s builtin, a Arch) (*Graph, error) {
	b := s.core()
	p := &problems{prefix: "arch: " + b.name + ": "}
	b.checkArch(p, a)
	if err := p.err(); err != nil {
		return nil, err
	}
	g, _ := s.build(a.Decisions)
	return g, nil
}

// Option checks shared by the spaces. Each adds one problem per bad value.

func checkLayers(p *problems, n int) {
	if n < 1 || n > maxLayers {
		p.option([]string{"layers"}, "options.layers = %d: must be in 1..%d", n, maxLayers)
	}
}

func checkInput(p *problems, s Shape) {
	for _, f := range []struct {
		name string
		v    int
	}{{"c", s.C}, {"h", s.H}, {"w", s.W}} {
		if f.v < 1 || f.v > maxDim {
			p.option([]string{"input", f.name}, "options.input.%s = %d: must be in 1..%d", f.name, f.v, maxDim)
		}
	}
}

func checkPositive(p *problems, field string, v int) {
	if v < 1 || v > maxDim {
		p.option([]string{field}, "options.%s = %d: must be in 1..%d", field, v, maxDim)
	}
}

// checkList checks a list of choices: non-empty, no duplicates (they would
// make two decisions mean the same network and inflate Log10Size), each value
// passing ok, which returns "" or what is wrong.
func checkList(p *problems, field string, vs []int, ok func(int) string) {
	if len(vs) == 0 {
		p.option([]string{field}, "options.%s = []: must list at least one value", field)
	}
	seen := map[int]bool{}
	for i, v := range vs {
		if msg := ok(v); msg != "" {
			p.option([]string{field}, "options.%s[%d] = %d: %s", field, i, v, msg)
		} else if seen[v] {
			p.option([]string{field}, "options.%s[%d] = %d: duplicate", field, i, v)
		}
		seen[v] = true
	}
}

func oddKernel(v int) string {
	if v < 1 || v > 99 || v%2 == 0 {
		return "kernel sizes must be odd and in 1..99"
	}
	return ""
}

func inRange(lo, hi int) func(int) string {
	return func(v int) string {
		if v < lo || v > hi {
			return fmt.Sprintf("must be in %d..%d", lo, hi)
		}
		return ""
	}
}

// unused reports options a space does not read: accepting them silently would
// give two encodings, and two hashes, to one architecture.
func unused(p *problems, space string, o Options, fields ...string) {
	set := map[string]bool{
		"input":         o.Input != Shape{},
		"classes":       o.Classes != 0,
		"layers":        o.Layers != 0,
		"filter_sizes":  o.FilterSizes != nil,
		"filter_counts": o.FilterCounts != nil,
		"strides":       o.Strides != nil,
		"channels":      o.Channels != 0,
		"ops":           o.Ops != nil,
		"reduce_after":  o.ReduceAfter != nil,
		"nodes":         o.Nodes != 0,
		"cells":         o.Cells != 0,
		"stages":        o.Stages != 0,
		"final_network": o.FinalNetwork,
		"hidden":        o.Hidden != 0,
		"embed":         o.Embed != 0,
		"base":          o.Base != 0,
		"output":        o.Output != "",
	}
	for _, f := range fields {
		if set[f] {
			p.option([]string{f}, "options.%s: not used by space %s", f, space)
		}
	}
}

func itoas(vs []int) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strconv.Itoa(v)
	}
	return out
}

var noYes = []string{"no", "yes"}

func layerName(i int) string { return "layer " + strconv.Itoa(i) }
