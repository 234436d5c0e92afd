package client

// Partition routing (Config.RoutePartitions, 07-tools §4): a request that
// concerns one session goes straight to its partition's primary, which
// saves the entry node's forwarding hop. The partition of a token is
// (sha256[0]<<8 | sha256[1]) mod P; a session ID carries it in bytes 6–7
// of its ULID (01-data-model §1).

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Routing is the data of GET /cluster/routing (02-http-api §4.9).
type Routing struct {
	Mode         string        `json:"mode"`
	ClusterID    string        `json:"cluster_id"`
	Partitions   int           `json:"partitions"`
	TableVersion uint64        `json:"table_version"`
	Nodes        []RoutingNode `json:"nodes"`
	// Primaries[p] is the index in Nodes of partition p's primary, or -1
	// when the partition is unavailable.
	Primaries []int `json:"primaries"`
}

// RoutingNode is one node of the routing table: its client endpoints
// (host:port, "" for a listener that is off).
type RoutingNode struct {
	NodeID  string `json:"node_id"`
	HTTP    string `json:"http"`
	HTTPS   string `json:"https"`
	RESP    string `json:"resp"`
	RESPTLS string `json:"resp_tls"`
}

// Routing reads the partition routing table (GET /cluster/routing; roles
// validator, issuer, admin). Retried on 503/504.
func (c *Client) Routing(ctx context.Context) (*Routing, error) {
	var out Routing
	if err := c.do(ctx, call{method: http.MethodGet, path: "/cluster/routing", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PartitionOfToken returns the partition of token among partitions:
// the first 16 bits of its SHA-256, big-endian, mod partitions (0 when
// partitions ≤ 0).
func PartitionOfToken(token string, partitions int) int {
	if partitions <= 0 {
		return 0
	}
	h := sha256.Sum256([]byte(token))
	return (int(h[0])<<8 | int(h[1])) % partitions
}

// PartitionOfSessionID returns the partition a session ID carries (bytes
// 6–7 of its ULID). ok is false for a string that is not a well-formed
// session ID ("tmss-" and 26 Crockford base32 characters, any case).
func PartitionOfSessionID(id string) (partition int, ok bool) {
	const prefix = "tmss-"
	if len(id) != len(prefix)+26 || !strings.EqualFold(id[:len(prefix)], prefix) {
		return 0, false
	}
	var hi, lo uint64
	for i := len(prefix); i < len(id); i++ {
		d := crockfordValue(id[i])
		if d < 0 || (i == len(prefix) && d > 7) {
			return 0, false
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(d)
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], hi)
	return int(binary.BigEndian.Uint16(b[6:8])), true
}

// crockfordValue decodes one Crockford base32 digit (no I, L, O, U), or -1.
func crockfordValue(ch byte) int {
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	if ch >= 'A' && ch <= 'Z' {
		ch += 'a' - 'A'
	}
	return strings.IndexByte(alphabet, ch)
}

// routeKey names the session a request concerns: by token or by ID.
type routeKey struct{ token, id string }

func (k routeKey) empty() bool { return k.token == "" && k.id == "" }

// partition of the key among partitions; false when an ID is malformed
// or out of range (the node answers such a request as for an unknown
// session).
func (k routeKey) partition(partitions int) (int, bool) {
	if k.token != "" {
		return PartitionOfToken(k.token, partitions), true
	}
	p, ok := PartitionOfSessionID(k.id)
	return p, ok && p < partitions
}

// codeNoPrimary is the refusal of a node that does not serve a partition.
const codeNoPrimary = "TM-CLST-5030"

// routingRetry bounds how often a failing routing-table fetch is retried.
const routingRetry = time.Second

// router holds the routing table of one Client.
type router struct {
	scheme, host string // of Target: which endpoint to use, and the host for wildcard binds

	mu        sync.Mutex
	table     *Routing
	stale     bool
	nextFetch time.Time // after a failed fetch
}

// primary returns the base URL (scheme://host:port) of the primary of
// key's partition, or "" when it is not known (requests then go to
// Target).
func (r *router) primary(ctx context.Context, c *Client, key routeKey) string {
	t := r.current(ctx, c)
	if t == nil || t.Partitions <= 0 || len(t.Primaries) != t.Partitions {
		return ""
	}
	p, ok := key.partition(t.Partitions)
	if !ok {
		return ""
	}
	i := t.Primaries[p]
	if i < 0 || i >= len(t.Nodes) {
		return ""
	}
	ep := t.Nodes[i].HTTP
	if r.scheme == "https" {
		ep = t.Nodes[i].HTTPS
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil || port == "" {
		return ""
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		// A wildcard bind: the node is reachable where Target is.
		host = r.host
	}
	return r.scheme + "://" + net.JoinHostPort(host, port)
}

// current returns the routing table, fetching it when there is none or it
// is stale; nil when none can be had.
func (r *router) current(ctx context.Context, c *Client) *Routing {
	r.mu.Lock()
	defer r.mu.Unlock()
	if (r.table == nil || r.stale) && !time.Now().Before(r.nextFetch) {
		t, err := c.Routing(ctx)
		if err != nil {
			r.nextFetch = time.Now().Add(routingRetry)
		} else {
			r.table, r.stale, r.nextFetch = t, false, time.Time{}
		}
	}
	return r.table
}

// refused reports whether a routed request failed in a way that means the
// table is stale — the node refused the partition (TM-CLST-5030) or could
// not be reached — and marks it so. It returns true when the request may
// be sent again through Target: it was refused, never sent (dial or TLS
// handshake failure), or is idempotent.
func (r *router) refused(err error, idempotent bool) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var (
		ae *Error
		te *TransportError
	)
	switch {
	case errors.As(err, &ae):
		if ae.Code != codeNoPrimary {
			return false
		}
		r.markStale()
		return true
	case errors.As(err, &te) && (te.Kind == KindConnect || te.Kind == KindTLS):
		r.markStale()
		var oe *net.OpError
		notSent := te.Kind == KindTLS || (errors.As(err, &oe) && oe.Op == "dial")
		return notSent || idempotent
	}
	return false
}

func (r *router) markStale() {
	r.mu.Lock()
	r.stale = true
	r.mu.Unlock()
}
