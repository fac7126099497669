package dataset

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"slices"
	"testing"
	"time"
)

const fashionDir = "/usr/share/datasets/fashion-mnist"

func loadFashion(t testing.TB, spec Spec) *Splits {
	t.Helper()
	if _, err := os.Stat(fashionDir); err != nil {
		t.Skipf("Fashion-MNIST not installed at %s (apt-get install dataset-fashion-mnist): %v", fashionDir, err)
	}
	sp, err := Load(spec)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestLoadFashionMNIST(t *testing.T) {
	start := time.Now()
	sp := loadFashion(t, Spec{})
	t.Logf("loaded Fashion-MNIST in %v", time.Since(start))

	if sp.Spec.Name != "fashion-mnist" || sp.Spec.Dir != fashionDir || sp.Spec.ValSize != DefaultValSize {
		t.Errorf("resolved spec %+v", sp.Spec)
	}
	for _, c := range []struct {
		name string
		s    *Set
		n    int
	}{{"train", sp.Train, 55000}, {"val", sp.Val, 5000}, {"test", sp.Test, 10000}} {
		s := c.s
		if s.Len() != c.n || len(s.Images) != c.n*28*28 {
			t.Errorf("%s: %d examples, %d values; want %d and %d", c.name, s.Len(), len(s.Images), c.n, c.n*28*28)
		}
		if s.C != 1 || s.H != 28 || s.W != 28 || s.Classes != 10 || len(s.ClassNames) != 10 {
			t.Errorf("%s: shape %d×%d×%d, %d classes, names %v", c.name, s.C, s.H, s.W, s.Classes, s.ClassNames)
		}
	}
	if sp.Test.ClassNames[9] != "Ankle boot" {
		t.Errorf("class 9 = %q, want Ankle boot", sp.Test.ClassNames[9])
	}
	// The test set is balanced: 1,000 images per class (Xiao et al. 2017, arXiv:1708.07747, §2).
	var hist [10]int
	for _, l := range sp.Test.Labels {
		hist[l]++
	}
	for c, k := range hist {
		if k != 1000 {
			t.Errorf("test class %d has %d images, want 1000", c, k)
		}
	}
	// Raw pixel statistics of the training split; the full 60,000 have
	// mean 0.2860 and std 0.3530, and 55,000 of them cannot be far off.
	if math.Abs(float64(sp.Mean[0])-0.286) > 0.003 || math.Abs(float64(sp.Std[0])-0.353) > 0.003 {
		t.Errorf("train Mean %v Std %v, want 0.286 and 0.353 ± 0.003", sp.Mean, sp.Std)
	}
	// Normalised training pixels: mean 0 and std 1 up to float32 rounding of
	// the look-up table (relative 6e-8 per value); 1e-5 leaves a wide margin.
	mean, std := moments(sp.Train.Images)
	if math.Abs(mean) > 1e-5 || math.Abs(std-1) > 1e-5 {
		t.Errorf("normalised train mean %g std %g, want 0 and 1 ± 1e-5", mean, std)
	}
	// Val and test come from the same distribution, normalised with train's stats.
	for name, s := range map[string]*Set{"val": sp.Val, "test": sp.Test} {
		mean, std := moments(s.Images)
		if math.Abs(mean) > 0.05 || math.Abs(std-1) > 0.05 {
			t.Errorf("normalised %s mean %g std %g, want 0 and 1 ± 0.05", name, mean, std)
		}
	}
	lo, hi := slices.Min(sp.Train.Images), slices.Max(sp.Train.Images)
	wantLo, wantHi := -sp.Mean[0]/sp.Std[0], (1-sp.Mean[0])/sp.Std[0]
	if math.Abs(float64(lo-wantLo)) > 1e-6 || math.Abs(float64(hi-wantHi)) > 1e-6 {
		t.Errorf("train range [%g, %g], want [%g, %g]", lo, hi, wantLo, wantHi)
	}
}

func moments(xs []float32) (mean, std float64) {
	var sum, sq float64
	for _, v := range xs {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(xs))
	mean = sum / n
	return mean, math.Sqrt(sq/n - mean*mean)
}

func TestLoadFashionMNISTDeterministic(t *testing.T) {
	spec := Spec{TrainSubset: 2000, ValSubset: 500, TestSubset: 1000, Seed: 7}
	a := loadFashion(t, spec)
	b := loadFashion(t, spec)
	for _, p := range [][2]*Set{{a.Train, b.Train}, {a.Val, b.Val}, {a.Test, b.Test}} {
		if !sameBits(p[0], p[1]) {
			t.Fatal("same Spec gave different sets")
		}
	}
	if a.Train.Len() != 2000 || a.Val.Len() != 500 || a.Test.Len() != 1000 {
		t.Errorf("subset lens %d/%d/%d, want 2000/500/1000", a.Train.Len(), a.Val.Len(), a.Test.Len())
	}
	spec.Seed = 8
	c := loadFashion(t, spec)
	// Labels do not depend on the normalisation, so equal label sequences
	// would mean the same images were chosen.
	for _, p := range [][2]*Set{{a.Train, c.Train}, {a.Val, c.Val}, {a.Test, c.Test}} {
		if slices.Equal(p[0].Labels, p[1].Labels) {
			t.Error("seeds 7 and 8 chose the same images")
		}
	}
}

// sameBits reports whether two sets are identical bit for bit.
func sameBits(a, b *Set) bool {
	if !slices.Equal(a.Labels, b.Labels) || len(a.Images) != len(b.Images) {
		return false
	}
	for i := range a.Images {
		if math.Float32bits(a.Images[i]) != math.Float32bits(b.Images[i]) {
			return false
		}
	}
	return true
}

// TestLoadSplit checks membership exactly on a synthetic set whose images
// carry their file index.
func TestLoadSplit(t *testing.T) {
	dir := t.TempDir()
	synthIDX(t, dir, 3000, 400, 4, 4)
	members := func(sp *Splits, s *Set) []int {
		idx := make([]int, s.Len())
		for i := range idx {
			idx[i] = origIndex(sp, s, i)
			if got, want := s.Labels[i], int32(idx[i]%10); got != want {
				t.Fatalf("example %d (file index %d) has label %d, want %d", i, idx[i], got, want)
			}
		}
		if !slices.IsSorted(idx) {
			t.Errorf("set is not in file order: %v...", idx[:min(10, len(idx))])
		}
		return idx
	}

	sp, err := Load(Spec{Dir: dir, ValSize: 500, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	train, val := members(sp, sp.Train), members(sp, sp.Val)
	if len(train) != 2500 || len(val) != 500 {
		t.Fatalf("train %d val %d, want 2500 and 500", len(train), len(val))
	}
	// Disjoint and together exactly the training file.
	all := slices.Sorted(slices.Values(append(slices.Clone(train), val...)))
	for i, k := range all {
		if k != i {
			t.Fatalf("train ∪ val is not 0..2999 without repeats: position %d holds %d", i, k)
		}
	}
	if test := members(sp, sp.Test); len(test) != 400 || test[399] != 399 {
		t.Errorf("test set: %d examples ending in %d, want all 400", len(test), test[len(test)-1])
	}

	// Subsets are seeded subsets of the full split, nested by size.
	small, err := Load(Spec{Dir: dir, ValSize: 500, TrainSubset: 100, ValSubset: 50, TestSubset: 40, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	larger, err := Load(Spec{Dir: dir, ValSize: 500, TrainSubset: 200, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	smallTrain, largerTrain := members(small, small.Train), members(larger, larger.Train)
	if len(smallTrain) != 100 || !isSubset(smallTrain, largerTrain) || !isSubset(largerTrain, train) {
		t.Errorf("train subsets are not nested: 100 ⊂ 200 ⊂ 2500")
	}
	if v := members(small, small.Val); len(v) != 50 || !isSubset(v, val) {
		t.Errorf("val subset of %d is not within the validation split", len(v))
	}
	if ts := members(small, small.Test); len(ts) != 40 || ts[len(ts)-1] < 40 {
		t.Errorf("test subset %v is not a random subset of 40", ts)
	}

	// A different seed splits differently.
	other, err := Load(Spec{Dir: dir, ValSize: 500, TestSubset: 40, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(members(other, other.Val), val) {
		t.Error("seeds 1 and 2 chose the same validation images")
	}
	if slices.Equal(members(other, other.Test), members(small, small.Test)) {
		t.Error("seeds 1 and 2 chose the same test subset")
	}
	// No validation split.
	none, err := Load(Spec{Dir: dir, ValSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	if none.Train.Len() != 3000 || none.Val.Len() != 0 {
		t.Errorf("ValSize -1: train %d val %d, want 3000 and 0", none.Train.Len(), none.Val.Len())
	}
}

func isSubset(a, b []int) bool {
	for _, k := range a {
		if _, ok := slices.BinarySearch(b, k); !ok {
			return false
		}
	}
	return true
}

func TestLoadErrors(t *testing.T) {
	good := t.TempDir()
	synthIDX(t, good, 100, 20, 3, 3)

	_, err := Load(Spec{Name: "imagenet"})
	wantErr(t, err, `dataset: unknown data set "imagenet" (known: cifar10, fashion-mnist, mnist)`)

	// Every problem with the spec is reported at once.
	_, err = Load(Spec{Dir: good, TrainSubset: -1, TestSubset: -2})
	wantErr(t, err, "TrainSubset = -1: must be ≥ 0", "TestSubset = -2: must be ≥ 0")
	_, err = Load(Spec{Dir: good, ValSize: 30, TrainSubset: 80, ValSubset: 40, TestSubset: 21})
	wantErr(t, err, "ValSize 30 + TrainSubset 80 = 110 > 100 training images in "+good,
		"ValSubset 40 > ValSize 30", "TestSubset 21 > 20 test images")
	_, err = Load(Spec{Dir: good, ValSize: 100})
	wantErr(t, err, "ValSize 100 leaves none of the 100 training images")
	_, err = Load(Spec{Dir: good, ValSize: -1, ValSubset: 5})
	wantErr(t, err, "ValSubset = 5 with ValSize = -1")

	// Missing directory: the default one says how to install the data.
	_, err = Load(Spec{Name: "mnist"})
	wantErr(t, err, "dataset: mnist: /usr/share/datasets/mnist: directory does not exist; pass -data-dir")
	_, err = Load(Spec{Dir: good + "/nope"})
	wantErr(t, err, good+"/nope: directory does not exist")

	// Missing files: all are named; the default directory gets the apt hint.
	partial := t.TempDir()
	synthIDX(t, partial, 10, 10, 3, 3)
	os.Remove(partial + "/" + trainLabelsIDX)
	os.Remove(partial + "/" + testImagesIDX + ".gz")
	_, err = Load(Spec{Dir: partial, ValSize: 1})
	wantErr(t, err, partial+"/train-labels-idx1-ubyte.gz: file does not exist (nor train-labels-idx1-ubyte)",
		partial+"/t10k-images-idx3-ubyte.gz: file does not exist")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v is not fs.ErrNotExist", err)
	}
	_, _, err = readIDXDir(partial, registry["fashion-mnist"].missingHint)
	wantErr(t, err, "apt-get install dataset-fashion-mnist", "-data-dir")

	// Count mismatch and labels out of range.
	bad := t.TempDir()
	synthIDX(t, bad, 10, 10, 3, 3)
	writeFile(t, bad, trainLabelsIDX, idxLabels(make([]byte, 9)))
	writeFile(t, bad, testLabelsIDX, idxLabels([]byte{0, 1, 2, 12, 4, 5, 6, 7, 10, 9}))
	_, err = Load(Spec{Dir: bad, ValSize: 1})
	wantErr(t, err, bad+"/train-images-idx3-ubyte.gz has 10 images but "+bad+"/train-labels-idx1-ubyte has 9 labels",
		bad+"/t10k-labels-idx1-ubyte: label 12 at index 3 ≥ 10 classes (2 such labels)")

	// A corrupt file is reported with its path.
	writeFile(t, bad, trainImagesIDX+".gz", []byte("not gzip, not IDX"))
	_, err = Load(Spec{Dir: bad, ValSize: 1})
	wantErr(t, err, bad+"/train-images-idx3-ubyte.gz: not an IDX image file (magic 0x6e6f7420)")

	// Images of different sizes in train and test.
	mixed := t.TempDir()
	synthIDX(t, mixed, 10, 10, 3, 3)
	writeFile(t, mixed, testImagesIDX+".gz", idxImages(10, 3, 4, make([]byte, 120)))
	_, err = Load(Spec{Dir: mixed, ValSize: 1})
	wantErr(t, err, "has 1×3×3 images but "+mixed+"/t10k-images-idx3-ubyte.gz has 1×3×4")
}

func BenchmarkLoadFashionMNIST(b *testing.B) {
	loadFashion(b, Spec{}) // skip early, warm the page cache
	b.ResetTimer()
	for b.Loop() {
		if _, err := Load(Spec{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(70000*b.N)/b.Elapsed().Seconds(), "img/s")
}
