package bench

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// clock is the run's monotonic clock in nanoseconds since base.
type clock struct{ base time.Time }

func (c clock) now() int64 { return int64(time.Since(c.base)) }

// unreachableAfter ends a run whose target cannot be reconnected to.
const unreachableAfter = 30 * time.Second

// never is "not yet" on the run clock.
const never = math.MaxInt64

// phase is the shared timing of one measurement, read by every worker.
type phase struct {
	measureStart atomic.Int64 // requests scheduled at or after it are measured
	endAt        atomic.Int64 // no request is started at or after it
	stop         atomic.Bool  // stop now (interrupt, --requests reached)
	forced       atomic.Bool  // connections were closed under the workers
	limit        bool         // --requests set
	tickets      atomic.Int64 // measured requests left under --requests
}

// pacer spreads an open loop's requests: request k of a worker is due at
// start + k·interval, whatever happened to the earlier ones, and its
// latency counts from that moment (coordinated-omission correct, as wrk2).
type pacer struct {
	start    int64
	interval float64 // ns between two requests of this worker
	k        int64   // next request number
}

// due returns the scheduled time of the next request.
func (p *pacer) due() int64 { return p.start + int64(float64(p.k)*p.interval) }

// take returns how many requests (≤ max) are due at now and their first
// scheduled time; the i-th is at p.at(first+i).
func (p *pacer) take(now int64, max int) int {
	n := 0
	for n < max && p.start+int64(float64(p.k+int64(n))*p.interval) <= now {
		n++
	}
	return n
}

func (p *pacer) at(k int64) int64 { return p.start + int64(float64(k)*p.interval) }

// role of a worker.
type role uint8

const (
	roleLoad    role = iota // the scenario's operations (validators in revoke-storm)
	roleRevoker             // revoke-storm: revokes the preloaded sessions as fast as allowed
)

// worker owns one connection and its own histograms (merged at the end).
type worker struct {
	id   int
	m    *measurement
	d    driver
	role role
	rng  *rand.Rand

	pending []request
	pace    *pacer // open loop; nil = closed loop

	hists  [numOps]*hdrhistogram.Histogram
	reqs   [numOps]int64
	errs   [numOps]map[string]int64
	stale  int64
	vis    *hdrhistogram.Histogram
	lag    *hdrhistogram.Histogram // open loop: wake-up time − scheduled time after an idle wait
	seq    int64                   // creates of this worker (Redis keys)
	userN  int64                   // next user of this worker's creates
	lastRv string

	// Live progress (only with a progress line).
	pmu   sync.Mutex
	phist *hdrhistogram.Histogram
	preqs atomic.Int64
	perrs atomic.Int64
}

func newWorker(id int, m *measurement, d driver, r role) *worker {
	w := &worker{id: id, m: m, d: d, role: r, rng: rand.New(rand.NewPCG(uint64(id)+1, uint64(time.Now().UnixNano()))),
		pending: make([]request, m.cfg.Pipeline), userN: int64(id)}
	if m.progress {
		w.phist = hdrhistogram.New(histMinUS, histMaxUS, 2)
	}
	return w
}

func (w *worker) hist(o op) *hdrhistogram.Histogram {
	h := w.hists[o]
	if h == nil {
		h = newHist()
		w.hists[o] = h
	}
	return h
}

func (w *worker) lagHist() *hdrhistogram.Histogram {
	if w.lag == nil {
		w.lag = newHist()
	}
	return w.lag
}

func (w *worker) countErr(o op, code []byte) {
	m := w.errs[o]
	if m == nil {
		m = map[string]int64{}
		w.errs[o] = m
	}
	m[string(code)]++
}

// run is the worker loop: build a batch (1 request, or --pipeline), send
// it, read the replies in order, record each latency from the request's
// scheduled time.
func (w *worker) run() {
	m := w.m
	if w.role == roleRevoker {
		// Revocations start with the measured phase.
		for m.ph.measureStart.Load() == never {
			if m.ph.stop.Load() {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	var downSince time.Time
	for {
		n, first, now, ms, ok := w.batch()
		if !ok {
			return
		}
		if err := w.d.ready(); err != nil {
			// Reconnect failures are not requests; keep trying until the
			// end, or give the run up when the target stays unreachable.
			if downSince.IsZero() {
				downSince = time.Now()
			} else if time.Since(downSince) > unreachableAfter {
				m.lost.Store(true)
				m.ph.stop.Store(true)
				return
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		downSince = time.Time{}
		for j := 0; j < n; j++ {
			rq := &w.pending[j]
			if !w.next(rq) {
				n = j
				break
			}
			if w.pace != nil {
				rq.sched = w.pace.at(first + int64(j))
			} else {
				rq.sched = now
			}
			rq.measured = rq.sched >= ms
			w.d.send(rq)
		}
		if n == 0 {
			// A revoker with nothing left to revoke.
			m.revokeDone.CompareAndSwap(0, now)
			return
		}
		if err := w.d.flush(); err != nil {
			w.fail(0, n, err)
			continue
		}
		for j := 0; j < n; j++ {
			res, err := w.d.receive(&w.pending[j])
			if err != nil {
				w.fail(j, n, err)
				break
			}
			w.complete(&w.pending[j], res, now, m.clk.now())
		}
	}
}

// batch decides how many requests to send now. Open loop: sleeps until
// the next request is due and takes every due request up to --pipeline.
// It returns the batch's clock reading and the measureStart it saw: a
// request is measured (and takes a --requests ticket) iff its scheduled
// time is at or after that value.
func (w *worker) batch() (n int, first, now, ms int64, ok bool) {
	m := w.m
	max := len(w.pending)
	slept := false
	for {
		if m.ph.stop.Load() {
			return 0, 0, 0, 0, false
		}
		ms = m.ph.measureStart.Load()
		now = m.clk.now()
		if now >= m.ph.endAt.Load() {
			return 0, 0, 0, 0, false
		}
		if w.pace == nil || w.role == roleRevoker {
			n = max
		} else {
			due := w.pace.due()
			if due > now {
				// Sleep until it is due (re-checking the end at least every 50 ms).
				time.Sleep(time.Duration(min(due-now, int64(50*time.Millisecond))))
				slept = true
				continue
			}
			if slept && due >= ms {
				// How late the generator woke up for a request it was idle
				// for (timer granularity, CPU) — not time spent waiting for
				// a busy connection, which is the server's doing.
				recordNS(w.lagHist(), now-due)
			}
			first = w.pace.k
			n = w.pace.take(now, max)
			w.pace.k += int64(n)
		}
		if m.ph.limit && ms != never {
			measured := n
			if w.pace != nil && w.role != roleRevoker {
				for j := 0; j < n && w.pace.at(first+int64(j)) < ms; j++ {
					measured--
				}
			} else if now < ms {
				measured = 0
			}
			if measured > 0 {
				left := m.ph.tickets.Add(-int64(measured))
				if left < 0 {
					if int64(measured)+left <= 0 {
						m.ph.stop.Store(true)
						return 0, 0, 0, 0, false
					}
					n += int(left) // drop the measured requests without a ticket (the last ones)
				}
			}
		}
		return n, first, now, ms, true
	}
}

// next fills rq with the worker's next operation; false: nothing to do.
func (w *worker) next(rq *request) bool {
	m := w.m
	*rq = request{}
	switch {
	case w.role == roleRevoker:
		// One preloaded session after another (07-tools §2: revoke-storm
		// "revokes the preloaded sessions"), each by its ID.
		i := m.storm.next.Add(1) - 1
		if i >= int64(len(m.pool.ids)) {
			return false
		}
		rq.op, rq.idx = opRevoke, int32(i)
		m.storm.revokeSent[i].Store(true)
		return true
	case m.cfg.Scenario == ScenarioCreate:
		rq.op = opCreate
	case m.cfg.Scenario == ScenarioMixed:
		x := w.rng.IntN(m.mixTotal)
		for o := op(0); o < numOps; o++ {
			if x < m.mix[o] {
				rq.op = o
				break
			}
			x -= m.mix[o]
		}
	default: // validate, revoke-storm validators
		rq.op = opValidate
	}
	switch rq.op {
	case opValidate:
		if m.storm != nil {
			select {
			case i := <-m.storm.probes:
				rq.idx = i
				return true
			default:
			}
		}
		if m.cfg.InvalidRatio > 0 && w.rng.Float64() < m.cfg.InvalidRatio {
			rq.invalid, rq.idx = true, int32(w.rng.IntN(len(m.pool.unknown)))
			return true
		}
		rq.idx = int32(w.rng.IntN(m.validN))
	case opCreate:
		rq.user = w.userN % int64(m.pool.users)
		w.userN += int64(len(m.workers))
		rq.seq = w.seq
		w.seq++
	case opTouch, opRenew:
		rq.idx = int32(w.rng.IntN(m.validN))
	case opRevoke:
		select {
		case k := <-m.revocable:
			rq.key = k
		default:
			switch {
			case w.lastRv != "":
				rq.key = w.lastRv // idempotent revoke of an already revoked session
			case m.validN > 0:
				rq.op, rq.idx = opValidate, int32(w.rng.IntN(m.validN))
			default:
				rq.op = opCreate
				rq.user = w.userN % int64(m.pool.users)
				w.userN += int64(len(m.workers))
				rq.seq = w.seq
				w.seq++
			}
		}
	}
	return true
}

// complete classifies one reply and records it. sent is when the batch
// was handed to the connection, t when this reply was read.
func (w *worker) complete(rq *request, res result, sent, t int64) {
	m := w.m
	measured := rq.measured
	isErr := false
	var code []byte
	switch res.out {
	case outOK:
		switch {
		case rq.op == opValidate && m.storm != nil && !rq.invalid:
			if ack := m.storm.ackAt[rq.idx].Load(); ack != 0 && sent > ack {
				// Sent after the revocation was acknowledged, and still valid.
				w.stale++
				isErr, code = true, []byte(codeStale)
				select {
				case m.storm.probes <- rq.idx: // look again, to measure visibility
				default:
				}
			}
		case rq.op == opCreate && m.revocable != nil:
			if k := w.d.created(rq, res); k != "" {
				select {
				case m.revocable <- k:
				default:
				}
			}
		case rq.op == opRevoke && m.storm != nil:
			w.acked(rq.idx, t)
		case rq.op == opRevoke:
			w.lastRv = rq.key
		}
	case outInvalid:
		switch {
		case rq.invalid:
			// Expected: an unknown token of --invalid-ratio.
		case m.storm != nil && m.storm.revokeSent[rq.idx].Load() && (bytes.Equal(res.code, bTokenRevoked) || bytes.Equal(res.code, bRedisNil)):
			w.seen(rq.idx, t)
		default:
			isErr, code = true, res.code
		}
	default:
		isErr, code = true, res.code
	}
	lat := t - rq.sched
	if w.phist != nil {
		w.pmu.Lock()
		recordNS(w.phist, lat)
		w.pmu.Unlock()
		w.preqs.Add(1)
		if isErr {
			w.perrs.Add(1)
		}
	}
	if !measured {
		return
	}
	recordNS(w.hist(rq.op), lat)
	w.reqs[rq.op]++
	if isErr {
		w.countErr(rq.op, code)
	}
}

// acked records that slot i's revocation was acknowledged at t and
// queues the token for the validators to probe.
func (w *worker) acked(i int32, t int64) {
	st := w.m.storm
	st.ackAt[i].Store(t)
	if s := st.seenAt[i].Load(); s != 0 && st.recorded[i].CompareAndSwap(false, true) {
		w.visibility(s - t)
	}
	select {
	case st.probes <- i:
	default:
	}
}

// seen records the first validation that found slot i revoked.
func (w *worker) seen(i int32, t int64) {
	st := w.m.storm
	if !st.seenAt[i].CompareAndSwap(0, t) {
		return
	}
	if a := st.ackAt[i].Load(); a != 0 && st.recorded[i].CompareAndSwap(false, true) {
		w.visibility(t - a)
	}
}

func (w *worker) visibility(ns int64) {
	if w.vis == nil {
		w.vis = newHist()
	}
	recordNS(w.vis, max(ns, 0))
}

// fail counts the requests [from, n) of a batch as failed and drops the
// connection.
func (w *worker) fail(from, n int, err error) {
	w.d.broken()
	code := codeConn
	var ne net.Error
	if w.m.ph.forced.Load() || (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, os.ErrDeadlineExceeded) {
		code = codeTimeout
	}
	for j := from; j < n; j++ {
		rq := &w.pending[j]
		if w.phist != nil {
			w.preqs.Add(1)
			w.perrs.Add(1)
		}
		if !rq.measured {
			continue
		}
		w.reqs[rq.op]++
		w.countErr(rq.op, []byte(code))
	}
}

// stormState is the shared state of revoke-storm, per preloaded slot.
type stormState struct {
	next       atomic.Int64 // next preloaded slot to revoke
	revokeSent []atomic.Bool
	ackAt      []atomic.Int64 // run clock; 0 = not acknowledged
	seenAt     []atomic.Int64 // first validation that saw it revoked; 0 = none
	recorded   []atomic.Bool  // visibility recorded
	probes     chan int32     // acknowledged slots for the validators to look at first
}

func newStorm(n int) *stormState {
	return &stormState{revokeSent: make([]atomic.Bool, n), ackAt: make([]atomic.Int64, n),
		seenAt: make([]atomic.Int64, n), recorded: make([]atomic.Bool, n), probes: make(chan int32, n)}
}
