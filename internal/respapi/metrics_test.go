package respapi

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/tidwall/redcon"

	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/metrics"
)

// metricValue returns the value of the series name{labels} (counter, gauge,
// or a histogram's sample count), -1 when absent.
func metricValue(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, s := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return s.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				return s.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

func TestMetrics_CommandsResultsDurationsAndConnections(t *testing.T) {
	m := metrics.New(metrics.Options{})
	e := newEnv(t, func(c *Config) { c.Metrics = m })
	ctx := context.Background()
	c := e.client(auth.RoleIssuer, 2)
	cr := create(t, c, `{"user_id":"m1"}`)
	for range 3 {
		if err := c.Do(ctx, "TM.VALIDATE", cr.Token).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c.Do(ctx, "TM.VALIDATE", "short")                         // malformed
	c.Do(ctx, "TM.VALIDATE", "tmtk_"+strings.Repeat("z", 40)) // unknown
	c.Do(ctx, "FLUSHALL")
	c.Do(ctx, "get") // wrong arity: counted under its command, as an error
	e.client(auth.RoleValidator, 2).Do(ctx, "TM.CREATE", `{"user_id":"x"}`)

	series := func(cmd, result string) float64 {
		return metricValue(t, m, "tokmesh_resp_commands_total", map[string]string{"command": cmd, "result": result})
	}
	for _, tc := range []struct {
		cmd, result string
		want        float64
	}{
		{"tm.validate", "ok", 3},
		{"tm.validate", "error", 2},
		{"tm.create", "ok", 1},
		{"tm.create", "error", 1}, // the validator's TM-AUTH-4030
		{"unknown", "error", 1},
		{"get", "error", 1},
		{"hello", "ok", 2}, // HELLO 2 AUTH …: one per client connection
	} {
		if got := series(tc.cmd, tc.result); got != tc.want {
			t.Errorf("tokmesh_resp_commands_total{command=%q,result=%q} = %v, want %v", tc.cmd, tc.result, got, tc.want)
		}
	}
	if got := metricValue(t, m, "tokmesh_resp_command_duration_seconds", map[string]string{"command": "tm.validate"}); got != 5 {
		t.Errorf("tm.validate duration samples %v, want 5", got)
	}
	// tokmesh_token_validations_total is counted by the engine for every
	// protocol (internal/server/observe_test.go).
	if got := metricValue(t, m, "tokmesh_auth_failures_total", map[string]string{"reason": "role"}); got != 1 {
		t.Errorf("role failures %v", got)
	}

	// tokmesh_resp_connections follows connections open and closed.
	base := metricValue(t, m, "tokmesh_resp_connections", nil)
	r := dialRaw(t, e.addr)
	r.send("PING")
	r.expect("+PONG")
	if got := metricValue(t, m, "tokmesh_resp_connections", nil); got != base+1 {
		t.Fatalf("connections %v after a dial, %v before", got, base)
	}
	r.c.Close()
	waitFor(t, func() bool { return metricValue(t, m, "tokmesh_resp_connections", nil) == base })
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// benchConn is a redcon.Conn that discards replies, for driving handle
// directly in benchmarks.
type benchConn struct {
	redcon.Conn
	ctx       any
	n         int
	errors    int
	pipelined bool // PeekPipeline reports a following command
}

var oneMore = make([]redcon.Command, 1)

func (c *benchConn) PeekPipeline() []redcon.Command {
	if c.pipelined {
		return oneMore
	}
	return nil
}

func (c *benchConn) failed() bool { return c.errors > 0 }

func (c *benchConn) Context() any           { return c.ctx }
func (c *benchConn) SetContext(v any)       { c.ctx = v }
func (c *benchConn) WriteBulk(b []byte)     { c.n += len(b) }
func (c *benchConn) WriteError(msg string)  { c.errors++ }
func (c *benchConn) WriteString(msg string) { c.n += len(msg) }
func (c *benchConn) RemoteAddr() string     { return "127.0.0.1:5000" }
func (c *benchConn) NetConn() net.Conn      { return nil }

// validateSetup returns an authenticated validator connection state and a
// TM.VALIDATE command for a live token.
func validateSetup(tb testing.TB, e *env) (*benchConn, redcon.Command) {
	tb.Helper()
	c := e.client(auth.RoleIssuer, 2)
	cr := create(tb, c, `{"user_id":"bench"}`)
	bc := &benchConn{}
	if !e.srv.accept(bc) {
		tb.Fatal("not accepted")
	}
	st := bc.ctx.(*connState)
	// A key whose rate limit the loop cannot reach.
	k, secret, _, err := e.keys.Create(context.Background(), auth.CreateRequest{Role: auth.RoleValidator, RateLimit: 1_000_000}, "LOCAL_ADMIN")
	if err != nil {
		tb.Fatal(err)
	}
	if aerr := e.srv.authenticate(st, k.ID+":"+secret); aerr != nil {
		tb.Fatal(aerr)
	}
	return bc, redcon.Command{Args: [][]byte{[]byte("TM.VALIDATE"), []byte(cr.Token)}}
}

// The validate hot path allocates nothing per request, metrics included.
func TestValidateHotPathDoesNotAllocate(t *testing.T) {
	for _, withMetrics := range []bool{false, true} {
		e := newEnv(t, func(c *Config) {
			if withMetrics {
				c.Metrics = metrics.New(metrics.Options{})
			}
		})
		bc, cmd := validateSetup(t, e)
		e.srv.handle(bc, cmd) // warm the reply buffer
		if bc.failed() {
			t.Fatal("TM.VALIDATE failed")
		}
		if allocs := testing.AllocsPerRun(200, func() { e.srv.handle(bc, cmd) }); allocs != 0 {
			t.Errorf("metrics %v: %v allocations per TM.VALIDATE", withMetrics, allocs)
		}
		e.srv.closedConn(bc, nil)
	}
}

// BenchmarkValidateHandler measures one TM.VALIDATE through the command
// path (lookup, auth re-check, engine, reply), without the network.
func BenchmarkValidateHandler(b *testing.B) {
	for _, mode := range []string{"metrics=off", "metrics=on", "metrics=on,pipelined"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b, func(c *Config) {
				if mode != "metrics=off" {
					c.Metrics = metrics.New(metrics.Options{})
				}
			})
			bc, cmd := validateSetup(b, e)
			bc.pipelined = strings.HasSuffix(mode, "pipelined")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				e.srv.handle(bc, cmd)
			}
			b.StopTimer()
			if bc.failed() {
				b.Fatalf("%d errors", bc.errors)
			}
			e.srv.closedConn(bc, nil)
		})
	}
}

// BenchmarkCommandMetrics is what metrics add to every command: two clock
// reads, one counter and one histogram observation.
func BenchmarkCommandMetrics(b *testing.B) {
	s := metrics.New(metrics.Options{}).RESPCommand("tm.validate")
	b.ReportAllocs()
	for range b.N {
		start := time.Now()
		s.Observe(true, time.Since(start).Seconds())
	}
}
