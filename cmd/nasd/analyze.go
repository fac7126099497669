package main

import (
	"bytes"
	"fmt"
	"io"

	"nasd/analyze"
	"nasd/journal"
)

const analyzeSynopsis = "[-top 10] [-top-q 0.1] [-csv FILE] [-parquet FILE] [-html FILE] [-svg DIR] RUNDIR"

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
	dirs, code, ok := parseFlagsAndArgs(fs, args)
	if !ok {
		return code
	}
	if len(dirs) != 1 {
		fmt.Fprintln(stderr, "nasd analyze: give one run directory")
		fs.Usage()
		return exitUsage
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
