package tui

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

// MetricsFunc fetches the Prometheus text of GET /metrics. pkg/client only
// decodes JSON envelopes, so the caller supplies the raw fetch.
type MetricsFunc func(ctx context.Context) (io.ReadCloser, error)

// Remote is the DataSource of a live server, over pkg/client.
type Remote struct {
	c       *client.Client
	metrics MetricsFunc // nil: the metrics part reports "not available"
}

// NewRemote returns a DataSource reading from c; metrics may be nil.
func NewRemote(c *client.Client, metrics MetricsFunc) *Remote {
	return &Remote{c: c, metrics: metrics}
}

// Snapshot implements DataSource.
func (r *Remote) Snapshot(ctx context.Context) (*Snapshot, error) {
	s := &Snapshot{}
	if err := r.c.Do(ctx, http.MethodGet, "/admin/v1/cluster/status", nil, nil, &s.Cluster); err != nil {
		return nil, err
	}
	var nodes struct {
		Nodes []Node `json:"nodes"`
	}
	if err := r.c.Do(ctx, http.MethodGet, "/admin/v1/cluster/nodes", nil, nil, &nodes); err != nil {
		return nil, err
	}
	s.Nodes = nodes.Nodes
	var parts struct {
		Partitions []Partition `json:"partitions"`
	}
	if err := r.c.Do(ctx, http.MethodGet, "/admin/v1/cluster/partitions", nil, nil, &parts); err != nil {
		return nil, err
	}
	s.Partitions = parts.Partitions

	// The optional parts: a connection lost half-way still fails the
	// whole refresh, so the banner is not hidden behind partial data.
	var st NodeStatus
	if err := r.c.Do(ctx, http.MethodGet, "/admin/v1/status", nil, nil, &st); err != nil {
		if isTransport(err) {
			return nil, err
		}
		s.SelfErr = errText(err)
	} else {
		s.Self = &st
	}
	var wal WALStatus
	if err := r.c.Do(ctx, http.MethodGet, "/admin/v1/wal/status", nil, nil, &wal); err != nil {
		if isTransport(err) {
			return nil, err
		}
		s.WALErr = errText(err)
	} else {
		s.WAL = &wal
	}
	keys, err := r.c.ListKeys(ctx, client.ListKeysOptions{Size: 100})
	switch {
	case err == nil:
		s.Keys, s.KeysTotal = keys.Items, keys.Total
	case isTransport(err):
		return nil, err
	default:
		s.KeysErr = errText(err)
	}
	if r.metrics == nil {
		s.MetricsErr = "not available for this target"
		return s, nil
	}
	body, err := r.metrics(ctx)
	if err != nil {
		if isTransport(err) {
			return nil, err
		}
		s.MetricsErr = errText(err)
		return s, nil
	}
	defer body.Close()
	if s.Metrics, err = ParseMetrics(body); err != nil {
		s.MetricsErr = err.Error()
	}
	return s, nil
}

// Sessions implements DataSource: the first 100 live sessions of the
// user, most recently active first.
func (r *Remote) Sessions(ctx context.Context, userID string) (*SessionPage, error) {
	l, err := r.c.ListSessions(ctx, client.ListSessionsOptions{UserID: userID, SortBy: "last_active", SortOrder: "desc", Size: 100})
	if err != nil {
		return nil, err
	}
	return &SessionPage{UserID: userID, Items: l.Items, Total: l.Total}, nil
}

// RevokeSession implements DataSource.
func (r *Remote) RevokeSession(ctx context.Context, id string) (bool, error) {
	res, err := r.c.Revoke(ctx, id)
	if err != nil {
		return false, err
	}
	return res.Revoked, nil
}

// RevokeUser implements DataSource.
func (r *Remote) RevokeUser(ctx context.Context, userID string) (int, error) {
	res, err := r.c.RevokeUser(ctx, userID, "")
	if err != nil {
		return 0, err
	}
	return res.RevokedCount, nil
}

// SetKeyStatus implements DataSource.
func (r *Remote) SetKeyStatus(ctx context.Context, keyID, status string) (string, error) {
	res, err := r.c.SetKeyStatus(ctx, keyID, status)
	if err != nil {
		return "", err
	}
	return res.Warning, nil
}

// MetricsHTTP returns a MetricsFunc that GETs base+"/metrics" with hc,
// sending apiKey as a bearer token when not empty. A non-200 answer becomes
// an error carrying the server's code when the body is an envelope.
func MetricsHTTP(hc *http.Client, base, apiKey, userAgent string) MetricsFunc {
	return func(ctx context.Context) (io.ReadCloser, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "text/plain;version=0.0.4")
		if userAgent != "" {
			req.Header.Set("User-Agent", userAgent)
		}
		if apiKey != "" {
			req.Header.Set("Authorization", "Bearer "+apiKey)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, &client.TransportError{Kind: client.KindConnect, Target: base, Err: err}
		}
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			return nil, metricsStatusErr(resp)
		}
		return resp.Body, nil
	}
}

func metricsStatusErr(resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusNotFound:
		return errors.New("metrics are disabled on the server (telemetry.metrics.enabled: false)")
	case http.StatusUnauthorized, http.StatusForbidden:
		return errors.New("this API key may not read /metrics (needs the metrics or admin role)")
	}
	return errors.New("GET /metrics: HTTP " + resp.Status)
}

// isTransport reports whether err means the server could not be reached.
func isTransport(err error) bool {
	var te *client.TransportError
	return errors.As(err, &te) && te.Kind != client.KindBadData
}

// errText renders an error for the screen: the server's message and code
// when it answered; for a transport failure the target and the root cause
// (the request URL and the dial details would push it off an 80-column
// line).
func errText(err error) string {
	var ae *client.Error
	if errors.As(err, &ae) {
		return ae.Message + " (" + ae.Code + ")"
	}
	var te *client.TransportError
	if errors.As(err, &te) {
		cause := te.Err
		var ue *url.Error
		if errors.As(cause, &ue) {
			cause = ue.Err
		}
		var oe *net.OpError
		if errors.As(cause, &oe) && oe.Err != nil {
			cause = oe.Err
		}
		switch te.Kind {
		case client.KindTimeout:
			return "timed out talking to " + te.Target
		case client.KindTLS:
			return "TLS failure with " + te.Target + ": " + cause.Error()
		case client.KindBadData:
			return "unexpected answer from " + te.Target + ": " + cause.Error()
		}
		return "cannot connect to " + te.Target + ": " + cause.Error()
	}
	return err.Error()
}
