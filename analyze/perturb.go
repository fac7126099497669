package analyze

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Neighbour is one architecture of a perturbation run other than the base.
type Neighbour struct {
	Distinct
	Diff    float64 // its mean reward minus the base's
	SE      float64 // the difference's standard error, from the base's spread
	Verdict string  // "better", "equal", "worse" (beyond 2 standard errors), or "unknown" (no noise estimate)
}

// Perturbation is the local-optimum check of a `nasd perturb` run: the
// base architecture's repeated evaluations (the noise floor) and every
// one-decision neighbour against them.
type Perturbation struct {
	Base       Distinct
	Noise      float64 // standard deviation of the base's rewards (NaN under 2)
	Neighbours []Neighbour
	Better     int
	Equal      int
	Worse      int
	Unknown    int
}

// Perturbation finds the base architecture in the run's configuration
// ([strategy] name = "perturb", options.arch) and classifies each
// neighbour: better or worse when its mean reward is more than 2 standard
// errors from the base's (σ from the base's repeats, √(1/n + 1/n_base)),
// else equal within noise. ok is false for runs of other strategies.
func (r *Run) Perturbation() (p Perturbation, ok bool) {
	var cfg struct {
		Strategy struct {
			Name    string `json:"name"`
			Options struct {
				Arch []int `json:"arch"`
			} `json:"options"`
		} `json:"strategy"`
	}
	if len(r.Config) == 0 || json.Unmarshal(r.Config, &cfg) != nil || cfg.Strategy.Name != "perturb" || len(cfg.Strategy.Options.Arch) == 0 {
		return p, false
	}
	base := cfg.Strategy.Options.Arch
	dist, _ := r.SecondBest(len(r.Trials))
	found := false
	for _, d := range dist {
		if slices.Equal(d.Trial.Arch.Decisions, base) {
			p.Base, found = d, true
		}
	}
	if !found {
		return p, true // the base has no ok result (yet)
	}
	_, p.Noise = meanSD(p.Base.Rewards)
	for _, d := range dist {
		if d.Hash == p.Base.Hash {
			continue
		}
		n := Neighbour{Distinct: d, Diff: d.Mean - p.Base.Mean, Verdict: "unknown"}
		n.Changed = n.Changed[:0:0]
		for j := range max(len(base), len(d.Trial.Arch.Decisions)) {
			if j >= len(base) || j >= len(d.Trial.Arch.Decisions) || base[j] != d.Trial.Arch.Decisions[j] {
				n.Changed = append(n.Changed, j)
			}
		}
		n.Distance = len(n.Changed)
		if !math.IsNaN(p.Noise) {
			n.SE = p.Noise * math.Sqrt(1/float64(len(d.Rewards))+1/float64(len(p.Base.Rewards)))
			switch {
			case n.Diff > 2*n.SE:
				n.Verdict = "better"
			case n.Diff < -2*n.SE:
				n.Verdict = "worse"
			default:
				n.Verdict = "equal"
			}
		}
		switch n.Verdict {
		case "better":
			p.Better++
		case "equal":
			p.Equal++
		case "worse":
			p.Worse++
		default:
			p.Unknown++
		}
		p.Neighbours = append(p.Neighbours, n)
	}
	slices.SortStableFunc(p.Neighbours, func(a, b Neighbour) int { return cmp.Compare(b.Diff, a.Diff) })
	return p, true
}

// writePerturbation is the summary's local-optimum section.
func (r *Run) writePerturbation(w io.Writer, p Perturbation) {
	if p.Base.Trial == nil {
		fmt.Fprintf(w, "\nLocal optimum check: the base architecture has no ok result yet.\n")
		return
	}
	fmt.Fprintf(w, "\nLocal optimum check (nasd perturb): base %s, mean reward %.4f over %d trainings, sd %s\n",
		p.Base.Hash[:min(12, len(p.Base.Hash))], p.Base.Mean, len(p.Base.Rewards), maybe(p.Noise, "%.4f"))
	fmt.Fprintf(w, "  %d one-decision neighbours: %d better, %d equal within noise, %d worse (beyond 2 standard errors)",
		len(p.Neighbours), p.Better, p.Equal, p.Worse)
	if p.Unknown > 0 {
		fmt.Fprintf(w, ", %d unknown (the base needs 2 trainings for a noise floor)", p.Unknown)
	}
	fmt.Fprintln(w)
	if p.Better == 0 && p.Unknown == 0 {
		fmt.Fprintln(w, "  No neighbour is better: the base is a local optimum under one-decision changes, at this noise.")
	}
	names := r.DecisionNames()
	show := func(n Neighbour) {
		var ch []string
		for _, j := range n.Changed {
			if j < len(names) && j < len(n.Trial.Arch.Decisions) && j < len(p.Base.Trial.Arch.Decisions) {
				ch = append(ch, fmt.Sprintf("%s %s → %s", names[j], r.Choice(j, p.Base.Trial.Arch.Decisions[j]), r.Choice(j, n.Trial.Arch.Decisions[j])))
			}
		}
		fmt.Fprintf(w, "    %+.4f ± %.4f  %-6s %s\n", n.Diff, 2*n.SE, n.Verdict, strings.Join(ch, "; "))
	}
	k := min(5, len(p.Neighbours))
	if k > 0 {
		fmt.Fprintf(w, "  Largest gains:\n")
		for _, n := range p.Neighbours[:k] {
			show(n)
		}
		fmt.Fprintf(w, "  Largest losses:\n")
		for _, n := range p.Neighbours[max(k, len(p.Neighbours)-k):] {
			show(n)
		}
	}
}
