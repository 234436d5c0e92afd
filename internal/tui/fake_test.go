package tui

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

// t0 is the fake clock's start: every golden shows this time.
var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// fakeClock never ticks by itself: tests refresh with "r" or messages,
// and advance time explicitly, so every screen is reproducible.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Tick(time.Duration, func(time.Time) tea.Msg) tea.Cmd { return nil }

func ms(t time.Time) int64 { return t.UnixMilli() }

// Fixed IDs with the real formats' lengths (prefix + 26 characters).
const (
	nodeA = "tmnd-01jq3v7k2m8x4c6b9n0p5r7s1t"
	nodeB = "tmnd-01jq3v7m4d2f6g8h0j2k4l6m8n"
	nodeC = "tmnd-01jq3v7p9q1w3e5r7t9y1u3i5o"
	sess1 = "tmss-01jq40a1b2c3d4e5f6g7h8j9k0"
	sess2 = "tmss-01jq40b2c3d4e5f6g7h8j9k0m1"
	sess3 = "tmss-01jq40c3d4e5f6g7h8j9k0m1n2"
	keyAd = "tmak-01jq3w0a1s2d3f4g5h6j7k8l9z"
	keyIs = "tmak-01jq3w1q2w3e4r5t6y7u8i9o0p"
	keyVa = "tmak-01jq3w2z3x4c5v6b7n8m9a0s1d"
)

// fakeSource is an in-memory DataSource. Each Snapshot call advances the
// metric counters by a fixed amount, so rates are exact.
type fakeSource struct {
	mu       sync.Mutex
	cluster  bool  // three-node cluster instead of a standalone node
	fail     error // Snapshot fails with this while set
	calls    int
	sessions map[string][]client.Session
	keys     []client.Key
	revoked  []string
	statuses []string // "keyID=status"
}

func newFake(cluster bool) *fakeSource {
	f := &fakeSource{cluster: cluster, sessions: map[string][]client.Session{}}
	f.sessions["u-1001"] = []client.Session{
		{ID: sess1, UserID: "u-1001", DeviceID: "laptop", IPAddress: "10.0.4.17", UserAgent: "Firefox/137",
			CreatedBy: keyIs, CreatedAt: ms(t0.Add(-3 * time.Hour)), LastActive: ms(t0.Add(-2 * time.Minute)),
			ExpiresAt: ms(t0.Add(5 * time.Hour)), IdleTimeout: 1800, Version: 7, Data: map[string]string{"tenant": "acme", "role": "admin"}},
		{ID: sess2, UserID: "u-1001", DeviceID: "phone", IPAddress: "10.0.9.3", UserAgent: "TokApp/2.1",
			CreatedBy: keyIs, CreatedAt: ms(t0.Add(-26 * time.Hour)), LastActive: ms(t0.Add(-40 * time.Minute)),
			ExpiresAt: ms(t0.Add(22 * time.Hour)), Version: 3},
		{ID: sess3, UserID: "u-1001", DeviceID: "", IPAddress: "192.168.1.20",
			CreatedBy: "LOCAL_ADMIN", CreatedAt: ms(t0.Add(-10 * time.Minute)), LastActive: ms(t0.Add(-10 * time.Minute)),
			ExpiresAt: ms(t0.Add(110 * time.Minute)), Version: 1},
	}
	f.keys = []client.Key{
		{KeyID: keyAd, Role: "admin", Description: "ops on-call", Status: "active", RateLimit: 0,
			CreatedAt: ms(t0.Add(-30 * 24 * time.Hour)), CreatedBy: "LOCAL_ADMIN", LastUsedAt: ms(t0.Add(-1 * time.Second))},
		{KeyID: keyIs, Role: "issuer", Description: "sso login service", Status: "active", RateLimit: 5000,
			Allowlist: []string{"10.0.0.0/8"}, CreatedAt: ms(t0.Add(-12 * 24 * time.Hour)), CreatedBy: keyAd,
			LastUsedAt: ms(t0.Add(-15 * time.Second)), ExpiresAt: ms(t0.Add(90 * 24 * time.Hour))},
		{KeyID: keyVa, Role: "validator", Description: "api gateway", Status: "disabled", RateLimit: 20000,
			CreatedAt: ms(t0.Add(-5 * 24 * time.Hour)), CreatedBy: keyAd},
	}
	return f
}

func (f *fakeSource) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

// connErr is what pkg/client returns when the admin socket refuses.
func connErr() error {
	return &client.TransportError{Kind: client.KindConnect, Target: "unix:/var/lib/tokmesh-server/admin.sock",
		Err: &url.Error{Op: "Get", URL: "http://tokmesh-local/admin/v1/cluster/status",
			Err: &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}}
}

// hist builds a cumulative latency histogram of n observations spread
// over the spec buckets with the given per-bucket weights.
func hist(n float64, weights []float64, sum float64) Histogram {
	bounds := []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, math.Inf(1)}
	var h Histogram
	var cum float64
	for i, b := range bounds {
		if i < len(weights) {
			cum += n * weights[i]
		}
		h.Buckets = append(h.Buckets, Bucket{b, cum})
	}
	h.Count, h.Sum = cum, sum
	return h
}

func (f *fakeSource) Snapshot(context.Context) (*Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.calls++
	n := float64(f.calls)
	s := &Snapshot{Keys: slices.Clone(f.keys), KeysTotal: len(f.keys)}
	s.Metrics = &Sample{
		Validate:         hist(1200*n, []float64{0.6, 0.3, 0.09, 0.01}, 0.0006*1200*n),
		Create:           hist(40*n, []float64{0, 0.5, 0.4, 0.08, 0.02}, 0.0015*40*n),
		Fsync:            hist(50*n, []float64{0.2, 0.7, 0.1}, 0.0008*50*n),
		AuthFailures:     3 + 2*n,
		BruteForceBlocks: 1,
		BlockedIPs:       1,
		RateLimited:      0,
		WALBytesWritten:  4096 * 64 * n,
	}
	s.WAL = &WALStatus{SyncMode: "batch", Segments: 3, TotalBytes: 48 << 20, LastSeq: 912345}
	if !f.cluster {
		s.Cluster.Mode, s.Cluster.Health = "standalone", "healthy"
		s.Cluster.Nodes.Alive = 1
		s.Cluster.Partitions.Total = 256
		s.Cluster.Voters, s.Cluster.Warnings = []string{}, []string{}
		s.Nodes = []Node{{NodeID: nodeA, State: "alive", Version: "0.9.0", LeaseValid: true, PartitionsPrimary: 256,
			JoinedAt: ms(t0.Add(-72 * time.Hour)), LastSeen: ms(t0), Sessions: 48210, QPS: 1240.5, P99Ms: 0.87}}
		for i := range 256 {
			s.Partitions = append(s.Partitions, Partition{Partition: i, Primary: nodeA, Replicas: []Replica{}, State: "active"})
		}
		return s, nil
	}
	s.Cluster.Mode, s.Cluster.Health = "cluster", "degraded"
	s.Cluster.ClusterID, s.Cluster.LeaderID, s.Cluster.Term = "tmcl-01jq3v6z8a7s6d5f4g3h2j1k0l", nodeB, 4
	s.Cluster.Voters = []string{nodeA, nodeB, nodeC}
	s.Cluster.Warnings = []string{"3 partitions under-replicated"}
	s.Cluster.Nodes.Alive = 3
	s.Cluster.Partitions.Total, s.Cluster.Partitions.Unavailable = 64, 2
	s.Cluster.Partitions.UnderReplicated, s.Cluster.Partitions.Moving = 3, 1
	s.Nodes = []Node{
		{NodeID: nodeA, AdvertiseAddress: "10.0.0.11:5443", State: "alive", RaftRole: "voter", Version: "0.9.0",
			LeaseValid: true, PartitionsPrimary: 21, PartitionsReplica: 21, Sessions: 16020, QPS: 410.2, P99Ms: 1.12,
			ReplicationLagMs: 3, ClockSkewMs: -2, LastSeen: ms(t0)},
		{NodeID: nodeB, AdvertiseAddress: "10.0.0.12:5443", State: "alive", RaftRole: "leader", Version: "0.9.0",
			LeaseValid: true, PartitionsPrimary: 22, PartitionsReplica: 21, Sessions: 16533, QPS: 455.9, P99Ms: 0.94,
			ReplicationLagMs: 0, ClockSkewMs: 0, LastSeen: ms(t0)},
		{NodeID: nodeC, AdvertiseAddress: "10.0.0.13:5443", State: "alive", RaftRole: "voter", Version: "0.9.0",
			LeaseValid: true, PartitionsPrimary: 19, PartitionsReplica: 20, Sessions: 15657, QPS: 374.4, P99Ms: 2.3,
			ReplicationLagMs: 41, ClockSkewMs: 7, LastSeen: ms(t0)},
	}
	ids := []string{nodeA, nodeB, nodeC}
	for i := range 64 {
		p := Partition{Partition: i, Primary: ids[i%3], State: "active",
			Replicas: []Replica{{NodeID: ids[(i+1)%3], InSync: true}}}
		switch i {
		case 5, 6:
			p.State = "unavailable"
		case 17:
			p.State = "moving"
		case 30, 31, 40:
			p.Replicas[0].InSync = false
		}
		s.Partitions = append(s.Partitions, p)
	}
	return s, nil
}

func (f *fakeSource) Sessions(_ context.Context, user string) (*SessionPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	items := slices.Clone(f.sessions[user])
	return &SessionPage{UserID: user, Items: items, Total: len(items)}, nil
}

func (f *fakeSource) RevokeSession(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, id)
	for u, ss := range f.sessions {
		for i, s := range ss {
			if s.ID == id {
				f.sessions[u] = slices.Delete(ss, i, i+1)
				return true, nil
			}
		}
	}
	return false, nil
}

func (f *fakeSource) RevokeUser(_ context.Context, user string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.sessions[user])
	f.revoked = append(f.revoked, "user:"+user)
	delete(f.sessions, user)
	return n, nil
}

func (f *fakeSource) SetKeyStatus(_ context.Context, id, status string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.keys {
		if f.keys[i].KeyID == id {
			f.keys[i].Status = status
			f.statuses = append(f.statuses, id+"="+status)
			return "", nil
		}
	}
	return "", &client.Error{Code: "TM-ADMIN-4041", Message: fmt.Sprintf("API key %s not found", id), HTTPStatus: 404}
}

func (f *fakeSource) snapshotCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeSource) revokedIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.revoked)
}

func (f *fakeSource) statusChanges() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.statuses)
}
