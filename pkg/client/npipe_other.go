//go:build !windows

package client

import (
	"context"
	"net"
)

// DefaultPipe is the server's local admin pipe on Windows (04-security §7).
const DefaultPipe = `\\.\pipe\tokmesh-server`

func dialPipe(ctx context.Context, name string) (net.Conn, error) { return nil, errNoPipes }
