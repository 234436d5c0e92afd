package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// Every record of a node's logger carries component and node_id
// (09-observability §2): the default component unless the logger or the
// record names one, and the node ID as set when the record is logged, also
// for loggers derived before the ID was known.
func TestWithNode_EveryRecordHasComponentAndTheCurrentNodeID(t *testing.T) {
	var buf bytes.Buffer
	l, id := WithNode(newTestLogger(&buf), "server")
	early := l.With(ComponentKey, "httpapi") // derived before the ID is known
	l.Info("starting")
	id.Set("tmnd-01abc")
	l.Info("node ready", "listeners", 2)
	early.Warn("slow request")
	l.Info("explicit", ComponentKey, "config")
	l.With(NodeIDKey, "tmnd-other").Info("own id")
	l.Info("own id in record", NodeIDKey, "tmnd-rec")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []struct{ comp, node string }{
		{"server", ""}, {"server", "tmnd-01abc"}, {"httpapi", "tmnd-01abc"}, {"config", "tmnd-01abc"},
		{"server", "tmnd-other"}, {"server", "tmnd-rec"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	for i, w := range want {
		m := decode(t, []byte(lines[i]))
		if m[ComponentKey] != w.comp || m[NodeIDKey] != w.node {
			t.Errorf("line %d: component %v node_id %v, want %q %q: %s", i, m[ComponentKey], m[NodeIDKey], w.comp, w.node, lines[i])
		}
		// No duplicate keys (JSON decoding would hide them).
		if strings.Count(lines[i], `"`+ComponentKey+`"`) != 1 || strings.Count(lines[i], `"`+NodeIDKey+`"`) != 1 {
			t.Errorf("line %d repeats a key: %s", i, lines[i])
		}
	}
	if m := decode(t, []byte(lines[1])); m["listeners"] != 2.0 {
		t.Errorf("record attributes lost: %s", lines[1])
	}
}

func TestWithNode_GroupsKeepTheFieldsAtTopLevel(t *testing.T) {
	var buf bytes.Buffer
	l, id := WithNode(newTestLogger(&buf), "server")
	id.Set("tmnd-g")
	l.WithGroup("req").Info("grouped", "n", 1)
	m := decode(t, bytes.TrimSpace(buf.Bytes()))
	if m[ComponentKey] != "server" || m[NodeIDKey] != "tmnd-g" {
		t.Fatalf("%s", buf.String())
	}
	if g, _ := m["req"].(map[string]any); g["n"] != 1.0 || g[NodeIDKey] != nil {
		t.Fatalf("group: %s", buf.String())
	}
}

func TestWithNode_KeepsRedactionAndLevel(t *testing.T) {
	var buf bytes.Buffer
	var lv slog.LevelVar
	lv.Set(slog.LevelWarn)
	l, _ := WithNode(New(&buf, &lv), "server")
	l.Info("dropped")
	l.Warn("leak "+srvToken, "secret", "x", "v", apiSec)
	out := buf.String()
	if strings.Contains(out, "dropped") || leakRE.MatchString(out) || !strings.Contains(out, Redacted) {
		t.Fatalf("%s", out)
	}
}

func TestRedactAttr_RedactsNestedKeysAndValues(t *testing.T) {
	a := RedactAttr(slog.Group("config", slog.Group("security", slog.String("password", "hunter2"),
		slog.String("key_file", "/keys/"+apiSec)), slog.Int("n", 3)))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("dump", a)
	out := buf.String()
	if strings.Contains(out, "hunter2") || leakRE.MatchString(out) || !strings.Contains(out, `"n":3`) {
		t.Fatalf("%s", out)
	}
}
