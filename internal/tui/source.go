package tui

import (
	"context"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

// DataSource is everything the dashboard reads and changes. Remote
// implements it over pkg/client; tests use a fake.
//
// Errors that mean "the server could not be reached" must be (or wrap) a
// *client.TransportError: the model shows them as the disconnected banner
// and keeps retrying. Any other error is shown as a server error.
type DataSource interface {
	// Snapshot reads the cluster view of one refresh. Only the cluster
	// status, nodes and partitions are essential; the other parts report
	// their own failure in the snapshot so one disabled endpoint (metrics
	// off, a key without the role) does not blank the whole screen.
	Snapshot(ctx context.Context) (*Snapshot, error)
	// Sessions lists a user's live sessions, most recently active first.
	Sessions(ctx context.Context, userID string) (*SessionPage, error)
	// RevokeSession revokes one session; revoked is false when it was
	// already revoked or expired.
	RevokeSession(ctx context.Context, sessionID string) (revoked bool, err error)
	// RevokeUser revokes every live session of a user.
	RevokeUser(ctx context.Context, userID string) (count int, err error)
	// SetKeyStatus sets an API key "active" or "disabled"; warning is the
	// server's warning, if any (last active admin key disabled).
	SetKeyStatus(ctx context.Context, keyID, status string) (warning string, err error)
}

// Snapshot is one refresh of the dashboard.
type Snapshot struct {
	Cluster    Cluster
	Nodes      []Node
	Partitions []Partition

	// Self is GET /admin/v1/status of the node we talk to; SelfErr says
	// why it is missing.
	Self    *NodeStatus
	SelfErr string
	// WAL is GET /admin/v1/wal/status of the node we talk to.
	WAL    *WALStatus
	WALErr string
	// Metrics is the node's /metrics reduced to what the dashboard shows.
	Metrics    *Sample
	MetricsErr string
	// Keys is the first page (up to 100) of API keys.
	Keys      []client.Key
	KeysTotal int
	KeysErr   string
}

// The cluster routes' shapes are pkg/client's (02-http-api §5.1).
type (
	Cluster   = client.ClusterStatus
	Node      = client.ClusterNode
	Replica   = client.PartitionReplica
	Partition = client.Partition
	WALStatus = client.WALStatus
)

// NodeStatus is the part of GET /admin/v1/status the dashboard shows.
type NodeStatus struct {
	NodeID        string `json:"node_id"`
	Version       string `json:"version"`
	Mode          string `json:"mode"`
	UptimeSeconds int64  `json:"uptime_seconds"`
	Ready         bool   `json:"ready"`
	Maintenance   bool   `json:"maintenance"`
	Sessions      struct {
		Live       int `json:"live"`
		Tombstones int `json:"tombstones"`
	} `json:"sessions"`
	Memory struct {
		RSSBytes  uint64 `json:"rss_bytes"`
		HeapBytes uint64 `json:"heap_bytes"`
	} `json:"memory"`
	QPS   float64 `json:"qps"`
	P99Ms float64 `json:"p99_ms"`
	WAL   struct {
		SyncMode string `json:"sync_mode"`
		LastSeq  uint64 `json:"last_seq"`
	} `json:"wal"`
}

// SessionPage is the answer of a session search.
type SessionPage struct {
	UserID string
	Items  []client.Session
	Total  int // all live sessions of the user (Items may hold fewer)
}
