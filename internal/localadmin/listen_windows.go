//go:build windows

package localadmin

import (
	"fmt"
	"net"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// listenUnix uses AF_UNIX, which Windows 10+ supports; the server listens
// on the named pipe (ListenPipe) instead unless a socket path is forced.
func listenUnix(path string) (net.Listener, error) { return net.Listen("unix", path) }

// ListenPipe listens on the Windows named pipe name (04-security §7): the
// ACL grants SYSTEM, the Administrators group and the account the server
// runs as, and denies network logons; remote clients are rejected by the
// pipe itself (FILE_PIPE_REJECT_REMOTE_CLIENTS, set by go-winio).
func ListenPipe(name string) (net.Listener, error) {
	sid, err := processUserSID()
	if err != nil {
		return nil, fmt.Errorf("admin pipe %s: %w", name, err)
	}
	return winio.ListenPipe(name, &winio.PipeConfig{SecurityDescriptor: pipeSDDL(sid)})
}

func processUserSID() (string, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("read the process user: %w", err)
	}
	return tu.User.Sid.String(), nil
}
