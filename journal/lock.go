package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// acquire takes run.lock: an flock held for the Run's lifetime (the kernel
// drops it when the process dies, so a killed run never leaves a stale lock).
// The file records the holder (pid, host, start) for the next one's error.
func (r *Run) acquire() error {
	path := filepath.Join(r.Dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	held, unsupported, err := tryLock(f)
	switch {
	case held:
		holder := describeHolder(f)
		f.Close()
		return fmt.Errorf("journal: %s: %w by %s: another process is writing this run", r.Dir, ErrLocked, holder)
	case unsupported:
		r.Warnings = append(r.Warnings, fmt.Sprintf("journal: %s: cannot lock (%v); make sure no other nasd writes this run", path, err))
	case err != nil:
		f.Close()
		return fmt.Errorf("journal: lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	info := fmt.Sprintf("pid %d host %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	// Best effort: the lock itself is the flock, this is only for messages.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(info), 0)
	}
	r.lock = f
	return nil
}

// release drops the lock. run.lock stays: removing it would let a third
// process lock a new file while a second still holds the old one.
func (r *Run) release() error {
	if r.lock == nil {
		return nil
	}
	err := r.lock.Close()
	r.lock = nil
	if err != nil {
		return fmt.Errorf("journal: unlock %s: %w", r.Dir, err)
	}
	return nil
}

// describeHolder reads the holder's note from the lock file: "pid 123 on
// node7 (since ...)".
func describeHolder(f *os.File) string {
	b := make([]byte, 256)
	n, _ := f.ReadAt(b, 0)
	var pid int
	var host, since string
	if k, _ := fmt.Sscanf(strings.TrimSpace(string(b[:n])), "pid %d host %s since %s", &pid, &host, &since); k >= 1 {
		s := fmt.Sprintf("pid %d", pid)
		if k >= 2 {
			s += " on " + host
		}
		if k >= 3 {
			s += " (since " + since + ")"
		}
		return s
	}
	return "another process (pid unknown)"
}
