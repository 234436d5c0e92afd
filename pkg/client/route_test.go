package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/session"
)

func TestPartitionOf_AgreesWithTheServerRules(t *testing.T) {
	for _, partitions := range []int{8, 256, 4096} {
		for i := range 200 {
			token := fmt.Sprintf("tmtk_route-test-token-%06d", i)
			if got, want := PartitionOfToken(token, partitions), int(session.HashToken(token).Partition(partitions)); got != want {
				t.Fatalf("token %d, P=%d: partition %d, want %d", i, partitions, got, want)
			}
			p := uint16(i * 7 % partitions)
			id, err := session.NewID(p, byte(i), time.Now().UnixMilli())
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{id.String(), strings.ToUpper(id.String())} {
				if got, ok := PartitionOfSessionID(s); !ok || got != int(p) {
					t.Fatalf("%s: partition %d %v, want %d", s, got, ok, p)
				}
			}
		}
	}
	for _, bad := range []string{"", "tmss-", "tmss-8zzzzzzzzzzzzzzzzzzzzzzzzz", "tmss-01jh8w0000000000000000000u", "tmak-01jh8w00000000000000000000", "tmss-01jh8w00000000000000000000x"} {
		if _, ok := PartitionOfSessionID(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

// fakeNode is an httptest server that answers every route with handle and
// counts the requests per path.
type fakeNode struct {
	*httptest.Server
	mu     sync.Mutex
	hits   map[string]int
	handle func(w http.ResponseWriter, r *http.Request)
}

func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	n := &fakeNode{hits: map[string]int{}}
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		n.hits[r.URL.Path]++
		h := n.handle
		n.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(n.Close)
	return n
}

func (n *fakeNode) count(path string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hits[path]
}

func (n *fakeNode) setHandler(h func(w http.ResponseWriter, r *http.Request)) {
	n.mu.Lock()
	n.handle = h
	n.mu.Unlock()
}

func okData(w http.ResponseWriter, status int, data any) {
	b, _ := json.Marshal(map[string]any{"code": "OK", "message": "success", "request_id": "tmrq-t", "data": data})
	w.WriteHeader(status)
	w.Write(b)
}

// sessionReply answers the session routes with a session named after the
// node, so a test sees which node served a call.
func sessionReply(node string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/tokens/validate":
			okData(w, 200, map[string]any{"valid": true, "session": map[string]any{"id": "tmss-x", "user_id": node}})
		case r.URL.Path == "/sessions" && r.Method == http.MethodPost:
			okData(w, 201, map[string]any{"session_id": "tmss-" + node, "expires_at": 1})
		case r.URL.Path == "/sessions":
			okData(w, 200, map[string]any{"items": []any{map[string]any{"user_id": node}}, "page": 1, "size": 20, "total": 1})
		case strings.HasSuffix(r.URL.Path, "/revoke"):
			okData(w, 200, map[string]any{"session_id": node, "revoked": true})
		default:
			okData(w, 200, map[string]any{"id": "tmss-x", "user_id": node})
		}
	}
}

func TestRoutePartitions_SendsSessionRequestsToThePrimary(t *testing.T) {
	entry, primary := newFakeNode(t), newFakeNode(t)
	const partitions = 8
	// The token's and the session ID's partition are primaried by the
	// second node, every other partition by the entry node; the second
	// node binds a wildcard address, which the client reaches at the
	// entry's host.
	token := "tmtk_route-test-token-000001"
	id, err := session.NewID(3, 0, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	primaries := make([]int, partitions)
	primaries[PartitionOfToken(token, partitions)] = 1
	primaries[3] = 1
	_, port, _ := strings.Cut(strings.TrimPrefix(primary.URL, "http://"), ":")
	routing := map[string]any{"mode": "cluster", "cluster_id": "tmcl-x", "partitions": partitions, "table_version": 1,
		"nodes": []any{
			map[string]any{"node_id": "tmnd-a", "http": strings.TrimPrefix(entry.URL, "http://"), "https": "", "resp": "", "resp_tls": ""},
			map[string]any{"node_id": "tmnd-b", "http": "0.0.0.0:" + port, "https": "", "resp": "", "resp_tls": ""},
		},
		"primaries": primaries}
	entryHandler := sessionReply("entry")
	entry.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cluster/routing" {
			okData(w, 200, routing)
			return
		}
		entryHandler(w, r)
	})
	primary.setHandler(sessionReply("primary"))

	ctx := context.Background()
	c, err := New(Config{Target: entry.URL, APIKey: "k:s", RoutePartitions: true, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if v, err := c.Validate(ctx, token, false); err != nil || v.Session.UserID != "primary" {
		t.Fatalf("validate: %+v %v, want it served by the primary", v, err)
	}
	if s, err := c.GetSession(ctx, id.String()); err != nil || s.UserID != "primary" {
		t.Fatalf("get: %+v %v", s, err)
	}
	if s, err := c.Touch(ctx, id.String()); err != nil || s.UserID != "primary" {
		t.Fatalf("touch: %+v %v", s, err)
	}
	if s, err := c.Renew(ctx, id.String(), 60); err != nil || s.UserID != "primary" {
		t.Fatalf("renew: %+v %v", s, err)
	}
	if r, err := c.Revoke(ctx, id.String()); err != nil || r.SessionID != "primary" {
		t.Fatalf("revoke: %+v %v", r, err)
	}
	if r, err := c.CreateSession(ctx, CreateSessionRequest{UserID: "u", Token: token}); err != nil || r.SessionID != "tmss-primary" {
		t.Fatalf("create with a token: %+v %v", r, err)
	}
	// No token yet: the entry node generates it and routes the create;
	// scatter operations go to the entry node too.
	if r, err := c.CreateSession(ctx, CreateSessionRequest{UserID: "u"}); err != nil || r.SessionID != "tmss-entry" {
		t.Fatalf("create without a token: %+v %v", r, err)
	}
	if l, err := c.ListSessions(ctx, ListSessionsOptions{UserID: "u"}); err != nil || l.Items[0].UserID != "entry" {
		t.Fatalf("list: %+v %v", l, err)
	}
	// A session of a partition the entry node serves, and a malformed ID.
	other, _ := session.NewID(4, 0, time.Now().UnixMilli())
	for _, sid := range []string{other.String(), "tmss-nope"} {
		if s, err := c.GetSession(ctx, sid); err != nil || s.UserID != "entry" {
			t.Fatalf("get %s: %+v %v", sid, s, err)
		}
	}
	if n := entry.count("/cluster/routing"); n != 1 {
		t.Fatalf("routing table fetched %d times, want once", n)
	}

	// The primary moved away: the old one refuses, the client refreshes
	// the table and the entry node serves the request.
	primary.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"code":"TM-CLST-5030","message":"partition unavailable","request_id":"tmrq-t","details":{}}`))
	})
	routing["primaries"] = make([]int, partitions)
	if s, err := c.Touch(ctx, id.String()); err != nil || s.UserID != "entry" {
		t.Fatalf("touch after a refusal: %+v %v", s, err)
	}
	if n := entry.count("/cluster/routing"); n != 2 {
		t.Fatalf("routing table fetched %d times after a refusal, want twice", n)
	}
	if s, err := c.GetSession(ctx, id.String()); err != nil || s.UserID != "entry" {
		t.Fatalf("get with the new table: %+v %v", s, err)
	}
	if n := primary.count("/sessions/" + id.String()); n != 1 {
		t.Fatalf("old primary got %d gets, want 1 (before the table changed)", n)
	}
}

func TestRoutePartitions_ConnectionFailureRefreshesAndUsesTarget(t *testing.T) {
	entry, primary := newFakeNode(t), newFakeNode(t)
	primary.setHandler(sessionReply("primary"))
	gone := strings.TrimPrefix(primary.URL, "http://")
	primary.Close() // the primary died; its address refuses connections
	token := "tmtk_route-test-token-000002"
	entryHandler := sessionReply("entry")
	entry.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cluster/routing" {
			okData(w, 200, map[string]any{"mode": "cluster", "partitions": 1, "table_version": 1,
				"nodes": []any{map[string]any{"node_id": "tmnd-b", "http": gone}}, "primaries": []int{0}})
			return
		}
		entryHandler(w, r)
	})
	c, err := New(Config{Target: entry.URL, APIKey: "k:s", RoutePartitions: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Touch is not idempotent, but a refused connection never sent it.
	id, _ := session.NewID(0, 0, time.Now().UnixMilli())
	if s, err := c.Touch(context.Background(), id.String()); err != nil || s.UserID != "entry" {
		t.Fatalf("touch: %+v %v, want it sent through the target", s, err)
	}
	if v, err := c.Validate(context.Background(), token, true); err != nil || v.Session.UserID != "entry" {
		t.Fatalf("validate: %+v %v", v, err)
	}
	// Fetched once, then again after each connection failure (the table
	// still names the dead node, so each call goes on to the target).
	if n := entry.count("/cluster/routing"); n != 3 {
		t.Fatalf("routing table fetched %d times, want a refresh after each connection failure", n)
	}
}

func TestRoutePartitions_StandaloneNode(t *testing.T) {
	srv, key := startNode(t)
	ctx := context.Background()
	c, err := New(Config{Target: "http://" + srv.Addr("http").String(), APIKey: key, RoutePartitions: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rt, err := c.Routing(ctx)
	if err != nil || rt.Mode != "standalone" || len(rt.Nodes) != 1 || len(rt.Primaries) != rt.Partitions || rt.Partitions == 0 {
		t.Fatalf("routing: %+v %v", rt, err)
	}
	cr, err := c.CreateSession(ctx, CreateSessionRequest{UserID: "u-route"})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Validate(ctx, cr.Token, false); err != nil || !v.Valid || v.Session.ID != cr.SessionID {
		t.Fatalf("validate: %+v %v", v, err)
	}
	if s, err := c.GetSession(ctx, cr.SessionID); err != nil || s.UserID != "u-route" {
		t.Fatalf("get: %+v %v", s, err)
	}
	if r, err := c.Revoke(ctx, cr.SessionID); err != nil || !r.Revoked {
		t.Fatalf("revoke: %+v %v", r, err)
	}
	// Over RESP there is no routing table: requests go to the target.
	rc, err := New(Config{Target: srv.Addr("resp").String(), Protocol: "resp", APIKey: key, RoutePartitions: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if v, err := rc.Validate(ctx, cr.Token, false); err != nil || v.Valid {
		t.Fatalf("validate over RESP: %+v %v", v, err)
	}
}
