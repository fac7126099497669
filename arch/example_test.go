package arch_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"nasd/arch"
)

func ExampleNew() {
	s, err := arch.New("nas", arch.Options{Layers: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Name(), len(s.Decisions()), "decisions")
	for _, d := range s.Decisions()[4:9] {
		fmt.Println(d.Name, d.Choices)
	}
	fmt.Printf("log10 size %.2f\n", s.Log10Size())

	_, err = arch.New("nas", arch.Options{Layers: -1, FilterSizes: []int{3, 4}})
	fmt.Println(err)
	_, err = arch.New("darts", arch.Options{})
	fmt.Println(err)
	// Output:
	// nas 15 decisions
	// layer 1 filter height [1 3 5 7]
	// layer 1 filter width [1 3 5 7]
	// layer 1 filters [24 36 48 64]
	// layer 1 stride [1 2]
	// layer 1 skip from layer 0 [no yes]
	// log10 size 7.22
	// arch: nas: options.layers = -1: must be in 1..128
	// arch: nas: options.filter_sizes[1] = 4: kernel sizes must be odd and in 1..99
	// arch: space "darts": unknown (known: enas-macro, enas-micro, enas-rnn, nas, nas-rnn)
}

func ExampleNames() {
	for _, name := range arch.Names() {
		opt, _ := arch.DefaultOptions(name)
		s, _ := arch.New(name, opt)
		if opt.Hidden > 0 { // a recurrent cell: vectors in, vectors out
			fmt.Printf("%s: %d decisions, a cell of %d units on %d inputs\n", name, len(s.Decisions()), opt.Hidden, opt.Embed)
			continue
		}
		fmt.Printf("%s: %d decisions on %v\n", name, len(s.Decisions()), opt.Input)
	}
	// Output:
	// enas-macro: 78 decisions on 1×28×28
	// enas-micro: 40 decisions on 1×28×28
	// enas-rnn: 15 decisions, a cell of 200 units on 200 inputs
	// nas: 39 decisions on 1×28×28
	// nas-rnn: 34 decisions, a cell of 200 units on 200 inputs
}

func ExampleArch_Hash() {
	s, _ := arch.New("enas-macro", arch.Options{Layers: 2})
	a, _ := s.Arch([]int{0, 4, 1}) // conv3x3; maxpool3x3 with a skip from layer 0
	fmt.Println(a.Hash())

	// The same architecture written differently: keys reordered, defaults left out.
	var b arch.Arch
	err := b.UnmarshalJSON([]byte(`{"decisions": [0, 4, 1], "options": {"layers": 2}, "space": "enas-macro"}`))
	fmt.Println(err, b.Hash() == a.Hash())
	// Output:
	// 80a6f4017e55ef65952459dfd1642588a3155177931d81e251e8de473cdcaaab
	// <nil> true
}

func ExampleWriteJSON() {
	s, _ := arch.New("nas", arch.Options{Layers: 2})
	a, _ := s.Arch([]int{2, 1, 1, 1, 1, 1, 0, 0, 1})
	arch.WriteJSON(os.Stdout, a)
	// Output:
	// {
	//   "space": "nas",
	//   "options": {"layers":2,"input":{"c":1,"h":28,"w":28},"classes":10,"filter_sizes":[1,3,5,7],"filter_counts":[24,36,48,64],"strides":[1,2]},
	//   "decisions": [2,1,1,1,1,1,0,0,1],
	//   "layers": [
	//     {"layer":0,"op":"conv 5×3, 36 filters, stride 2","inputs":["image"]},
	//     {"layer":1,"op":"conv 3×3, 24 filters, stride 1","inputs":["layer 0"]}
	//   ]
	// }
}

func ExampleLoad() {
	a, s, err := arch.Load(filepath.Join("testdata", "nas.json"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Name(), len(a.Decisions), "decisions")

	dir, _ := os.MkdirTemp("", "arch")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "best.json")
	os.WriteFile(path, []byte(`{"space": "nas", "options": {"layers": 1}, "decisions": [1, 7, 0]}`), 0o644)
	_, _, err = arch.Load(path)
	fmt.Println(strings.ReplaceAll(err.Error(), dir, "run"))
	// Output:
	// nas 39 decisions
	// arch: run/best.json: decisions: got 3, want 4
	// arch: run/best.json: decisions[1] (layer 0 filter width) = 7: want 0..3 (1, 3, 5, 7)
}

func ExampleAnalyze() {
	s, _ := arch.New("nas", arch.Options{Layers: 2})
	a, _ := s.Arch([]int{2, 1, 1, 1, 1, 1, 0, 0, 1})
	an, err := arch.Analyze(s, a)
	if err != nil {
		fmt.Println(err)
		return
	}
	arch.WriteTable(os.Stdout, an)
	// Output:
	// layer    op                              inputs   output    params      FLOPs
	// ─────────────────────────────────────────────────────────────────────────────
	// image    input                           -        1×28×28        0          0
	// layer 0  conv 5×3, 36 filters, stride 2  image    36×14×14     612    232,848
	// layer 1  conv 3×3, 24 filters, stride 1  layer 0  24×14×14   7,824  3,062,304
	// head     gap → dense 10                  layer 1  10×1×1       250      5,184
	// ─────────────────────────────────────────────────────────────────────────────
	// total                                             10×1×1     8,686  3,300,336
	// activations: 144,392 bytes per example (float32)
}

func ExampleValidate() {
	s, _ := arch.New("enas-macro", arch.Options{Layers: 4, Input: arch.Shape{C: 1, H: 4, W: 4}, ReduceAfter: []int{0, 1, 2}})
	a, _ := s.Arch(make([]int, len(s.Decisions())))
	fmt.Println(arch.Validate(s, a, arch.Budget{MaxParams: 10_000}))
	// Output:
	// arch: node 16 (maxpool, pool after layer 2): output shape 36×0×0: spatial size shrank below 1
	// arch: enas-macro: params 35,748 over budget 10,000 (largest: layer 1 with 11,808)
}

func ExampleWriteDOT() {
	s, _ := arch.New("enas-macro", arch.Options{Layers: 2, Ops: []string{"conv3x3", "maxpool3x3"}})
	a, _ := s.Arch([]int{0, 1, 1})
	arch.WriteDOT(os.Stdout, s, a)
	// Output:
	// // enas-macro d315d51f56aac196b00dc95160b1b7d5ac662dfdac3333236f5dd3c6ddb030ba
	// digraph arch {
	// 	rankdir=TB;
	// 	node [shape=box, fontname="Helvetica"];
	// 	"image" [label="image\ninput\n1×28×28"];
	// 	"stem" [label="stem\nconv 3×3, 36 filters → batchnorm\n36×28×28, 396 params"];
	// 	"layer 0" [label="layer 0\nconv3x3\n36×28×28, 11,736 params"];
	// 	"layer 1" [label="layer 1\nmaxpool3x3\n36×28×28, 72 params"];
	// 	"head" [label="head\ngap → dense 10\n10×1×1, 370 params"];
	// 	"image" -> "stem";
	// 	"stem" -> "layer 0";
	// 	"layer 0" -> "layer 1";
	// 	"layer 0" -> "layer 1" [style=dashed];
	// 	"layer 1" -> "head";
	// }
}
