// Package localadmin serves the admin API on the local admin socket: a Unix
// socket with mode 0600 (04-security §7). Callers are LOCAL_ADMIN: admin
// rights, no API key, no rate limit, no brute-force guard. It is never TCP.
// On Linux, peers whose UID is neither the server's nor 0 are refused.
package localadmin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// MaxSocketPath is the portable sun_path limit the config enforces.
const MaxSocketPath = 104

// Listen creates the socket at path with mode 0600, removing a stale file
// first (the caller holds the data-dir lock, which proves no other server
// owns it). The returned listener refuses peers of other users.
func Listen(path string) (net.Listener, error) {
	if len(path) > MaxSocketPath {
		return nil, fmt.Errorf("admin socket path %s is longer than %d bytes", path, MaxSocketPath)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; refusing to remove it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale admin socket: %w", err)
		}
	}
	// Create the socket with 0600 from the start: no window where another
	// user could connect.
	l, err := listenUnix(path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return &peerCheckListener{Listener: l}, nil
}

// ErrPeerRefused is returned (and the connection closed) for peers of other users.
var ErrPeerRefused = errors.New("local admin socket: peer is neither this user nor root")

type peerCheckListener struct{ net.Listener }

// Accept skips connections from other users: they are closed at once.
func (l *peerCheckListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if peerAllowed(c) {
			return c, nil
		}
		c.Close()
	}
}
