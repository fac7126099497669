package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// DefaultValSize is the number of training images held out for validation
// when Spec.ValSize is 0. Reference: Zoph & Le 2017, §4.1 (5,000 of CIFAR-10's
// training images held out as the validation set that gives the reward).
const DefaultValSize = 5000

// Spec says which data set to load and how to split it. The zero value loads
// Fashion-MNIST from its Debian location with the default split.
type Spec struct {
	// Name is a registered data set: "fashion-mnist" (the default if empty),
	// "mnist" or "cifar10". See Names.
	Name string `json:"name" toml:"name"`
	// Dir holds the files; "" means the data set's default directory
	// (fashion-mnist: /usr/share/datasets/fashion-mnist, mnist:
	// /usr/share/datasets/mnist; cifar10 has none and needs Dir).
	Dir string `json:"dir,omitempty" toml:"dir"`
	// ValSize is the number of training images held out for validation:
	// 0 means DefaultValSize, a negative value holds out none (Val is empty).
	ValSize int `json:"val_size" toml:"val_size"`
	// TrainSubset, if > 0, keeps a seeded random subset of this many of the
	// remaining training images; 0 keeps them all.
	TrainSubset int `json:"train_subset,omitempty" toml:"train_subset"`
	// ValSubset, if > 0, keeps this many of the ValSize validation images.
	ValSubset int `json:"val_subset,omitempty" toml:"val_subset"`
	// TestSubset, if > 0, keeps a seeded random subset of the test images.
	TestSubset int `json:"test_subset,omitempty" toml:"test_subset"`
	// Seed drives every shuffle and subset: the same Spec gives the same
	// sets, bit for bit.
	Seed uint64 `json:"seed" toml:"-"`
}

// Splits is a loaded data set. Every image is scaled to [0, 1] and then
// normalised per channel by Mean and Std, which are computed on Train alone
// (population std; a channel with std 0 is left unscaled) so nothing about
// Val or Test leaks into training.
type Splits struct {
	Train, Val, Test *Set
	Mean, Std        []float32
	// Spec is the request with its defaults filled in (Name, Dir, ValSize),
	// for logs and journals.
	Spec Spec
}

// raw is one split as it comes off disk: uint8 pixels in C, H, W order.
type raw struct {
	pix     []uint8
	labels  []uint8
	c, h, w int
	// where names the files, for messages.
	imagesAt, labelsAt string
}

func (r *raw) n() int { return len(r.labels) }

// source is a registered data set.
type source struct {
	defaultDir string // "" = Spec.Dir is required
	// missingHint is added when a file is missing from the default directory.
	missingHint string
	classes     []string
	read        func(dir, hint string) (train, test *raw, err error)
}

var registry = map[string]source{
	"fashion-mnist": {
		defaultDir:  "/usr/share/datasets/fashion-mnist",
		missingHint: "install it with `apt-get install dataset-fashion-mnist`, or pass -data-dir",
		// Reference: github.com/zalandoresearch/fashion-mnist README, "Labels".
		classes: []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"},
		read:    readIDXDir,
	},
	"mnist": {
		defaultDir:  "/usr/share/datasets/mnist",
		missingHint: "pass -data-dir with the directory holding the MNIST IDX files",
		classes:     []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
		read:        readIDXDir,
	},
	"cifar10": {
		classes: cifar10Classes,
		read:    readCIFAR10Dir,
	},
}

// Names returns the registered data set names, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// resolve fills in defaults and reports every problem with the spec that can
// be seen before reading any file.
func (s Spec) resolve() (Spec, source, error) {
	if s.Name == "" {
		s.Name = "fashion-mnist"
	}
	src, ok := registry[s.Name]
	if !ok {
		return s, src, fmt.Errorf("dataset: unknown data set %q (known: %s)", s.Name, strings.Join(Names(), ", "))
	}
	var errs []error
	if s.Dir == "" {
		s.Dir = src.defaultDir
		if s.Dir == "" {
			errs = append(errs, fmt.Errorf("dataset: %s: Spec.Dir is required (no default directory)", s.Name))
		}
	}
	if s.ValSize == 0 {
		s.ValSize = DefaultValSize
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"TrainSubset", s.TrainSubset}, {"ValSubset", s.ValSubset}, {"TestSubset", s.TestSubset}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("dataset: %s: %s = %d: must be ≥ 0 (0 = all)", s.Name, f.name, f.v))
		}
	}
	if s.ValSize < 0 && s.ValSubset > 0 {
		errs = append(errs, fmt.Errorf("dataset: %s: ValSubset = %d with ValSize = %d: no validation images to take a subset of", s.Name, s.ValSubset, s.ValSize))
	}
	return s, src, errors.Join(errs...)
}

// Load reads the data set named by spec, splits off validation images from the
// training images, takes the requested subsets and normalises all three sets
// with the training set's per-channel statistics.
//
// The split: the training indices are shuffled with spec.Seed; the first
// ValSize are validation, the rest training; TrainSubset and ValSubset take
// prefixes of those, so a smaller subset is contained in a larger one with the
// same seed. Each set keeps the files' order.
func Load(spec Spec) (*Splits, error) {
	spec, src, err := spec.resolve()
	if err != nil {
		return nil, err
	}
	hint := ""
	if spec.Dir == src.defaultDir {
		hint = src.missingHint
	}
	if fi, err := os.Stat(spec.Dir); err != nil || !fi.IsDir() {
		msg := "not a directory"
		if errors.Is(err, fs.ErrNotExist) {
			msg = "directory does not exist"
		} else if err != nil {
			msg = err.Error()
		}
		if hint != "" {
			msg += "; " + hint
		}
		return nil, fmt.Errorf("dataset: %s: %s: %s", spec.Name, spec.Dir, msg)
	}
	train, test, err := src.read(spec.Dir, hint)
	if err != nil {
		return nil, err
	}
	if err := check(spec, len(src.classes), train, test); err != nil {
		return nil, err
	}

	var p rand.PCG
	seedPCG(&p, spec.Seed, saltSplit, 0)
	perm := make([]int, train.n())
	identity(perm)
	shuffle(&p, perm)
	nVal := max(spec.ValSize, 0)
	valIdx, trainIdx := perm[:nVal], perm[nVal:]
	if spec.TrainSubset > 0 {
		trainIdx = trainIdx[:spec.TrainSubset]
	}
	if spec.ValSubset > 0 {
		valIdx = valIdx[:spec.ValSubset]
	}
	testIdx := make([]int, test.n())
	identity(testIdx)
	if spec.TestSubset > 0 {
		seedPCG(&p, spec.Seed, saltTest, 0)
		shuffle(&p, testIdx)
		testIdx = testIdx[:spec.TestSubset]
	}
	// Sorted indices keep file order and make the copies sequential reads.
	slices.Sort(trainIdx)
	slices.Sort(valIdx)
	slices.Sort(testIdx)

	mean, std := channelStats(train, trainIdx)
	lut := makeLUT(mean, std)
	out := &Splits{
		Train: materialize(train, trainIdx, lut, src.classes),
		Val:   materialize(train, valIdx, lut, src.classes),
		Test:  materialize(test, testIdx, lut, src.classes),
		Mean:  make([]float32, len(mean)),
		Std:   make([]float32, len(std)),
		Spec:  spec,
	}
	for c := range mean {
		out.Mean[c], out.Std[c] = float32(mean[c]), float32(std[c])
	}
	return out, nil
}

// check reports every inconsistency between the files and the spec at once.
func check(spec Spec, classes int, train, test *raw) error {
	var errs []error
	for _, r := range []*raw{train, test} {
		if len(r.pix) != r.n()*r.c*r.h*r.w {
			errs = append(errs, fmt.Errorf("dataset: %s has %d images but %s has %d labels",
				r.imagesAt, len(r.pix)/max(r.c*r.h*r.w, 1), r.labelsAt, r.n()))
		}
		bad, first := 0, -1
		for i, l := range r.labels {
			if int(l) >= classes {
				if bad == 0 {
					first = i
				}
				bad++
			}
		}
		if bad > 0 {
			errs = append(errs, fmt.Errorf("dataset: %s: label %d at index %d ≥ %d classes (%d such labels)",
				r.labelsAt, r.labels[first], first, classes, bad))
		}
	}
	if train.c != test.c || train.h != test.h || train.w != test.w {
		errs = append(errs, fmt.Errorf("dataset: %s has %d×%d×%d images but %s has %d×%d×%d",
			train.imagesAt, train.c, train.h, train.w, test.imagesAt, test.c, test.h, test.w))
	}
	nVal := max(spec.ValSize, 0)
	switch {
	case nVal+spec.TrainSubset > train.n():
		errs = append(errs, fmt.Errorf("dataset: %s: ValSize %d + TrainSubset %d = %d > %d training images in %s",
			spec.Name, nVal, spec.TrainSubset, nVal+spec.TrainSubset, train.n(), train.imagesAt))
	case nVal >= train.n():
		errs = append(errs, fmt.Errorf("dataset: %s: ValSize %d leaves none of the %d training images in %s for training",
			spec.Name, nVal, train.n(), train.imagesAt))
	}
	if spec.ValSubset > nVal {
		errs = append(errs, fmt.Errorf("dataset: %s: ValSubset %d > ValSize %d", spec.Name, spec.ValSubset, nVal))
	}
	if spec.TestSubset > test.n() {
		errs = append(errs, fmt.Errorf("dataset: %s: TestSubset %d > %d test images in %s",
			spec.Name, spec.TestSubset, test.n(), test.imagesAt))
	}
	return errors.Join(errs...)
}

// channelStats returns the per-channel mean and population std of the chosen
// images' pixels scaled to [0, 1]. It counts byte values (exact integer
// histograms, merged in a fixed order) so the result does not depend on the
// number of CPUs; a std of 0 is returned as 1.
func channelStats(r *raw, idx []int) (mean, std []float64) {
	hw, sz := r.h*r.w, r.c*r.h*r.w
	hists := make([][]uint64, workers(len(idx)))
	parallel(len(idx), len(hists), func(part, lo, hi int) {
		h := make([]uint64, r.c*256)
		for _, i := range idx[lo:hi] {
			img := r.pix[i*sz : (i+1)*sz]
			for c := range r.c {
				hc := h[c*256 : (c+1)*256 : (c+1)*256]
				for _, v := range img[c*hw : (c+1)*hw] {
					hc[v]++
				}
			}
		}
		hists[part] = h
	})
	mean, std = make([]float64, r.c), make([]float64, r.c)
	for c := range r.c {
		var count [256]uint64
		for _, h := range hists {
			for v := range 256 {
				count[v] += h[c*256+v]
			}
		}
		var n, sum float64
		for v, k := range count {
			n += float64(k)
			sum += float64(k) * float64(v) / 255
		}
		if n == 0 {
			mean[c], std[c] = 0, 1
			continue
		}
		m := sum / n
		var ss float64
		for v, k := range count {
			d := float64(v)/255 - m
			ss += float64(k) * d * d
		}
		mean[c], std[c] = m, math.Sqrt(ss/n)
		if std[c] == 0 {
			std[c] = 1
		}
	}
	return mean, std
}

// makeLUT maps each channel's byte values to normalised float32s, so that
// converting an image is a table look-up per pixel.
func makeLUT(mean, std []float64) []float32 {
	lut := make([]float32, len(mean)*256)
	for c := range mean {
		for v := range 256 {
			lut[c*256+v] = float32((float64(v)/255 - mean[c]) / std[c])
		}
	}
	return lut
}

// materialize builds a Set from the examples idx of r, normalised through lut.
func materialize(r *raw, idx []int, lut []float32, classes []string) *Set {
	hw, sz := r.h*r.w, r.c*r.h*r.w
	s := &Set{
		Images:     make([]float32, len(idx)*sz),
		Labels:     make([]int32, len(idx)),
		C:          r.c,
		H:          r.h,
		W:          r.w,
		Classes:    len(classes),
		ClassNames: slices.Clone(classes),
	}
	parallel(len(idx), workers(len(idx)), func(_, lo, hi int) {
		for j := lo; j < hi; j++ {
			i := idx[j]
			src := r.pix[i*sz : (i+1)*sz]
			dst := s.Images[j*sz : (j+1)*sz]
			for c := range r.c {
				l := lut[c*256 : (c+1)*256 : (c+1)*256]
				d := dst[c*hw : (c+1)*hw]
				for k, v := range src[c*hw : (c+1)*hw] {
					d[k] = l[v]
				}
			}
			s.Labels[j] = int32(r.labels[i])
		}
	})
	return s
}

// workers is how many goroutines share n examples: one per CPU, but not for
// tiny sets.
func workers(n int) int {
	return max(1, min(runtime.GOMAXPROCS(0), n/1024))
}

// parallel runs fn on k contiguous parts of [0, n).
func parallel(n, k int, fn func(part, lo, hi int)) {
	var wg sync.WaitGroup
	for p := range k {
		wg.Go(func() { fn(p, p*n/k, (p+1)*n/k) })
	}
	wg.Wait()
}

// IDX file names, shared by MNIST and Fashion-MNIST.
const (
	trainImagesIDX = "train-images-idx3-ubyte"
	trainLabelsIDX = "train-labels-idx1-ubyte"
	testImagesIDX  = "t10k-images-idx3-ubyte"
	testLabelsIDX  = "t10k-labels-idx1-ubyte"
)

// findFile returns dir/name.gz or, failing that, dir/name.
func findFile(dir, name, hint string) (string, error) {
	for _, cand := range []string{name + ".gz", name} {
		p := filepath.Join(dir, cand)
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("dataset: %w", err)
		}
	}
	if hint != "" {
		hint = "; " + hint
	}
	return "", fmt.Errorf("dataset: %s: %w (nor %s)%s", filepath.Join(dir, name+".gz"), fs.ErrNotExist, name, hint)
}

// readIDXDir reads the four (Fashion-)MNIST files concurrently.
func readIDXDir(dir, hint string) (train, test *raw, err error) {
	names := []string{trainImagesIDX, trainLabelsIDX, testImagesIDX, testLabelsIDX}
	paths := make([]string, len(names))
	var errs []error
	for i, name := range names {
		paths[i], err = findFile(dir, name, hint)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	train = &raw{c: 1, imagesAt: paths[0], labelsAt: paths[1]}
	test = &raw{c: 1, imagesAt: paths[2], labelsAt: paths[3]}
	errs = make([]error, 4)
	var wg sync.WaitGroup
	for k, r := range []*raw{train, test} {
		wg.Go(func() {
			_, r.h, r.w, r.pix, errs[2*k] = ReadIDXImages(r.imagesAt)
		})
		wg.Go(func() {
			r.labels, errs[2*k+1] = ReadIDXLabels(r.labelsAt)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// readCIFAR10Dir reads the five training batches and the test batch from dir
// or from dir/cifar-10-batches-bin, as the archive unpacks.
func readCIFAR10Dir(dir, _ string) (train, test *raw, err error) {
	if _, err := os.Stat(filepath.Join(dir, "test_batch.bin")); errors.Is(err, fs.ErrNotExist) {
		if fi, err := os.Stat(filepath.Join(dir, "cifar-10-batches-bin")); err == nil && fi.IsDir() {
			dir = filepath.Join(dir, "cifar-10-batches-bin")
		}
	}
	trainPaths := make([]string, 5)
	for i := range trainPaths {
		trainPaths[i] = filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i+1))
	}
	train = &raw{c: cifarC, h: cifarH, w: cifarW, imagesAt: filepath.Join(dir, "data_batch_{1..5}.bin")}
	test = &raw{c: cifarC, h: cifarH, w: cifarW, imagesAt: filepath.Join(dir, "test_batch.bin")}
	train.labelsAt, test.labelsAt = train.imagesAt, test.imagesAt
	var trainErr, testErr error
	var wg sync.WaitGroup
	wg.Go(func() { train.pix, train.labels, trainErr = ReadCIFAR10(trainPaths...) })
	wg.Go(func() { test.pix, test.labels, testErr = ReadCIFAR10(test.imagesAt) })
	wg.Wait()
	if err := errors.Join(trainErr, testErr); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}
