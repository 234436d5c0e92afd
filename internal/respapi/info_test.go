package respapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/auth"
)

// bulk reads one bulk-string reply.
func (r *raw) bulk() string {
	r.t.Helper()
	h := r.line()
	if !strings.HasPrefix(h, "$") {
		r.t.Fatalf("not a bulk reply: %q", h)
	}
	n, _ := strconv.Atoi(h[1:])
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r.rd, buf); err != nil {
		r.t.Fatal(err)
	}
	return string(buf[:n])
}

// info sends INFO [sections] and parses the reply: section → key → value,
// checking the Redis layout (CRLF lines, "# Title", blank line between
// sections).
func (r *raw) info(sections ...string) map[string]map[string]string {
	r.t.Helper()
	r.send(append([]string{"INFO"}, sections...)...)
	text := r.bulk()
	out := map[string]map[string]string{}
	if text == "" {
		return out
	}
	if !strings.HasSuffix(text, "\r\n") || strings.Contains(strings.ReplaceAll(text, "\r\n", ""), "\n") {
		r.t.Fatalf("INFO lines must end in CRLF: %q", text)
	}
	var cur map[string]string
	lines := strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "# "):
			if i > 0 && lines[i-1] != "" {
				r.t.Fatalf("no blank line before %q", l)
			}
			cur = map[string]string{}
			out[strings.ToLower(l[2:])] = cur
		case l == "":
		default:
			k, v, ok := strings.Cut(l, ":")
			if !ok || cur == nil {
				r.t.Fatalf("bad INFO line %q", l)
			}
			cur[k] = v
		}
	}
	return out
}

func (r *raw) auth(e *env, role auth.Role) {
	r.send("AUTH", e.creds[role][0], e.creds[role][1])
	r.expect("+OK")
}

func num(t *testing.T, sec map[string]string, key string) int64 {
	t.Helper()
	v, ok := sec[key]
	if !ok {
		t.Fatalf("INFO field %s missing", key)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("INFO %s:%s is not an integer", key, v)
	}
	return n
}

// INFO has every field of 03-resp-api §5 with the right values.
func TestInfo_EveryFieldPresentAndRight(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConns = 2 })
	r := dialRaw(t, e.addr)
	r.auth(e, auth.RoleIssuer)

	all := r.info()
	if len(all) != 3 || all["server"] == nil || all["stats"] == nil || all["keyspace"] == nil {
		t.Fatalf("sections %v", all)
	}
	for _, arg := range []string{"default", "all", "everything", "ALL"} {
		if got := r.info(arg); len(got) != 3 {
			t.Fatalf("INFO %s: %d sections", arg, len(got))
		}
	}
	if got := r.info("stats"); len(got) != 1 || got["stats"] == nil {
		t.Fatalf("INFO stats: %v", got)
	}
	if got := r.info("server", "keyspace"); len(got) != 2 || got["stats"] != nil {
		t.Fatalf("INFO server keyspace: %v", got)
	}
	r.send("INFO", "nosuchsection")
	r.expect("$0")
	r.expect("")

	// Server.
	srv := all["server"]
	_, port, _ := net.SplitHostPort(e.addr)
	for k, want := range map[string]string{
		"redis_version": "7.2.0", "tokmesh_mode": "standalone", "tokmesh_node_id": e.eng.Node().NodeID,
		"os": runtime.GOOS, "arch_bits": strconv.Itoa(strconv.IntSize), "process_id": strconv.Itoa(os.Getpid()),
		"tcp_port": port,
	} {
		if srv[k] != want {
			t.Errorf("server %s:%q, want %q", k, srv[k], want)
		}
	}
	if srv["tokmesh_version"] == "" {
		t.Error("tokmesh_version empty")
	}
	if up := num(t, srv, "uptime_in_seconds"); up < 0 || up > 60 {
		t.Errorf("uptime_in_seconds %d", up)
	}
	if len(srv) != 9 {
		t.Errorf("server has %d fields: %v", len(srv), srv)
	}

	// Stats: connections and commands.
	st := r.info("stats")["stats"]
	if len(st) != 8 {
		t.Errorf("stats has %d fields: %v", len(st), st)
	}
	if n := num(t, st, "total_connections_received"); n != 1 {
		t.Errorf("total_connections_received %d, want 1", n)
	}
	if n := num(t, st, "rejected_connections"); n != 0 {
		t.Errorf("rejected_connections %d", n)
	}
	before := num(t, st, "total_commands_processed")
	r.send("PING")
	r.expect("+PONG")
	r.send("NOSUCHCOMMAND")
	r.line()
	if n := num(t, r.info("stats")["stats"], "total_commands_processed"); n != before+3 { // PING, unknown, INFO
		t.Errorf("total_commands_processed %d, want %d", n, before+3)
	}
	second := dialRaw(t, e.addr) // the limit is 2
	second.send("PING")
	second.expect("+PONG")
	third := dialRaw(t, e.addr)
	third.expect("-ERR max number of clients reached")
	st = r.info("stats")["stats"]
	if a, rej := num(t, st, "total_connections_received"), num(t, st, "rejected_connections"); a != 2 || rej != 1 {
		t.Errorf("accepted %d rejected %d, want 2 and 1 (a refused connection is not received)", a, rej)
	}

	// Keyspace hits and misses (Redis-native reads) and validations.
	r.send("TM.CREATE", `{"user_id":"info"}`, "TTL", "600")
	var cr created
	if err := json.Unmarshal([]byte(r.bulk()), &cr); err != nil {
		t.Fatal(err)
	}
	st = r.info("stats")["stats"]
	hits, misses := num(t, st, "keyspace_hits"), num(t, st, "keyspace_misses")
	valid, invalid := num(t, st, "tokmesh_validations_valid"), num(t, st, "tokmesh_validations_invalid")
	r.send("GET", cr.SessionID)
	r.bulk()
	r.send("GET", "tmss-nope")
	r.expect("$-1")
	r.send("EXISTS", cr.SessionID, "nope")
	r.expect(":1")
	r.send("TTL", cr.SessionID)
	r.line()
	r.send("TM.VALIDATE", cr.Token)
	r.bulk()
	r.send("TM.VALIDATE", cr.Token, "TOUCH")
	r.bulk()
	r.send("TM.VALIDATE", "tmtk_"+strings.Repeat("n", 40))
	r.line()
	st = r.info("stats")["stats"]
	for k, want := range map[string]int64{"keyspace_hits": hits + 3, "keyspace_misses": misses + 2,
		"tokmesh_validations_valid": valid + 2, "tokmesh_validations_invalid": invalid + 1} {
		if got := num(t, st, k); got != want {
			t.Errorf("%s %d, want %d", k, got, want)
		}
	}

	// Keyspace: live sessions, all with an expiry, and their mean TTL.
	ks := r.info("keyspace")["keyspace"]
	db0 := ks["db0"]
	var keys, expires, avg int64
	if _, err := fmt.Sscanf(db0, "keys=%d,expires=%d,avg_ttl=%d", &keys, &expires, &avg); err != nil || keys != 1 || expires != 1 || avg < 590_000 || avg > 600_000 {
		t.Fatalf("db0:%q (%v)", db0, err)
	}
	r.send("DEL", cr.SessionID)
	r.expect(":1")
	if ks := r.info("keyspace")["keyspace"]; len(ks) != 0 {
		t.Fatalf("keyspace with no live session: %v", ks)
	}

	// instantaneous_ops_per_sec follows the command rate (16 samples of
	// 100 ms, as Redis). The burst goes over a connection without AUTH: an
	// authenticated one counts every command against the key's rate limit.
	var b strings.Builder
	for range 2000 {
		b.WriteString("*1\r\n$4\r\nPING\r\n")
	}
	second.c.Write([]byte(b.String())) // never authenticated
	for range 2000 {
		second.expect("+PONG")
	}
	time.Sleep(250 * time.Millisecond)
	if ops := num(t, r.info("stats")["stats"], "instantaneous_ops_per_sec"); ops <= 0 {
		t.Errorf("instantaneous_ops_per_sec %d after 2000 commands", ops)
	}
}
