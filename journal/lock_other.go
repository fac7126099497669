//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package journal

import (
	"errors"
	"os"
)

// tryLock: this platform has no flock; the run is used unlocked (Create and
// Open add a warning).
func tryLock(f *os.File) (held, unsupported bool, err error) {
	return false, true, errors.New("flock is not available on this platform")
}

func syncUnsupported(err error) bool { return false }
