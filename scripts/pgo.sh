#!/usr/bin/env bash
# Regenerates cmd/tokmesh-server/default.pgo, the CPU profile `go build`
# uses for profile-guided optimisation of tokmesh-server (go build's
# -pgo=auto default; goreleaser and `make build` pick it up too).
#
# It builds the server with -tags pgoprofile (a build that profiles its own
# whole run, cmd/tokmesh-server/pgo_profile.go) and without PGO, runs it
# pinned to CPU 0 like the benchmarks, and drives the traffic the node is
# built for with tokmesh-bench on CPU 1: HTTP and RESP validation (most of
# the time), creates, and the mixed scenario. Run it again after changes
# that move the hot paths (`make pgo`), then commit default.pgo.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
go build -tags pgoprofile -pgo=off -o "$WORK/tokmesh-server" ./cmd/tokmesh-server
go build -o "$WORK/tokmesh-bench" ./cmd/tokmesh-bench
export TOKMESH_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
HTTP=127.0.0.1:5091 RESP=127.0.0.1:6391
(cd "$WORK" && PGO_PROFILE_OUT="$WORK/cpu.pprof" exec taskset -c 0 ./tokmesh-server --http-address "$HTTP" \
  --resp-address "$RESP" --set telemetry.logging.level=warn > server.log 2>&1) &
PID=$!
for _ in $(seq 1 100); do curl -sf "http://$HTTP/ready" >/dev/null && break; sleep 0.1; done
json() { sed -E "s/.*\"$1\":\"([^\"]+)\".*/\1/"; }
ADMIN=$(curl -s --unix-socket "$WORK/data/admin.sock" -X POST http://local/admin/v1/keys -d '{"role":"admin"}' | json api_key)
KEY=$(curl -s -X POST "http://$HTTP/admin/v1/keys" -H "Authorization: Bearer $ADMIN" \
  -d '{"role":"issuer","rate_limit":1000000}' | json api_key)
bench() { taskset -c 1 "$WORK/tokmesh-bench" --api-key "$KEY" --warmup 1s --preload 2000 --no-progress --max-error-rate 1 "$@" >/dev/null; }
bench --scenario validate --protocol http --target "http://$HTTP" --duration 25s
bench --scenario validate --protocol resp --target "$RESP" --duration 15s
bench --scenario validate --protocol resp --target "$RESP" --duration 5s --pipeline 16
bench --scenario validate --protocol http --target "http://$HTTP" --duration 5s --touch
bench --scenario create --protocol http --target "http://$HTTP" --duration 8s
bench --scenario create --protocol resp --target "$RESP" --duration 8s
bench --scenario mixed --protocol http --target "http://$HTTP" --duration 8s
kill -TERM "$PID"
wait "$PID" || true
test -s "$WORK/cpu.pprof" || { echo "no profile written" >&2; exit 1; }
cp "$WORK/cpu.pprof" cmd/tokmesh-server/default.pgo
echo "wrote cmd/tokmesh-server/default.pgo ($(wc -c < cmd/tokmesh-server/default.pgo) bytes)"
