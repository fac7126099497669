package arch

import "errors"

// FieldError is a problem with one field of a configuration: an option of a
// space or a strategy, a training setting. Msg is the whole message as the
// package words it ("arch: nas: options.layers = 500: must be in 1..128");
// Path names the field structurally, by its keys from the root of the
// options the package was given ({"layers"}, {"input", "c"}, {"augment",
// "pad"}), so that a caller that knows where those options were written (a
// config file) can point at the line without reading the message. Packages
// that validate options return their problems as FieldErrors, several joined
// with errors.Join, and callers find them with errors.As.
//
// It lives here because every package that validates options imports arch.
type FieldError struct {
	Path []string
	Msg  string
}

func (e *FieldError) Error() string { return e.Msg }

// FieldPath returns the Path of the FieldError in err's chain, or nil.
func FieldPath(err error) []string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Path
	}
	return nil
}
