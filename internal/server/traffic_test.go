package server

import (
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
