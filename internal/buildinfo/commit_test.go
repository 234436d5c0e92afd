package buildinfo

import (
	"runtime/debug"
	"testing"
)

// Every binary and surface reports the same commit: the linker's, else
// the go tool's VCS stamp, else "unknown" (never "").
func TestResolvedCommit(t *testing.T) {
	saved, savedRead := Commit, readBuildInfo
	t.Cleanup(func() { Commit, readBuildInfo = saved, savedRead })
	stamp := func(rev string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}}}, true
		}
	}
	for _, c := range []struct {
		linker, vcs, want string
	}{
		{"abc123", "def456", "abc123"},
		{"", "def456", "def456"},
		{"", "", "unknown"},
	} {
		Commit, readBuildInfo = c.linker, stamp(c.vcs)
		if got := ResolvedCommit(); got != c.want {
			t.Errorf("linker %q, vcs %q: %q, want %q", c.linker, c.vcs, got, c.want)
		}
	}
	Commit, readBuildInfo = "", func() (*debug.BuildInfo, bool) { return nil, false }
	if got := ResolvedCommit(); got != "unknown" {
		t.Errorf("no build info: %q", got)
	}
}
