package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestHTTPSOnPlaintextPort_IsATLSFailure: -t https:// against the
// server's plaintext HTTP port fails the TLS handshake, which is
// TM-CLI-1003 "TLS failure" (exit 69), not TM-CLI-1002 "cannot connect"
// (07-tools §1.5).
func TestHTTPSOnPlaintextPort_IsATLSFailure(t *testing.T) {
	r, _ := setup(t)
	https := "https://" + strings.TrimPrefix(r.env["TOKMESH_TARGET"], "http://")
	res := r.run("-t", https, "system", "status")
	expectExit(t, res, ExitUnavailable, "(code TM-CLI-1003)", "TLS failure", "Hint: the port does not speak TLS")
	res = r.run("-t", https, "system", "status", "-o", "json")
	expectExit(t, res, ExitUnavailable)
	var e map[string]any
	if err := json.Unmarshal([]byte(res.stderr), &e); err != nil || e["code"] != "TM-CLI-1003" {
		t.Fatalf("json error: %v %s", err, res.stderr)
	}
}
