package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"nasd/arch"
)

// intList is a comma-separated list flag such as "1,3,5,7".
type intList []int

func (l *intList) String() string {
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

func (l *intList) Set(s string) error {
	*l = nil
	for _, part := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return fmt.Errorf("%q is not a comma-separated list of integers", s)
		}
		*l = append(*l, v)
	}
	return nil
}

// stringList is a comma-separated list flag such as "conv3x3,maxpool3x3".
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = nil
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

// shapeFlag parses "C×H×W" written as "1x28x28".
type shapeFlag struct{ shape arch.Shape }

func (f *shapeFlag) String() string {
	if f.shape == (arch.Shape{}) {
		return ""
	}
	return fmt.Sprintf("%dx%dx%d", f.shape.C, f.shape.H, f.shape.W)
}

func (f *shapeFlag) Set(s string) error {
	parts := strings.Split(strings.ToLower(s), "x")
	if len(parts) != 3 {
		return fmt.Errorf("%q is not a shape CxHxW such as 1x28x28", s)
	}
	var dims [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 1 {
			return fmt.Errorf("%q is not a shape CxHxW such as 1x28x28", s)
		}
		dims[i] = v
	}
	f.shape = arch.Shape{C: dims[0], H: dims[1], W: dims[2]}
	return nil
}

// spaceFlags are the flags that choose and configure a search space.
type spaceFlags struct {
	name         string
	layers       int
	channels     int
	classes      int
	input        shapeFlag
	filterSizes  intList
	filterCounts intList
	strides      intList
	ops          stringList
	reduceAfter  intList
	nodes        int
	cells        int
	stages       int
	final        bool
	hidden       int
	embed        int
	base         int
	output       string
}

func (sf *spaceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&sf.name, "space", "enas-macro", "search space: "+strings.Join(arch.Names(), ", "))
	fs.IntVar(&sf.layers, "layers", 0, "number of layers (0 = the space's default)")
	fs.IntVar(&sf.channels, "channels", 0, "enas-macro: channels of every layer; enas-micro: channels of the first stage (0 = default)")
	fs.IntVar(&sf.classes, "classes", 0, "number of classes (0 = the data set's)")
	fs.Var(&sf.input, "input", "input shape CxHxW, e.g. 1x28x28 (default: the data set's)")
	fs.Var(&sf.filterSizes, "filter-sizes", "nas: filter heights/widths to choose from, e.g. 1,3,5,7")
	fs.Var(&sf.filterCounts, "filter-counts", "nas: numbers of filters to choose from, e.g. 24,36,48,64")
	fs.Var(&sf.strides, "strides", "nas: strides to choose from, e.g. 1,2")
	fs.Var(&sf.ops, "ops", "enas-macro, enas-micro: operations to choose from, e.g. conv3x3,sepconv5x5,maxpool3x3 or sep3x3,max3x3,identity")
	fs.Var(&sf.reduceAfter, "reduce-after", "enas-macro: layers followed by a 2×2 reduction, e.g. 3,7")
	fs.IntVar(&sf.nodes, "nodes", 0, "enas-micro, enas-rnn: searched nodes per cell (0 = default)")
	fs.IntVar(&sf.cells, "cells", 0, "enas-micro: normal cells per stage (0 = default)")
	fs.IntVar(&sf.stages, "stages", 0, "enas-micro: stages, a reduction cell between two (0 = default)")
	fs.IntVar(&sf.hidden, "hidden", 0, "nas-rnn, enas-rnn (and -cell lstm): units of the cell's state (0 = default 200)")
	fs.IntVar(&sf.embed, "embed", 0, "nas-rnn, enas-rnn (and -cell lstm): units of the cell's input, the word embedding (0 = -hidden)")
	fs.IntVar(&sf.base, "base", 0, "nas-rnn: leaves of the cell's tree, a power of 2 (0 = default 8)")
	fs.StringVar(&sf.output, "output", "", "enas-rnn: h_t is the mean of the loose_ends (default) or of all nodes")
	fs.BoolVar(&sf.final, "final-network", false, "enas-macro: the network ENAS retrains after a search: skips joined by concat + 1×1 conv, channels doubled after each reduction")
}

// space builds the configured space; zero options take the space's defaults,
// and input/classes fall back to the data set's when given.
func (sf *spaceFlags) space(dataInput arch.Shape, dataClasses int) (arch.Space, error) {
	opt := arch.Options{
		Layers:       sf.layers,
		Channels:     sf.channels,
		Classes:      sf.classes,
		Input:        sf.input.shape,
		FilterSizes:  sf.filterSizes,
		FilterCounts: sf.filterCounts,
		Strides:      sf.strides,
		Ops:          sf.ops,
		ReduceAfter:  sf.reduceAfter,
		Nodes:        sf.nodes,
		Cells:        sf.cells,
		Stages:       sf.stages,
		FinalNetwork: sf.final,
		Hidden:       sf.hidden,
		Embed:        sf.embed,
		Base:         sf.base,
		Output:       sf.output,
	}
	if opt.Input == (arch.Shape{}) {
		opt.Input = dataInput
	}
	if opt.Classes == 0 {
		opt.Classes = dataClasses
	}
	return arch.New(sf.name, opt)
}
