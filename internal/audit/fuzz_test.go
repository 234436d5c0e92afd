package audit

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseLine: parsing never panics, and a parsed record re-encodes to a
// line that parses back to the same line (the stored form is a fixed point
// after one normalization). Seeds live in testdata/fuzz.
func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"seq":1,"time":"2025-03-01T10:00:00.123Z","node_id":"n","request_id":"","actor":"system","role":"","action":"gc.run","resource":"","result":"attempt","code":"","tcp_remote_ip":"","client_ip":"","user_agent":"","details":{},"prev_hash":"` + ZeroHash + `"}`))
	f.Add([]byte(`{"seq":2,"time":"2025-03-01T10:00:00+02:00","details":{"count":18446744073709551615,"n":[1,{"a":null}]},"prev_hash":"` + strings.Repeat("ab", 32) + `"}`))
	f.Add([]byte(`{"seq":0}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := parseLine(line)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := encodeLine(&b, &r); err != nil {
			t.Fatalf("parsed record does not encode: %v", err)
		}
		line2 := bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
		if bytes.IndexByte(line2, '\n') >= 0 {
			t.Fatalf("encoded record spans lines: %q", line2)
		}
		r2, err := parseLine(line2)
		if err != nil {
			t.Fatalf("re-encoded line does not parse: %v\n%s", err, line2)
		}
		b.Reset()
		if err := encodeLine(&b, &r2); err != nil {
			t.Fatal(err)
		}
		if got := bytes.TrimSuffix(b.Bytes(), []byte{'\n'}); !bytes.Equal(got, line2) {
			t.Fatalf("not a fixed point:\n%s\n%s", line2, got)
		}
	})
}

// FuzzReverseLines: reading backwards yields exactly the lines of a forward
// split, in reverse, for any content and chunk boundary.
func FuzzReverseLines(f *testing.F) {
	f.Add([]byte("a\nbb\nccc\n"))
	f.Add([]byte("\n\n\nx"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		rl, err := newReverseLines(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			ln, off, err := rl.Next()
			if err != nil {
				break
			}
			if !bytes.HasPrefix(data[off:], ln) {
				t.Fatalf("bad offset %d", off)
			}
			got = append(got, string(ln))
		}
		var want []string
		if len(data) > 0 {
			body := strings.TrimSuffix(string(data), "\n")
			parts := strings.Split(body, "\n")
			for i := len(parts) - 1; i >= 0; i-- {
				want = append(want, parts[i])
			}
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
			t.Fatalf("got %q want %q", got, want)
		}
		if rl.Partial != (len(data) > 0 && data[len(data)-1] != '\n') {
			t.Fatal("Partial wrong")
		}
	})
}
