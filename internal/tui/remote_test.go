package tui

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/server"
	"github.com/yndnr/tokmesh-go/pkg/client"
)

func testEnv(k string) string {
	if k == "TOKMESH_ENCRYPTION_KEY" {
		return strings.Repeat("5a", 32)
	}
	return ""
}

// TestRemote_AgainstRealServer checks the route shapes the dashboard
// decodes and its /metrics reduction against a real standalone node.
func TestRemote_AgainstRealServer(t *testing.T) {
	dir := t.TempDir()
	c := config.Default()
	c.Storage.DataDir = filepath.Join(dir, "data")
	c.Server.HTTP.Address = "127.0.0.1:0"
	c.Server.HTTPS.Address = "127.0.0.1:0"
	c.Server.RESP.Enabled = false
	c.Server.RESPTLS.Enabled = false
	c.Server.Shutdown.GracePeriod = 0
	srv := server.New(c, server.Options{Getenv: testEnv})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	t.Cleanup(stop)
	sock := filepath.Join(dir, "data", "admin.sock")
	ctx := context.Background()

	local, err := client.New(client.Config{Target: "unix:" + sock, Timeout: 5 * time.Second, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	src := NewRemote(local, MetricsHTTP(&http.Client{Transport: tr}, "http://tokmesh-local", "", "test"))

	// Business traffic over TCP, so it counts in the metrics (the admin
	// socket's own calls do not).
	key, err := local.CreateKey(ctx, client.CreateKeyRequest{Role: "issuer", Description: "sso"})
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := client.New(client.Config{Target: "http://" + srv.Addr("http").String(), APIKey: key.APIKey, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	var ids []string
	for range 2 {
		cr, err := tcp.CreateSession(ctx, client.CreateSessionRequest{UserID: "u-remote", DeviceID: "d"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cr.SessionID)
		if _, err := tcp.Validate(ctx, cr.Token, false); err != nil {
			t.Fatal(err)
		}
	}

	s, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cluster.Mode != "standalone" || s.Cluster.Health != "healthy" || s.Cluster.Partitions.Total != 256 {
		t.Fatalf("cluster %+v", s.Cluster)
	}
	if len(s.Nodes) != 1 || !strings.HasPrefix(s.Nodes[0].NodeID, "tmnd-") || s.Nodes[0].Sessions != 2 || s.Nodes[0].State != "alive" {
		t.Fatalf("nodes %+v", s.Nodes)
	}
	if len(s.Partitions) != 256 || s.Partitions[0].Primary != s.Nodes[0].NodeID || s.Partitions[0].State != "active" {
		t.Fatalf("partitions %d %+v", len(s.Partitions), s.Partitions[0])
	}
	if s.Self == nil || s.Self.Sessions.Live != 2 || s.WAL == nil || s.WAL.Segments < 1 || s.WAL.TotalBytes <= 0 {
		t.Fatalf("self %+v (%s) wal %+v (%s)", s.Self, s.SelfErr, s.WAL, s.WALErr)
	}
	if s.KeysErr != "" || s.KeysTotal != 1 || s.Keys[0].KeyID != key.KeyID {
		t.Fatalf("keys %v %d %q", s.Keys, s.KeysTotal, s.KeysErr)
	}
	if s.Metrics == nil {
		t.Fatalf("metrics: %s", s.MetricsErr)
	}
	if s.Metrics.Validate.Count != 2 || s.Metrics.Create.Count != 2 || s.Metrics.WALBytesWritten <= 0 {
		t.Fatalf("metrics %+v", s.Metrics)
	}

	page, err := src.Sessions(ctx, "u-remote")
	if err != nil || page.Total != 2 || len(page.Items) != 2 {
		t.Fatalf("sessions %+v %v", page, err)
	}
	if ok, err := src.RevokeSession(ctx, ids[0]); err != nil || !ok {
		t.Fatalf("revoke: %v %v", ok, err)
	}
	if ok, err := src.RevokeSession(ctx, ids[0]); err != nil || ok {
		t.Fatalf("second revoke: %v %v", ok, err)
	}
	if n, err := src.RevokeUser(ctx, "u-remote"); err != nil || n != 1 {
		t.Fatalf("revoke user: %d %v", n, err)
	}
	if _, err := src.SetKeyStatus(ctx, key.KeyID, "disabled"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.SetKeyStatus(ctx, "tmak-nonexistent", "active"); err == nil || isTransport(err) ||
		!strings.Contains(errText(err), "TM-ADMIN-4041") {
		t.Fatalf("unknown key: %v", err)
	}

	// Over TCP, /metrics needs the metrics or admin role.
	base := "http://" + srv.Addr("http").String()
	admin, err := local.CreateKey(ctx, client.CreateKeyRequest{Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	body, err := MetricsHTTP(http.DefaultClient, base, admin.APIKey, "test")(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sample, err := ParseMetrics(body)
	body.Close()
	if err != nil || sample.Validate.Count != 2 {
		t.Fatalf("metrics over TCP: %+v %v", sample, err)
	}
	issuer, err := local.CreateKey(ctx, client.CreateKeyRequest{Role: "issuer"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MetricsHTTP(http.DefaultClient, base, issuer.APIKey, "test")(ctx); err == nil ||
		isTransport(err) || !strings.Contains(err.Error(), "may not read /metrics") {
		t.Fatalf("issuer key reading /metrics: %v", err)
	}

	// Gone: a transport error, which the model shows as disconnected.
	stop()
	if _, err := src.Snapshot(ctx); !isTransport(err) {
		t.Fatalf("snapshot of a stopped server: %v", err)
	}
}
