package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/yndnr/tokmesh-go/internal/buildinfo"
	"github.com/yndnr/tokmesh-go/pkg/client"
)

// Output is where a run writes: the summary on Stdout, notices and the
// live progress line on Stderr.
type Output struct {
	Stdout, Stderr io.Writer
	// Progress shows the live line (stderr is a TTY and no --no-progress).
	Progress bool
}

// side is one target of a run: TokMesh, or Redis for --target-redis.
type side struct {
	name      string // "tokmesh" | "redis"
	addr      string // for the report
	redis     bool
	pool      *pool
	newDriver func(worker int) driver
}

// measurement is one measured run against one side.
type measurement struct {
	cfg      *Config
	side     *side
	pool     *pool
	mix      mix
	mixTotal int
	validN   int // preloaded slots that validate/touch/renew may pick
	clk      clock
	ph       phase
	storm    *stormState
	// revocable feeds mixed-scenario revokes: reserved preloaded sessions
	// and sessions created during the run.
	revocable chan string
	workers   []*worker
	progress  bool
	out       Output

	startWall, endWall time.Time
	cpu                float64 // load generator CPU seconds during the measured phase
	revokeDone         atomic.Int64
	lost               atomic.Bool // a worker could not reconnect for unreachableAfter
}

// Run executes one tokmesh-bench invocation and returns its report. The
// error's exit code (ExitCode) is 64 for usage errors, 69 when a target is
// unreachable, 1 when the server refused the setup, the error rate was
// above --max-error-rate or a revoked token validated after its
// acknowledgement; the report is returned whenever something was measured.
func Run(ctx context.Context, cfg Config, out Output) (*Report, error) {
	if out.Stdout == nil {
		out.Stdout = io.Discard
	}
	if out.Stderr == nil {
		out.Stderr = io.Discard
	}
	mx, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	var compare *Report
	if cfg.CompareFile != "" {
		if compare, err = ReadReport(cfg.CompareFile); err != nil {
			return nil, usageErr("--compare: %v", err)
		}
	}
	var tc *tls.Config
	if cfg.tls() {
		alpn := []string{"http/1.1"}
		if cfg.Protocol == ProtoRESPTLS {
			alpn = nil
		}
		if tc, err = tlsConfig(&cfg, alpn); err != nil {
			return nil, err
		}
	}
	if cfg.InvalidRatio > 0 {
		fmt.Fprintln(out.Stderr, "note: unknown tokens count as failed validations for the server's brute-force guard; "+
			"exempt the bench's address (security.brute_force.exempt) or it will be blocked (TM-AUTH-4290)")
	}
	if err := probe(ctx, &cfg, tc); err != nil {
		return nil, err
	}
	run := newRunID()
	var rd *side
	if cfg.TargetRedis != "" {
		// Redis must answer before anything is measured.
		rd = &side{name: "redis", addr: cfg.TargetRedis, redis: true, pool: newPool(run, &cfg, true)}
		var auth []string
		if cfg.RedisPassword != "" {
			auth = []string{"AUTH", cfg.RedisPassword}
		}
		rdl := dialer{addr: cfg.TargetRedis}
		rd.newDriver = func(w int) driver { return newRESPDriver(rdl, rd.pool, true, &cfg, w, auth) }
		d := rd.newDriver(0)
		err := d.ready()
		d.close()
		if err != nil {
			return nil, connectErr(rd, err)
		}
	}
	tm := &side{name: "tokmesh", addr: cfg.Target, pool: newPool(run, &cfg, false)}
	dl := dialer{addr: cfg.hostPort(), tls: tc}
	if cfg.resp() {
		id, secret, ok := strings.Cut(cfg.APIKey, ":")
		auth := []string{"AUTH", cfg.APIKey}
		if ok {
			auth = []string{"AUTH", id, secret}
		}
		tm.newDriver = func(w int) driver { return newRESPDriver(dl, tm.pool, false, &cfg, w, auth) }
	} else {
		var antiReplay *wallClock
		if cfg.Preload > 0 || cfg.Scenario != ScenarioValidate {
			required, err := antiReplayRequired(&cfg, dl)
			if err != nil {
				return nil, err
			}
			if required {
				antiReplay = startWallClock()
				defer antiReplay.Close()
				fmt.Fprintln(out.Stderr, "note: the server requires X-Timestamp/X-Nonce on writes (security.anti_replay.required): "+
					"they are sent, and its nonce cache (nonce_cache_size nonces per nonce_ttl) bounds the write rate (TM-SYS-4290 beyond it)")
			}
		}
		tm.newDriver = func(w int) driver { return newHTTPDriver(dl, tm.pool, &cfg, antiReplay) }
	}

	rep := &Report{Version: buildinfo.Version, Scenario: cfg.Scenario, Protocol: cfg.Protocol, Target: cfg.Target,
		Concurrency: cfg.Concurrency, Rate: cfg.Rate}
	m, err := measure(ctx, &cfg, mx, tm, out)
	if err != nil {
		return nil, err
	}
	if m.lost.Load() {
		return nil, unavailableErr(fmt.Errorf("lost the connection to %s and could not reconnect for %v", cfg.Target, unreachableAfter))
	}
	rep.Measurement = m.result()
	rep.DurationS = round(m.endWall.Sub(m.startWall).Seconds(), 3)
	rep.StartedAt, rep.FinishedAt = fmtTime(m.startWall), fmtTime(m.endWall)
	cpuNote(out.Stderr, "tokmesh", m)

	if rd != nil && ctx.Err() == nil {
		rm, err := measure(ctx, &cfg, mx, rd, out)
		if err != nil {
			return nil, err
		}
		if rm.lost.Load() {
			return nil, unavailableErr(fmt.Errorf("lost the connection to redis %s and could not reconnect for %v", cfg.TargetRedis, unreachableAfter))
		}
		rep.Redis = &RedisReport{Target: cfg.TargetRedis, DurationS: round(rm.endWall.Sub(rm.startWall).Seconds(), 3),
			StartedAt: fmtTime(rm.startWall), FinishedAt: fmtTime(rm.endWall), Measurement: rm.result()}
		rep.Ratio = ratioOf(&rep.Measurement, &rep.Redis.Measurement)
		cpuNote(out.Stderr, "redis", rm)
	}

	rep.WriteText(out.Stdout)
	if compare != nil {
		WriteCompare(out.Stdout, cfg.CompareFile, compare, Compare(compare, rep))
	}
	if cfg.ReportFile != "" {
		if err := rep.WriteJSON(cfg.ReportFile); err != nil {
			return rep, failedErr("writing --report: %v", err)
		}
	}
	return rep, verdict(ctx, &cfg, rep)
}

// verdict applies the exit rules: error rate and stale validations.
func verdict(ctx context.Context, cfg *Config, rep *Report) error {
	if ctx.Err() != nil {
		return failedErr("interrupted: the report covers the part that ran")
	}
	check := func(name string, m *Measurement) error {
		if m.StaleValidAfterAck != nil && *m.StaleValidAfterAck > 0 {
			return failedErr("%s: %d validations sent after a revocation was acknowledged found the token valid", name, *m.StaleValidAfterAck)
		}
		if m.Requests == 0 {
			return failedErr("%s: no request completed in the measured phase", name)
		}
		if rate := float64(m.ErrorCount()) / float64(m.Requests); rate > cfg.MaxErrorRate {
			return failedErr("%s: error rate %.4f above --max-error-rate %.4f (%s)", name, rate, cfg.MaxErrorRate, fmtCodes(m.Errors))
		}
		return nil
	}
	if err := check("tokmesh", &rep.Measurement); err != nil {
		return err
	}
	if rep.Redis != nil {
		return check("redis", &rep.Redis.Measurement)
	}
	return nil
}

func cpuNote(w io.Writer, name string, m *measurement) {
	if m.storm != nil {
		if t := m.revokeDone.Load(); t > 0 {
			start := m.ph.measureStart.Load()
			fmt.Fprintf(w, "%s: all %d preloaded sessions revoked one by one %.2f s into the measured phase\n",
				name, len(m.pool.ids), float64(t-start)/1e9)
		} else {
			fmt.Fprintf(w, "%s: the revocations did not finish within the measured phase\n", name)
		}
	}
	if m.cfg.Rate > 0 {
		var lags []*hdrhistogram.Histogram
		for _, w := range m.workers {
			if w.lag != nil {
				lags = append(lags, w.lag)
			}
		}
		l := summarize(mergeHists(lags...))
		fmt.Fprintf(w, "%s: open loop: the generator woke up %.3f ms (p50) / %.3f ms (p99) after a request's scheduled time "+
			"(timer granularity and CPU; included in the latencies)\n", name, l.P50, l.P99)
		if p99 := m.result().LatencyMS.P99; p99 > 0 && l.P99 > p99/2 {
			fmt.Fprintf(w, "%s: warning: the load generator's own delay is half or more of the p99 "+
				"(is tokmesh-bench sharing its CPU?)\n", name)
		}
	}
	d := m.endWall.Sub(m.startWall).Seconds()
	if m.cpu < 0 || d <= 0 {
		return
	}
	share := m.cpu / d * 100
	fmt.Fprintf(w, "%s: load generator used %.0f%% of one CPU during the measured phase", name, share)
	if share > 90 {
		fmt.Fprint(w, " — it may be the bottleneck; pin it to its own core")
	}
	fmt.Fprintln(w)
}

// probe checks that the target answers and that the key has the issuer
// role, which preloading, creating and revoking need, with a revoke of a
// session ID that names nothing (no side effect besides an audit record).
func probe(ctx context.Context, cfg *Config, tc *tls.Config) error {
	cc := client.Config{APIKey: cfg.APIKey, Timeout: 10 * time.Second, MaxRetries: -1, UserAgent: "tokmesh-bench"}
	switch cfg.Protocol {
	case ProtoHTTP, ProtoHTTPS:
		cc.Target = cfg.Target
		cc.TLS = tc
	case ProtoRESP:
		cc.Protocol, cc.Target = "resp", "resp://"+cfg.Target
	case ProtoRESPTLS:
		cc.Protocol, cc.Target, cc.TLS = "resp", "resps://"+cfg.Target, tc
	}
	c, err := client.New(cc)
	if err != nil {
		return usageErr("%v", err)
	}
	defer c.Close()
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	needsIssuer := cfg.Preload > 0 || cfg.Scenario != ScenarioValidate
	_, err = c.Revoke(pctx, probeSessionID)
	return setupErr(cfg, err, needsIssuer)
}

// probeSessionID names no session: revoking it has no effect.
const probeSessionID = "tmss-00000000000000000000000000"

// antiReplayRequired reports whether the HTTP target requires X-Timestamp
// and X-Nonce on write routes (security.anti_replay.required): a revoke
// that names nothing, sent without them, is refused with TM-AUTH-4016.
// The headers are sent only then: present, they are enforced, and every
// write then takes a slot of the server's nonce cache (nonce_cache_size
// per nonce_ttl, default 100,000 per 60 s), which would cap the write
// rate of a server that does not ask for them.
func antiReplayRequired(cfg *Config, dl dialer) (bool, error) {
	d := newHTTPDriver(dl, nil, cfg, nil)
	defer d.close()
	unreachable := func(err error) error {
		return unavailableErr(fmt.Errorf("target %s unreachable: %v", cfg.Target, err))
	}
	if err := d.ready(); err != nil {
		return false, unreachable(err)
	}
	rq := request{op: opRevoke, key: probeSessionID}
	d.send(&rq)
	if err := d.flush(); err != nil {
		return false, unreachable(err)
	}
	res, err := d.receive(&rq)
	if err != nil {
		return false, unreachable(err)
	}
	return res.out == outError && string(res.code) == codeReplayRequired, nil
}

// setupErr maps a failure before measuring to its exit code.
func setupErr(cfg *Config, err error, needsIssuer bool) error {
	if err == nil {
		return nil
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		switch {
		case ce.Code == "TM-AUTH-4030" && needsIssuer:
			return failedErr("the API key lacks the issuer role, which scenario %s needs to preload, create or revoke sessions (%s %s)",
				cfg.Scenario, ce.Code, ce.Message)
		case ce.Code == "TM-AUTH-4030":
			return nil
		case strings.HasPrefix(ce.Code, "TM-AUTH-401"):
			return failedErr("the API key was refused (%s %s)", ce.Code, ce.Message)
		}
		return failedErr("the server refused the setup: %s %s", ce.Code, ce.Message)
	}
	var te *client.TransportError
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &te) || errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, context.DeadlineExceeded) {
		return unavailableErr(fmt.Errorf("target %s unreachable: %v", cfg.Target, err))
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) {
		return unavailableErr(fmt.Errorf("target %s: TLS failure: %v", cfg.Target, err))
	}
	return unavailableErr(fmt.Errorf("target %s: %v", cfg.Target, err))
}

// connectErr maps a failed worker connection.
func connectErr(s *side, err error) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		if s.redis {
			return failedErr("redis %s refused the connection setup: %s %s", s.addr, ce.Code, ce.Message)
		}
		return failedErr("%s refused the connection setup: %s %s", s.addr, ce.Code, ce.Message)
	}
	return unavailableErr(fmt.Errorf("%s %s unreachable: %v", s.name, s.addr, err))
}

// measure preloads, warms up and measures one side.
func measure(ctx context.Context, cfg *Config, mx mix, s *side, out Output) (*measurement, error) {
	m := &measurement{cfg: cfg, side: s, pool: s.pool, mix: mx, mixTotal: mx.total(), clk: clock{base: time.Now()},
		progress: out.Progress, out: out}
	m.ph.measureStart.Store(never)
	m.ph.endAt.Store(never)
	m.ph.limit = cfg.Requests > 0
	m.ph.tickets.Store(cfg.Requests)

	if err := m.preload(ctx); err != nil {
		return nil, err
	}
	m.validN = len(s.pool.ids)
	switch cfg.Scenario {
	case ScenarioMixed:
		if mx[opRevoke] > 0 {
			m.revocable = make(chan string, 1<<16)
			reserve := 0
			if len(s.pool.ids) > 1 {
				reserve = max(1, len(s.pool.ids)/10)
			}
			m.validN -= reserve
			for i := m.validN; i < len(s.pool.ids); i++ {
				select {
				case m.revocable <- s.pool.ids[i]:
				default:
				}
			}
		}
	case ScenarioRevokeStorm:
		m.storm = newStorm(len(s.pool.ids))
	}

	// Connect every worker before the clock starts.
	n := cfg.Concurrency
	revokers := 0
	if m.storm != nil {
		revokers = max(1, n/4)
	}
	m.workers = make([]*worker, n)
	for i := range m.workers {
		r := roleLoad
		if i >= n-revokers {
			r = roleRevoker
		}
		m.workers[i] = newWorker(i, m, s.newDriver(i), r)
	}
	defer func() {
		for _, w := range m.workers {
			w.d.close()
		}
	}()
	if err := m.connectAll(); err != nil {
		return nil, err
	}
	if cfg.Rate > 0 {
		paced := n - revokers
		interval := float64(paced) * 1e9 / cfg.Rate
		now := m.clk.now()
		for i, w := range m.workers[:paced] {
			// Stagger the workers so the requests are evenly spread.
			w.pace = &pacer{start: now + int64(float64(i)*interval/float64(paced)), interval: interval}
		}
	}

	var wg sync.WaitGroup
	for _, w := range m.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run()
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	var prog *progressLine
	if m.progress {
		prog = startProgress(m)
	}

	// Warm-up, then the measured phase.
	if cfg.Warmup > 0 {
		t := time.NewTimer(cfg.Warmup)
		select {
		case <-ctx.Done():
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	cpu0 := cpuSeconds()
	m.startWall = time.Now()
	start := m.clk.now()
	if cfg.Duration > 0 {
		m.ph.endAt.Store(start + int64(cfg.Duration))
	}
	m.ph.measureStart.Store(start)

	var hardStop <-chan time.Time
	if cfg.Duration > 0 {
		// Requests still unanswered 10 s after the end count as timeouts.
		t := time.NewTimer(cfg.Duration + 10*time.Second)
		defer t.Stop()
		hardStop = t.C
	}
	interrupted := false
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-ctx.Done():
			if !interrupted {
				interrupted = true
				m.ph.stop.Store(true)
				t := time.NewTimer(2 * time.Second)
				defer t.Stop()
				hardStop = t.C
			}
		case <-hardStop:
			m.ph.forced.Store(true)
			m.ph.stop.Store(true)
			for _, w := range m.workers {
				w.d.abort()
			}
			hardStop = nil
		}
	}
	end := m.clk.now()
	if e := m.ph.endAt.Load(); e < end {
		end = e
	}
	m.endWall = m.startWall.Add(time.Duration(end - start))
	if cpu1 := cpuSeconds(); cpu0 >= 0 && cpu1 >= 0 {
		m.cpu = cpu1 - cpu0
	} else {
		m.cpu = -1
	}
	if prog != nil {
		prog.stop()
	}
	return m, nil
}

func (m *measurement) connectAll() error {
	errs := make([]error, len(m.workers))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, w := range m.workers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = w.d.ready()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return connectErr(m.side, err)
		}
	}
	return nil
}

// preload creates --preload sessions (Redis: keys) in parallel over the
// side's own protocol, keeping tokens and IDs in memory.
func (m *measurement) preload(ctx context.Context) error {
	p := m.pool
	total := len(p.ids)
	if total == 0 {
		return nil
	}
	conns := min(m.cfg.Concurrency, 16, total)
	batch := 1
	if m.cfg.resp() || m.side.redis {
		batch = 64
	}
	var next, done atomic.Int64
	errs := make([]error, conns)
	var wg sync.WaitGroup
	stopProg := make(chan struct{})
	if m.progress {
		go func() {
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stopProg:
					return
				case <-t.C:
					fmt.Fprintf(m.out.Stderr, "\r\x1b[K[%s] preloading %d/%d", m.side.name, done.Load(), total)
				}
			}
		}()
	}
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := m.side.newDriver(1000000 + c)
			defer d.close()
			if err := d.ready(); err != nil {
				errs[c] = connectErr(m.side, err)
				return
			}
			reqs := make([]request, batch)
			for ctx.Err() == nil {
				from := next.Add(int64(batch)) - int64(batch)
				if from >= int64(total) {
					return
				}
				n := int(min(int64(batch), int64(total)-from))
				for j := 0; j < n; j++ {
					i := int32(from) + int32(j)
					reqs[j] = request{op: opCreate, preload: true, idx: i, user: int64(int(i) % p.groups)}
					d.send(&reqs[j])
				}
				if err := d.flush(); err != nil {
					errs[c] = connectErr(m.side, err)
					return
				}
				for j := 0; j < n; j++ {
					res, err := d.receive(&reqs[j])
					if err != nil {
						errs[c] = connectErr(m.side, err)
						return
					}
					if res.out != outOK {
						errs[c] = m.preloadErr(res.code)
						return
					}
					i := reqs[j].idx
					if !m.side.redis {
						p.tokens[i] = string(jsonField(res.body, "token"))
						p.ids[i] = d.created(&reqs[j], res)
						if p.tokens[i] == "" || p.ids[i] == "" {
							errs[c] = failedErr("preload: the create reply has no token or session_id")
							return
						}
					}
				}
				done.Add(int64(n))
			}
		}()
	}
	wg.Wait()
	close(stopProg)
	if m.progress {
		fmt.Fprint(m.out.Stderr, "\r\x1b[K")
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return failedErr("interrupted during the preload")
	}
	return nil
}

func (m *measurement) preloadErr(code []byte) error {
	c := string(code)
	if c == "TM-AUTH-4030" {
		return failedErr("the API key lacks the issuer role, which preloading sessions needs (TM-AUTH-4030)")
	}
	if c == "TM-SESS-4002" {
		return failedErr("preload failed: per-user session quota exceeded (TM-SESS-4002); raise --users above --preload / session.quota.max_per_user")
	}
	if m.side.redis {
		return failedErr("redis preload failed: %s", c)
	}
	return failedErr("preload failed: the server answered %s", c)
}

// result merges the workers' histograms and counters.
func (m *measurement) result() Measurement {
	secs := m.endWall.Sub(m.startWall).Seconds()
	rps := func(n int64) float64 {
		if secs <= 0 {
			return 0
		}
		return round(float64(n)/secs, 1)
	}
	res := Measurement{Errors: map[string]int64{}, Operations: map[string]OpReport{}}
	var all []*hdrhistogram.Histogram
	var vis []*hdrhistogram.Histogram
	var stale int64
	for o := op(0); o < numOps; o++ {
		var hs []*hdrhistogram.Histogram
		var reqs int64
		errs := map[string]int64{}
		for _, w := range m.workers {
			if w.hists[o] != nil {
				hs = append(hs, w.hists[o])
			}
			reqs += w.reqs[o]
			for k, v := range w.errs[o] {
				errs[k] += v
				res.Errors[k] += v
			}
		}
		if reqs == 0 {
			continue
		}
		h := mergeHists(hs...)
		all = append(all, h)
		res.Requests += reqs
		res.Operations[opNames[o]] = OpReport{Requests: reqs, Errors: errs, ThroughputRPS: rps(reqs), LatencyMS: summarize(h)}
	}
	for _, w := range m.workers {
		stale += w.stale
		if w.vis != nil {
			vis = append(vis, w.vis)
		}
	}
	res.ThroughputRPS = rps(res.Requests)
	res.LatencyMS = summarize(mergeHists(all...))
	if m.storm != nil {
		res.StaleValidAfterAck = &stale
		vh := mergeHists(vis...)
		res.RevocationVisibility = &Visibility{Count: vh.TotalCount(), Latency: summarize(vh)}
	}
	return res
}
