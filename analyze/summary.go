package analyze

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// SummaryOptions says how much the terminal summary shows.
type SummaryOptions struct {
	Top       int     // best trials listed (default 10)
	TopQ      float64 // the fraction of trials that counts as "top" for decision statistics (default 0.1)
	Decisions int     // decisions listed by importance (default 8)
	Distinct  int     // distinct architectures compared with the best (default 5)
}

func (o *SummaryOptions) defaults() {
	if o.Top <= 0 {
		o.Top = 10
	}
	if o.TopQ <= 0 || o.TopQ > 1 {
		o.TopQ = 0.1
	}
	if o.Decisions <= 0 {
		o.Decisions = 8
	}
	if o.Distinct <= 0 {
		o.Distinct = 5
	}
}

// Summary writes the run's terminal summary.
func (r *Run) Summary(w io.Writer, o SummaryOptions) {
	o.defaults()
	space := "?"
	if r.Space != nil {
		space = r.Space.Name()
	}
	resumed := 0
	for _, s := range r.Segments {
		if s.Resumed {
			resumed++
		}
	}
	fmt.Fprintf(w, "Run %s: strategy %s, mode %s, seed %d, %d workers, space %s, event schema %d\n",
		r.Dir, r.Strategy, r.Mode, r.Seed, r.Workers, space, r.Schema)
	fmt.Fprintf(w, "Segments: %d (%d resumed)", len(r.Segments), resumed)
	for i, s := range r.Segments {
		reason := s.Reason
		if reason == "" {
			reason = "killed (no run_end)"
		}
		fmt.Fprintf(w, "; %d: %s, %s", i+1, s.End.Sub(s.Start).Round(1e9), reason)
	}
	fmt.Fprintln(w)
	status := map[string]int{}
	for _, t := range r.Trials {
		status[t.Status]++
	}
	var ss []string
	for _, k := range sortedKeys(status) {
		ss = append(ss, fmt.Sprintf("%s %d", k, status[k]))
	}
	fmt.Fprintf(w, "Trials: %d (%s); proposed %d\n", len(r.Trials), strings.Join(ss, ", "), r.Proposed)
	evals := map[string]int{}
	for _, t := range r.Trials {
		if t.Status != "rejected" {
			evals[t.Hash]++
		}
	}
	dupArchs, dupExtra := 0, 0
	for _, n := range evals {
		if n > 1 {
			dupArchs++
			dupExtra += n - 1
		}
	}
	fmt.Fprintf(w, "Duplicates: %d architectures evaluated more than once (%d extra evaluations)\n", dupArchs, dupExtra)

	best := r.Best()
	if len(best) > 0 {
		fmt.Fprintf(w, "\nBest trials:\n")
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "\ttrial\treward\tval acc\ttest\tparams\tMFLOPs\tseconds\trank\t")
		for i, t := range best[:min(o.Top, len(best))] {
			fmt.Fprintf(tw, "%d\t%s\t%.4f\t%.4f\t%s\t%d\t%.1f\t%.1f\t%d\t\n", i+1, t.ID, t.Reward, t.BestValAcc,
				maybe(t.TestAcc, "%.4f"), t.Params, float64(t.FLOPs)/1e6, t.Seconds, t.Rank)
		}
		tw.Flush()
		b := best[0]
		fmt.Fprintf(w, "\nBest architecture (%s, %s):\n", b.ID, b.Hash)
		names := r.DecisionNames()
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for i, c := range b.Arch.Decisions {
			fmt.Fprintf(tw, "  %s\t%s\n", names[i], r.Choice(i, c))
		}
		tw.Flush()
	}

	share, wall := r.Busy()
	if wall > 0 && len(share) > 0 {
		ranks := sortedKeys(share)
		total := 0.0
		var parts []string
		for _, k := range ranks {
			total += share[k]
			parts = append(parts, fmt.Sprintf("rank %d %.0f%%", k, 100*share[k]))
		}
		steady := ""
		if frac, window, ok := r.SteadyBusy(); ok {
			steady = fmt.Sprintf("; %.1f%% over the %.3gs all had work", 100*frac, window.Seconds())
		}
		fmt.Fprintf(w, "\nUtilisation: workers busy %.0f%% of %d × %.1fs%s (%s)\n", 100*total/float64(max(r.Workers, len(ranks))),
			max(r.Workers, len(ranks)), wall, steady, strings.Join(parts, ", "))
	}

	fails := map[string]int{}
	for _, t := range r.Trials {
		if !t.OK() && t.Status != "stopped" {
			key := t.Status
			if t.Reason != "" {
				key += ": " + firstLine(t.Reason, 90)
			}
			fails[key]++
		}
	}
	if len(fails) > 0 {
		fmt.Fprintf(w, "\nNot ok, by reason:\n")
		keys := sortedKeys(fails)
		sort.SliceStable(keys, func(i, j int) bool { return fails[keys[i]] > fails[keys[j]] })
		for _, k := range keys {
			fmt.Fprintf(w, "  %4d  %s\n", fails[k], k)
		}
	}

	if ds := r.DecisionStats(o.TopQ); len(ds) > 0 && len(best) >= 4 {
		fmt.Fprintf(w, "\nDecisions that matter (top %.0f%% of %d ok trials vs all; importance = total-variation distance):\n", 100*o.TopQ, len(best))
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  decision\timportance\tbest choice (mean reward ± 95% CI, n)\tover-represented in the top")
		for _, d := range ds[:min(o.Decisions, len(ds))] {
			bestTxt, enrTxt := "-", "-"
			enr := 0.0
			for _, c := range d.Choices {
				if c.Choice == d.Best {
					bestTxt = fmt.Sprintf("%s (%.4f ± %.4f, %d)", c.Name, c.Mean, c.CI, c.Count)
				}
				if c.TopShare > 0 && c.Enrichment > enr {
					enr, enrTxt = c.Enrichment, fmt.Sprintf("%s ×%.1f", c.Name, c.Enrichment)
				}
			}
			fmt.Fprintf(tw, "  %s\t%.3f\t%s\t%s\n", d.Name, d.Importance, bestTxt, enrTxt)
		}
		tw.Flush()
	}

	if dist, noise := r.SecondBest(o.Distinct); len(dist) > 1 {
		noiseTxt := "unknown (no architecture was evaluated twice)"
		if !math.IsNaN(noise) {
			noiseTxt = fmt.Sprintf("%.4f (sd of repeated evaluations)", noise)
		}
		fmt.Fprintf(w, "\nThe next best distinct architectures, against the best (noise %s):\n", noiseTxt)
		names := r.DecisionNames()
		for i, d := range dist[1:] {
			var ch []string
			for _, j := range d.Changed {
				if j < len(names) && j < len(d.Trial.Arch.Decisions) {
					ch = append(ch, fmt.Sprintf("%s → %s", names[j], r.Choice(j, d.Trial.Arch.Decisions[j])))
				}
			}
			gap := fmt.Sprintf("%.4f", d.Gap)
			if !math.IsNaN(noise) && noise > 0 {
				gap += fmt.Sprintf(" (%.1f × noise)", d.Gap/noise)
			}
			fmt.Fprintf(w, "  %d. %s mean %.4f over %d, gap %s, %d decisions differ: %s\n", i+2, d.Trial.ID, d.Mean,
				len(d.Rewards), gap, d.Distance, firstLine(strings.Join(ch, "; "), 200))
		}
	}

	if p, ok := r.Perturbation(); ok {
		r.writePerturbation(w, p)
	}

	if len(r.Updates) > 0 {
		var first, last *Update
		for i := range r.Updates {
			if r.Updates[i].Updates > 0 {
				if first == nil {
					first = &r.Updates[i]
				}
				last = &r.Updates[i]
			}
		}
		if first != nil {
			fmt.Fprintf(w, "\nLearning (%s): %d updates; batch mean reward %.4f → %.4f, baseline %.4f → %.4f, entropy %.3f → %.3f\n",
				r.Strategy, last.Updates, first.MeanReward, last.MeanReward, first.Baseline, last.Baseline, first.Entropy, last.Entropy)
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings (%d):\n", len(r.Warnings))
		for _, m := range r.Warnings[:min(5, len(r.Warnings))] {
			fmt.Fprintf(w, "  %s\n", firstLine(m, 160))
		}
	}
}

func maybe(v float64, f string) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf(f, v)
}

func firstLine(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len([]rune(s)) > n {
		s = string([]rune(s)[:n-1]) + "…"
	}
	return s
}

func sortedKeys[K int | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
