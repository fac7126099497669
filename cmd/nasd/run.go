package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"
)

// Exit codes shared by every subcommand.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"analyze": {"summarise a run from its event log: best trials, decisions that matter, tables, report", runAnalyze},
	"corpus":  {"turn plain text into the Penn Treebank layout (ptb.train.txt, ...)", runCorpus},
	"export":  {"write a found network as PyTorch code (model.py), with its trained weights and a loader", runExport},
	"jobs":    {"write and submit batch jobs (Slurm, PBS, LSF, Flux) that chain a search across walltime limits", runJobs},
	"perturb": {"train an architecture's one-decision neighbours and repeats of it: is it a local optimum?", runPerturb},
	"search":  {"search for architectures (in-process, or under mpirun/srun)", runSearch},
	"train":   {"train and evaluate one architecture on real data", runTrain},
	"space":   {"describe a search space, sample or validate an architecture", runSpace},
	"version": {"print the version and build information", runVersion},
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "nasd — distributed neural architecture search\n\nUsage:\n  nasd <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-8s %s\n", name, commands[name].summary)
	}
	fmt.Fprintf(w, "\nRun 'nasd <command> -h' for the flags of a command.\n")
}

// run is main without the process: it returns the exit code, so tests drive it directly.
func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		// A panic is a bug; report it with the stack instead of a bare crash.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "nasd: internal error: %v\n%s", r, debug.Stack())
			code = exitError
		}
	}()
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nasd: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return cmd.run(args[1:], stdout, stderr)
}

// newFlagSet makes a flag set whose errors and help go to stderr and name the subcommand.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("nasd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: nasd %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses and maps the outcome to an exit code; ok=false means return code.
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK, false
	}
	if err != nil {
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args(), " "))
		return exitUsage, false
	}
	return exitOK, true
}

// fail prints an error the way every subcommand does and returns the error exit code.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "nasd: %v\n", err)
	return exitError
}
