package respapi

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/auth"
)

// Session writes over RESP are audited with the HTTP API's records
// (04-security §9): session.create for every create, session.revoke for
// every revoke (each DEL key), session.revoke_all; actor = key ID, user
// agent = connection name, never a token. Renewals (TM.RENEW, EXPIRE) are
// not audited, as over HTTP.
func TestAudit_SessionWritesAreRecordedAsOverHTTP(t *testing.T) {
	dir := t.TempDir()
	al, err := audit.Open(dir, "node-1", audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	e := newEnv(t, func(c *Config) { c.Audit = al })
	ctx := context.Background()
	keyID := e.creds[auth.RoleIssuer][0]
	c := redis.NewClient(&redis.Options{Addr: e.addr, Username: keyID, Password: e.creds[auth.RoleIssuer][1],
		Protocol: 2, PoolSize: 1, ClientName: "gw-1"})
	defer c.Close()

	tok := "client-token-" + strings.Repeat("q", 30)
	a := create(t, c, `{"user_id":"aud1","data":{"secret":"s3cr3t"}}`, "TTL", 600)
	if err := c.Do(ctx, "TM.CREATE", `{"user_id":"aud2","token":"`+tok+`"}`).Err(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, c.Do(ctx, "TM.CREATE", `{"user_id":"aud3","bogus":1}`).Err(), "TM-SYS-4000 ")
	b := create(t, c, `{"user_id":"aud4"}`)
	d := create(t, c, `{"user_id":"aud5"}`)
	create(t, c, `{"user_id":"aud5"}`)
	c.Do(ctx, "TM.RENEW", a.SessionID, 900)
	c.Expire(ctx, a.SessionID, time.Hour)
	c.Do(ctx, "TM.REVOKE", a.SessionID)
	c.Do(ctx, "TM.REVOKE", a.SessionID)
	c.Do(ctx, "TM.REVOKE", "not-a-session-id")
	c.Del(ctx, b.SessionID, "nope")
	c.Do(ctx, "TM.REVOKE_USER", "aud5", "EXCEPT", d.SessionID)
	keys := make([]string, maxDelKeys+1)
	for i := range keys {
		keys[i] = "k"
	}
	c.Del(ctx, keys...)
	// A role failure never reaches the command: nothing to audit.
	e.client(auth.RoleValidator, 2).Do(ctx, "TM.CREATE", `{"user_id":"denied"}`)

	type want struct{ action, resource, result, code, details string }
	wants := []want{
		{"session.create", a.SessionID, "success", "", `map[ttl_seconds:600 user_id:aud1]`},
		{"session.create", "", "success", "", `map[ttl_seconds:7200 user_id:aud2]`},
		{"session.create", "", "failure", "TM-SYS-4000", `map[user_id:aud3]`},
		{"session.create", b.SessionID, "success", "", `map[ttl_seconds:7200 user_id:aud4]`},
		{"session.create", d.SessionID, "success", "", `map[ttl_seconds:7200 user_id:aud5]`},
		{"session.create", "", "success", "", `map[ttl_seconds:7200 user_id:aud5]`},
		{"session.revoke", a.SessionID, "success", "", `map[revoked:true]`},
		{"session.revoke", a.SessionID, "success", "", `map[revoked:false]`},
		{"session.revoke", "", "success", "", `map[revoked:false]`},
		{"session.revoke", b.SessionID, "success", "", `map[revoked:true]`},
		{"session.revoke", "", "success", "", `map[revoked:false]`},
		{"session.revoke_all", "aud5", "success", "", `map[revoked_count:1]`},
		{"session.revoke", "", "failure", "TM-ARG-1001", `map[]`},
	}
	var got []audit.Record
	deadline := time.Now().Add(5 * time.Second)
	for {
		items, total, err := al.Query(audit.Filter{Size: 100})
		if err != nil {
			t.Fatal(err)
		}
		if total >= len(wants) || time.Now().After(deadline) {
			for i := len(items) - 1; i >= 0; i-- { // oldest first
				got = append(got, items[i])
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != len(wants) {
		for _, r := range got {
			t.Logf("%s %s %s", r.Action, r.Resource, r.Result)
		}
		t.Fatalf("%d records, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		r := got[i]
		if w.resource == "" && w.action == "session.create" && w.result == "success" {
			w.resource = r.Resource // a new session whose ID the test did not keep
			if !strings.HasPrefix(r.Resource, "tmss-") {
				t.Fatalf("record %d: resource %q", i, r.Resource)
			}
		}
		details := fmtMap(r.Details)
		if r.Action != w.action || r.Resource != w.resource || r.Result != w.result || r.Code != w.code || details != w.details {
			t.Fatalf("record %d: %s %q %s %q %s, want %+v", i, r.Action, r.Resource, r.Result, r.Code, details, w)
		}
		if r.Actor != keyID || r.Role != "issuer" || r.UserAgent != "gw-1" || r.ClientIP != "127.0.0.1" || r.TCPRemoteIP != "127.0.0.1" {
			t.Fatalf("record %d caller: actor %q role %q ua %q ip %q/%q", i, r.Actor, r.Role, r.UserAgent, r.ClientIP, r.TCPRemoteIP)
		}
	}
	// Never a token, a secret or session data.
	al.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		for _, secret := range []string{tok, a.Token, b.Token, "s3cr3t", e.creds[auth.RoleIssuer][1]} {
			if strings.Contains(string(raw), secret) {
				t.Fatalf("audit file %s contains %q", f, secret)
			}
		}
	}
}

// fmtMap prints details with sorted keys (fmt sorts map keys; JSON numbers
// are float64 and print without a fraction).
func fmtMap(m map[string]any) string {
	if m == nil {
		m = map[string]any{}
	}
	return fmt.Sprint(m)
}

// A key disabled after AUTH is refused on the open connection and audited
// as auth.failure (04 §9, "HTTP or RESP") — once per episode, not once per
// pipelined command; a new episode after a re-enable is audited again.
func TestAudit_KeyDisabledOnAnOpenConnectionIsAuditedOnce(t *testing.T) {
	al, err := audit.Open(t.TempDir(), "node-1", audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	e := newEnv(t, func(c *Config) { c.Audit = al })
	ctx := context.Background()
	keyID := e.creds[auth.RoleIssuer][0]
	c := redis.NewClient(&redis.Options{Addr: e.addr, Username: keyID, Password: e.creds[auth.RoleIssuer][1], Protocol: 2, PoolSize: 1})
	defer c.Close()
	s := create(t, c, `{"user_id":"dis"}`)
	failures := func() int {
		t.Helper()
		var n int
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			items, _, err := al.Query(audit.Filter{Action: "auth.failure", Size: 100})
			if err != nil {
				t.Fatal(err)
			}
			n = len(items)
			for _, it := range items {
				if it.Actor != keyID || it.Details["reason"] != auth.ReasonDisabled || it.Code != "TM-AUTH-4012" {
					t.Fatalf("record %+v", it)
				}
			}
			if time.Now().After(deadline) {
				return n
			}
		}
	}
	setStatus := func(st auth.Status) {
		t.Helper()
		if _, _, err := e.keys.SetStatus(ctx, keyID, st); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(auth.StatusDisabled)
	for range 3 {
		wantErr(t, c.Get(ctx, s.SessionID).Err(), "TM-AUTH-4012 ")
	}
	if n := failures(); n != 1 {
		t.Fatalf("%d auth.failure records after three refused commands, want 1", n)
	}
	setStatus(auth.StatusActive)
	if err := c.Get(ctx, s.SessionID).Err(); err != nil {
		t.Fatalf("after re-enable: %v", err)
	}
	setStatus(auth.StatusDisabled)
	wantErr(t, c.Get(ctx, s.SessionID).Err(), "TM-AUTH-4012 ")
	if n := failures(); n != 2 {
		t.Fatalf("%d auth.failure records after a second episode, want 2", n)
	}
}

// 03 §3: after AUTH every command re-checks the key and counts against its
// rate limit — connection commands too; only AUTH, HELLO and QUIT, which
// set or end the identity, run regardless, so a client can re-authenticate.
func TestRecheck_EveryCommandAfterAuthIncludingPing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keyID := e.creds[auth.RoleIssuer][0]
	r := dialRaw(t, e.addr)
	r.auth(e, auth.RoleIssuer)
	r.send("PING")
	r.expect("+PONG")
	if _, _, err := e.keys.SetStatus(ctx, keyID, auth.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"PING"}, {"CLIENT", "ID"}, {"SELECT", "0"}, {"COMMAND", "COUNT"}} {
		r.send(cmd...)
		if got := r.line(); !strings.HasPrefix(got, "-TM-AUTH-4012 ") {
			t.Fatalf("%v with a disabled key: %q", cmd, got)
		}
	}
	r.auth(e, auth.RoleValidator) // another key still logs in on the same connection
	r.send("PING")
	r.expect("+PONG")

	// A rate limit of 1/s: AUTH (04 §3 step 12) takes the second's token,
	// so the PING after it is refused.
	k, secret, _, err := e.keys.Create(ctx, auth.CreateRequest{Role: auth.RoleValidator, RateLimit: 1}, "LOCAL_ADMIN")
	if err != nil {
		t.Fatal(err)
	}
	r.send("AUTH", k.ID, secret)
	r.expect("+OK")
	r.send("PING")
	if got := r.line(); !strings.HasPrefix(got, "-TM-SYS-4290 ") {
		t.Fatalf("PING in the same second as AUTH: %q", got)
	}
}
