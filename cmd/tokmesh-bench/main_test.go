package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/server"
	"github.com/yndnr/tokmesh-go/pkg/client"
)

type result struct {
	code           int
	stdout, stderr string
}

func runMain(env map[string]string, args ...string) result {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] }, false)
	return result{code, out.String(), errb.String()}
}

// startNode starts a real node and returns its RESP address and an
// issuer and a validator API key.
func startNode(t *testing.T) (resp, issuer, validator string) {
	t.Helper()
	dir := t.TempDir()
	c := config.Default()
	c.Storage.DataDir = filepath.Join(dir, "data")
	c.Server.HTTP.Address = "127.0.0.1:0"
	c.Server.HTTPS.Enabled = false
	c.Server.RESP.Address = "127.0.0.1:0"
	c.Server.RESPTLS.Enabled = false
	c.Server.Shutdown.GracePeriod = 0
	c.Server.Local.SocketPath = filepath.Join(dir, "a.sock")
	c.Security.Auth.Argon2.Memory, c.Security.Auth.Argon2.Iterations, c.Security.Auth.Argon2.Parallelism = 8192, 1, 1
	srv := server.New(c, server.Options{Getenv: func(k string) string {
		if k == "TOKMESH_ENCRYPTION_KEY" {
			return strings.Repeat("5a", 32)
		}
		return ""
	}})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	admin, err := client.New(client.Config{Target: "unix:" + c.Server.Local.SocketPath})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	keys := map[string]string{}
	for _, role := range []string{"issuer", "validator"} {
		k, err := admin.CreateKey(context.Background(), client.CreateKeyRequest{Role: role, RateLimit: 1000000})
		if err != nil {
			t.Fatal(err)
		}
		keys[role] = k.APIKey
	}
	return srv.Addr("resp").String(), keys["issuer"], keys["validator"]
}

func TestUsageErrorsExit64(t *testing.T) {
	env := map[string]string{"TOKMESH_API_KEY": "k:s"}
	for _, args := range [][]string{
		{"--bogus"},
		{"extra-argument"},
		{"--scenario", "soak"},
		{"--protocol", "grpc"},
		{"--pipeline", "16"}, // http has no pipelining
		{"-c", "0"},
		{"--duration", "fast"},
		{"--mix", "validate=x", "--scenario", "mixed"},
	} {
		if r := runMain(env, args...); r.code != 64 || !strings.Contains(r.stderr, "Error:") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if r := runMain(nil, "--protocol", "resp"); r.code != 64 || !strings.Contains(r.stderr, "API key") {
		t.Errorf("no API key: exit %d, %q", r.code, r.stderr)
	}
	if r := runMain(nil, "--help"); r.code != 0 || !strings.Contains(r.stdout, "--target-redis") {
		t.Errorf("--help: exit %d", r.code)
	}
}

func TestUnreachableTargetExits69(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	env := map[string]string{"TOKMESH_API_KEY": "k:s"}
	for _, args := range [][]string{
		{"--protocol", "resp", "--target", addr},
		{"--protocol", "http", "--target", "http://" + addr},
	} {
		if r := runMain(env, args...); r.code != 69 || !strings.Contains(r.stderr, "unreachable") {
			t.Errorf("%v: exit %d, %q", args, r.code, r.stderr)
		}
	}
}

func TestRunWritesReportAndComparesWithIt(t *testing.T) {
	resp, issuer, validator := startNode(t)
	dir := t.TempDir()
	first := filepath.Join(dir, "first.json")
	common := []string{"--protocol", "resp", "--target", resp, "--duration", "1s", "--warmup", "200ms", "--preload", "200", "-c", "4", "--no-progress"}
	// The key comes from the environment: it never has to be on the command line.
	env := map[string]string{"TOKMESH_API_KEY": issuer}
	r := runMain(env, append(common, "--report", first)...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var doc map[string]any
	b, _ := os.ReadFile(first)
	if err := json.Unmarshal(b, &doc); err != nil || doc["scenario"] != "validate" || doc["protocol"] != "resp" {
		t.Fatalf("report: %v %s", err, b)
	}
	if strings.Contains(string(b)+r.stdout+r.stderr, issuer) {
		t.Fatal("the API key appears in the output")
	}
	r = runMain(nil, append(common, "--api-key", issuer, "--compare", first)...)
	if r.code != 0 || !strings.Contains(r.stdout, "compared with") || !strings.Contains(r.stdout, "validate.p99_ms") {
		t.Fatalf("compare: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runMain(nil, append(common, "--api-key", issuer, "--compare", filepath.Join(dir, "missing.json"))...); r.code != 64 {
		t.Fatalf("missing --compare file: exit %d", r.code)
	}
	// A key without the issuer role fails before measuring, naming the role.
	r = runMain(nil, append(common, "--api-key", validator, "--scenario", "create")...)
	if r.code != 1 || !strings.Contains(r.stderr, "issuer role") {
		t.Fatalf("validator key: exit %d, %q", r.code, r.stderr)
	}
}
