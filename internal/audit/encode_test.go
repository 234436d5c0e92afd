package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// reflectLine is the reference encoding: encoding/json over the wire form.
func reflectLine(t testing.TB, r *Record) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(r.toWire()); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

func checkSameAsReflect(t testing.TB, r *Record) {
	t.Helper()
	got, err := appendLine(nil, r)
	if err != nil {
		t.Fatalf("appendLine: %v", err)
	}
	if want := reflectLine(t, r); !bytes.Equal(got, want) {
		t.Fatalf("appendLine differs from encoding/json:\n got %s\nwant %s", got, want)
	}
}

func TestAppendLine_MatchesEncodingJSON(t *testing.T) {
	tricky := "q\" b\\ <script>&amp; \b\f\n\r\t \x00\x01\x1f \x7f é 日本 \u2028\u2029 \xff\xfe bad \xe2\x82 end"
	recs := []Record{
		{},
		{Seq: 1, Time: time.Date(2026, 11, 27, 1, 2, 3, 456789000, time.UTC), NodeID: "tmnd-1", PrevHash: ZeroHash},
		{Seq: math.MaxUint64, Time: time.Unix(1, 0).In(time.FixedZone("X", 3600)), RequestID: tricky, Actor: tricky,
			Role: "admin", Action: "session.create", Resource: tricky, Result: ResultSuccess, Code: "TM-X",
			TCPRemoteIP: "127.0.0.1", ClientIP: "::1", UserAgent: tricky, PrevHash: strings.Repeat("ab", 32),
			Details: map[string]any{
				"user_id": tricky, "ttl_seconds": int64(-7200), "n": 3, "u": uint64(math.MaxUint64), "i32": int32(-1),
				"ok": true, "no": false, "nil": nil, "f": 1.5e21, "g": 0.000001, "num": json.Number("12.50"),
				"list": []any{1, "x", map[string]any{"b": 2, "a": "<"}}, "nested": map[string]any{"z": nil, tricky: tricky},
				tricky: "k", "": "empty key", "bytes": []byte("hi"),
			}},
		{Details: map[string]any{}},
	}
	for i := range recs {
		checkSameAsReflect(t, &recs[i])
	}
}

// FuzzAppendLine holds the hand-written encoder to encoding/json for any
// field and Details content.
func FuzzAppendLine(f *testing.F) {
	f.Add("tmrq-1", "tmak-1", "ua <&>", "user\u2028", int64(7200), "\xff")
	f.Add("", "", "", "", int64(-1), "")
	f.Fuzz(func(t *testing.T, rid, actor, ua, user string, n int64, key string) {
		r := Record{Seq: uint64(n), Time: time.UnixMilli(n % (1 << 40)), NodeID: key, RequestID: rid, Actor: actor,
			Action: "session.create", Resource: user, UserAgent: ua, PrevHash: ZeroHash,
			Details: map[string]any{"user_id": user, "ttl_seconds": n, key: ua}}
		checkSameAsReflect(t, &r)
	})
}

// BenchmarkEncodeLine: a session.create record, hand-written vs the
// encoding/json reference.
func BenchmarkEncodeLine(b *testing.B) {
	r := Record{Seq: 123456, Time: time.Now(), NodeID: "tmnd-01m8d71b71746srbmf5ad4e659", RequestID: "tmrq-01m8d9a361tv3krbmw48ync8ks",
		Actor: "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w", Role: "issuer", Action: "session.create", Resource: "tmss-01m8d9a361tv3krbmw48ync8ks",
		Result: ResultSuccess, TCPRemoteIP: "127.0.0.1", ClientIP: "127.0.0.1", UserAgent: "go-redis/9",
		Details: map[string]any{"user_id": "u-1001", "ttl_seconds": int64(3600)}, PrevHash: ZeroHash}
	b.Run("appendLine", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for range b.N {
			buf, _ = appendLine(buf[:0], &r)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for range b.N {
			buf.Reset()
			json.NewEncoder(&buf).Encode(r.toWire())
		}
	})
}
