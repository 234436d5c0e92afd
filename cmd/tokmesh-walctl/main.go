// Command tokmesh-walctl is the offline storage tool for TokMesh data dirs.
package main

import (
	"os"

	"github.com/yndnr/tokmesh-go/internal/walctl"
)

func main() {
	os.Exit(walctl.Run(os.Args[1:], walctl.Options{}))
}
