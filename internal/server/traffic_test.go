package server

import (
	"context"
	"math"
	"testing"
	"time"
)

func TestTraffic_QPSAndP99OverTenSeconds(t *testing.T) {
	clock := time.Unix(1000, 0)
	tr := newTraffic()
	tr.now = func() time.Time { return clock }
	for i := range 1000 {
		d := 0.001 // 1 ms
		if i%100 == 0 {
			d = 0.050 // 1 % at 50 ms
		}
		tr.observe(d)
	}
	qps, p99 := tr.snapshot()
	if qps != 100 || p99 < 1 || p99 > 1.2 {
		t.Fatalf("qps %v p99 %v ms", qps, p99)
	}
	clock = clock.Add(11 * time.Second)
	if qps, _ := tr.snapshot(); qps != 0 {
		t.Fatalf("old traffic still counted: %v", qps)
	}
	if isBusinessRoute("/admin/v1/status") || isBusinessRoute("/health") || !isBusinessRoute("/tokens/validate") {
		t.Fatal("isBusinessRoute")
	}
}

// The status qps counts RESP session commands as well as HTTP business
// requests (02 §5.1: business requests; a gateway on RESP is business
// traffic), and not the connection commands (PING).
func TestTraffic_StatusCountsRESPSessionCommands(t *testing.T) {
	n := startObsNode(t, obsConfig(t), Options{})
	ctx := context.Background()
	for range 50 {
		if err := n.rdb.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.srv.traffic.snapshotCount(); got != 0 {
		t.Fatalf("PING counted as business traffic: %d", got)
	}
	for range 30 {
		if err := n.rdb.Do(ctx, "TM.VALIDATE", "tmtk_unknown_unknown_unknown_unknown_unknown1").Err(); err == nil {
			t.Fatal("unknown token validated")
		}
	}
	if got := n.srv.traffic.snapshotCount(); got != 30 {
		t.Fatalf("business requests counted: %d, want 30", got)
	}
	st, data := n.http(true, "GET", "/admin/v1/status", "")
	if qps, _ := data["qps"].(float64); st != 200 || qps != 3 {
		t.Fatalf("status %d, qps %v (30 commands over 10 s)", st, data["qps"])
	}
}

// snapshotCount is the number of requests in the 10 s window.
func (t *traffic) snapshotCount() uint64 {
	qps, _ := t.snapshot()
	return uint64(math.Round(qps * float64(len(t.slots))))
}
