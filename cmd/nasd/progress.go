package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"nasd/controller"
	"nasd/train"
)

// progress shows training as a redrawn bar on a terminal, and as one line per
// epoch otherwise (batch logs must not fill with carriage returns).
type progress struct {
	out      io.Writer // epoch lines
	bar      io.Writer // nil unless stderr is a terminal
	noVal    bool      // no validation set (-val-size -1): no val acc column
	lastDraw time.Time
	drawn    bool
}

func newProgress(stdout, stderr io.Writer) *progress {
	p := &progress{out: stdout}
	if isTerminal(stderr) {
		p.bar = stderr
	}
	return p
}

// isTerminal reports whether w is a terminal. A character device is not
// enough: /dev/null is one too.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (p *progress) update(u train.Progress) {
	if e := u.EpochDone; e != nil {
		p.clear()
		epochs := "?"
		if u.Epochs > 0 {
			epochs = fmt.Sprint(u.Epochs)
		}
		test := ""
		if e.TestAcc != nil {
			test = fmt.Sprintf("  test acc %.4f", *e.TestAcc)
		}
		val := fmt.Sprintf("  val acc %.4f", e.ValAcc)
		if p.noVal {
			val = ""
		}
		fmt.Fprintf(p.out, "epoch %d/%s  train loss %.4f  train acc %.4f%s%s  (%.1fs)\n",
			e.Epoch, epochs, e.TrainLoss, e.TrainAcc, val, test, e.Seconds)
		return
	}
	p.draw(fmt.Sprint(u.Epoch), u.Step, u.StepsPerEpoch, fmt.Sprintf("%d/%d loss %.4f", u.Step, u.StepsPerEpoch, u.Loss))
}

// draw redraws the bar of an epoch (at most every 100 ms, on a terminal).
func (p *progress) draw(epoch string, step, steps int, tail string) {
	if p.bar == nil || steps == 0 || time.Since(p.lastDraw) < 100*time.Millisecond {
		return
	}
	p.lastDraw = time.Now()
	const width = 30
	done := step * width / steps
	fmt.Fprintf(p.bar, "\repoch %s [%s%s] %s ", epoch, strings.Repeat("=", done), strings.Repeat(" ", width-done), tail)
	p.drawn = true
}

func (p *progress) clear() {
	if p.drawn {
		fmt.Fprintf(p.bar, "\r%s\r", strings.Repeat(" ", 120))
		p.drawn = false
	}
}

func (p *progress) finish() { p.clear() }

// searchProgress shows a search on rank 0: a redrawn bar on a terminal, a
// line per finished trial otherwise, at most one a second (512 workers with
// short trials would fill a batch log; the event log has every trial), and
// always the one that completes the trial budget.
type searchProgress struct {
	progress
	lastDone int
	lastLine time.Time
}

// searchLineEvery is how often a search prints a progress line at most when
// stdout is not a terminal.
const searchLineEvery = time.Second

func newSearchProgress(stdout, stderr io.Writer) *searchProgress {
	return &searchProgress{progress: *newProgress(stdout, stderr)}
}

func (p *searchProgress) update(u controller.Progress) {
	budget := "∞"
	if u.Budget > 0 {
		budget = fmt.Sprint(u.Budget)
	}
	best := "-"
	if u.BestTrial != "" {
		best = fmt.Sprintf("%.4f (%s)", u.Best, u.BestTrial)
	}
	eta := ""
	if u.ETA > 0 {
		eta = " ETA " + u.ETA.Round(time.Second).String()
	}
	if p.bar == nil {
		last := u.Budget > 0 && u.Done >= u.Budget
		if u.Done != p.lastDone && (last || time.Since(p.lastLine) >= searchLineEvery) {
			p.lastDone, p.lastLine = u.Done, time.Now()
			fmt.Fprintf(p.out, "trials %d/%s  best %s  running %d  elapsed %s%s\n",
				u.Done, budget, best, u.Running, u.Elapsed.Round(time.Second), eta)
		}
		return
	}
	if time.Since(p.lastDraw) < 100*time.Millisecond && u.Done == p.lastDone {
		return
	}
	p.lastDraw, p.lastDone = time.Now(), u.Done
	const width = 30
	done := 0
	if u.Budget > 0 {
		done = min(width, u.Done*width/u.Budget)
	}
	fmt.Fprintf(p.bar, "\rtrials %d/%s [%s%s] best %s running %d%s   ", u.Done, budget,
		strings.Repeat("=", done), strings.Repeat(" ", width-done), best, u.Running, eta)
	p.drawn = true
}

// enasUpdate shows an ENAS search: a bar over the epoch's steps on a
// terminal, a line per epoch.
func (p *progress) enasUpdate(u controller.ENASProgress) {
	if u.EpochDone {
		p.clear()
		fmt.Fprintf(p.out, "epoch %d/%d  %d steps  shared loss %.4f  controller reward %.4f  (%.1fs)\n",
			u.Epoch, u.Epochs, u.StepsPerEpoch, u.SharedLoss, u.ControllerMean, u.Seconds)
		return
	}
	p.draw(fmt.Sprintf("%d/%d", u.Epoch, u.Epochs), u.Step, u.StepsPerEpoch, fmt.Sprintf("step %d/%d", u.Step, u.StepsPerEpoch))
}
