package arch_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"nasd/arch"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestJSONRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range spaces(t) {
		for range 250 {
			a := s.Sample(r)
			data, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			var b arch.Arch
			if err := json.Unmarshal(data, &b); err != nil {
				t.Fatalf("%s: %v\n%s", s.Name(), err, data)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: round trip changed the arch:\n%+v\n%+v", s.Name(), a, b)
			}
			var buf bytes.Buffer
			if err := arch.WriteJSON(&buf, a); err != nil {
				t.Fatal(err)
			}
			var c arch.Arch
			if err := json.Unmarshal(buf.Bytes(), &c); err != nil {
				t.Fatalf("%s: WriteJSON output does not decode: %v", s.Name(), err)
			}
			if !reflect.DeepEqual(a, c) || a.Hash() != b.Hash() || a.Hash() != c.Hash() {
				t.Fatalf("%s: WriteJSON round trip changed the arch", s.Name())
			}
			again, _ := json.Marshal(b)
			if !bytes.Equal(data, again) {
				t.Fatalf("%s: encoding is not canonical:\n%s\n%s", s.Name(), data, again)
			}
		}
	}
}

// TestHashStable re-encodes one architecture in many equivalent ways.
func TestHashStable(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, s := range spaces(t) {
		a := s.Sample(r)
		want := a.Hash()
		if len(want) != 64 || strings.Trim(want, "0123456789abcdef") != "" {
			t.Fatalf("hash %q is not 64 hex digits", want)
		}
		compact, _ := json.Marshal(a)
		indented, _ := json.MarshalIndent(a, "", "\t")

		// Reordered keys: a map marshals sorted, so "decisions" comes first and
		// "space" last, and the options' keys are reordered too.
		var m map[string]any
		if err := json.Unmarshal(compact, &m); err != nil {
			t.Fatal(err)
		}
		reordered, _ := json.Marshal(m)

		// Without the derived layers, and with only the non-default options.
		delete(m, "layers")
		def, _ := arch.DefaultOptions(s.Name())
		opts := m["options"].(map[string]any)
		defJSON, _ := json.Marshal(def)
		var defMap map[string]any
		json.Unmarshal(defJSON, &defMap)
		for k, v := range defMap {
			if reflect.DeepEqual(opts[k], v) {
				delete(opts, k)
			}
		}
		minimal, _ := json.Marshal(m)

		for name, data := range map[string][]byte{"compact": compact, "indented": indented, "reordered": reordered, "minimal": minimal} {
			var b arch.Arch
			if err := json.Unmarshal(data, &b); err != nil {
				t.Fatalf("%s %s: %v\n%s", s.Name(), name, err, data)
			}
			if got := b.Hash(); got != want {
				t.Errorf("%s %s: hash %s, want %s\n%s", s.Name(), name, got, want, data)
			}
		}
		// Defaults left zero in a literal hash like the filled-in ones.
		if reflect.DeepEqual(s.Options(), def) {
			if got := (arch.Arch{Space: s.Name(), Decisions: a.Decisions}).Hash(); got != want {
				t.Errorf("%s: literal with zero options hashes %s, want %s", s.Name(), got, want)
			}
		}
		// Any other decision or option is another architecture.
		for _, n := range s.Neighbours(a)[:10] {
			if n.Hash() == want {
				t.Errorf("%s: neighbour %v has the same hash", s.Name(), n.Decisions)
			}
		}
		o := s.Options()
		o.Classes++
		if other := (arch.Arch{Space: s.Name(), Options: o, Decisions: a.Decisions}); other.Hash() == want {
			t.Errorf("%s: changing classes kept the hash", s.Name())
		}
	}
	// "reduce_after": [] (no reductions) is not the default.
	none := mustNew(t, "enas-macro", arch.Options{ReduceAfter: []int{}})
	dflt := mustNew(t, "enas-macro", arch.Options{})
	d := make([]int, len(dflt.Decisions()))
	a1, _ := none.Arch(d)
	a2, _ := dflt.Arch(d)
	if a1.Hash() == a2.Hash() {
		t.Error("no reductions and the default reductions hash the same")
	}
}

// TestLoadErrors feeds Load broken files: each must fail, without panicking,
// with every line naming the file and the field, value or line at fault.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	good := `{"space":"nas","options":{"layers":1},"decisions":[1,1,1,1]}`
	for _, tc := range []struct {
		name, data string
		wants      []string
	}{
		{"malformed", "{\n  \"space\": \"nas\",\n  \"decisions\": [1, 2,, 3]\n}", []string{"line 3, column 23: malformed JSON: invalid character ','"}},
		{"truncated", "{\"space\": \"nas\",\n\"decisions\": [1", []string{"line 2, column 16: malformed JSON: unexpected end of input"}},
		{"empty", "", []string{"malformed JSON: empty input"}},
		{"trailing", good + "\n{}", []string{"line 2, column 2: unexpected data after the architecture"}},
		{"not an object", `[1,2]`, []string{"architecture: cannot use a JSON array as arch.archJSON"}},
		{"wrong type", "{\"space\":\"nas\",\n\"options\":{\"layers\":\"six\"}}", []string{`line 2, column 26: options.layers: cannot use a JSON string as int`}},
		{"unknown field", `{"space":"nas","decisons":[]}`, []string{`unknown field "decisons"`}},
		{"missing space", `{"decisions":[0]}`, []string{"space: missing (known: enas-macro, enas-micro, enas-rnn, nas, nas-rnn)"}},
		{"unknown space", `{"space":"darts","decisions":[0]}`, []string{`space "darts": unknown (known: enas-macro, enas-micro, enas-rnn, nas, nas-rnn)`}},
		{"negative options", `{"space":"nas","options":{"layers":-2,"filter_counts":[24,-36]}}`, []string{
			"options.layers = -2: must be in 1..128", "options.filter_counts[1] = -36: must be in 1.."}},
		{"unknown op in options", `{"space":"enas-macro","options":{"ops":["conv3x3","dilconv3x3"]},"decisions":[]}`, []string{
			`options.ops[1] = "dilconv3x3": unknown op`}},
		{"wrong decision count", `{"space":"nas","options":{"layers":2},"decisions":[0,0,0,0]}`, []string{"decisions: got 4, want 9"}},
		{"out of range", `{"space":"nas","options":{"layers":1},"decisions":[0,4,0,-1]}`, []string{
			"decisions[1] (layer 0 filter width) = 4: want 0..3 (1, 3, 5, 7)",
			"decisions[3] (layer 0 stride) = -1: want 0..1 (1, 2)"}},
		{"unknown op in layers", `{"space":"enas-macro","options":{"layers":1},"decisions":[0],
			"layers":[{"layer":0,"op":"dilconv3x3","inputs":["stem"]}]}`, []string{
			`layers[0].op = "dilconv3x3": unknown op (this space's ops: conv3x3, conv5x5, sepconv3x3, sepconv5x5, maxpool3x3, avgpool3x3)`}},
		{"layers disagree", `{"space":"nas","options":{"layers":1},"decisions":[1,1,1,1],
			"layers":[{"layer":2,"op":"conv 5×5, 36 filters, stride 2","inputs":["layer 9"]},{"layer":1,"op":"x","inputs":[]}]}`, []string{
			"layers: has 2 entries, the decisions describe 1",
			"layers[0].layer = 2: want 0",
			`layers[0].op = "conv 5×5, 36 filters, stride 2": the decisions say "conv 3×3, 36 filters, stride 2"`,
			`layers[0].inputs = ["layer 9"]: the decisions say ["image"]`}},
		{"nas op unparsable", `{"space":"nas","options":{"layers":1},"decisions":[1,1,1,1],"layers":[{"layer":0,"op":"pool","inputs":["image"]}]}`, []string{
			`layers[0].op = "pool": unknown op (want "conv H×W, N filters, stride S")`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
			if err := os.WriteFile(path, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			_, s, err := arch.Load(path)
			if s != nil {
				t.Error("Load returned a space with an error")
			}
			wantLines(t, err, "arch: "+path+": ", tc.wants...)

			// UnmarshalJSON reports the same problems (a syntax error is caught
			// by encoding/json first, without our line numbers).
			var a arch.Arch
			if err := json.Unmarshal([]byte(tc.data), &a); err == nil {
				t.Error("UnmarshalJSON accepted it")
			}
		})
	}
	path := filepath.Join(dir, "good.json")
	os.WriteFile(path, []byte(good), 0o644)
	a, s, err := arch.Load(path)
	if err != nil || s.Name() != "nas" || a.Options.Layers != 1 || len(a.Options.FilterSizes) != 4 {
		t.Errorf("Load(good) = %+v, %v, %v", a, s, err)
	}
	_, _, err = arch.Load(filepath.Join(dir, "missing.json"))
	wantLines(t, err, "arch: open "+dir, "missing.json: no such file")
}

// fixedArch is one architecture per space for the golden files, drawn by an
// explicit LCG (Knuth's MMIX constants) so it cannot change with the Go
// version the way a library generator might.
func fixedArch(t *testing.T, name string) (arch.Space, arch.Arch) {
	s := mustNew(t, name, arch.Options{})
	ds := s.Decisions()
	d := make([]int, len(ds))
	x := uint64(1)
	for k := range d {
		x = x*6364136223846793005 + 1442695040888963407
		d[k] = int(x>>33) % len(ds[k].Choices)
	}
	a, err := s.Arch(d)
	if err != nil {
		t.Fatal(err)
	}
	return s, a
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	for _, name := range arch.Names() {
		t.Run(name, func(t *testing.T) {
			s, a := fixedArch(t, name)
			var js, table, dot bytes.Buffer
			if err := arch.WriteJSON(&js, a); err != nil {
				t.Fatal(err)
			}
			an, err := arch.Analyze(s, a)
			if err != nil {
				t.Fatal(err)
			}
			if err := arch.WriteTable(&table, an); err != nil {
				t.Fatal(err)
			}
			if err := arch.WriteDOT(&dot, s, a); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".json", js.Bytes())
			golden(t, name+".table.txt", table.Bytes())
			golden(t, name+".dot", dot.Bytes())

			// The golden JSON loads back to the same architecture.
			b, _, err := arch.Load(filepath.Join("testdata", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("testdata/%s.json loads as %+v, want %+v", name, b, a)
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestWritersReportErrors(t *testing.T) {
	s, a := fixedArch(t, "nas")
	an, _ := arch.Analyze(s, a)
	if arch.WriteTable(failWriter{}, an) == nil || arch.WriteDOT(failWriter{}, s, a) == nil || arch.WriteJSON(failWriter{}, a) == nil {
		t.Error("a write error was lost")
	}
}

// The compact form (event logs) has no layers and decodes to the same
// architecture, for every space.
func TestCompactJSONRoundTrip(t *testing.T) {
	for _, name := range arch.Names() {
		s, err := arch.New(name, arch.Options{})
		if err != nil {
			t.Fatal(err)
		}
		a := s.Sample(rand.New(rand.NewPCG(3, 4)))
		b, err := a.CompactJSON()
		if err != nil {
			t.Fatal(err)
		}
		full, _ := a.MarshalJSON()
		var back arch.Arch
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
		if strings.Contains(string(b), `"layers":[`) || len(b) >= len(full) || back.Hash() != a.Hash() || !reflect.DeepEqual(back.Decisions, a.Decisions) {
			t.Errorf("%s: compact %s decodes to %v", name, b, back)
		}
	}
}
