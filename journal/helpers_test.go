package journal

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestMain doubles as a helper process for tests that need a second process
// (lock contention, kill -9): JOURNAL_HELPER selects what it does.
func TestMain(m *testing.M) {
	switch os.Getenv("JOURNAL_HELPER") {
	case "":
		os.Exit(m.Run())
	case "lock":
		helperLock(os.Getenv("JOURNAL_DIR"))
	case "kill":
		helperKill(os.Getenv("JOURNAL_DIR"))
	default:
		fmt.Fprintln(os.Stderr, "unknown JOURNAL_HELPER")
		os.Exit(2)
	}
	os.Exit(0)
}

// helperLock creates the run, says so, and holds it until stdin closes.
func helperLock(dir string) {
	r, err := Create(dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	r.Close()
}

// helperKill writes events, making each group durable (Flush and Commit in
// turn, the last one a Commit) and reporting the last seq that must survive
// a kill -9, then writes more without either and waits to be killed.
func helperKill(dir string) {
	r, err := Create(dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	l, err := r.NewLog("kill")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	i := 0
	for g := 0; g < 40; g++ {
		for k := 0; k < 1+g%5; k++ {
			i++
			trialResult(l, i)
		}
		durable := l.Flush
		if g%2 == 1 {
			durable = l.Commit
		}
		if err := durable(); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("flushed", l.Seq())
	}
	for k := 0; k < 50; k++ { // never flushed: may or may not survive
		i++
		trialResult(l, i)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// startHelper runs this test binary as a helper process.
func startHelper(t *testing.T, mode, dir string) (cmd *exec.Cmd, out *bufio.Scanner, stdin io.WriteCloser) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "JOURNAL_HELPER="+mode, "JOURNAL_DIR="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewScanner(stdout), stdin
}

// trialResult logs a typical trial_result event, the controller's most
// common one (~400 bytes of JSON).
func trialResult(l *Log, i int) {
	acc := make([]float64, 10)
	for k := range acc {
		acc[k] = 0.5 + 0.04*float64(k) + float64(i%97)*1e-4
	}
	start := time.Date(2025, 11, 29, 13, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	e := l.Event("trial_result").
		Str("trial", fmt.Sprintf("t%06d", i)).
		Str("status", "ok").
		Str("arch", fmt.Sprintf("%016x", uint64(i)*0x9E3779B97F4A7C15))
	e = Float(e, "reward", math.Pow(acc[9], 3))
	e = Floats(e, "val_acc", acc)
	e.Float64("best_val_acc", acc[9]).
		Int("params", 120000+i%5000).
		Int64("flops", 35000000+int64(i%7000)*1000).
		Int("rank", 1+i%63).
		Str("host", "node"+strconv.Itoa(17+i%8)).
		Str("start", start.Format(time.RFC3339Nano)).
		Str("end", start.Add(93*time.Second).Format(time.RFC3339Nano)).
		Float64("img_per_sec", 1834.5+float64(i%13)).
		Send()
}

// readAll reads every event of dir.
func readAll(t *testing.T, dir string) ([]Event, []string) {
	t.Helper()
	var evs []Event
	tr, err := ReadEvents(dir, func(ev Event) error {
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		t.Fatalf("ReadEvents: %v", err)
	}
	return evs, tr
}

// field decodes one field of an event.
func field(t *testing.T, ev Event, key string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ev.Raw, &m); err != nil {
		t.Fatalf("seq %d: %v", ev.Seq, err)
	}
	return m[key]
}

// copyFile copies src to dst (a snapshot of a file another writer holds open).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
