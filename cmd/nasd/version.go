package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"nasd/train"
)

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	version, revision := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	loops := "Go"
	if train.CKernels {
		loops = "C"
	}
	fmt.Fprintf(stdout, "nasd %s (revision %s, %s, %s/%s, gemm %s, kernels %s)\n", version, revision, runtime.Version(), runtime.GOOS, runtime.GOARCH, train.GemmBackend, loops)
	return exitOK
}
