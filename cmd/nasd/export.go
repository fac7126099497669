package main

import (
	"fmt"
	"io"

	"nasd/arch"
	"nasd/export"
)

const exportSynopsis = "-arch FILE [-weights FILE] [-format pytorch] -o DIR [-channels N] [-cells N] [-final-network]\n\n" +
	"Writes the architecture as code of another framework: DIR/model.py, a PyTorch nn.Module\n" +
	"(class Net) with one attribute per layer and a forward() that follows nasd's lowered graph.\n" +
	"With -weights (a file from 'nasd train -save-weights'), also DIR/weights.safetensors under\n" +
	"the module's state_dict names and DIR/load.py, a loader that needs only Python and torch:\n" +
	"  cd DIR && python3 -c 'import load; net = load.load(); print(net)'\n" +
	"Only the CNN spaces (nas, enas-macro, enas-micro) export; recurrent cells do not yet.\n" +
	"Give -channels, -cells and -final-network as they were given to 'nasd train', so the\n" +
	"weights fit. See docs/export.md."

func runExport(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("export", exportSynopsis, stderr)
	archFile := fs.String("arch", "", "architecture JSON file (best.json of a search, or 'nasd space -format json')")
	weights := fs.String("weights", "", "trained weights from 'nasd train -save-weights' (safetensors); none: the model only")
	format := fs.String("format", "pytorch", "what to write: pytorch")
	dir := fs.String("o", "", "output directory (created if missing)")
	channels := fs.Int("channels", 0, "widen the architecture's space to this many channels, as 'nasd train -channels' (0 = as given)")
	cells := fs.Int("cells", 0, "normal cells per stage, as 'nasd train -cells' (0 = as given)")
	final := fs.Bool("final-network", false, "the space's final-network shape, as 'nasd train -final-network'")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *archFile == "" || *dir == "" {
		fmt.Fprintln(stderr, "nasd export: -arch and -o are required")
		fs.Usage()
		return exitUsage
	}
	if *format != "pytorch" {
		fmt.Fprintf(stderr, "nasd export: -format %q: the formats are: pytorch\n", *format)
		return exitUsage
	}
	a, space, err := arch.Load(*archFile)
	if err != nil {
		return fail(stderr, err)
	}
	if a, space, err = widen(a, space, *channels, *cells, *final); err != nil {
		return fail(stderr, fmt.Errorf("%s: %w", *archFile, err))
	}
	g, err := space.Lower(a)
	if err != nil {
		return fail(stderr, fmt.Errorf("%s: %w", *archFile, err))
	}
	var ts []export.Tensor
	if *weights != "" {
		if ts, err = export.ReadSafetensors(*weights); err != nil {
			return fail(stderr, err)
		}
	}
	title := fmt.Sprintf("Architecture %s of space %s", a.Hash(), space.Name())
	if err := export.Write(*dir, g, title, ts, *weights); err != nil {
		return fail(stderr, fmt.Errorf("%s: %w", *archFile, err))
	}
	fmt.Fprintf(stdout, "Wrote %s/model.py", *dir)
	if *weights != "" {
		fmt.Fprintf(stdout, ", %s/weights.safetensors and %s/load.py", *dir, *dir)
	}
	fmt.Fprintln(stdout)
	return exitOK
}
