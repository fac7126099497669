package strategy

import "math"

// AsInt reads a whole-number option value: Go's integer types (TOML
// decodes to int64), or a float64 holding an integer (JSON, as a resumed
// run's config.json decodes).
func AsInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case uint32:
		return int64(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}
