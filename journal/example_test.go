package journal_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"

	"nasd/journal"
)

// A run writes events and a checkpoint; a later job resumes it: the newest
// checkpoint, then the events logged after it.
func Example() {
	dir, _ := os.MkdirTemp("", "nasd-run-")
	defer os.RemoveAll(dir)

	run, err := journal.Create(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	log, _ := run.NewLog("run-1")
	log.Event("run_start").Str("strategy", "random").Send()
	journal.Float(log.Event("trial_result").Str("trial", "t000001"), "reward", 0.42).Send()
	log.Flush() // at a trial boundary
	run.SaveCheckpoint(journal.Checkpoint{Version: 1, Run: "run-1", Seq: log.Seq(), Strategy: "random", State: []byte(`{"next":2}`)})
	journal.Float(log.Event("trial_result").Str("trial", "t000002"), "reward", math.NaN()).Send()
	log.Flush()
	run.Close() // a job that ends without Close (kill -9) loses nothing flushed

	// The next job.
	run, err = journal.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer run.Close()
	c, warnings, err := run.LoadCheckpoint()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("checkpoint at seq %d, state %s, %d warnings\n", c.Seq, c.State, len(warnings))
	journal.ReadEvents(dir, func(ev journal.Event) error {
		if ev.Seq <= c.Seq {
			return nil // already in the checkpoint
		}
		var f struct {
			Trial     string   `json:"trial"`
			Reward    *float64 `json:"reward"`
			Nonfinite string   `json:"reward_nonfinite"`
		}
		json.Unmarshal(ev.Raw, &f)
		fmt.Printf("replay seq %d: %s %s reward=%v (%s)\n", ev.Seq, ev.Kind, f.Trial, f.Reward, f.Nonfinite)
		return nil
	})
	log, _ = run.NewLog("run-1")
	fmt.Println("next segment starts after seq", log.Seq())
	// Output:
	// checkpoint at seq 2, state {"next":2}, 0 warnings
	// replay seq 3: trial_result t000002 reward=<nil> (NaN)
	// next segment starts after seq 3
}
