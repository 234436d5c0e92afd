// Package buildinfo carries the version, commit and build date injected at
// link time (-ldflags "-X .../buildinfo.Version=..."), shared by all four
// binaries so they report one version.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker; the defaults describe a development build.
var (
	Version = "0.0.0-dev"
	Commit  = ""
	Date    = ""
)

// ResolvedCommit is the commit every binary reports — the startup log,
// GET /admin/v1/status, tokmesh_build_info and `version`: the linker-set
// Commit, else the revision the go tool stamped into the binary, else
// "unknown".
func ResolvedCommit() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := readBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// readBuildInfo is debug.ReadBuildInfo; tests replace it.
var readBuildInfo = debug.ReadBuildInfo

// String renders "<binary> <version> (commit <c>, built <d>, <go>, <os>/<arch>)".
func String(binary string) string {
	commit, date := Commit, Date
	if commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					commit = s.Value
				case "vcs.time":
					if date == "" {
						date = s.Value
					}
				}
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if date == "" {
		date = "unknown"
	}
	return fmt.Sprintf("%s %s (commit %s, built %s, %s, %s/%s)", binary, Version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
