// Command bareresp is the ceiling of the RESP validate benchmark: a redcon
// server with no work behind it. Every GET (or TM.VALIDATE) is answered
// with the same bulk string of -size bytes; INFO reports the command count
// the way redis-server does, so scripts/bench-resp.sh can measure CPU time
// per command for it exactly as for TokMesh and Redis.
//
// TokMesh/bareresp is the cost of everything TokMesh does per command;
// bareresp/redis-server is what the Go runtime and redcon cost against
// Redis's event loop before any work is done.
package main

import (
	"flag"
	"log"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/tidwall/redcon"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6399", "listen address")
	size := flag.Int("size", 256, "reply size in bytes")
	flag.Parse()
	value := []byte(strings.Repeat("x", *size))
	var commands atomic.Int64
	handler := func(c redcon.Conn, cmd redcon.Command) {
		commands.Add(1)
		name := cmd.Args[0]
		switch {
		case is(name, "GET"), is(name, "TM.VALIDATE"):
			c.WriteBulk(value)
		case is(name, "INFO"):
			c.WriteBulkString("# Stats\r\ntotal_commands_processed:" + strconv.FormatInt(commands.Load(), 10) + "\r\n")
		case is(name, "PING"):
			c.WriteString("PONG")
		case is(name, "CONFIG"):
			c.WriteArray(0)
		default: // AUTH, SELECT, CLIENT … from redis-benchmark's handshake
			c.WriteString("OK")
		}
	}
	log.Fatal(redcon.ListenAndServe(*addr, handler, nil, nil))
}

// is reports whether b equals the upper-case name, ignoring ASCII case,
// without converting b to a string.
func is(b []byte, name string) bool {
	if len(b) != len(name) {
		return false
	}
	for i := range b {
		if b[i]&^0x20 != name[i]&^0x20 {
			return false
		}
	}
	return true
}
