//go:build pgoprofile

package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// Built only with -tags pgoprofile (scripts/pgo.sh): the binary writes a
// CPU profile of its whole run to $PGO_PROFILE_OUT, the input of the
// profile-guided build (cmd/tokmesh-server/default.pgo). Release builds
// do not contain this file.
func init() {
	path := os.Getenv("PGO_PROFILE_OUT")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgo profile:", err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "pgo profile:", err)
		f.Close()
		return
	}
	stopProfile = func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
