#!/usr/bin/env bash
# RESP side by side with redis-benchmark (issue 3), all servers started here
# on loopback and pinned to CPU 0, redis-benchmark pinned to CPU 1:
#   1. TM.VALIDATE <token> vs GET of a 256-byte value, -P 1 and -P 16, and
#      as the ceiling of any redcon server, scripts/bareresp (redcon with no
#      work behind it, same-size reply) vs the same GET;
#   2. TM.CREATE (WAL interval) vs SET … EX (appendfsync everysec);
#   3. TM.CREATE (WAL always)   vs SET … EX (appendfsync always).
# Prints requests/s and p50/p99 (ms) per run and the ratios.
# Usage: scripts/bench-resp.sh [requests] [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
C=${2:-50}
command -v redis-benchmark >/dev/null && command -v redis-server >/dev/null || {
  apt-get update -qq && apt-get install -y -qq redis-server redis-tools; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
go build -o "$WORK/" ./cmd/tokmesh-server ./cmd/tokmesh-cli ./scripts/bareresp
export TOKMESH_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
VALUE=$(head -c 256 /dev/zero | tr '\0' 'x')
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); -c $C -n $N"

# start_servers MODE APPENDFSYNC: a fresh TokMesh (WAL sync_mode MODE) on
# 6397 and a fresh redis-server (AOF with APPENDFSYNC) on 6398.
start_servers() {
  stop_servers
  rm -rf "$WORK/data" "$WORK/redis" && mkdir -p "$WORK/redis"
  (cd "$WORK" && exec taskset -c 0 ./tokmesh-server --http-address 127.0.0.1:5097 --resp-address 127.0.0.1:6397 \
    --set telemetry.logging.level=warn --set storage.wal.sync_mode="$1" > server.log 2>&1) &
  TM_PID=$!
  taskset -c 0 redis-server --port 6398 --bind 127.0.0.1 --dir "$WORK/redis" --save '' --appendonly yes \
    --appendfsync "$2" --daemonize no > "$WORK/redis.log" 2>&1 &
  RD_PID=$!
  for i in $(seq 1 100); do curl -sf http://127.0.0.1:5097/ready >/dev/null && redis-cli -p 6398 ping >/dev/null 2>&1 && break; sleep 0.1; done
  sleep 0.3
  KEY=$(cd "$WORK" && ./tokmesh-cli apikey create --role issuer --rate-limit 1000000 -o json 2>/dev/null | sed -n 's/.*"api_key": "\(.*\)".*/\1/p')
}
stop_servers() {
  [ -n "${BR_PID:-}" ] && kill "$BR_PID" 2>/dev/null && wait "$BR_PID" 2>/dev/null || true
  [ -n "${TM_PID:-}" ] && kill "$TM_PID" 2>/dev/null && wait "$TM_PID" 2>/dev/null || true
  [ -n "${RD_PID:-}" ] && kill "$RD_PID" 2>/dev/null && wait "$RD_PID" 2>/dev/null || true
  TM_PID= RD_PID= BR_PID=
}

# run NAME PORT AUTH ARGS... → "rps p50 p99" from redis-benchmark's CSV
run() {
  local port=$1 auth=$2; shift 2
  taskset -c 1 redis-benchmark -p "$port" ${auth:+-a "$auth"} -c "$C" -n "$N" --csv "$@" 2>/dev/null \
    | tail -1 | awk -F, '{gsub(/"/,""); print $(NF-6), $(NF-3), $(NF-1)}'
}
row() { # row LABEL "tm_rps tm_p50 tm_p99" "rd_rps rd_p50 rd_p99"
  read -r a p50a p99a <<<"$2"; read -r b p50b p99b <<<"$3"
  awk -v l="$1" -v a="$a" -v b="$b" -v pa="$p99a" -v pb="$p99b" -v qa="$p50a" -v qb="$p50b" 'BEGIN {
    printf "| %s | %.0f req/s, p50 %s, p99 %s ms | %.0f req/s, p50 %s, p99 %s ms | %.2fx | %.2fx |\n", l, a, qa, pa, b, qb, pb, a/b, pa/pb }'
}

# bareresp answers with a reply as long as TokMesh's validate reply.
start_bare() {
  taskset -c 0 "$WORK/bareresp" -addr 127.0.0.1:6399 -size "$1" > "$WORK/bare.log" 2>&1 &
  BR_PID=$!
  for i in $(seq 1 50); do redis-cli -p 6399 ping >/dev/null 2>&1 && break; sleep 0.1; done
}

echo "| test | TokMesh (or bareresp) | Redis | throughput ratio | p99 ratio |"
echo "|---|---|---|---|---|"
start_servers interval everysec
TOKEN=$(redis-cli -p 6397 --no-auth-warning -a "$KEY" TM.CREATE '{"user_id":"u-1001","data":{"tenant":"acme"}}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
redis-cli -p 6398 SET bench:key "$VALUE" >/dev/null
start_bare "$(redis-cli -p 6397 --no-auth-warning -a "$KEY" TM.VALIDATE "$TOKEN" | tr -d '\n' | wc -c)"
for P in 1 16; do
  row "TM.VALIDATE vs GET, -P $P" "$(run 6397 "$KEY" -P "$P" TM.VALIDATE "$TOKEN")" "$(run 6398 "" -P "$P" GET bench:key)"
  row "bareresp GET vs GET, -P $P" "$(run 6399 "" -P "$P" GET bench:key)" "$(run 6398 "" -P "$P" GET bench:key)"
done
# Paired rounds: both validate loads at once for PAIR_SECONDS, so both
# servers share CPU 0 through the same seconds of this noisy machine; each
# server's CPU time (utime+stime from /proc) over commands processed (INFO
# stats, read before and after a window in the middle of the run) gives its
# CPU time per command, and Redis/TokMesh is the throughput ratio at equal
# CPU. p99 is not meaningful here (the servers compete).
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
cmds() { redis-cli -p "$1" ${2:+-a "$2"} --no-auth-warning INFO stats | tr -d '\r' | awk -F: '/^total_commands_processed/{print $2}'; }
PAIR_SECONDS=${PAIR_SECONDS:-10}
paired() { # paired P: TokMesh, bareresp and Redis under load at once
  taskset -c 1 redis-benchmark -p 6397 -a "$KEY" -c "$C" -n 100000000 -P "$1" -q TM.VALIDATE "$TOKEN" >/dev/null 2>&1 & local J1=$!
  taskset -c 1 redis-benchmark -p 6398 -c "$C" -n 100000000 -P "$1" -q GET bench:key >/dev/null 2>&1 & local J2=$!
  taskset -c 1 redis-benchmark -p 6399 -c "$C" -n 100000000 -P "$1" -q GET bench:key >/dev/null 2>&1 & local J3=$!
  sleep 2
  local t0 r0 b0 tc0 rc0 bc0 t1 r1 b1 tc1 rc1 bc1
  t0=$(cpu "$TM_PID"); r0=$(cpu "$RD_PID"); b0=$(cpu "$BR_PID"); tc0=$(cmds 6397 "$KEY"); rc0=$(cmds 6398); bc0=$(cmds 6399)
  sleep "$PAIR_SECONDS"
  t1=$(cpu "$TM_PID"); r1=$(cpu "$RD_PID"); b1=$(cpu "$BR_PID"); tc1=$(cmds 6397 "$KEY"); rc1=$(cmds 6398); bc1=$(cmds 6399)
  kill "$J1" "$J2" "$J3" 2>/dev/null; wait "$J1" "$J2" "$J3" 2>/dev/null || true
  awk -v p="$1" -v ct="$((t1-t0))" -v cr="$((r1-r0))" -v cb="$((b1-b0))" -v nt="$((tc1-tc0))" -v nr="$((rc1-rc0))" -v nb="$((bc1-bc0))" -v hz="$(getconf CLK_TCK)" \
    'BEGIN{ut=ct*1e6/hz/nt; ur=cr*1e6/hz/nr; ub=cb*1e6/hz/nb
      printf "| paired -P %d, TokMesh / bareresp | %.2f / %.2f us/cmd | %.2f us/cmd | %.2fx / %.2fx | |\n", p, ut, ub, ur, ur/ut, ur/ub}'
}
for P in 1 16; do paired "$P"; paired "$P"; paired "$P"; done
CREATE='{"user_id":"u-__rand_int__","data":{"tenant":"acme"}}'
row "TM.CREATE (WAL interval) vs SET EX (AOF everysec)" "$(run 6397 "$KEY" -r 100000000 TM.CREATE "$CREATE")" \
  "$(run 6398 "" -r 100000000 SET "key:__rand_int__" "$VALUE" EX 3600)"
start_servers always always
row "TM.CREATE (WAL always) vs SET EX (AOF always)" "$(run 6397 "$KEY" -r 100000000 TM.CREATE "$CREATE")" \
  "$(run 6398 "" -r 100000000 SET "key:__rand_int__" "$VALUE" EX 3600)"
stop_servers
