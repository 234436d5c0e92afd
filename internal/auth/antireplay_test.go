package auth

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAntiReplay_Check(t *testing.T) {
	clock := newClock()
	r := NewAntiReplay(testConfig(clock))
	now := clock.Now().UnixMilli()
	ts := strconv.FormatInt(now, 10)
	n := func(i int) string { return "nonce-" + strconv.Itoa(100000000+i) + "_~." }
	for i, tc := range []struct {
		name      string
		ts, nonce string
		required  bool
		want      error
	}{
		{"neither header, optional", "", "", false, nil},
		{"neither header, required", "", "", true, ErrReplayHeaders},
		{"only timestamp", ts, "", false, ErrReplayHeaders},
		{"only nonce", "", n(1), false, ErrReplayHeaders},
		{"nonce 15 chars", ts, strings.Repeat("a", 15), false, ErrReplayHeaders},
		{"nonce 129 chars", ts, strings.Repeat("a", 129), false, ErrReplayHeaders},
		{"nonce with slash", ts, "abcdefghijklmnop/", false, ErrReplayHeaders},
		{"nonce 16 chars", ts, strings.Repeat("b", 16), false, nil},
		{"nonce 128 chars", ts, strings.Repeat("c", 128), true, nil},
		{"timestamp unparsable", "soon", n(2), false, ErrTimestamp},
		{"timestamp in seconds", strconv.FormatInt(now/1000, 10), n(3), false, ErrTimestamp},
		{"timestamp 31 s old", strconv.FormatInt(now-31_000, 10), n(4), false, ErrTimestamp},
		{"timestamp 31 s ahead", strconv.FormatInt(now+31_000, 10), n(5), false, ErrTimestamp},
		{"timestamp 30 s old", strconv.FormatInt(now-30_000, 10), n(6), false, nil},
		{"fresh nonce", ts, n(7), true, nil},
		{"replayed nonce", ts, n(7), true, ErrNonceReused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := r.Check(tc.ts, tc.nonce, tc.required); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("case %d: got %v want %v", i, err, tc.want)
			}
		})
	}
	// A nonce rejected for its timestamp was not consumed.
	if err := r.Check(ts, n(4), false); err != nil {
		t.Fatalf("nonce consumed by a rejected request: %v", err)
	}
}

// Headers sent empty are present: malformed, not absent.
func TestAntiReplay_CheckHeaderEmptyIsPresent(t *testing.T) {
	clock := newClock()
	r := NewAntiReplay(testConfig(clock))
	ts := strconv.FormatInt(clock.Now().UnixMilli(), 10)
	for i, tc := range []struct {
		h        http.Header
		required bool
		want     error
	}{
		{http.Header{}, false, nil},
		{http.Header{}, true, ErrReplayHeaders},
		{http.Header{"X-Nonce": {""}}, false, ErrReplayHeaders},
		{http.Header{"X-Timestamp": {""}}, false, ErrReplayHeaders},
		{http.Header{"X-Timestamp": {""}, "X-Nonce": {""}}, false, ErrReplayHeaders},
		{http.Header{"X-Timestamp": {ts}, "X-Nonce": {""}}, false, ErrReplayHeaders},
		{http.Header{"X-Timestamp": {ts}, "X-Nonce": {"header-nonce-000001"}}, true, nil},
		// Integers are decimal digits (02 §2): no sign, no spaces.
		{http.Header{"X-Timestamp": {"+" + ts}, "X-Nonce": {"header-nonce-000002"}}, false, ErrTimestamp},
		{http.Header{"X-Timestamp": {" " + ts}, "X-Nonce": {"header-nonce-000003"}}, false, ErrTimestamp},
		{http.Header{"X-Timestamp": {"-1"}, "X-Nonce": {"header-nonce-000004"}}, false, ErrTimestamp},
	} {
		if err := r.CheckHeader(tc.h, tc.required); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("case %d %v: got %v want %v", i, tc.h, err, tc.want)
		}
	}
	if !ReplayHeadersSent(http.Header{"X-Nonce": {""}}) || ReplayHeadersSent(http.Header{"X-Other": {"x"}}) {
		t.Fatal("ReplayHeadersSent")
	}
}

func TestAntiReplay_NonceReusableAfterTTL(t *testing.T) {
	clock := newClock()
	r := NewAntiReplay(testConfig(clock))
	nonce := "0123456789abcdef"
	if err := r.Check(strconv.FormatInt(clock.Now().UnixMilli(), 10), nonce, false); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Second)
	if err := r.Check(strconv.FormatInt(clock.Now().UnixMilli(), 10), nonce, false); !errors.Is(err, ErrNonceReused) {
		t.Fatalf("within TTL: %v", err)
	}
	clock.Advance(time.Second)
	if err := r.Check(strconv.FormatInt(clock.Now().UnixMilli(), 10), nonce, false); err != nil {
		t.Fatalf("after TTL: %v", err)
	}
}

func TestAntiReplay_FullCacheRefusesAndEvictsNothingEarly(t *testing.T) {
	clock := newClock()
	cfg := testConfig(clock)
	cfg.AntiReplay.NonceCacheSize = 3
	r := NewAntiReplay(cfg)
	ts := func() string { return strconv.FormatInt(clock.Now().UnixMilli(), 10) }
	for i := range 3 {
		if err := r.Check(ts(), "nonce-number-000"+strconv.Itoa(i), false); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Second)
	}
	if err := r.Check(ts(), "nonce-number-0003", false); !errors.Is(err, ErrNonceCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	if err := r.Check(ts(), "nonce-number-0000", false); !errors.Is(err, ErrNonceReused) {
		t.Fatalf("oldest nonce was evicted early: %v", err)
	}
	clock.Advance(31 * time.Second) // the first nonce (t=0) expired at t=60
	if err := r.Check(ts(), "nonce-number-0003", false); err != nil {
		t.Fatalf("after the oldest expired: %v", err)
	}
	if r.Len() != 3 {
		t.Fatalf("len %d", r.Len())
	}
}
