package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Results of an audited action.
const (
	ResultAttempt = "attempt" // written synchronously before an admin write runs
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// Actors that are not API key IDs.
const (
	ActorLocalAdmin = "LOCAL_ADMIN"
	ActorSystem     = "system"
)

// ActionDropped is the action of the record that reports overflow losses.
const ActionDropped = "audit.dropped"

// ZeroHash is the prev_hash of the first record of a data dir.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// timeLayout is RFC 3339 with exactly three fractional digits, in UTC.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// Record is one audit event (04-security §9).
//
// WARNING: the audit log is not encrypted and is read by operators. Never
// put tokens, API-key secrets, token hashes, session data, Authorization or
// X-API-Key values, or request bodies into any field — Details included.
// Use IDs (session, key, request, node), route templates and error codes.
// The typed fields exist so that nothing else needs to be passed.
type Record struct {
	// Seq, Time, NodeID and PrevHash are assigned by the Log when the
	// record is written; values set by the caller are ignored.
	Seq    uint64
	Time   time.Time
	NodeID string

	RequestID string
	// Actor is an API key ID, LOCAL_ADMIN or system ("" means system).
	Actor string
	Role  string
	// Action is the event name of the 04-security §9 table, e.g. apikey.create.
	Action   string
	Resource string
	// Result is attempt, success or failure. Attempt sets it; Record
	// writes "" as success.
	Result      string
	Code        string // TM-* error code, "" on success
	TCPRemoteIP string
	ClientIP    string
	UserAgent   string // the caller's, never a session's
	// Details holds action-specific fields (see the table in 04-security §9).
	// The Log takes ownership: do not modify the map after passing it.
	Details map[string]any

	PrevHash string
}

// wire is the stored form; its field order is the line's key order.
type wire struct {
	Seq         uint64         `json:"seq"`
	Time        string         `json:"time"`
	NodeID      string         `json:"node_id"`
	RequestID   string         `json:"request_id"`
	Actor       string         `json:"actor"`
	Role        string         `json:"role"`
	Action      string         `json:"action"`
	Resource    string         `json:"resource"`
	Result      string         `json:"result"`
	Code        string         `json:"code"`
	TCPRemoteIP string         `json:"tcp_remote_ip"`
	ClientIP    string         `json:"client_ip"`
	UserAgent   string         `json:"user_agent"`
	Details     map[string]any `json:"details"`
	PrevHash    string         `json:"prev_hash"`
}

func (r *Record) toWire() wire {
	d := r.Details
	if d == nil {
		d = map[string]any{}
	}
	return wire{
		Seq: r.Seq, Time: r.Time.UTC().Format(timeLayout), NodeID: r.NodeID, RequestID: r.RequestID,
		Actor: r.Actor, Role: r.Role, Action: r.Action, Resource: r.Resource, Result: r.Result, Code: r.Code,
		TCPRemoteIP: r.TCPRemoteIP, ClientIP: r.ClientIP, UserAgent: r.UserAgent, Details: d, PrevHash: r.PrevHash,
	}
}

// MarshalJSON renders the record exactly as stored (without the newline),
// so the audit API returns records "as stored" (02-http-api §5).
func (r Record) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := encodeLine(&b, &r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// UnmarshalJSON parses a stored line.
func (r *Record) UnmarshalJSON(b []byte) error {
	rec, err := parseLine(b)
	if err != nil {
		return err
	}
	*r = rec
	return nil
}

// encodeLine appends the record's line, newline included, to b. HTML
// characters stay escaped (\u003c), as json.Marshal does, so that a record
// marshalled by an API handler is byte for byte the stored line.
func encodeLine(b *bytes.Buffer, r *Record) error {
	line, err := appendLine(b.AvailableBuffer(), r)
	if err != nil {
		return fmt.Errorf("audit: encode %s record: %w", r.Action, err)
	}
	b.Write(line)
	b.WriteByte('\n')
	return nil
}

// errUnparsable marks a line that is not a valid record.
var errUnparsable = errors.New("unparsable audit line")

// parseLine decodes one line (without newline). Numbers in Details stay
// json.Number so they survive a round trip unchanged.
func parseLine(line []byte) (Record, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return Record{}, fmt.Errorf("%w: %v", errUnparsable, err)
	}
	if dec.More() {
		return Record{}, fmt.Errorf("%w: data after the record", errUnparsable)
	}
	t, err := time.Parse(time.RFC3339, w.Time)
	if err != nil {
		return Record{}, fmt.Errorf("%w: time: %v", errUnparsable, err)
	}
	if !strings.HasSuffix(w.Time, "Z") {
		return Record{}, fmt.Errorf("%w: time %q is not UTC", errUnparsable, w.Time)
	}
	if w.Seq == 0 {
		return Record{}, fmt.Errorf("%w: missing seq", errUnparsable)
	}
	if !isHash(w.PrevHash) {
		return Record{}, fmt.Errorf("%w: prev_hash is not 64 lower-case hex digits", errUnparsable)
	}
	return Record{
		Seq: w.Seq, Time: t.UTC(), NodeID: w.NodeID, RequestID: w.RequestID, Actor: w.Actor, Role: w.Role,
		Action: w.Action, Resource: w.Resource, Result: w.Result, Code: w.Code, TCPRemoteIP: w.TCPRemoteIP,
		ClientIP: w.ClientIP, UserAgent: w.UserAgent, Details: w.Details, PrevHash: w.PrevHash,
	}, nil
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	return strings.IndexFunc(s, func(c rune) bool { return !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') }) < 0
}

// lineHash is the chain hash of a line (without its newline).
func lineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}
