package bench

import (
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// progressLine redraws one stderr line every second: phase, elapsed time,
// the last second's rate, errors so far and the last second's p99.
type progressLine struct {
	m    *measurement
	quit chan struct{}
	done chan struct{}
}

func startProgress(m *measurement) *progressLine {
	p := &progressLine{m: m, quit: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *progressLine) loop() {
	defer close(p.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	m := p.m
	h := hdrhistogram.New(histMinUS, histMaxUS, 2)
	var lastReqs, errs int64
	began := time.Now()
	for {
		select {
		case <-p.quit:
			fmt.Fprint(m.out.Stderr, "\r\x1b[K")
			return
		case <-t.C:
		}
		h.Reset()
		var reqs int64
		errs = 0
		for _, w := range m.workers {
			w.pmu.Lock()
			h.Merge(w.phist)
			w.phist.Reset()
			w.pmu.Unlock()
			reqs += w.preqs.Load()
			errs += w.perrs.Load()
		}
		label := "warmup"
		elapsed := time.Since(began)
		if s := m.ph.measureStart.Load(); s != never {
			label = "measuring"
			elapsed = time.Duration(m.clk.now() - s)
		}
		p99 := float64(h.ValueAtQuantile(99)) / 1000
		fmt.Fprintf(m.out.Stderr, "\r\x1b[K[%s] %s %5.1fs  %8d req/s  errors %d  p99 %.3f ms",
			m.side.name, label, elapsed.Seconds(), reqs-lastReqs, errs, p99)
		lastReqs = reqs
	}
}

func (p *progressLine) stop() {
	close(p.quit)
	<-p.done
}
