package httpapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/buildinfo"
)

// A standalone node describes itself as the only node (decisions D22): no
// cluster ID, its own leader (leader_id its node ID, raft_role "leader",
// voters itself, term 0), every partition primary here and active, lease
// always valid. remove and rebalance need cluster mode.

type clusterSummary struct {
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

type clusterNode struct {
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

type partitionReplica struct {
	NodeID string `json:"node_id"`
	InSync bool   `json:"in_sync"`
}

type clusterPartition struct {
	Partition int                `json:"partition"`
	Primary   string             `json:"primary"`
	Replicas  []partitionReplica `json:"replicas"`
	Epoch     uint64             `json:"epoch"`
	State     string             `json:"state"`
}

func marshalData(v any) (int, []byte, *apierr.Error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, nil, &apierr.Error{Code: apierr.SysInternal, Err: err}
	}
	return http.StatusOK, b, nil
}

// GET /admin/v1/cluster/status
func (h *Handler) adminClusterStatus(rq *request) (int, []byte, *apierr.Error) {
	a := h.admin()
	node := a.nodeID()
	s := clusterSummary{Mode: "standalone", LeaderID: node, Voters: []string{node}, Warnings: []string{}, Health: "healthy"}
	s.Nodes.Alive = 1
	s.Partitions.Total = a.partitions()
	if ok, _, code := h.cfg.Ready(); !ok && code != "" {
		// Recovering, restoring or failed: the only node serves nothing
		// (a draining node still serves until its listeners close).
		s.Health = "unavailable"
		s.Partitions.Unavailable = s.Partitions.Total
	}
	return marshalData(s)
}

// GET /admin/v1/cluster/nodes
func (h *Handler) adminClusterNodes(rq *request) (int, []byte, *apierr.Error) {
	a := h.admin()
	n := clusterNode{NodeID: a.nodeID(), AdvertiseAddress: a.config().Cluster.AdvertiseAddress, State: "alive", RaftRole: "leader",
		Version: buildinfo.Version, LastSeen: time.Now().UnixMilli(), LeaseValid: true, PartitionsPrimary: a.partitions()}
	if e := a.engine(); e != nil {
		n.JoinedAt = e.Node().CreatedAt
		n.Sessions = e.Store().Stats().Live
	}
	if a.Traffic != nil {
		q, p := a.Traffic()
		n.QPS, n.P99Ms = finite(q), finite(p)
	}
	return marshalData(map[string]any{"cluster_id": "", "leader_id": n.NodeID, "nodes": []clusterNode{n}})
}

// GET /admin/v1/cluster/partitions
func (h *Handler) adminClusterPartitions(rq *request) (int, []byte, *apierr.Error) {
	a := h.admin()
	p := a.partitions()
	node := a.nodeID()
	state := "active"
	if ok, _, code := h.cfg.Ready(); !ok && code != "" {
		state = "unavailable"
	}
	parts := make([]clusterPartition, p)
	for i := range parts {
		parts[i] = clusterPartition{Partition: i, Primary: node, Replicas: []partitionReplica{}, State: state}
	}
	return marshalData(map[string]any{"table_version": 0, "partitions": parts})
}

var nodeIDPattern = regexp.MustCompile(`^tmnd-[a-z0-9-]{1,58}$`)

// POST /admin/v1/cluster/nodes/{node_id}/remove
func (h *Handler) adminNodeRemove(w http.ResponseWriter, rq *request) {
	node := strings.ToLower(pathVar(rq, "node_id"))
	if !nodeIDPattern.MatchString(node) {
		node = "" // never record an arbitrary path value
	}
	var force bool
	if aerr := adminBody(rq, field{name: "force", dst: &force}); aerr != nil {
		h.adminReject(w, rq, actionNodeRemove, node, aerr)
		return
	}
	h.adminWrite(w, rq, actionNodeRemove, node, map[string]any{"force": force}, func(*auditOut) (int, []byte, *apierr.Error) {
		return 0, nil, apierr.Newf(apierr.ClstNeedsCluster, "this node is standalone: removing a node requires cluster mode")
	})
}

// POST /admin/v1/cluster/rebalance
func (h *Handler) adminRebalance(w http.ResponseWriter, rq *request) {
	if aerr := adminBody(rq); aerr != nil {
		h.adminReject(w, rq, actionRebalance, "", aerr)
		return
	}
	h.adminWrite(w, rq, actionRebalance, "", nil, func(*auditOut) (int, []byte, *apierr.Error) {
		return 0, nil, apierr.Newf(apierr.ClstNeedsCluster, "this node is standalone: rebalancing requires cluster mode")
	})
}
