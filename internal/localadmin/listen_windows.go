//go:build windows

package localadmin

import "net"

// listenUnix uses AF_UNIX, which Windows 10+ supports; the named pipe of
// 04-security §7 is future work (docs/decisions.md).
func listenUnix(path string) (net.Listener, error) { return net.Listen("unix", path) }
