package server

import (
	"encoding/json"
	"net"
	"net/http"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/auth"
)

// GET /cluster/routing names this node and the address of each listener
// that is on, as bound (02 §4.9).
func TestRouting_DescribesThisNodesListeners(t *testing.T) {
	c := baseConfig(t)
	c.Server.RESP.Enabled = true
	c.Server.RESP.Address = "127.0.0.1:0"
	srv := startServer(t, c)
	keyID, secret := newKey(t, srv, auth.RoleValidator)
	req, _ := http.NewRequest("GET", "http://"+srv.Addr("http").String()+"/cluster/routing", nil)
	req.Header.Set("Authorization", "Bearer "+keyID+":"+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data struct {
			Mode      string `json:"mode"`
			Nodes     []map[string]string
			Primaries []int
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	want := map[string]string{"node_id": srv.Engine().Node().NodeID, "http": srv.Addr("http").String(),
		"https": "", "resp": srv.Addr("resp").String(), "resp_tls": ""}
	if len(env.Data.Nodes) != 1 || len(env.Data.Nodes[0]) != len(want) {
		t.Fatalf("nodes %v, want [%v]", env.Data.Nodes, want)
	}
	for k, v := range want {
		if env.Data.Nodes[0][k] != v {
			t.Errorf("%s = %q, want %q", k, env.Data.Nodes[0][k], v)
		}
	}
	if want["node_id"] == "" || env.Data.Mode != "standalone" || len(env.Data.Primaries) != c.Cluster.Partitions {
		t.Fatalf("%+v", env.Data)
	}
}

func TestClientAddr_WildcardTakesTheAdvertisedHost(t *testing.T) {
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	for _, tc := range []struct {
		a        net.Addr
		adv, out string
	}{
		{nil, "10.0.0.1", ""},
		{tcp("127.0.0.1:5080"), "10.0.0.1", "127.0.0.1:5080"},
		{tcp("0.0.0.0:5443"), "10.0.0.1", "10.0.0.1:5443"},
		{tcp("[::]:6380"), "node-a.example", "node-a.example:6380"},
		{tcp("[::]:6380"), "fd00::1", "[fd00::1]:6380"},
		{tcp("0.0.0.0:5443"), "", "0.0.0.0:5443"},
	} {
		if got := clientAddr(tc.a, tc.adv); got != tc.out {
			t.Errorf("clientAddr(%v, %q) = %q, want %q", tc.a, tc.adv, got, tc.out)
		}
	}
}
