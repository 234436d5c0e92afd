// Command tokmesh-cli is the admin CLI of TokMesh (07-tools §1).
package main

import (
	"os"

	"github.com/yndnr/tokmesh-go/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
