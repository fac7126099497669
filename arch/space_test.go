package arch_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"nasd/arch"
)

// wantLines checks that err has exactly one line per want, each starting with
// prefix and containing its want, in order.
func wantLines(t *testing.T, err error, prefix string, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", wants)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(wants) {
		t.Errorf("got %d error lines, want %d:\n%v", len(lines), len(wants), err)
	}
	for i, w := range wants {
		if i < len(lines) && (!strings.HasPrefix(lines[i], prefix) || !strings.Contains(lines[i], w)) {
			t.Errorf("line %d = %q\nwant prefix %q and %q", i, lines[i], prefix, w)
		}
	}
}

func mustNew(t testing.TB, name string, opt arch.Options) arch.Space {
	t.Helper()
	s, err := arch.New(name, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// spaces are the configurations most tests run on: each space's defaults and
// a non-default one.
func spaces(t testing.TB) []arch.Space {
	return []arch.Space{
		mustNew(t, "nas", arch.Options{}),
		mustNew(t, "nas", arch.Options{Layers: 9, Input: arch.Shape{C: 3, H: 32, W: 32}, FilterSizes: []int{3, 5}, Strides: []int{1}}),
		mustNew(t, "enas-macro", arch.Options{}),
		mustNew(t, "enas-macro", arch.Options{Layers: 6, Channels: 16, Ops: []string{"conv3x3", "sepconv7x7", "avgpool5x5"}, ReduceAfter: []int{}}),
		mustNew(t, "enas-micro", arch.Options{}),
		mustNew(t, "enas-micro", arch.Options{Nodes: 3, Cells: 1, Stages: 1, Channels: 8, Ops: []string{"sep5x5", "max3x3", "identity"}}),
	}
}

func TestRegistry(t *testing.T) {
	if got := arch.Names(); !slices.Equal(got, []string{"enas-macro", "enas-micro", "enas-rnn", "nas", "nas-rnn"}) {
		t.Errorf("Names() = %q", got)
	}
	for _, name := range arch.Names() {
		def, err := arch.DefaultOptions(name)
		if err != nil {
			t.Fatal(err)
		}
		s := mustNew(t, name, arch.Options{})
		if !reflect.DeepEqual(s.Options(), def) {
			t.Errorf("%s: New with zero options = %+v, want the defaults %+v", name, s.Options(), def)
		}
		if s.Name() != name {
			t.Errorf("Name() = %q, want %q", s.Name(), name)
		}
	}
	nas, _ := arch.DefaultOptions("nas")
	want := arch.Options{Layers: 6, Input: arch.Shape{C: 1, H: 28, W: 28}, Classes: 10,
		FilterSizes: []int{1, 3, 5, 7}, FilterCounts: []int{24, 36, 48, 64}, Strides: []int{1, 2}}
	if !reflect.DeepEqual(nas, want) {
		t.Errorf("nas defaults = %+v, want %+v", nas, want)
	}
	enas, _ := arch.DefaultOptions("enas-macro")
	want = arch.Options{Layers: 12, Input: arch.Shape{C: 1, H: 28, W: 28}, Classes: 10, Channels: 36,
		Ops:         []string{"conv3x3", "conv5x5", "sepconv3x3", "sepconv5x5", "maxpool3x3", "avgpool3x3"},
		ReduceAfter: []int{3, 7}}
	if !reflect.DeepEqual(enas, want) {
		t.Errorf("enas-macro defaults = %+v, want %+v", enas, want)
	}
	// ENAS's pool_distance = layers/3 follows the layer count when reduce_after is left out.
	for layers, want := range map[int][]int{24: {7, 15}, 6: {1, 3}, 3: {0, 1}, 2: {}} {
		if got := mustNew(t, "enas-macro", arch.Options{Layers: layers}).Options().ReduceAfter; !slices.Equal(got, want) || got == nil {
			t.Errorf("enas-macro with %d layers reduces after %v, want %v", layers, got, want)
		}
	}

	_, err := arch.New("darts", arch.Options{})
	wantLines(t, err, "arch: ", `space "darts": unknown (known: enas-macro, enas-micro, enas-rnn, nas, nas-rnn)`)
	_, err = arch.DefaultOptions("darts")
	wantLines(t, err, "arch: ", `space "darts": unknown (known: enas-macro, enas-micro, enas-rnn, nas, nas-rnn)`)
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		space string
		opt   arch.Options
		wants []string
	}{
		{"nas", arch.Options{Layers: -3}, []string{"options.layers = -3: must be in 1..128"}},
		{"nas", arch.Options{Layers: 1000}, []string{"options.layers = 1000"}},
		{"nas", arch.Options{Input: arch.Shape{C: 1, H: -28, W: 0}, Classes: -1}, []string{
			"options.input.h = -28", "options.input.w = 0", "options.classes = -1"}},
		{"nas", arch.Options{FilterSizes: []int{3, 4, 3, -1}, FilterCounts: []int{0}, Strides: []int{}}, []string{
			"options.filter_sizes[1] = 4: kernel sizes must be odd",
			"options.filter_sizes[2] = 3: duplicate",
			"options.filter_sizes[3] = -1: kernel sizes must be odd",
			"options.filter_counts[0] = 0: must be in 1..",
			"options.strides = []: must list at least one value"}},
		{"nas", arch.Options{Channels: 36, Ops: []string{"conv3x3"}}, []string{
			"options.channels: not used by space nas", "options.ops: not used by space nas"}},
		{"enas-macro", arch.Options{Channels: -36, Ops: []string{"conv3x3", "conv9x7", "dilconv3x3", "conv3x3", "maxpool4x4"}}, []string{
			"options.channels = -36",
			`options.ops[1] = "conv9x7": unknown op (want convKxK`,
			`options.ops[2] = "dilconv3x3": unknown op`,
			`options.ops[3] = "conv3x3": duplicate`,
			`options.ops[4] = "maxpool4x4": kernel size must be odd`}},
		{"enas-macro", arch.Options{Ops: []string{}}, []string{"options.ops = []: must list at least one op"}},
		{"enas-macro", arch.Options{Layers: 6, ReduceAfter: []int{3, 1, 5, -1}}, []string{
			"options.reduce_after[1] = 1: must be greater than 3",
			"options.reduce_after[2] = 5: must be in 0..4",
			"options.reduce_after[3] = -1: must be in 0..4"}},
		{"enas-macro", arch.Options{FilterSizes: []int{3}, Strides: []int{1}}, []string{
			"options.filter_sizes: not used by space enas-macro", "options.strides: not used by space enas-macro"}},
	} {
		_, err := arch.New(tc.space, tc.opt)
		wantLines(t, err, "arch: "+tc.space+": ", tc.wants...)
	}
}

func TestDecisions(t *testing.T) {
	nas := mustNew(t, "nas", arch.Options{}).Decisions()
	// 4 per layer plus one skip per earlier layer: 6·4 + 15.
	if len(nas) != 39 {
		t.Errorf("nas has %d decisions, want 39", len(nas))
	}
	wantNames := []string{"layer 0 filter height", "layer 0 filter width", "layer 0 filters", "layer 0 stride",
		"layer 1 filter height", "layer 1 filter width", "layer 1 filters", "layer 1 stride", "layer 1 skip from layer 0",
		"layer 2 filter height"}
	for i, w := range wantNames {
		if nas[i].Name != w {
			t.Errorf("nas decision %d = %q, want %q", i, nas[i].Name, w)
		}
	}
	if !slices.Equal(nas[0].Choices, []string{"1", "3", "5", "7"}) || !slices.Equal(nas[8].Choices, []string{"no", "yes"}) {
		t.Errorf("nas choices: %q, %q", nas[0].Choices, nas[8].Choices)
	}
	enas := mustNew(t, "enas-macro", arch.Options{}).Decisions()
	if len(enas) != 12+66 || enas[0].Name != "layer 0 op" || enas[2].Name != "layer 1 skip from layer 0" || enas[3].Name != "layer 2 op" {
		t.Errorf("enas-macro decisions: %d, %q %q %q", len(enas), enas[0].Name, enas[2].Name, enas[3].Name)
	}
	// Decisions returns a copy: changing it must not change the space.
	s := mustNew(t, "nas", arch.Options{})
	s.Decisions()[0].Choices[0] = "9"
	if s.Decisions()[0].Choices[0] != "1" {
		t.Error("Decisions() exposes the space's own slices")
	}
	s.Options().FilterSizes[0] = 9
	if s.Options().FilterSizes[0] != 1 {
		t.Error("Options() exposes the space's own slices")
	}
}

func TestArchChecksDecisions(t *testing.T) {
	s := mustNew(t, "nas", arch.Options{Layers: 2})
	_, err := s.Arch([]int{0, 1, 2})
	wantLines(t, err, "arch: nas: ", "decisions: got 3, want 9")
	_, err = s.Arch([]int{4, -1, 0, 0, 0, 0, 0, 2, 2, 7})
	wantLines(t, err, "arch: nas: ",
		"decisions: got 10, want 9",
		"decisions[0] (layer 0 filter height) = 4: want 0..3 (1, 3, 5, 7)",
		"decisions[1] (layer 0 filter width) = -1: want 0..3",
		"decisions[7] (layer 1 stride) = 2: want 0..1 (1, 2)",
		"decisions[8] (layer 1 skip from layer 0) = 2: want 0..1 (no, yes)")
	_, err = s.Arch(nil)
	wantLines(t, err, "arch: nas: ", "decisions: got 0, want 9")
}

func TestLowerRejectsForeignArch(t *testing.T) {
	nas := mustNew(t, "nas", arch.Options{})
	enas := mustNew(t, "enas-macro", arch.Options{})
	other := mustNew(t, "nas", arch.Options{Layers: 7})
	r := rand.New(rand.NewPCG(1, 1))
	_, err := nas.Lower(enas.Sample(r))
	wantLines(t, err, "arch: nas: ", `architecture is from space "enas-macro"`)
	_, err = nas.Lower(other.Sample(r))
	wantLines(t, err, "arch: nas: ", `architecture's options {"layers":7`)
	if n := nas.Neighbours(other.Sample(r)); n != nil {
		t.Errorf("Neighbours of a foreign arch = %d archs, want nil", len(n))
	}
	// An Arch literal whose options are left zero means the defaults.
	a := nas.Sample(r)
	if _, err := nas.Lower(arch.Arch{Space: "nas", Decisions: a.Decisions}); err != nil {
		t.Errorf("zero options should mean the defaults: %v", err)
	}
	_, err = nas.Lower(arch.Arch{Space: "nas", Decisions: a.Decisions[:38]})
	wantLines(t, err, "arch: nas: ", "decisions: got 38, want 39")
}

func TestNeighbours(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	for _, s := range spaces(t) {
		want := 0
		for _, d := range s.Decisions() {
			want += len(d.Choices) - 1
		}
		for range 20 {
			a := s.Sample(r)
			ns := s.Neighbours(a)
			if len(ns) != want {
				t.Fatalf("%s: %d neighbours, want Σ(choices-1) = %d", s.Name(), len(ns), want)
			}
			seen := map[string]bool{a.Hash(): true}
			for _, n := range ns {
				diff := 0
				for i := range n.Decisions {
					if n.Decisions[i] != a.Decisions[i] {
						diff++
					}
				}
				if diff != 1 {
					t.Fatalf("%s: neighbour differs in %d decisions", s.Name(), diff)
				}
				if _, err := s.Arch(n.Decisions); err != nil {
					t.Fatalf("%s: invalid neighbour: %v", s.Name(), err)
				}
				if _, err := arch.Analyze(s, n); err != nil {
					t.Fatalf("%s: neighbour does not analyse: %v", s.Name(), err)
				}
				if _, err := s.Lower(n); err != nil {
					t.Fatalf("%s: neighbour does not lower: %v", s.Name(), err)
				}
				if h := n.Hash(); seen[h] {
					t.Fatalf("%s: neighbour repeats an architecture", s.Name())
				} else {
					seen[h] = true
				}
			}
			if !reflect.DeepEqual(ns, s.Neighbours(a)) {
				t.Fatalf("%s: Neighbours is not deterministic", s.Name())
			}
		}
	}
}

func TestLog10Size(t *testing.T) {
	for _, s := range spaces(t) {
		prod := 1.0 // float64 holds these products (≤ 1e30) to ~1e-16 relative error
		for _, d := range s.Decisions() {
			prod *= float64(len(d.Choices))
		}
		if got, want := s.Log10Size(), math.Log10(prod); math.Abs(got-want) > 1e-9 {
			t.Errorf("%s: Log10Size = %v, want %v", s.Name(), got, want)
		}
	}
	// Default nas: per layer 4·4·4·2 = 128 choices, times 2^15 skip patterns: 128^6 · 2^15.
	if got, want := mustNew(t, "nas", arch.Options{}).Log10Size(), 6*math.Log10(128)+15*math.Log10(2); math.Abs(got-want) > 1e-9 {
		t.Errorf("nas default Log10Size = %v, want %v", got, want)
	}
	// Default enas-macro: 6^12 ops · 2^66 skips (the paper's 6^12 × 2^(12·11/2)).
	if got, want := mustNew(t, "enas-macro", arch.Options{}).Log10Size(), 12*math.Log10(6)+66*math.Log10(2); math.Abs(got-want) > 1e-9 {
		t.Errorf("enas-macro default Log10Size = %v, want %v", got, want)
	}
}

// TestLog10SizeBruteForce enumerates every decision vector of tiny spaces:
// each must be valid and lower, and they must be pairwise different
// architectures (distinct hashes), 10^Log10Size of them.
func TestLog10SizeBruteForce(t *testing.T) {
	for _, s := range []arch.Space{
		mustNew(t, "nas", arch.Options{Layers: 2, FilterSizes: []int{1, 3}, FilterCounts: []int{8}, Strides: []int{1, 2}}),
		mustNew(t, "enas-macro", arch.Options{Layers: 3, Ops: []string{"conv3x3", "maxpool3x3"}}),
		mustNew(t, "enas-micro", arch.Options{Nodes: 1, Stages: 2, Cells: 1, Channels: 2, Input: arch.Shape{C: 1, H: 5, W: 5},
			Ops: []string{"max3x3", "identity"}}),
	} {
		ds := s.Decisions()
		d := make([]int, len(ds))
		hashes := map[string]bool{}
		for {
			a, err := s.Arch(d)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := arch.Analyze(s, a); err != nil {
				t.Fatal(err)
			}
			hashes[a.Hash()] = true
			i := 0 // mixed-radix increment
			for i < len(d) && d[i] == len(ds[i].Choices)-1 {
				d[i] = 0
				i++
			}
			if i == len(d) {
				break
			}
			d[i]++
		}
		if got, want := float64(len(hashes)), math.Pow(10, s.Log10Size()); math.Abs(got-want) > 1e-6*want {
			t.Errorf("%s: enumerated %v architectures, Log10Size says %v", s.Name(), got, want)
		}
	}
}

func TestSampleUniform(t *testing.T) {
	s := mustNew(t, "enas-macro", arch.Options{Layers: 2})
	r := rand.New(rand.NewPCG(4, 5))
	counts := make([]int, 6)
	const n = 60000
	for range n {
		counts[s.Sample(r).Decisions[0]]++
	}
	// Each op has p = 1/6; the standard deviation of a count is √(n·p·(1-p)) ≈ 91,
	// so 5σ ≈ 456 fails a correct sampler with probability ~1e-6.
	for c, k := range counts {
		if math.Abs(float64(k)-n/6.0) > 456 {
			t.Errorf("op %d drawn %d times of %d, want about %d", c, k, n, n/6)
		}
	}
}

func TestValidateSpatialCollapse(t *testing.T) {
	// 8×8 → pools after layers 0, 1, 2, 3 give 4, 2, 1 and then floor((1-2)/2)+1 = 0.
	s := mustNew(t, "enas-macro", arch.Options{Layers: 6, Input: arch.Shape{C: 1, H: 8, W: 8}, ReduceAfter: []int{0, 1, 2, 3, 4}})
	d := make([]int, len(s.Decisions()))
	a, _ := s.Arch(d)
	err := arch.Validate(s, a, arch.Budget{})
	// One line for the collapse: the layers after it are not reported again.
	wantLines(t, err, "arch: ", "(maxpool, pool after layer 3): output shape 36×0×0: spatial size shrank below 1")

	// A skip from layer 0 into layer 5 needs five 2×2 avgpools: its own collapse, named for layer 5.
	// With a bad budget and an overrun too, every problem comes at once. Params
	// are counted up to the collapse, a lower bound: stem 9·36+72 = 396,
	// layer 0 9·36·36+72 = 11,736, layers 1–3 11,664+72+72 = 11,808 each (the
	// second batchnorm follows the skip sum): 396+11,736+3·11,808 = 47,556.
	d[len(d)-5] = 1 // layer 5 skip from layer 0
	a, _ = s.Arch(d)
	err = arch.Validate(s, a, arch.Budget{MaxParams: 100, MaxFLOPs: -1})
	wantLines(t, err, "arch: ",
		"budget max_flops = -1: must be ≥ 0",
		"pool after layer 3): output shape 36×0×0",
		"(avgpool, layer 5): output shape 36×0×0",
		"params 47,556 over budget 100 (largest: layer 1 with 11,808)")
	if _, err := arch.Analyze(s, a); err == nil {
		t.Error("Analyze accepted a collapsing network")
	}

	// nas convolutions pad (K-1)/2, so stride 2 on 1×1 stays 1×1: no collapse is possible.
	nas := mustNew(t, "nas", arch.Options{Layers: 5, Input: arch.Shape{C: 1, H: 4, W: 4}, Strides: []int{2}})
	chain := make([]int, len(nas.Decisions()))
	for k, dec := range nas.Decisions() { // chain every layer to the previous one
		for i := 1; i < 5; i++ {
			if dec.Name == fmt.Sprintf("layer %d skip from layer %d", i, i-1) {
				chain[k] = 1
			}
		}
	}
	a, _ = nas.Arch(chain)
	if err := arch.Validate(nas, a, arch.Budget{}); err != nil {
		t.Errorf("nas on 4×4 with stride 2: %v", err)
	}
	an, _ := arch.Analyze(nas, a)
	if got := an.Layers[5].Output; got.H != 1 || got.W != 1 {
		t.Errorf("layer 4 after four stride-2 convs on 4×4 = %v, want ×1×1", got)
	}
}

func TestValidateBudget(t *testing.T) {
	s := mustNew(t, "nas", arch.Options{})
	a, _ := s.Arch(make([]int, len(s.Decisions())))
	an, err := arch.Analyze(s, a)
	if err != nil {
		t.Fatal(err)
	}
	exact := arch.Budget{MaxParams: an.Params, MaxFLOPs: an.FLOPs, MaxActivationBytes: an.ActivationBytes}
	if err := arch.Validate(s, a, exact); err != nil {
		t.Errorf("a budget equal to the cost must pass: %v", err)
	}
	if err := arch.Validate(s, a, arch.Budget{}); err != nil {
		t.Errorf("a zero budget is unlimited: %v", err)
	}
	over := arch.Budget{MaxParams: an.Params - 1, MaxFLOPs: an.FLOPs - 1, MaxActivationBytes: an.ActivationBytes - 1}
	err = arch.Validate(s, a, over)
	// All six layers read the 1×28×28 image (no skips chosen) with conv 1×1, 24
	// filters, stride 1: 24 + 48 params each; the head concatenates all six (144
	// channels) into dense 144·10+10 = 1,450. FLOPs per layer: conv 2·18,816 +
	// batchnorm 2·18,816 + relu 18,816 = 94,080; head gap 144·784 + dense 2·1,440
	// = 115,776. Activations: head concat 112,896 + gap 144 + dense 10 values.
	wantLines(t, err, "arch: nas: ",
		"params 1,882 over budget 1,881 (largest: head with 1,450)",
		"FLOPs 680,256 over budget 680,255 (largest: head with 115,776)",
		"activation bytes 1,810,088 over budget 1,810,087 (largest: head with 452,200)")
}

// wrapped hides the built-in space behind a type of another package, as a
// space registered elsewhere would be: Analyze must describe layers from the
// graph alone.
type wrapped struct{ arch.Space }

type emptyLowering struct{ arch.Space }

func (emptyLowering) Lower(arch.Arch) (*arch.Graph, error) { return &arch.Graph{}, nil }

func TestAnalyzeForeignSpace(t *testing.T) {
	s := mustNew(t, "nas", arch.Options{Layers: 2})
	a, _ := s.Arch([]int{0, 0, 0, 0, 0, 0, 0, 0, 1})
	an, err := arch.Analyze(wrapped{s}, a)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ name, op, inputs string }{
		{"image", "input", ""},
		{"layer 0", "conv → batchnorm → relu", "image"},
		{"layer 1", "conv → batchnorm → relu", "layer 0"},
		{"head", "gap → dense", "layer 1"},
	}
	if len(an.Layers) != len(want) {
		t.Fatalf("%d layers, want %d", len(an.Layers), len(want))
	}
	for i, w := range want {
		l := an.Layers[i]
		if l.Name != w.name || l.Op != w.op || strings.Join(l.Inputs, ", ") != w.inputs {
			t.Errorf("layer %d = %q %q %q, want %q %q %q", i, l.Name, l.Op, l.Inputs, w.name, w.op, w.inputs)
		}
	}
	err = arch.Validate(emptyLowering{s}, a, arch.Budget{MaxParams: 1})
	wantLines(t, err, "arch: ", "graph must start with an input node")
}

// TestOptionErrorsNameTheirFields: every bad option is an *arch.FieldError
// whose Path is the option's key, so a config file can point at its line.
func TestOptionErrorsNameTheirFields(t *testing.T) {
	_, err := arch.New("nas", arch.Options{Layers: 500, Input: arch.Shape{C: 0, H: 8, W: 8}, FilterSizes: []int{3, 4},
		Channels: 3})
	got := fieldPaths(err)
	want := []string{"channels", "layers", "input.c", "filter_sizes"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths %q, want %q; error:\n%v", got, want, err)
	}
	_, err = arch.New("enas-macro", arch.Options{Ops: []string{"conv3x3", "conv3x3"}, ReduceAfter: []int{9}, Layers: 4})
	if got, want := fieldPaths(err), []string{"ops", "reduce_after"}; !reflect.DeepEqual(got, want) {
		t.Errorf("enas-macro: paths %q, want %q; error:\n%v", got, want, err)
	}
	_, err = arch.New("transformer", arch.Options{})
	if got := arch.FieldPath(err); !reflect.DeepEqual(got, []string{"name"}) || !strings.Contains(err.Error(), `space "transformer": unknown`) {
		t.Errorf("unknown space: path %q, error %v", got, err)
	}
}

// fieldPaths lists the dotted FieldError path of each joined error ("" for
// an error without one).
func fieldPaths(err error) []string {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []string
	for _, e := range errs {
		out = append(out, strings.Join(arch.FieldPath(e), "."))
	}
	return out
}

// TestBuildSpaceCache: New returns one space per name and options however
// often it is asked, a space unaffected by the caller changing its options
// afterwards, and a bad option's error every time (failures are not cached).
func TestBuildSpaceCache(t *testing.T) {
	opt := arch.Options{Layers: 2, FilterSizes: []int{3, 5}}
	a, err := arch.New("nas", opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := arch.New("nas", arch.Options{Layers: 2, FilterSizes: []int{3, 5}})
	if err != nil || a != b {
		t.Fatalf("the same options built twice: %p, %p (%v)", a, b, err)
	}
	opt.FilterSizes[0] = 7
	c, err := arch.New("nas", opt)
	if err != nil || c == a {
		t.Fatalf("changed options gave the cached space (%v)", err)
	}
	if got := a.Options().FilterSizes; got[0] != 3 {
		t.Errorf("the cached space's filter sizes changed with the caller's slice: %v", got)
	}
	if got := c.Options().FilterSizes; got[0] != 7 {
		t.Errorf("filter sizes %v, want [7 5]", got)
	}
	if d, err := arch.New("enas-macro", arch.Options{Layers: 2}); err != nil || d.Name() != "enas-macro" {
		t.Fatalf("another space with the same layers: %v", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := arch.New("nas", arch.Options{Layers: 2, Channels: 5}); err == nil || !strings.Contains(err.Error(), "channels") {
			t.Fatalf("try %d: an option nas does not use: %v", i, err)
		}
	}
}
