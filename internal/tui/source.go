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

// Cluster is GET /admin/v1/cluster/status (02-http-api §5.1).
type Cluster struct {
	Mode      string   `json:"mode"`
	ClusterID string   `json:"cluster_id"`
	LeaderID  string   `json:"leader_id"`
	Term      uint64   `json:"term"`
	Voters    []string `json:"voters"`
	Health    string   `json:"health"`
	Warnings  []string `json:"warnings"`
	Nodes     struct {
		Alive   int `json:"alive"`
		Suspect int `json:"suspect"`
		Dead    int `json:"dead"`
	} `json:"nodes"`
	Partitions struct {
		Total           int `json:"total"`
		Unavailable     int `json:"unavailable"`
		UnderReplicated int `json:"under_replicated"`
		Moving          int `json:"moving"`
	} `json:"partitions"`
	Rebalance struct {
		Running  bool `json:"running"`
		Progress int  `json:"progress"`
	} `json:"rebalance"`
}

// Node is one entry of GET /admin/v1/cluster/nodes.
type Node struct {
	NodeID            string  `json:"node_id"`
	AdvertiseAddress  string  `json:"advertise_address"`
	State             string  `json:"state"`
	RaftRole          string  `json:"raft_role"`
	Version           string  `json:"version"`
	JoinedAt          int64   `json:"joined_at"`
	LastSeen          int64   `json:"last_seen"`
	LeaseValid        bool    `json:"lease_valid"`
	PartitionsPrimary int     `json:"partitions_primary"`
	PartitionsReplica int     `json:"partitions_replica"`
	Sessions          int     `json:"sessions"`
	QPS               float64 `json:"qps"`
	P99Ms             float64 `json:"p99_ms"`
	ReplicationLagMs  int64   `json:"replication_lag_ms"`
	ClockSkewMs       int64   `json:"clock_skew_ms"`
}

// Replica is one replica of a partition.
type Replica struct {
	NodeID string `json:"node_id"`
	InSync bool   `json:"in_sync"`
}

// Partition is one entry of GET /admin/v1/cluster/partitions.
type Partition struct {
	Partition int       `json:"partition"`
	Primary   string    `json:"primary"`
	Replicas  []Replica `json:"replicas"`
	Epoch     uint64    `json:"epoch"`
	State     string    `json:"state"` // active | moving | unavailable
}

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

// WALStatus is the part of GET /admin/v1/wal/status the dashboard shows.
type WALStatus struct {
	SyncMode      string `json:"sync_mode"`
	Segments      int    `json:"segments"`
	TotalBytes    int64  `json:"total_bytes"`
	LastSeq       uint64 `json:"last_seq"`
	LastFsyncAt   int64  `json:"last_fsync_at"`
	FsyncFailures uint64 `json:"fsync_failures"`
}

// SessionPage is the answer of a session search.
type SessionPage struct {
	UserID string
	Items  []client.Session
	Total  int // all live sessions of the user (Items may hold fewer)
}
