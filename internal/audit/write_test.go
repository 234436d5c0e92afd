package audit

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
)

// Write is synchronous: the line is in the file when it returns, with the
// caller's result (success when empty), and it joins the hash chain like
// every other record. After Close it refuses.
func TestWrite_IsSynchronousKeepsTheResultAndChains(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	c := newClock("2025-03-01T12:00:00Z")
	l := open(t, dir, c, Options{})
	if err := l.Write(Record{Action: "config.load", Resource: "/etc/tokmesh/config.yaml",
		Details: map[string]any{"env": []string{"TOKMESH_CONFIG"}, "flags": []string{}}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(Record{Action: "server.stop", Resource: "tmnd-test", Result: ResultFailure, Code: "TM-SYS-5001"}); err != nil {
		t.Fatal(err)
	}
	lines, _ := allLines(t, dir) // no Close, no flush: both lines are already there
	if len(lines) != 2 {
		t.Fatalf("%d lines after two Writes", len(lines))
	}
	var first, second map[string]any
	json.Unmarshal(lines[0], &first)
	json.Unmarshal(lines[1], &second)
	if first["seq"] != 1.0 || first["action"] != "config.load" || first["result"] != "success" || first["actor"] != "system" ||
		first["prev_hash"] != ZeroHash {
		t.Fatalf("first record %s", lines[0])
	}
	if second["result"] != "failure" || second["code"] != "TM-SYS-5001" || second["prev_hash"] != hashOf(lines[0]) {
		t.Fatalf("second record %s", lines[1])
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(Record{Action: "server.stop"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if res := mustVerify(t, dir); res.Records != 2 {
		t.Fatalf("verify %+v", res)
	}
}
