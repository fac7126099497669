package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateRefusesExistingRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "run") // parents made
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A directory with a lock file but no events is still new.
	r.Close()
	r, err = Create(dir)
	if err != nil {
		t.Fatalf("Create again before any event: %v", err)
	}
	l, _ := r.NewLog("x")
	l.Event("a").Send()
	r.Close()

	_, err = Create(dir)
	if !errors.Is(err, ErrRunExists) || !strings.Contains(err.Error(), dir) ||
		!strings.Contains(err.Error(), "events-0001.jsonl.zst") || !strings.Contains(err.Error(), "-resume") {
		t.Fatalf("Create on a run: %v", err)
	}
	t.Log(err)

	// A checkpoint alone also makes it a run.
	dir2 := t.TempDir()
	r, _ = Create(dir2)
	r.SaveCheckpoint(sampleCheckpoint(1))
	r.Close()
	if _, err := Create(dir2); !errors.Is(err, ErrRunExists) || !strings.Contains(err.Error(), "checkpoint.zst") {
		t.Fatalf("Create on a checkpointed run: %v", err)
	}
	// And the refusal did not leave it locked.
	r, err = Open(dir2)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

func TestOpen(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := Open(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing dir: %v", err)
	}
	empty := t.TempDir()
	if _, err := Open(empty); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "not a run to resume") {
		t.Fatalf("empty dir: %v", err)
	}
	file := filepath.Join(empty, "f")
	os.WriteFile(file, nil, 0o644)
	if _, err := Open(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("file: %v", err)
	}

	// Seqs continue after a checkpoint that is ahead of the log (it cannot
	// be, with SaveCheckpoint's flush, but a log lost to a disk problem must
	// not make seqs repeat).
	dir := t.TempDir()
	r, _ := Create(dir)
	l, _ := r.NewLog("o")
	for i := 0; i < 5; i++ {
		l.Event("e").Send()
	}
	l.Close()
	r.SaveCheckpoint(sampleCheckpoint(40))
	r.Close()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, _ = r.NewLog("o")
	if l.Seq() != 40 {
		t.Fatalf("seq after a checkpoint at 40: %d", l.Seq())
	}
	l.Event("e").Send()
	r.Close()
	evs, _ := readAll(t, dir)
	if evs[len(evs)-1].Seq != 41 {
		t.Fatalf("last seq %d", evs[len(evs)-1].Seq)
	}

	// Seqs continue past an empty newest segment, and temp files left by a
	// crash are removed.
	r, _ = Open(dir)
	r.NewLog("o") // segment 3, never written
	r.Close()
	os.WriteFile(filepath.Join(dir, ".best.json.123"+tempSuffix), []byte("x"), 0o644)
	r, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l, _ = r.NewLog("o")
	if l.Seq() != 41 || filepath.Base(l.Path()) != "events-0004.jsonl.zst" {
		t.Fatalf("seq %d in %s", l.Seq(), l.Path())
	}
	for _, name := range listDir(t, dir) {
		if strings.HasSuffix(name, tempSuffix) {
			t.Fatalf("stale temp file %s kept", name)
		}
	}
}

// Damage in the newest segment stops Open: resuming would lose its events.
func TestOpenCorruptSegment(t *testing.T) {
	dir := t.TempDir()
	writeRawSegment(t, filepath.Join(dir, segmentName(1)), ev1, "not json")
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "events-0001.jsonl.zst: line 2") {
		t.Fatalf("Open: %v", err)
	}
	// Open released the lock on the way out.
	os.Remove(filepath.Join(dir, segmentName(1)))
	writeRawSegment(t, filepath.Join(dir, segmentName(1)), ev1)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

func TestLockContention(t *testing.T) {
	dir := t.TempDir()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	// In this process: a second Run on the same directory.
	_, err = Open(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d on ", os.Getpid())) {
		t.Fatalf("second Open: %v", err)
	}
	if _, err := Create(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Create: %v", err)
	}
	r.Close()

	// Another process holds it: the error names that process.
	cmd, out, stdin := startHelper(t, "lock", dir)
	if !out.Scan() || out.Text() != "locked" {
		t.Fatalf("helper: %q", out.Text())
	}
	_, err = Create(dir)
	want := fmt.Sprintf("locked by pid %d on ", cmd.Process.Pid)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Create while another process holds the run: %v (want %q)", err, want)
	}
	t.Log(err)
	stdin.Close()
	cmd.Wait()
	// Released when it exits.
	r, err = Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.txt")
	for _, content := range []string{"one", "two, longer", ""} {
		if err := WriteFileAtomic(path, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Fatalf("read %q, %v; want %q", b, err, content)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	// Failing: the target is a non-empty directory. No temp file stays.
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "d", "f"), nil, 0o644)
	err := WriteFileAtomic(filepath.Join(dir, "d"), []byte("x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "d")) {
		t.Fatalf("over a directory: %v", err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), nil, 0o644); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("into a missing directory: %v", err)
	}
	if got := strings.Join(listDir(t, dir), " "); got != "d x.txt" {
		t.Fatalf("files left: %s", got)
	}
	// A relative path in the working directory.
	t.Chdir(dir)
	if err := WriteFileAtomic("rel.txt", []byte("r"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWriteJSON(t *testing.T) {
	r := newRun(t)
	best := map[string]any{"trial": "t000042", "reward": 0.91}
	if err := r.WriteJSON("best.json", best); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(r.Dir, "best.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil || got["trial"] != "t000042" || !strings.HasSuffix(string(b), "}\n") {
		t.Fatalf("best.json: %s %v", b, err)
	}
	if err := r.WriteJSON("summary.json", map[string]float64{"best": math.NaN()}); err == nil ||
		!strings.Contains(err.Error(), filepath.Join(r.Dir, "summary.json")) || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("NaN: %v", err)
	}
	for _, name := range []string{"../x.json", "/tmp/x.json", "", "checkpoint.zst", "events-0001.jsonl.zst", "run.lock"} {
		if err := r.WriteJSON(name, 1); err == nil {
			t.Fatalf("WriteJSON(%q) accepted", name)
		}
	}
	if got := strings.Join(listDir(t, r.Dir), " "); got != "best.json run.lock" {
		t.Fatalf("files: %s", got)
	}
}
