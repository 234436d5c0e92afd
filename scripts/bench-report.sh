#!/usr/bin/env bash
# The standard tokmesh-bench suite, TokMesh vs Redis side by side (issue 7),
# written to docs/benchmarks.md between the bench-report markers.
#
# TokMesh and redis-server run on loopback with temp data dirs, both pinned
# to CPU 0 (TokMesh one P, two in WAL always runs: docs/decisions.md D17); tokmesh-bench is pinned
# to CPU 1. Redis persists with an append-only file whose fsync policy
# matches TokMesh's WAL sync mode of the same run:
#   phase A: storage.wal.sync_mode=interval  vs  appendfsync everysec
#   phase B: storage.wal.sync_mode=always    vs  appendfsync always
#
# Usage: scripts/bench-report.sh
# Env:   DURATION (15s) WARMUP (3s) CONNS (50) PRELOAD (10000)
#        DOC (docs/benchmarks.md; "-" prints the section instead)
#        TM_HTTP (127.0.0.1:35080) TM_RESP (127.0.0.1:36379) REDIS_PORT (36390)
#        KEEP_RESULTS (a directory that receives every run's JSON report and output)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
CONNS=${CONNS:-50}
PRELOAD=${PRELOAD:-10000}
DOC=${DOC:-docs/benchmarks.md}
TM_HTTP=${TM_HTTP:-127.0.0.1:35080}
TM_RESP=${TM_RESP:-127.0.0.1:36379}
REDIS_PORT=${REDIS_PORT:-36390}
REDIS=127.0.0.1:$REDIS_PORT

for tool in redis-server redis-cli taskset curl jq; do
  command -v "$tool" >/dev/null || { echo "bench-report: $tool is required (apt-get install redis-server redis-tools util-linux curl jq)" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "bench-report: needs at least 2 CPUs (server on CPU 0, bench on CPU 1)" >&2; exit 1; }
for a in "$TM_HTTP" "$TM_RESP" "$REDIS"; do
  if (exec 3<>"/dev/tcp/${a%:*}/${a##*:}") 2>/dev/null; then
    echo "bench-report: $a is already in use; set TM_HTTP / TM_RESP / REDIS_PORT" >&2; exit 1
  fi
done

WORK=$(mktemp -d)
RES=$WORK/results
mkdir -p "$RES"
TM_PID="" REDIS_PID=""
cleanup() {
  [ -n "$TM_PID" ] && kill "$TM_PID" 2>/dev/null && wait "$TM_PID" 2>/dev/null || true
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "bench-report: building into $WORK" >&2
go build -o "$WORK/" ./cmd/tokmesh-server ./cmd/tokmesh-bench
TOKMESH_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export TOKMESH_ENCRYPTION_KEY

start_tokmesh() { # $1 = WAL sync mode
  rm -rf "$WORK/tm" && mkdir -p "$WORK/tm"
  (cd "$WORK/tm" && TOKMESH_STORAGE__WAL__SYNC_MODE=$1 exec taskset -c 0 "$WORK/tokmesh-server" \
    --http-address "$TM_HTTP" --resp-address "$TM_RESP" --set telemetry.logging.level=warn \
    --set server.shutdown.grace_period=0s >server.log 2>&1) &
  TM_PID=$!
  for _ in $(seq 1 200); do curl -sf "http://$TM_HTTP/ready" >/dev/null && break; sleep 0.1; done
  curl -sf "http://$TM_HTTP/ready" >/dev/null || { cat "$WORK/tm/server.log" >&2; exit 1; }
  # An issuer key with a rate limit far above the load, created on the
  # local admin socket (no key needed there). Passed in the environment,
  # never on a command line.
  TOKMESH_API_KEY=$(curl -sf --unix-socket "$WORK/tm/data/admin.sock" -X POST http://local/admin/v1/keys \
    -d '{"role":"issuer","rate_limit":1000000,"description":"bench-report"}' | jq -r .data.api_key)
  export TOKMESH_API_KEY
  [ -n "$TOKMESH_API_KEY" ] && [ "$TOKMESH_API_KEY" != null ] || { echo "bench-report: key creation failed" >&2; exit 1; }
  local mode
  mode=$(curl -sf --unix-socket "$WORK/tm/data/admin.sock" http://local/admin/v1/wal/status | jq -r .data.sync_mode)
  [ "$mode" = "$1" ] || { echo "bench-report: the server runs WAL sync mode '$mode', not '$1'" >&2; exit 1; }
}

start_redis() { # $1 = appendfsync policy
  rm -rf "$WORK/redis" && mkdir -p "$WORK/redis"
  taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save '' \
    --appendonly yes --appendfsync "$1" --daemonize no >"$WORK/redis/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return; sleep 0.1; done
  cat "$WORK/redis/redis.log" >&2; exit 1
}

stop_all() {
  kill "$TM_PID" "$REDIS_PID" 2>/dev/null || true
  wait "$TM_PID" "$REDIS_PID" 2>/dev/null || true
  TM_PID="" REDIS_PID=""
}

COMMANDS=()
# bench NAME ARGS…: one tokmesh-bench run, TokMesh then Redis, JSON in $RES/NAME.json.
bench() {
  local name=$1; shift
  local args=(--duration "$DURATION" --warmup "$WARMUP" -c "$CONNS" --preload "$PRELOAD" --no-progress
    --target-redis "$REDIS" --report "$RES/$name.json" "$@")
  COMMANDS+=("taskset -c 1 tokmesh-bench ${args[*]/#$RES\//}")
  echo "bench-report: $name: tokmesh-bench ${args[*]}" >&2
  local rc=0
  taskset -c 1 "$WORK/tokmesh-bench" "${args[@]}" >"$RES/$name.txt" 2>"$RES/$name.err" || rc=$?
  echo "$rc" >"$RES/$name.rc"
  cat "$RES/$name.err" >&2
  grep -E "total|ratio" "$RES/$name.txt" >&2 || true
  if [ ! -s "$RES/$name.json" ]; then
    echo "bench-report: $name produced no report (exit $rc)" >&2; cat "$RES/$name.txt" >&2; exit 1
  fi
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# Phase A: WAL interval vs AOF everysec.
start_tokmesh interval
start_redis everysec
bench validate-p1 --scenario validate --protocol resp --target "$TM_RESP"
bench validate-p16 --scenario validate --protocol resp --target "$TM_RESP" --pipeline 16
bench validate-http --scenario validate --protocol http --target "http://$TM_HTTP"
# Client check: redis-benchmark against the same Redis, same CPU, same
# connections. If tokmesh-bench's Redis numbers are far below these, the
# generator is the bottleneck and the ratios above mean little.
redis-cli -p "$REDIS_PORT" SET tmbench:ref "$(head -c 256 /dev/zero | tr '\0' 'v')" >/dev/null
rb() { # pipeline requests
  taskset -c 1 redis-benchmark -p "$REDIS_PORT" -c "$CONNS" -n "$2" -P "$1" -q GET tmbench:ref 2>/dev/null |
    tr '\r' '\n' | sed -n 's/.*GET tmbench:ref: \([0-9.]*\) requests per second.*/\1/p' | tail -1
}
RB_P1=$(rb 1 500000 || true)
RB_P16=$(rb 16 4000000 || true)
echo "bench-report: redis-benchmark GET: P1 $RB_P1 req/s, P16 $RB_P16 req/s" >&2
MAX=$(jq -r .throughput_rps "$RES/validate-p1.json")
RATE=$(jq -rn --argjson m "$MAX" '($m / 2) | floor')
bench validate-open --scenario validate --protocol resp --target "$TM_RESP" --rate "$RATE"
bench revoke-storm --scenario revoke-storm --protocol resp --target "$TM_RESP"
bench create-interval --scenario create --protocol resp --target "$TM_RESP"
stop_all

# Phase B: WAL always vs AOF always.
start_tokmesh always
start_redis always
bench create-always --scenario create --protocol resp --target "$TM_RESP"
stop_all
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the markdown section ----
j() { jq -r "$2" "$RES/$1.json"; }
fmt_int() { printf "%'d" "$(printf '%.0f' "$1")"; }
verdict() { # value op goal
  if jq -en --argjson v "$1" --argjson g "$3" "\$v $2 \$g" >/dev/null; then echo "met"; else echo "**missed**"; fi
}
row_tp() { # name label goal
  local tp rtp ratio
  tp=$(j "$1" .throughput_rps) rtp=$(j "$1" .redis.throughput_rps) ratio=$(j "$1" .ratio.throughput)
  printf '| %s | %s req/s, p99 %s ms | %s req/s, p99 %s ms | **%.2f×** | ≥ %s× | %s |\n' "$2" \
    "$(fmt_int "$tp")" "$(j "$1" .latency_ms.p99)" "$(fmt_int "$rtp")" "$(j "$1" .redis.latency_ms.p99)" \
    "$ratio" "$3" "$(verdict "$ratio" '>=' "$3")"
}
lat_row() { # name label side(""|".redis")
  local p=$3
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "$(fmt_int "$(j "$1" "$p.throughput_rps")")" \
    "$(j "$1" "$p.latency_ms.p50")" "$(j "$1" "$p.latency_ms.p90")" "$(j "$1" "$p.latency_ms.p99")" \
    "$(j "$1" "$p.latency_ms.p999")" "$(j "$1" "$p.latency_ms.max")" \
    "$(j "$1" "[$p.errors // {} | to_entries[] | \"\(.key)=\(.value)\"] | if length == 0 then \"0\" else join(\" \") end")" \
    "$(cat "$RES/$1.rc")"
}

SECTION=$WORK/section.md
{
  echo "<!-- bench-report:begin -->"
  echo "## tokmesh-bench: TokMesh vs Redis, side by side (issue 7)"
  echo
  echo "Generated by \`scripts/bench-report.sh\` (started $STARTED). Every row is one"
  echo "\`tokmesh-bench\` invocation that measures TokMesh and then Redis with the same"
  echo "scenario, connections, rate and duration, over the same RESP client code."
  echo
  echo "**Machine:** $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r),"
  echo "$(go version | cut -d' ' -f3-), $(redis-server --version | cut -d' ' -f1-3). TokMesh and \`redis-server\` pinned"
  echo "to CPU 0 (\`taskset -c 0\`; TokMesh runs one P, two in WAL \`always\` runs: D17 in docs/decisions.md), \`tokmesh-bench\` pinned to CPU 1."
  echo "Load average before/after: $LOAD_BEFORE / $LOAD_AFTER. The VM is shared with other"
  echo "builds and tests: compare the ratios within a row, not absolute numbers across runs."
  echo
  echo "**Settings:** $DURATION measured after $WARMUP of warm-up, $CONNS connections, $PRELOAD preloaded"
  echo "sessions (Redis: $PRELOAD 256-byte values), TTL 10 min, loopback. Redis runs with"
  echo "\`appendonly yes\` and the \`appendfsync\` policy matching TokMesh's \`storage.wal.sync_mode\`."
  echo
  echo "| test | TokMesh | Redis | ratio | goal | |"
  echo "|---|---|---|---|---|---|"
  row_tp validate-p1 "RESP validate, c$CONNS P1 (\`TM.VALIDATE\` vs \`GET\`)" 1.0
  row_tp validate-p16 "RESP validate, c$CONNS P16" 0.8
  row_tp validate-http "HTTP validate (\`POST /tokens/validate\` vs RESP \`GET\`)" 0.5
  row_tp create-interval "create, WAL \`interval\` vs AOF \`everysec\` (\`TM.CREATE\` vs \`SET … EX\`)" 1.0
  row_tp create-always "create, WAL \`always\` vs AOF \`always\`" 1.0
  p99=$(j validate-open .latency_ms.p99) rp99=$(j validate-open .redis.latency_ms.p99) pr=$(j validate-open .ratio.p99)
  printf '| open-loop RESP validate at %s req/s (50 %% of row 1): **p99** | p99 %s ms (%s req/s) | p99 %s ms (%s req/s) | **%.2f×** | ≤ 1.5× | %s |\n' \
    "$(fmt_int "$RATE")" "$p99" "$(fmt_int "$(j validate-open .throughput_rps)")" "$rp99" \
    "$(fmt_int "$(j validate-open .redis.throughput_rps)")" "$pr" "$(verdict "$pr" '<=' 1.5)"
  echo
  echo "Client check, same Redis, same CPU, $CONNS connections: \`redis-benchmark -q GET\` (256-byte value) made"
  printf '%s req/s at P1 and %s req/s at P16; tokmesh-bench'"'"'s Redis side made %s and %s req/s in rows 1 and 2.\n' \
    "$(fmt_int "${RB_P1:-0}")" "$(fmt_int "${RB_P16:-0}")" "$(fmt_int "$(j validate-p1 .redis.throughput_rps)")" \
    "$(fmt_int "$(j validate-p16 .redis.throughput_rps)")"
  echo "(The two run one after the other on a shared VM, so they differ by the noise of the moment.)"
  echo
  echo "Latencies in ms (open loop: measured from each request's scheduled send time)."
  echo "\`exit\` is tokmesh-bench's exit code (1 = error rate above 1 % or a stale validation)."
  echo
  echo "| run | side | req/s | p50 | p90 | p99 | p99.9 | max | errors | exit |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for r in validate-p1 validate-p16 validate-http validate-open create-interval create-always revoke-storm; do
    lat_row "$r" "$r | TokMesh" ""
    lat_row "$r" "$r | Redis" ".redis"
  done
  echo
  echo "**Revocation visibility** (\`revoke-storm\`: $((CONNS / 4)) connections revoke every preloaded session"
  echo "one by one with \`TM.REVOKE\` / \`DEL\` as fast as they are acknowledged while the others validate;"
  echo "time from a revocation's acknowledgement to the first validation answered \"revoked\", ms):"
  echo
  echo "| side | revocations seen | p50 | p90 | p99 | p99.9 | max | stale_valid_after_ack |"
  echo "|---|---|---|---|---|---|---|---|"
  for p in "" ".redis"; do
    side=TokMesh; [ -n "$p" ] && side=Redis
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$side" \
      "$(j revoke-storm "$p.revocation_visibility_ms.count")" "$(j revoke-storm "$p.revocation_visibility_ms.p50")" \
      "$(j revoke-storm "$p.revocation_visibility_ms.p90")" "$(j revoke-storm "$p.revocation_visibility_ms.p99")" \
      "$(j revoke-storm "$p.revocation_visibility_ms.p999")" "$(j revoke-storm "$p.revocation_visibility_ms.max")" \
      "$(j revoke-storm "$p.stale_valid_after_ack")"
  done
  echo
  echo "Load generator notes (stderr of each run):"
  echo
  echo '```'
  for r in validate-p1 validate-p16 validate-http validate-open revoke-storm create-interval create-always; do
    sed "s/^/$r: /" "$RES/$r.err"
  done
  echo '```'
  echo
  echo "Commands (TokMesh on $TM_RESP / http://$TM_HTTP, Redis on $REDIS; the API key is in \`TOKMESH_API_KEY\`):"
  echo
  echo '```'
  for c in "${COMMANDS[@]}"; do echo "$c"; done
  echo '```'
  echo "<!-- bench-report:end -->"
} >"$SECTION"

if [ -n "${KEEP_RESULTS:-}" ]; then
  mkdir -p "$KEEP_RESULTS" && cp "$RES"/* "$KEEP_RESULTS"/
  echo "bench-report: reports kept in $KEEP_RESULTS" >&2
fi
if [ "$DOC" = "-" ]; then
  cat "$SECTION"
  exit 0
fi
if grep -q '<!-- bench-report:begin -->' "$DOC" && grep -q '<!-- bench-report:end -->' "$DOC"; then
  awk -v f="$SECTION" '
    /<!-- bench-report:begin -->/ { while ((getline l < f) > 0) print l; skip = 1; next }
    /<!-- bench-report:end -->/ { skip = 0; next }
    !skip { print }' "$DOC" >"$WORK/doc.md"
  cat "$WORK/doc.md" >"$DOC"
else
  { echo; cat "$SECTION"; } >>"$DOC"
fi
echo "bench-report: wrote the bench-report section of $DOC" >&2
