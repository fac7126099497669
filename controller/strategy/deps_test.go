package strategy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestStrategyDependencies enforces the rule this package exists for: a
// strategy is a pure state machine, so a strategy package (every package
// under controller/ but the loop, this API and the conformance suite)
// depends, of ours, on nothing but this package and arch: not on the loop,
// the transport, the journal or MPI, and not on zerolog or zstd. Third-party
// numerics are allowed (rl uses Gorgonia). It asks the go command for each
// package's transitive dependencies (go list -json), so a strategy added
// later is checked without editing the test.
func TestStrategyDependencies(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH: %v", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(goCmd, "list", "-json=ImportPath,Deps", "nasd/controller/...")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	deps := map[string][]string{}
	for dec := json.NewDecoder(&stdout); ; {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		deps[p.ImportPath] = p.Deps
	}

	// Ours that a strategy may depend on; everything else of ours is out.
	allowed := []string{"nasd/arch", "nasd/controller/strategy", "nasd/controller/internal/registry"}
	// Third-party packages no strategy may depend on (module path prefixes).
	forbidden := []string{"github.com/rs/zerolog", "github.com/klauspost/compress"}
	notStrategies := []string{"nasd/controller", "nasd/controller/strategy", "nasd/controller/strategytest"}

	check := func(pkg string, thirdParty bool) {
		t.Helper()
		for _, d := range deps[pkg] {
			switch {
			case d == "nasd" || strings.HasPrefix(d, "nasd/"):
				if !slices.Contains(allowed, d) {
					t.Errorf("%s depends on %s; of ours a strategy may depend only on %s", pkg, d, strings.Join(allowed, ", "))
				}
			case !strings.Contains(strings.Split(d, "/")[0], "."): // the standard library
			case !thirdParty:
				t.Errorf("%s depends on %s; it should need only the standard library and arch", pkg, d)
			default:
				for _, f := range forbidden {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%s depends on %s (a strategy does no logging or compression)", pkg, d)
					}
				}
			}
		}
	}
	check("nasd/controller/strategy", false)
	var checked []string
	for pkg := range deps {
		if slices.Contains(notStrategies, pkg) || strings.HasPrefix(pkg, "nasd/controller/internal/") {
			continue
		}
		check(pkg, true)
		checked = append(checked, pkg)
	}
	for _, want := range []string{"nasd/controller/random", "nasd/controller/rl", "nasd/controller/evolution"} {
		if !slices.Contains(checked, want) {
			t.Errorf("go list did not report %s; checked %v", want, checked)
		}
	}
}
