package bench

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/config"
)

// TestHTTPEncoding_AntiReplayHeaders: with anti-replay on, every write
// request carries X-Timestamp (Unix ms) and an X-Nonce of 16..128 chars of
// [A-Za-z0-9._~-] that is new each time; validations (not a write route,
// 04-security §5) and drivers without anti-replay carry neither.
func TestHTTPEncoding_AntiReplayHeaders(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Preload, cfg.Users, cfg.APIKey = 2, 2, "tmak-x:tmas_y"
	p := newPool("r1", &cfg, false)
	p.tokens[0], p.ids[0] = "tmtk_abc", "tmss-0"
	enc := func(d *httpDriver, rq request) string {
		d.send(&rq)
		return string(d.buf)
	}
	hdr := regexp.MustCompile(`\r\nX-Timestamp: (\d{13})\r\nX-Nonce: ([A-Za-z0-9._~-]{16,128})\r\nContent-Length: `)
	clk := startWallClock()
	defer clk.Close()
	d := newHTTPDriver(dialer{}, p, &cfg, clk)
	nonces := map[string]bool{}
	for _, rq := range []request{{op: opCreate}, {op: opTouch}, {op: opRenew}, {op: opRevoke}, {op: opRevoke, key: "tmss-9"}, {op: opCreate}} {
		req := enc(d, rq)
		m := hdr.FindStringSubmatch(req)
		if m == nil {
			t.Fatalf("%s: no anti-replay headers:\n%s", opNames[rq.op], req)
		}
		if ts, _ := strconv.ParseInt(m[1], 10, 64); ts < time.Now().UnixMilli()-1000 || ts > time.Now().UnixMilli() {
			t.Fatalf("X-Timestamp %d is not now", ts)
		}
		if nonces[m[2]] {
			t.Fatalf("nonce %s sent twice", m[2])
		}
		nonces[m[2]] = true
		if !strings.HasSuffix(req[:strings.Index(req, "\r\n\r\n")+4], "\r\n\r\n") || strings.Count(req, "X-Nonce") != 1 {
			t.Fatalf("malformed request:\n%s", req)
		}
	}
	if req := enc(d, request{op: opValidate}); strings.Contains(req, "X-Nonce") || strings.Contains(req, "X-Timestamp") {
		t.Fatalf("validate carries anti-replay headers:\n%s", req)
	}
	// Another driver's nonces differ (random prefix).
	m := hdr.FindStringSubmatch(enc(newHTTPDriver(dialer{}, p, &cfg, clk), request{op: opCreate}))
	if m == nil || nonces[m[2]] {
		t.Fatalf("second driver's nonce: %v", m)
	}
	if req := enc(newHTTPDriver(dialer{}, p, &cfg, nil), request{op: opCreate}); strings.Contains(req, "X-Nonce") {
		t.Fatalf("anti-replay off, yet:\n%s", req)
	}
}

// TestAntiReplayRequired_AgainstARealServer: a server with
// security.anti_replay.required refuses writes without X-Timestamp/X-Nonce
// (TM-AUTH-4016); the bench detects it and every HTTP scenario, the
// preload included, runs without errors. The shared node, which does not
// require them, is detected as such.
func TestAntiReplayRequired_AgainstARealServer(t *testing.T) {
	n, err := newNode(t.TempDir(), func(c *config.Config) { c.Security.AntiReplay.Required = true })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.srv.Close() })

	for _, sc := range []string{ScenarioValidate, ScenarioCreate, ScenarioMixed, ScenarioRevokeStorm} {
		t.Run(sc, func(t *testing.T) {
			cfg := shortConfig(n, sc, ProtoHTTP)
			cfg.Duration = time.Second
			rep, out, err := runBench(t, cfg)
			if err != nil {
				t.Fatalf("exit %d: %v\n%s", ExitCode(err), err, out)
			}
			checkSane(t, sc, &rep.Measurement)
			if sc != ScenarioValidate && !strings.Contains(out, "requires X-Timestamp/X-Nonce") {
				t.Errorf("no anti-replay note:\n%s", out)
			}
		})
	}

	cfg := shortConfig(n, ScenarioCreate, ProtoHTTP)
	if req, err := antiReplayRequired(&cfg, dialer{addr: cfg.hostPort()}); err != nil || !req {
		t.Fatalf("required node: %v %v", req, err)
	}
	shared := startNode(t)
	cfg = shortConfig(shared, ScenarioCreate, ProtoHTTP)
	if req, err := antiReplayRequired(&cfg, dialer{addr: cfg.hostPort()}); err != nil || req {
		t.Fatalf("shared node: %v %v", req, err)
	}
}
