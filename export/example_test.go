package export_test

import (
	"fmt"
	"strings"

	"nasd/arch"
	"nasd/export"
)

// A graph lowered by any CNN space becomes a PyTorch module; here one
// written by hand: conv → batch norm → relu → gap → dense.
func ExamplePyTorch() {
	g := &arch.Graph{Input: arch.Shape{C: 1, H: 8, W: 8}, Classes: 3, Nodes: []arch.Node{
		{Op: arch.Op{Kind: arch.KindInput}, Layer: "image"},
		{Op: arch.Op{Kind: arch.KindConv, KH: 3, KW: 3, Stride: 1, Out: 4}, Inputs: []int{0}, Layer: "stem"},
		{Op: arch.Op{Kind: arch.KindBatchNorm}, Inputs: []int{1}, Layer: "stem"},
		{Op: arch.Op{Kind: arch.KindReLU}, Inputs: []int{2}, Layer: "stem"},
		{Op: arch.Op{Kind: arch.KindGlobalAvgPool}, Inputs: []int{3}, Layer: "head"},
		{Op: arch.Op{Kind: arch.KindDense, Out: 3}, Inputs: []int{4}, Layer: "head"},
	}}
	m, err := export.PyTorch(g, "A small net")
	if err != nil {
		fmt.Println(err)
		return
	}
	code := m.Code[strings.Index(m.Code, "    def __init__"):]
	fmt.Print(code)
	fmt.Println(m.Params[0].Key, "←", m.Params[0].Store)
	// Output:
	//     def __init__(self):
	//         super().__init__()
	//         self.stem_conv1 = nn.Conv2d(1, 4, kernel_size=(3, 3), stride=1, padding=(1, 1), bias=False)
	//         self.stem_batchnorm2 = nn.BatchNorm2d(4, eps=1e-5)
	//         self.head_dense5 = nn.Linear(4, 3)
	//
	//     def forward(self, x0):
	//         x1 = self.stem_conv1(x0)  # stem, 4×8×8
	//         x2 = self.stem_batchnorm2(x1)  # stem, 4×8×8
	//         x3 = F.relu(x2)  # stem, 4×8×8
	//         x4 = x3.mean(dim=(2, 3), keepdim=True)  # head, 4×1×1
	//         x5 = self.head_dense5(x4.flatten(1))[:, :, None, None]  # head, 3×1×1
	//         return x5.flatten(1)
	// stem_conv1.weight ← node1/conv/W
}
