#!/usr/bin/env bash
# RESP validate vs Redis GET, same run: TokMesh TM.VALIDATE <token> against
# GET of a 256-byte value on a redis-server started here on another loopback
# port. Servers pinned to CPU 0, redis-benchmark to CPU 1.
# Usage: scripts/bench-resp.sh [requests] [clients]   (issue 3)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
C=${2:-50}
command -v redis-benchmark >/dev/null && command -v redis-server >/dev/null || {
  apt-get update -qq && apt-get install -y -qq redis-server redis-tools; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
go build -o "$WORK/" ./cmd/tokmesh-server ./cmd/tokmesh-cli
export TOKMESH_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
(cd "$WORK" && exec taskset -c 0 ./tokmesh-server --http-address 127.0.0.1:5097 --resp-address 127.0.0.1:6397 \
  --set telemetry.logging.level=warn > server.log 2>&1) &
taskset -c 0 redis-server --port 6398 --bind 127.0.0.1 --save '' --appendonly no --daemonize no > "$WORK/redis.log" 2>&1 &
for i in $(seq 1 100); do curl -sf http://127.0.0.1:5097/ready >/dev/null && break; sleep 0.1; done
cd "$WORK"
json() { sed -n "s/.*\"$1\": \"\(.*\)\".*/\1/p"; }
KEY=$(./tokmesh-cli apikey create --role issuer --rate-limit 1000000 -o json 2>/dev/null | json api_key)
cd - >/dev/null
TOKEN=$(redis-cli -p 6397 --no-auth-warning -a "$KEY" TM.CREATE '{"user_id":"u-1001","data":{"tenant":"acme"}}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
redis-cli -p 6398 SET bench:key "$(head -c 256 /dev/zero | tr '\0' 'x')" >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for P in 1 16; do
  echo "== TokMesh TM.VALIDATE, -c $C -n $N -P $P"
  taskset -c 1 redis-benchmark -p 6397 -a "$KEY" -c "$C" -n "$N" -P "$P" -q --precision 3 TM.VALIDATE "$TOKEN" 2>&1 | tr '\r' '\n' | grep -E "requests per second|Error" | tail -1
  echo "== Redis GET 256 B, -c $C -n $N -P $P"
  taskset -c 1 redis-benchmark -p 6398 -c "$C" -n "$N" -P "$P" -q --precision 3 GET bench:key 2>&1 | tr '\r' '\n' | grep -E "requests per second|p99" | tail -1
done
