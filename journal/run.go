package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// File names inside a run directory.
const (
	lockName       = "run.lock"
	checkpointName = "checkpoint.zst"
	prevName       = "checkpoint.prev.zst"
	segmentPrefix  = "events-"
	segmentSuffix  = ".jsonl.zst"
	tempSuffix     = ".nasd-tmp" // WriteFileAtomic's temporary files; Create and Open remove stale ones
)

var (
	// ErrRunExists is wrapped by Create's error for a directory that already
	// holds a run (event segments or a checkpoint).
	ErrRunExists = errors.New("directory already holds a run")
	// ErrLocked is wrapped by Create's and Open's error when another process
	// (or another Run in this one) holds the run's lock.
	ErrLocked = errors.New("run is locked")
)

// Run is an open run directory. It holds the directory's lock (run.lock)
// from Create or Open until Close, so two processes never write one run.
// Its methods are safe for concurrent use.
type Run struct {
	Dir string
	// Warnings are things Create or Open noticed that the caller should log
	// but that do not stop the run: a truncated or unclosed event segment (a
	// killed writer), a file system without flock.
	Warnings []string

	ckptMu   sync.Mutex // serialises SaveCheckpoint
	mu       sync.Mutex
	lock     *os.File
	closed   bool
	log      *Log   // the open segment, if any
	lastSeq  uint64 // seq of the last event in the closed segments (or a checkpoint's, if later)
	lastSeg  int    // highest segment number in use
	ckptGood int8   // checkpoint.zst: 0 unknown, 1 verified good, -1 found bad
}

// Create makes a new run directory (and its parents) and locks it. It refuses
// a directory that already holds a run's events or checkpoint; resuming one is
// Open's job.
func Create(dir string) (*Run, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	r := &Run{Dir: dir}
	if err := r.acquire(); err != nil {
		return nil, err
	}
	segs, err := listSegments(dir)
	if err != nil {
		r.release()
		return nil, err
	}
	existing := ""
	if len(segs) > 0 {
		existing = filepath.Base(segs[0].path)
		if len(segs) > 1 {
			existing += fmt.Sprintf(" and %d more segments", len(segs)-1)
		}
	} else {
		for _, name := range []string{checkpointName, prevName} {
			if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
				existing = name
				break
			}
		}
	}
	if existing != "" {
		r.release()
		return nil, fmt.Errorf("journal: %s: %w (%s): continue it with -resume, or choose a new directory", dir, ErrRunExists, existing)
	}
	r.removeTemps()
	return r, nil
}

// Open locks an existing run directory for resuming. The directory must hold
// event segments or a checkpoint; otherwise the error wraps os.ErrNotExist.
// The next NewLog starts a new segment whose first seq follows the last event
// found on disk (or the newest checkpoint's Seq, if that is later). Truncated
// or unclosed segments found on the way are listed in r.Warnings.
func Open(dir string) (*Run, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("journal: %s: not a directory", dir)
	}
	r := &Run{Dir: dir}
	if err := r.acquire(); err != nil {
		return nil, err
	}
	fail := func(err error) (*Run, error) {
		r.release()
		return nil, err
	}
	segs, err := listSegments(dir)
	if err != nil {
		return fail(err)
	}
	var ckptSeq uint64
	haveCkpt := false
	for i, name := range []string{checkpointName, prevName} {
		seq, err := checkpointSeq(filepath.Join(dir, name))
		if err == nil {
			haveCkpt = true
			ckptSeq = max(ckptSeq, seq)
			if i == 0 {
				r.ckptGood = 1
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			haveCkpt = true // present but damaged: LoadCheckpoint reports it
			if i == 0 {
				r.ckptGood = -1
			}
		}
	}
	if len(segs) == 0 && !haveCkpt {
		return fail(fmt.Errorf("journal: %s: no %s*%s or %s: not a run to resume: %w",
			dir, segmentPrefix, segmentSuffix, checkpointName, fs.ErrNotExist))
	}
	if len(segs) > 0 {
		r.lastSeg = segs[len(segs)-1].n
	}
	// The last seq: the last event of the newest segment that has one.
	for i := len(segs) - 1; i >= 0; i-- {
		last, found, trunc, err := lastSeq(segs[i].path)
		if trunc != "" {
			r.Warnings = append(r.Warnings, trunc)
		}
		if err != nil {
			return fail(err)
		}
		if found {
			r.lastSeq = last
			break
		}
	}
	r.lastSeq = max(r.lastSeq, ckptSeq)
	r.removeTemps()
	return r, nil
}

// Close closes the open log, if any, and releases the lock. It is safe to
// call more than once.
func (r *Run) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	l := r.log
	r.mu.Unlock()
	var errs []error
	if l != nil {
		errs = append(errs, l.Close())
	}
	errs = append(errs, r.release())
	return errors.Join(errs...)
}

// WriteJSON writes v as indented JSON to the file name inside the run
// directory (best.json, summary.json), atomically: readers see the old file
// or the new one, never a mix. name must be local to the directory and must
// not be one of the journal's own files.
func (r *Run) WriteJSON(name string, v any) error {
	if !filepath.IsLocal(name) {
		return fmt.Errorf("journal: %s: WriteJSON %q: not a file name inside the run directory", r.Dir, name)
	}
	if reserved(filepath.Base(name)) {
		return fmt.Errorf("journal: %s: WriteJSON %q: that name belongs to the journal", r.Dir, name)
	}
	path := filepath.Join(r.Dir, name)
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("journal: %s: %w", path, err)
	}
	return WriteFileAtomic(path, append(b, '\n'), 0o644)
}

// WriteFileAtomic replaces path with data: it writes a temporary file in the
// same directory, sets perm (as given, without the umask), fsyncs it, renames
// it over path and fsyncs the directory. After a crash path holds either the
// old content or the new; no temporary file is left behind on error.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*"+tempSuffix)
	if err != nil {
		return fmt.Errorf("journal: %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("journal: %s: %w", path, err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a directory's entries (a created or renamed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil && syncUnsupported(err) {
		return nil // some file systems cannot fsync a directory; nothing more to do there
	}
	return err
}

// reserved reports whether name is one of the files the journal manages.
func reserved(name string) bool {
	return name == lockName || name == checkpointName || name == prevName ||
		strings.HasSuffix(name, tempSuffix) ||
		(strings.HasPrefix(name, segmentPrefix) && strings.HasSuffix(name, segmentSuffix))
}

// removeTemps deletes temporary files a crashed writer left in the run
// directory. It runs under the lock, so no one else is writing them.
func (r *Run) removeTemps() {
	ents, err := os.ReadDir(r.Dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), tempSuffix) && e.Type().IsRegular() {
			os.Remove(filepath.Join(r.Dir, e.Name()))
		}
	}
}

type segment struct {
	n    int
	path string
}

func segmentName(n int) string { return fmt.Sprintf("%s%04d%s", segmentPrefix, n, segmentSuffix) }

// listSegments returns the run's event segments in order. Names that do not
// parse (events-x.jsonl.zst) are ignored.
func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var segs []segment
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, segmentPrefix) || !strings.HasSuffix(name, segmentSuffix) || e.IsDir() {
			continue
		}
		num := strings.TrimSuffix(strings.TrimPrefix(name, segmentPrefix), segmentSuffix)
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || num[0] == '+' {
			continue
		}
		segs = append(segs, segment{n, filepath.Join(dir, name)})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].n < segs[j].n })
	return segs, nil
}
