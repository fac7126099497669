package arch

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoder behind Load and
// UnmarshalJSON. It must never panic; every error line must name the object;
// whatever decodes must re-encode to the same architecture and analyse or
// fail cleanly.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"space":"nas"}`, `{"space":"nas","decisions":[0,0,0,0],"options":{"layers":1}}`,
		`{"space":"enas-macro","options":{"layers":2,"ops":["maxpool9x9"],"input":{"c":1,"h":1,"w":1}},"decisions":[0,0,1]}`,
		`{"space":"enas-macro","options":{"layers":4,"reduce_after":[0,1,2]},"decisions":[0,0,1,0,1,1,0,1,1,1]}`,
		`{"space":"enas-micro","options":{"nodes":1,"cells":1,"stages":2,"ops":["identity"],"input":{"c":1,"h":1,"w":1}},"decisions":[0,0,1,0,1,0,0,0]}`,
		`{"space":"enas-micro","options":{"nodes":2,"stages":1},"decisions":[0,0,1,4,2,3,2,1,0,0,0,0,0,0,0,0],"layers":[{"cell":"reduce","layer":0,"op":"x","inputs":[]}]}`,
		`{"space":"nas","options":{"layers":1e400}}`, `{"space":"nas","decisions":[1.5]}`,
		`{"space":"nas","options":{"layers":1},"decisions":[0,0,0,0],"layers":[{"layer":0,"op":"conv","inputs":null}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const prefix = "arch: fuzz.json: "
		a, s, err := decode(data, prefix)
		var viaJSON Arch
		jerr := json.Unmarshal(data, &viaJSON)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, prefix) {
					t.Fatalf("error line %q does not name the file", line)
				}
			}
			if jerr == nil && string(bytes.TrimSpace(data)) != "null" {
				t.Fatalf("decode failed (%v) but UnmarshalJSON accepted %q", err, data)
			}
			return
		}
		if jerr != nil || !reflect.DeepEqual(a, viaJSON) {
			t.Fatalf("UnmarshalJSON = %+v, %v; decode = %+v", viaJSON, jerr, a)
		}
		again, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := decode(again, prefix)
		if err != nil {
			t.Fatalf("re-encoded arch does not decode: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(a, b) || a.Hash() != b.Hash() {
			t.Fatalf("round trip changed the arch: %+v → %+v", a, b)
		}
		if an, err := Analyze(s, a); err == nil {
			var w bytes.Buffer
			if err := WriteTable(&w, an); err != nil {
				t.Fatal(err)
			}
			if err := WriteDOT(&w, s, a); err != nil {
				t.Fatal(err)
			}
		}
		_ = Validate(s, a, Budget{MaxParams: 1, MaxFLOPs: 1, MaxActivationBytes: 1})
		_ = s.Neighbours(a)
	})
}
