// Command barehttp is the baseline of the HTTP validate benchmark: a bare
// net/http handler that answers every request with a fixed JSON body of the
// same size as TokMesh's validate response. It does no work at all, so the
// ratio TokMesh/barehttp is the cost of everything TokMesh does per request.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5099", "listen address")
	size := flag.Int("size", 700, "response body size in bytes")
	flag.Parse()
	body := []byte(`{"code":"OK","message":"success","data":{"valid":true,"pad":"` + strings.Repeat("x", max(0, *size-70)) + `"}}`)
	clen := strconv.Itoa(len(body))
	http.HandleFunc("/tokens/validate", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", clen)
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
