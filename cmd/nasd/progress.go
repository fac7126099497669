package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"nasd/train"
)

// progress shows training as a redrawn bar on a terminal, and as one line per
// epoch otherwise (batch logs must not fill with carriage returns).
type progress struct {
	out      io.Writer // epoch lines
	bar      io.Writer // nil unless stderr is a terminal
	lastDraw time.Time
	drawn    bool
}

func newProgress(stdout, stderr io.Writer) *progress {
	p := &progress{out: stdout}
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.bar = stderr
		}
	}
	return p
}

func (p *progress) update(u train.Progress) {
	if e := u.EpochDone; e != nil {
		p.clear()
		epochs := "?"
		if u.Epochs > 0 {
			epochs = fmt.Sprint(u.Epochs)
		}
		fmt.Fprintf(p.out, "epoch %d/%s  train loss %.4f  train acc %.4f  val acc %.4f  (%.1fs)\n",
			e.Epoch, epochs, e.TrainLoss, e.TrainAcc, e.ValAcc, e.Seconds)
		return
	}
	if p.bar == nil || u.StepsPerEpoch == 0 || time.Since(p.lastDraw) < 100*time.Millisecond {
		return
	}
	p.lastDraw = time.Now()
	const width = 30
	done := u.Step * width / u.StepsPerEpoch
	fmt.Fprintf(p.bar, "\repoch %d [%s%s] %d/%d loss %.4f ", u.Epoch, strings.Repeat("=", done), strings.Repeat(" ", width-done),
		u.Step, u.StepsPerEpoch, u.Loss)
	p.drawn = true
}

func (p *progress) clear() {
	if p.drawn {
		fmt.Fprintf(p.bar, "\r%s\r", strings.Repeat(" ", 80))
		p.drawn = false
	}
}

func (p *progress) finish() { p.clear() }
