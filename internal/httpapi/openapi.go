package httpapi

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDoc is the OpenAPI 3.1 description of every route, parameter,
// body, response and error code (02-http-api §3). openapi_test.go checks it
// against the router and against real responses.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI serves GET /openapi.json (public; query strings are ignored).
func (h *Handler) openAPI(w http.ResponseWriter, rq *request) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDoc)
}
