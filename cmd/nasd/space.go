package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"nasd/arch"
)

func runSpace(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("space", "[-space NAME] [space flags] [-seed N] [-validate FILE] [-format table|json|dot]", stderr)
	var sf spaceFlags
	sf.register(fs)
	seed := fs.Uint64("seed", 1, "seed of the sampled architecture")
	validate := fs.String("validate", "", "architecture JSON file to check: shapes, parameters and FLOPs, or every problem")
	format := fs.String("format", "table", "how to print the architecture: table, json or dot")
	quiet := fs.Bool("arch-only", false, "print only the architecture, not the space's decisions")
	var budget budgetFlags
	budget.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	switch *format {
	case "table", "json", "dot":
	default:
		return fail(stderr, fmt.Errorf("-format %q: must be table, json or dot", *format))
	}

	var space arch.Space
	var a arch.Arch
	if *validate != "" {
		var err error
		if a, space, err = arch.Load(*validate); err != nil {
			return fail(stderr, err)
		}
		if err := arch.Validate(space, a, budget.budget()); err != nil {
			return fail(stderr, fmt.Errorf("%s: %w", *validate, err))
		}
	} else {
		var err error
		if space, err = sf.space(arch.Shape{}, 0); err != nil {
			return fail(stderr, err)
		}
		if !*quiet {
			describeSpace(stdout, space)
		}
		a = space.Sample(rand.New(rand.NewPCG(*seed, 0)))
		if !*quiet {
			fmt.Fprintf(stdout, "\nSampled architecture (seed %d, hash %s):\n", *seed, a.Hash())
		}
	}
	if err := printArch(stdout, *format, space, a); err != nil {
		return fail(stderr, err)
	}
	return exitOK
}

// describeSpace prints a space's options, decisions and size.
func describeSpace(w io.Writer, s arch.Space) {
	opt, _ := json.Marshal(s.Options())
	decisions := s.Decisions()
	fmt.Fprintf(w, "Space %s\n  options:   %s\n  decisions: %d\n  size:      10^%.1f architectures\n\nDecisions:\n",
		s.Name(), opt, len(decisions), s.Log10Size())
	for i, d := range decisions {
		fmt.Fprintf(w, "  %3d  %-28s %s\n", i, d.Name, strings.Join(d.Choices, " | "))
	}
}

func printArch(w io.Writer, format string, s arch.Space, a arch.Arch) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(a, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "dot":
		return arch.WriteDOT(w, s, a)
	}
	an, err := arch.Analyze(s, a)
	if err != nil {
		return err
	}
	return arch.WriteTable(w, an)
}

// budgetFlags bound what an architecture may cost; zero means unlimited.
type budgetFlags struct {
	params, flops, activation int64
}

func (bf *budgetFlags) register(fs interface {
	Int64Var(*int64, string, int64, string)
}) {
	fs.Int64Var(&bf.params, "max-params", 0, "reject architectures with more parameters (0 = unlimited)")
	fs.Int64Var(&bf.flops, "max-flops", 0, "reject architectures with more forward FLOPs per example (0 = unlimited)")
	fs.Int64Var(&bf.activation, "max-activation-bytes", 0, "reject architectures with more activation memory per example (0 = unlimited)")
}

func (bf *budgetFlags) budget() arch.Budget {
	return arch.Budget{MaxParams: int(bf.params), MaxFLOPs: bf.flops, MaxActivationBytes: bf.activation}
}
