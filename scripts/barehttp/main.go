// Command barehttp is the baseline of the HTTP validate benchmark: a bare
// net/http handler that answers every request with a fixed JSON body of the
// same size as TokMesh's validate response. It does no work at all, so the
// ratio TokMesh/barehttp is the cost of everything TokMesh does per request.
//
// With -configured it also runs with what 02-http-api and 08-config make
// every TokMesh response and connection carry — the default server
// timeouts (header 5 s, read 30 s, write 30 s, idle 120 s) and the
// X-Request-ID and Cache-Control headers — so the ratio against it is the
// cost of TokMesh's own work alone.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5099", "listen address")
	size := flag.Int("size", 700, "response body size in bytes")
	configured := flag.Bool("configured", false, "TokMesh's default timeouts and per-response headers")
	flag.Parse()
	body := []byte(`{"code":"OK","message":"success","data":{"valid":true,"pad":"` + strings.Repeat("x", max(0, *size-70)) + `"}}`)
	clen := strconv.Itoa(len(body))
	mux := http.NewServeMux()
	mux.HandleFunc("/tokens/validate", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if *configured {
			w.Header().Set("X-Request-Id", "tmrq-01kmzq3v8y0000000000000000")
			w.Header().Set("Cache-Control", "no-store")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", clen)
		_, _ = w.Write(body)
	})
	s := &http.Server{Addr: *addr, Handler: mux}
	if *configured {
		s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout = 5*time.Second, 30*time.Second, 30*time.Second, 120*time.Second
	}
	log.Fatal(s.ListenAndServe())
}
