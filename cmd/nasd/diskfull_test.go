package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"nasd/journal"
)

// TestSearchDiskFull runs a search on a real filesystem that fills up (a
// 48 KiB tmpfs): the search stops with exit 1 and an error naming the file
// and the cause; the newest checkpoint and every flushed event stay
// readable; once there is space again, -resume finishes the search with
// every trial once. It needs root (mount) and skips without.
func TestSearchDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	const trials = 3000
	cfg := writeConfig(t, `
mode = "async"
workers = 2
[budget]
trials = 3000
checkpoint_every = "50ms"
[space]
name = "nas"
layers = 3
[trainer]
kind = "surrogate"
[trainer.surrogate]
duration = "1ms"
`)
	dir := filepath.Join(mnt, "run")
	code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", dir)
	if code != exitError || !strings.Contains(errOut, "no space left on device") || !strings.Contains(errOut, dir) {
		t.Fatalf("search on a full disk: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := strings.Count(errOut, "nasd: "); n != 1 {
		t.Errorf("the error is printed %d times:\n%s", n, errOut)
	}
	run, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := run.LoadCheckpoint(); err != nil {
		t.Errorf("the checkpoint is unreadable after the disk filled: %v", err)
	}
	run.Close()
	before := readLogged(t, dir) // fails the test if the log is damaged
	if len(before.results) == 0 || len(before.results) >= trials {
		t.Fatalf("%d results before the disk filled", len(before.results))
	}
	if out, err := exec.Command("mount", "-o", "remount,size=16m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	if code, out, errOut := nasd(t, "search", "-resume", dir); code != exitOK {
		t.Fatalf("resume with space again: exit %d\n%s\n%s", code, out, errOut)
	}
	readLogged(t, dir).check(t, trials)
	t.Logf("%d results logged before the disk filled; resumed to %d", len(before.results), trials)
}
