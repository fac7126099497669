package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"nasd/analyze"
	"nasd/journal"
)

const analyzeSynopsis = "[-top 10] [-top-q 0.1] [-csv FILE] [-parquet FILE] [-html FILE] [-svg DIR] [-png DIR] RUNDIR\n       nasd analyze [-group strategy|mode|run] [-target R] [-html FILE] [-svg DIR] RUNDIR RUNDIR..."

func runAnalyze(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("analyze", analyzeSynopsis, stderr)
	var o analyze.SummaryOptions
	fs.IntVar(&o.Top, "top", 10, "best trials listed")
	fs.Float64Var(&o.TopQ, "top-q", 0.1, "the fraction of ok trials that counts as the top, for the decision statistics")
	fs.IntVar(&o.Decisions, "decisions", 8, "decisions listed, most important first")
	fs.IntVar(&o.Distinct, "distinct", 5, "distinct architectures compared with the best")
	csvPath := fs.String("csv", "", "write the trial table as CSV to this file (one row per trial, a column per decision)")
	parquetPath := fs.String("parquet", "", "write the trial table as Parquet to this file (pandas, DuckDB, Spark)")
	htmlPath := fs.String("html", "", "write a self-contained HTML report (inline SVG plots, works offline) to this file")
	svgDir := fs.String("svg", "", "write each plot as an SVG file into this directory")
	pngDir := fs.String("png", "", "write each plot as a PNG file into this directory (rendered by headless chromium)")
	groupBy := fs.String("group", "strategy", "with several runs: group them by strategy, mode, or run (each its own group)")
	target := fs.Float64("target", 0, "with several runs: the reward whose cost to reach is compared (default: the lowest run's final best, which every run reached)")
	dirs, code, ok := parseFlagsAndArgs(fs, args)
	if !ok {
		return code
	}
	if len(dirs) == 0 {
		fmt.Fprintln(stderr, "nasd analyze: give a run directory, or several to compare")
		fs.Usage()
		return exitUsage
	}
	if len(dirs) > 1 {
		return compareRuns(dirs, *groupBy, *target, *htmlPath, *svgDir, stdout, stderr)
	}
	if o.TopQ <= 0 || o.TopQ > 1 {
		fmt.Fprintf(stderr, "nasd analyze: -top-q %v: must be in (0, 1]\n", o.TopQ)
		return exitUsage
	}
	r, err := analyze.Read(dirs[0])
	if err != nil {
		return fail(stderr, err)
	}
	r.Summary(stdout, o)
	if *csvPath != "" {
		if err := writeFileWith(*csvPath, r.WriteCSV); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "\nTrial table: %s\n", *csvPath)
	}
	if *parquetPath != "" {
		if err := writeFileWith(*parquetPath, r.WriteParquet); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "Trial table: %s\n", *parquetPath)
	}
	if *htmlPath != "" {
		if err := writeFileWith(*htmlPath, func(w io.Writer) error { return r.WriteHTML(w, o) }); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "Report: %s\n", *htmlPath)
	}
	if *svgDir != "" {
		files, err := r.WriteSVGs(*svgDir, o)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "Plots: %d SVG files in %s\n", len(files), *svgDir)
	}
	if *pngDir != "" {
		n, err := writePNGs(r, o, *pngDir)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "Plots: %d PNG files in %s\n", n, *pngDir)
	}
	return exitOK
}

// writeFileWith writes what write produces to path atomically.
func writeFileWith(path string, write func(io.Writer) error) error {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return err
	}
	return journal.WriteFileAtomic(path, b.Bytes(), 0o644)
}

// compareRuns is nasd analyze with several runs: grouped final bests, the
// cost to reach a target, Mann–Whitney tests, and the best-so-far plot.
func compareRuns(dirs []string, groupBy string, target float64, htmlPath, svgDir string, stdout, stderr io.Writer) int {
	keys := map[string]func(*analyze.Run) string{
		"strategy": func(r *analyze.Run) string { return r.Strategy },
		"mode":     func(r *analyze.Run) string { return r.Mode },
		"run":      func(r *analyze.Run) string { return r.Dir },
	}
	key, ok := keys[groupBy]
	if !ok {
		fmt.Fprintf(stderr, "nasd analyze: -group %q: want strategy, mode or run\n", groupBy)
		return exitUsage
	}
	var runs []*analyze.Run
	for _, d := range dirs {
		r, err := analyze.Read(d)
		if err != nil {
			return fail(stderr, err)
		}
		runs = append(runs, r)
	}
	groups := analyze.GroupRuns(runs, key)
	if target == 0 {
		target = math.Inf(1)
		for _, g := range groups {
			for _, v := range g.Final {
				if !math.IsNaN(v) {
					target = math.Min(target, v)
				}
			}
		}
		if math.IsInf(target, 1) {
			return fail(stderr, fmt.Errorf("analyze: no run has an ok trial"))
		}
	}
	var table bytes.Buffer
	analyze.WriteComparison(&table, groups, target)
	stdout.Write(table.Bytes())
	plot := analyze.ComparisonPlot(groups)
	if svgDir != "" {
		if err := os.MkdirAll(svgDir, 0o755); err != nil {
			return fail(stderr, err)
		}
		if err := journal.WriteFileAtomic(filepath.Join(svgDir, "compare.svg"), []byte(plot), 0o644); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "Plot: %s\n", filepath.Join(svgDir, "compare.svg"))
	}
	if htmlPath != "" {
		page := "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>nasd: comparing runs</title>\n" +
			"<style>body { font-family: sans-serif; margin: 2em; } pre { background: #f6f8fa; padding: 1em; font-size: 12px; }</style>\n" +
			"</head>\n<body>\n<h1>Comparing " + fmt.Sprint(len(runs)) + " runs</h1>\n<pre id=\"comparison\">" + html.EscapeString(table.String()) +
			"</pre>\n" + plot + "</body>\n</html>\n"
		if err := journal.WriteFileAtomic(htmlPath, []byte(page), 0o644); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "Report: %s\n", htmlPath)
	}
	return exitOK
}

// writePNGs renders every plot to dir/NAME.png with headless chromium, at
// the plot's own size.
func writePNGs(r *analyze.Run, o analyze.SummaryOptions, dir string) (int, error) {
	bin := ""
	for _, c := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(c); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		return 0, errors.New("analyze: -png needs chromium (apt-get install chromium); -svg writes the plots without it")
	}
	tmp, err := os.MkdirTemp("", "nasd-png-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	files, err := r.WriteSVGs(tmp, o)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("analyze: %w", err)
	}
	size := regexp.MustCompile(`width="(\d+)" height="(\d+)"`)
	for _, f := range files {
		b, _ := os.ReadFile(f)
		m := size.FindSubmatch(b)
		if m == nil {
			return 0, fmt.Errorf("analyze: %s: no size", f)
		}
		out, err := filepath.Abs(filepath.Join(dir, strings.TrimSuffix(filepath.Base(f), ".svg")+".png"))
		if err != nil {
			return 0, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir="+filepath.Join(tmp, "profile"),
			"--window-size="+string(m[1])+","+string(m[2]), "--screenshot="+out, "file://"+f)
		msg, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return 0, fmt.Errorf("analyze: chromium rendering %s: %v: %s", filepath.Base(f), err, firstLines(string(msg), 3))
		}
	}
	return len(files), nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], " | ")
}
