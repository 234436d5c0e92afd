package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// "OPTIONS *" names no route: it gets the 404 envelope with the headers
// every response carries (02-http-api §2, §2.2), not net/http's bare 200.
func TestServer_OptionsAsteriskIsAnUnknownRoute(t *testing.T) {
	srv := startServer(t, baseConfig(t))
	c, err := net.DialTimeout("tcp", srv.Addr("http").String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "OPTIONS"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Code      string `json:"code"`
		RequestID string `json:"request_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("OPTIONS *: %d, body is not an envelope: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != 404 || env.Code != "TM-SYS-4040" || env.RequestID == "" ||
		resp.Header.Get("X-Request-ID") != env.RequestID || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("OPTIONS *: %d %+v %v", resp.StatusCode, env, resp.Header)
	}
}
