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
