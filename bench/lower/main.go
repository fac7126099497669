// Command lower writes an architecture's lowered primitive graph (arch.Graph
// JSON) for bench/pytorch_ref.py, which builds the same network from it:
//
//	go run ./bench/lower -arch bench/enas-child.json -o bench/enas-child.graph.json
//
// With -stats it prints "params=N fwd_flops=F" instead: the static parameter
// count the PyTorch peer must reproduce, and forward FLOPs per example.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"nasd/arch"
)

func main() {
	archPath := flag.String("arch", "bench/enas-child.json", "architecture JSON (nasd space -format json)")
	out := flag.String("o", "", "write the lowered graph here (default: stdout)")
	stats := flag.Bool("stats", false, "print params=N fwd_flops=F instead of the graph")
	flag.Parse()
	if err := run(*archPath, *out, *stats); err != nil {
		fmt.Fprintln(os.Stderr, "lower:", err)
		os.Exit(1)
	}
}

func run(archPath, out string, stats bool) error {
	a, s, err := arch.Load(archPath)
	if err != nil {
		return err
	}
	g, err := s.Lower(a)
	if err != nil {
		return err
	}
	st, err := g.Infer()
	if err != nil {
		return err
	}
	if stats {
		params, flops := 0, int64(0)
		for _, x := range st {
			params += x.Params
			flops += x.FLOPs
		}
		fmt.Printf("params=%d fwd_flops=%d\n", params, flops)
		return nil
	}
	data, err := Marshal(g)
	if err != nil {
		return err
	}
	if out == "" {
		_, err = os.Stdout.Write(data)
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

// Marshal is the file format: arch.Graph JSON with one node per line, so a
// diff of the committed file reads as a diff of nodes.
func Marshal(g *arch.Graph) ([]byte, error) {
	head, err := json.Marshal(struct {
		Input   arch.Shape `json:"input"`
		Classes int        `json:"classes"`
	}{g.Input, g.Classes})
	if err != nil {
		return nil, err
	}
	buf := append(head[:len(head)-1], `,"nodes":[`...)
	for i, n := range g.Nodes {
		line, err := json.Marshal(n)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, "\n "...)
		buf = append(buf, line...)
	}
	return append(buf, "\n]}\n"...), nil
}
