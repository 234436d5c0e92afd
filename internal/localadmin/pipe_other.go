//go:build !windows

package localadmin

import (
	"errors"
	"net"
)

// ListenPipe is Windows-only; elsewhere the admin API is on the Unix socket.
func ListenPipe(name string) (net.Listener, error) {
	return nil, errors.New("named pipes exist only on Windows; use server.local.socket_path")
}
