//go:build !windows

package main

// runAsService reports that the process does not run under a service
// manager that needs a control handler: on Unix, systemd (and any other
// supervisor) runs the node like the command line, stopping it with
// SIGTERM. The Windows version is in service_windows.go.
func runAsService([]string) (code int, ok bool) { return 0, false }
