package train

// reluForwardGo writes y = max(x, 0) (NaN stays NaN).
func reluForwardGo[T Float](x, y []T) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] = max(v, 0)
	}
}

// addToGo writes y = a + b; y may be a.
func addToGo[T Float](a, b, y []T) {
	a, b = a[:len(y)], b[:len(y)]
	for i, v := range a {
		y[i] = v + b[i]
	}
}
