package client

import (
	"runtime"
	"testing"
)

func TestPipePath_NameOrFullPath(t *testing.T) {
	for in, want := range map[string]string{
		"tokmesh-server":           `\\.\pipe\tokmesh-server`,
		`\\.\pipe\tokmesh-server`:  `\\.\pipe\tokmesh-server`,
		`\\host\pipe\other-server`: `\\host\pipe\other-server`,
	} {
		if got := PipePath(in); got != want {
			t.Errorf("PipePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNew_NamedPipeTargets(t *testing.T) {
	c, err := New(Config{Target: "npipe:tokmesh-server"})
	if runtime.GOOS != "windows" {
		if err == nil {
			t.Fatal("npipe target accepted off Windows")
		}
		return
	}
	if err != nil || c.Target() != `npipe:\\.\pipe\tokmesh-server` || !c.IsSocket() {
		t.Fatalf("npipe target: %v %v", c, err)
	}
}
