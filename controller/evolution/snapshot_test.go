package evolution

import (
	"encoding/json"
	"strings"
	"testing"

	"nasd/controller"
)

// A snapshot taken with trials in flight (mid-generation for the GA), restored
// into a fresh strategy, continues exactly as the original.
func TestSnapshotRestoreContinues(t *testing.T) {
	space := nasSpace(t, 3)
	reward := target(space, 4)
	for _, v := range variants {
		for _, async := range []bool{false, true} {
			for _, at := range []int{0, 7, 23} { // before anything, mid-generation, later
				a := mk(t, v.strategy, space, 8, v.opts)
				da := newDriver(4, async, reward, 2)
				da.run(t, a, at)
				// Leave trials in flight: propose 6 (a GA generation of 10
				// may hand out fewer) and observe only the first two.
				ts := propose(t, a, 6)
				da.trials = append(da.trials, ts...)
				for i, tr := range ts {
					if i < 2 {
						da.result(a, t, tr)
					} else {
						da.inflight = append(da.inflight, tr)
					}
				}
				snap, err := a.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				b := mk(t, v.strategy, space, 8, v.opts)
				if err := b.Restore(snap); err != nil {
					t.Fatalf("%s: %v", v.name, err)
				}
				if again, _ := b.Snapshot(); string(again) != string(snap) {
					t.Fatalf("%s: the restored strategy's snapshot differs:\n%s\n%s", v.name, snap, again)
				}
				db := da.clone()
				da.run(t, a, at+60)
				db.run(t, b, at+60)
				sameTrials(t, v.name+" after Restore", da.trials, db.trials)
				sa, _ := a.Snapshot()
				sb, _ := b.Snapshot()
				if string(sa) != string(sb) {
					t.Fatalf("%s: snapshots differ after the same steps", v.name)
				}
			}
		}
	}
}

func TestRestoreRefuses(t *testing.T) {
	space := nasSpace(t, 2)
	for _, v := range variants {
		a := mk(t, v.strategy, space, 3, v.opts)
		ts := propose(t, a, 5)
		observe(t, a, ts[0], 0.5)
		snap, err := a.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		other := map[string]any{"population": int64(12)}
		if v.name == "ga-steady" {
			other["steady_state"] = true
		}
		edit := func(f func(m map[string]any)) []byte {
			var m map[string]any
			if err := json.Unmarshal(snap, &m); err != nil {
				t.Fatal(err)
			}
			f(m)
			b, _ := json.Marshal(m)
			return b
		}
		for _, c := range []struct {
			what string
			s    controller.Strategy
			b    []byte
			want string
		}{
			{"another seed", mk(t, v.strategy, space, 4, v.opts), snap, "seed"},
			{"other options", mk(t, v.strategy, space, 3, other), snap, "options"},
			{"another space", mk(t, v.strategy, nasSpace(t, 3), 3, v.opts), snap, "space nas with 9 decisions"},
			{"garbage", mk(t, v.strategy, space, 3, v.opts), []byte("{"), "restore"},
			{"a newer version", mk(t, v.strategy, space, 3, v.opts), edit(func(m map[string]any) { m["version"] = 2 }), "version"},
			{"a bad trial number", mk(t, v.strategy, space, 3, v.opts), edit(func(m map[string]any) { m["next"] = 2 }), "trial number"},
		} {
			err := c.s.Restore(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: Restore of %s: %v, want an error about %q", v.name, c.what, err, c.want)
			}
		}
		if err := mk(t, NameAging, space, 3, nil).Restore(func() []byte {
			b, _ := mk(t, NameGA, space, 3, nil).Snapshot()
			return b
		}()); err == nil || !strings.Contains(err.Error(), "strategy") {
			t.Errorf("aging restores a ga snapshot: %v", err)
		}
		// The in-flight trials are still expected by the restored copy,
		// and no others.
		b := mk(t, v.strategy, space, 3, v.opts)
		if err := b.Restore(snap); err != nil {
			t.Fatal(err)
		}
		if err := b.Observe(controller.Result{TrialID: ts[0].ID, Status: "ok"}); err == nil {
			t.Errorf("%s: the restored copy accepts %s a second time", v.name, ts[0].ID)
		}
		for _, tr := range ts[1:] {
			observe(t, b, tr, 0.1)
		}
	}
}

// The snapshot's size does not grow with the run: population and the dedupe
// window bound it.
func TestSnapshotBounded(t *testing.T) {
	space := nasSpace(t, 3)
	reward := target(space, 1)
	for _, v := range variants {
		opts := map[string]any{"dedupe_window": int64(50)}
		for k, x := range v.opts {
			opts[k] = x
		}
		s := mk(t, v.strategy, space, 1, opts)
		d := newDriver(3, false, reward, 1)
		d.run(t, s, 100)
		small, _ := s.Snapshot()
		d.run(t, s, 1000)
		big, _ := s.Snapshot()
		// Trial numbers gain a digit or so; nothing else may grow.
		if len(big) > len(small)*11/10 {
			t.Errorf("%s: snapshot grew from %d to %d bytes between trials 100 and 1000", v.name, len(small), len(big))
		}
	}
}
