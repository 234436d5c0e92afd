#!/usr/bin/env bash
# Packaging test (10-packaging §7; `make test-package`).
#
# Builds the snapshot release (scripts/package.sh: goreleaser + wixl), then
#   - checks the artefacts and checksums.txt, and the archives' contents;
#   - inspects the .deb (dpkg-deb -I/-c): files, owners, modes, conffiles,
#     maintainer scripts, the systemd unit;
#   - extracts it and runs the packaged tokmesh-server: version, keygen,
#     config validate, and start -> GET /health 200 -> SIGTERM -> exit 0,
#     with the packaged config and the data dir, key file, listeners and
#     admin socket redirected into a temp dir;
#   - runs systemd-analyze verify (and security) on the unit;
#   - inspects the .rpm (if rpm is installed) and the .msi (msiinfo).
# Prints "N passed, M failed" and exits non-zero on any failure.
#
# Environment: SKIP_BUILD=1 reuses dist/ as it is; KEEP_TMP=1 keeps the
# temp dir. Needs: dpkg-deb, curl, msitools; optional: systemd, rpm.
set -uo pipefail
cd "$(dirname "$0")/.."

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); printf 'ok    %s\n' "$*"; }
fail() { FAIL=$((FAIL + 1)); printf 'FAIL  %s\n' "$*"; }
note() { printf '      %s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }
# check DESCRIPTION COMMAND...: pass if COMMAND succeeds.
check() {
    local d=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$d"; else fail "$d"; fi
}
# check_not DESCRIPTION COMMAND...: pass if COMMAND fails.
check_not() {
    local d=$1
    shift
    if "$@" >/dev/null 2>&1; then fail "$d"; else ok "$d"; fi
}
summary() {
    printf '\n%d passed, %d failed\n' "$PASS" "$FAIL"
    [ "$FAIL" -eq 0 ]
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tokmesh-test-package.XXXXXX")
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null
    fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
section "build (scripts/package.sh)"
if [ "${SKIP_BUILD:-0}" = 1 ]; then
    note "SKIP_BUILD=1: using dist/ as it is"
elif scripts/package.sh >"$TMP/package.log" 2>&1; then
    ok "snapshot release and .msi built"
else
    fail "scripts/package.sh failed; last lines:"
    tail -n 40 "$TMP/package.log" | sed 's/^/      | /'
    summary
    exit 1
fi

VERSION=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' dist/metadata.json 2>/dev/null | head -n 1)
COMMIT=$(sed -n 's/.*"commit": *"\([^"]*\)".*/\1/p' dist/metadata.json 2>/dev/null | head -n 1)
if [ -n "$VERSION" ]; then ok "dist/metadata.json: version $VERSION"; else
    fail "no version in dist/metadata.json"
    summary
    exit 1
fi
# Binaries that exist today; tokmesh-cli and tokmesh-bench join when built.
BINARIES=()
for d in cmd/*/; do BINARIES+=("$(basename "$d")"); done
note "binaries: ${BINARIES[*]}"

# ---------------------------------------------------------------------------
section "artefacts and checksums"
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_AMD64=$(ls dist/tokmesh_*_amd64.deb 2>/dev/null | head -n 1)
DEB_ARM64=$(ls dist/tokmesh_*_arm64.deb 2>/dev/null | head -n 1)
DEB=$(ls dist/tokmesh_*_"$ARCH".deb 2>/dev/null | head -n 1)
RPM_X86=$(ls dist/tokmesh-*.x86_64.rpm 2>/dev/null | head -n 1)
MSI=$(ls dist/tokmesh_*_windows_amd64.msi 2>/dev/null | head -n 1)
check ".deb for amd64 ($DEB_AMD64)" test -s "$DEB_AMD64"
check ".deb for arm64 ($DEB_ARM64)" test -s "$DEB_ARM64"
check ".rpm for x86_64 and aarch64" test -s "$RPM_X86" -a -s "$(ls dist/tokmesh-*.aarch64.rpm 2>/dev/null | head -n 1)"
check ".msi ($MSI)" test -s "$MSI"
for t in linux_amd64 linux_arm64 darwin_arm64; do
    check "archive tokmesh_${VERSION}_${t}.tar.gz" test -s "dist/tokmesh_${VERSION}_${t}.tar.gz"
done
check "archive tokmesh_${VERSION}_windows_amd64.zip" test -s "dist/tokmesh_${VERSION}_windows_amd64.zip"
check "checksums.txt verifies (sha256sum -c)" bash -c 'cd dist && sha256sum --quiet -c checksums.txt'
for f in "$DEB_AMD64" "$MSI" "dist/tokmesh_${VERSION}_windows_amd64.zip"; do
    check "checksums.txt lists $(basename "$f")" grep -q " $(basename "$f")\$" dist/checksums.txt
done

LIST=$(tar -tzf "dist/tokmesh_${VERSION}_linux_amd64.tar.gz" 2>/dev/null)
for f in "${BINARIES[@]}" README.md config.yaml man/man1/tokmesh-server.1.gz completions/bash/tokmesh-walctl; do
    if grep -qx "tokmesh_${VERSION}_linux_amd64/$f" <<<"$LIST"; then ok "tar.gz contains $f"; else fail "tar.gz lacks $f"; fi
done
if tar -xzOf "dist/tokmesh_${VERSION}_linux_amd64.tar.gz" "tokmesh_${VERSION}_linux_amd64/config.yaml" | cmp -s - packaging/config.yaml; then
    ok "tar.gz config.yaml is packaging/config.yaml"
else fail "tar.gz config.yaml differs from packaging/config.yaml"; fi
ZLIST=$(unzip -Z1 "dist/tokmesh_${VERSION}_windows_amd64.zip" 2>/dev/null || python3 -c 'import sys,zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "dist/tokmesh_${VERSION}_windows_amd64.zip")
for b in "${BINARIES[@]}"; do
    if grep -qx "tokmesh_${VERSION}_windows_amd64/$b.exe" <<<"$ZLIST"; then ok "zip contains $b.exe"; else fail "zip lacks $b.exe"; fi
done

# ---------------------------------------------------------------------------
section ".deb metadata (dpkg-deb -I $(basename "$DEB"))"
INFO=$(dpkg-deb -I "$DEB")
CTRL="$TMP/control"
dpkg-deb -e "$DEB" "$CTRL"
field() { dpkg-deb -f "$DEB" "$1"; }
check "Package: tokmesh" test "$(field Package)" = tokmesh
check "Architecture: $ARCH" test "$(field Architecture)" = "$ARCH"
check "Version set ($(field Version))" test -n "$(field Version)"
check "no runtime dependencies (no Depends/Pre-Depends)" test -z "$(field Depends)$(field Pre-Depends)"
check "Maintainer set" test -n "$(field Maintainer)"
for s in preinst postinst prerm postrm conffiles; do
    check "control member $s" grep -qw "$s" <<<"$INFO"
done
check "conffiles: /etc/tokmesh-server/config.yaml" grep -qx /etc/tokmesh-server/config.yaml "$CTRL/conffiles"
check "conffiles: nothing else" test "$(wc -l <"$CTRL/conffiles")" -eq 1
for s in preinst postinst prerm postrm; do
    check "$s is executable and valid sh" bash -c "test -x '$CTRL/$s' && sh -n '$CTRL/$s'"
done
check "preinst creates system user tokmesh (home /var/lib/tokmesh-server, nologin)" \
    bash -c "grep -q 'useradd --system' '$CTRL/preinst' && grep -q '/var/lib/tokmesh-server' '$CTRL/preinst' && grep -q nologin '$CTRL/preinst'"
check "postinst generates the master key with keygen if absent" \
    bash -c "grep -q '/usr/bin/tokmesh-server keygen --out \"\$KEY\"' '$CTRL/postinst' && grep -q 'KEY=\$ETC/master.key' '$CTRL/postinst'"
check "postinst: daemon-reload and enable" bash -c "grep -q 'systemctl daemon-reload' '$CTRL/postinst' && grep -q 'systemctl enable tokmesh-server' '$CTRL/postinst'"
check_not "postinst never starts the service" grep -qE '^[[:space:]]*systemctl[[:space:]]+(start|restart)' "$CTRL/postinst"
check "prerm stops the service on remove" grep -q 'systemctl stop tokmesh-server' "$CTRL/prerm"
check "postrm purge removes /etc/tokmesh-server" grep -qE '^[[:space:]]*rm -rf /etc/tokmesh-server$' "$CTRL/postrm"
check_not "postrm keeps /var/lib/tokmesh-server" grep -qE '^[[:space:]]*rm .*/var/lib' "$CTRL/postrm"

# ---------------------------------------------------------------------------
section ".deb contents (dpkg-deb -c)"
CONTENTS=$(dpkg-deb -c "$DEB")
# entry PATH MODE OWNER/GROUP
entry() {
    local path=$1 mode=$2 owner=$3 line
    line=$(awk -v p="$path" '$6 == p || $6 == p"/" {print $1, $2}' <<<"$CONTENTS")
    if [ -z "$line" ]; then fail "$path missing"; return; fi
    if [ "$line" = "$mode $owner" ]; then ok "$path $mode $owner"; else fail "$path: got '$line', want '$mode $owner'"; fi
}
for b in "${BINARIES[@]}"; do entry "./usr/bin/$b" -rwxr-xr-x root/root; done
entry ./etc/tokmesh-server drwxr-x--- root/tokmesh
entry ./etc/tokmesh-server/config.yaml -rw-r----- root/tokmesh
entry ./var/lib/tokmesh-server drwx------ tokmesh/tokmesh
entry ./lib/systemd/system/tokmesh-server.service -rw-r--r-- root/root
for b in "${BINARIES[@]}"; do entry "./usr/share/man/man1/$b.1.gz" -rw-r--r-- root/root; done
entry ./usr/share/man/man1/tokmesh-server-keygen.1.gz -rw-r--r-- root/root
entry ./usr/share/bash-completion/completions/tokmesh-walctl -rw-r--r-- root/root
entry ./usr/share/zsh/vendor-completions/_tokmesh-walctl -rw-r--r-- root/root
entry ./usr/share/fish/vendor_completions.d/tokmesh-walctl.fish -rw-r--r-- root/root
entry ./usr/share/doc/tokmesh/README.md -rw-r--r-- root/root
entry ./usr/share/doc/tokmesh/examples/cluster.yaml -rw-r--r-- root/root
entry ./usr/share/doc/tokmesh/examples/alerts.yml -rw-r--r-- root/root
check_not "master.key is not in the payload" grep -q master.key <<<"$(awk '{print $6}' <<<"$CONTENTS")"
check_not "only root and tokmesh own files" grep -vE '^(root/root|root/tokmesh|tokmesh/tokmesh)$' <<<"$(awk '{print $2}' <<<"$CONTENTS")"
BAD=$(awk '$1 ~ /^-/ && $1 ~ /w.$/ {print $6}' <<<"$CONTENTS")
if [ -z "$BAD" ]; then ok "no world-writable files"; else fail "world-writable: $BAD"; fi

ROOT="$TMP/root"
mkdir -p "$ROOT"
if dpkg-deb -x "$DEB" "$ROOT"; then ok "dpkg-deb -x"; else fail "dpkg-deb -x"; fi
check "packaged config.yaml is packaging/config.yaml" cmp -s "$ROOT/etc/tokmesh-server/config.yaml" packaging/config.yaml
check "packaged config: data_dir /var/lib/tokmesh-server" grep -qE '^  data_dir: /var/lib/tokmesh-server$' "$ROOT/etc/tokmesh-server/config.yaml"
check "packaged config: key_file /etc/tokmesh-server/master.key" grep -qE '^    key_file: /etc/tokmesh-server/master.key$' "$ROOT/etc/tokmesh-server/config.yaml"

# ---------------------------------------------------------------------------
section "systemd unit"
UNIT="$ROOT/lib/systemd/system/tokmesh-server.service"
check "unit is packaging/linux/tokmesh-server.service" cmp -s "$UNIT" packaging/linux/tokmesh-server.service
while IFS= read -r d; do
    [ -z "$d" ] && continue
    if grep -qxF -- "$d" "$UNIT"; then ok "unit: $d"; else fail "unit lacks: $d"; fi
done <<'EOF'
Type=simple
User=tokmesh
Group=tokmesh
ExecStart=/usr/bin/tokmesh-server --config /etc/tokmesh-server/config.yaml
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
TimeoutStopSec=45s
LimitNOFILE=65535
WorkingDirectory=/var/lib/tokmesh-server
StateDirectory=tokmesh-server
StateDirectoryMode=0700
UMask=0077
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ReadWritePaths=/var/lib/tokmesh-server
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
WantedBy=multi-user.target
EOF

if command -v systemd-analyze >/dev/null 2>&1; then
    # verify checks that ExecStart exists: point it at the extracted binary
    # (everything else unchanged) and let `man` find the extracted pages.
    # Environment noise is tolerated; any message about our unit fails.
    VUNIT="$TMP/tokmesh-server.service"
    sed "s|/usr/bin/tokmesh-server|$ROOT/usr/bin/tokmesh-server|" "$UNIT" >"$VUNIT"
    OUT=$(MANPATH="$ROOT/usr/share/man" systemd-analyze verify "$VUNIT" 2>&1)
    RC=$?
    OURS=$(grep -F tokmesh-server.service <<<"$OUT")
    if [ $RC -eq 0 ] && [ -z "$OURS" ]; then ok "systemd-analyze verify"; else
        fail "systemd-analyze verify (rc $RC):"
        sed 's/^/      | /' <<<"$OUT"
    fi
    OTHER=$(grep -vF tokmesh-server.service <<<"$OUT" | grep -v '^$')
    [ -n "$OTHER" ] && note "environment warnings (ignored): $(head -n 3 <<<"$OTHER" | tr '\n' ' ')"
    SEC=$(systemd-analyze security --offline=yes "$VUNIT" 2>/dev/null | grep 'Overall exposure level')
    if grep -qE ' (OK|SAFE)\b' <<<"$SEC"; then ok "systemd-analyze security: ${SEC##*: }"; else fail "systemd-analyze security: want OK or better, got '${SEC:-no result}'"; fi
else
    note "systemd-analyze not installed: unit verification skipped (apt-get install systemd)"
fi

# ---------------------------------------------------------------------------
section "packaged tokmesh-server ($ARCH)"
BIN="$ROOT/usr/bin/tokmesh-server"
OUT=$("$BIN" version 2>&1)
note "$OUT"
check "version prints $VERSION" grep -qF "tokmesh-server $VERSION " <<<"$OUT"
[ -n "$COMMIT" ] && check "version prints the commit" grep -qF "commit ${COMMIT:0:12}" <<<"$OUT"
for b in "${BINARIES[@]}"; do
    LDD=$(LANG=C ldd "$ROOT/usr/bin/$b" 2>&1)
    if grep -q 'not a dynamic executable' <<<"$LDD"; then ok "$b is static (ldd: not a dynamic executable)"; else fail "$b is dynamically linked: $LDD"; fi
done
check "tokmesh-walctl version prints $VERSION" bash -c "'$ROOT/usr/bin/tokmesh-walctl' version 2>&1 | grep -qF '$VERSION'"

W="$TMP/run"
mkdir -p "$W"
KEYF="$W/master.key"
check "keygen --out writes a key" "$BIN" keygen --out "$KEYF"
check "key file: 64 hex characters" grep -qxE '[0-9a-f]{64}' "$KEYF"
check "key file: mode 0600" test "$(stat -c %a "$KEYF")" = 600
check_not "keygen refuses to overwrite" "$BIN" keygen --out "$KEYF"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null && return
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
HTTP_PORT=$(free_port)
RESP_PORT=$(free_port)
while [ "$RESP_PORT" = "$HTTP_PORT" ]; do RESP_PORT=$(free_port); done
CONF="$ROOT/etc/tokmesh-server/config.yaml"
ARGS=(--config "$CONF" --data-dir "$W/data"
    --set "security.encryption.key_file=$KEYF"
    --set "server.http.address=127.0.0.1:$HTTP_PORT"
    --set "server.resp.address=127.0.0.1:$RESP_PORT"
    --set "server.local.socket_path=$W/data/admin.sock")
# The process environment must not change the result.
unset TOKMESH_CONFIG TOKMESH_ENCRYPTION_KEY
check "config validate: packaged config + redirected paths exits 0" "$BIN" config validate "${ARGS[@]}"
"$BIN" config validate --config "$CONF" >/dev/null 2>&1
RC=$?
if [ ! -e /etc/tokmesh-server/master.key ]; then
    check "config validate: packaged config as is exits 78 here (no /etc/tokmesh-server/master.key)" test $RC -eq 78
fi

mkdir -p "$W/data"
"$BIN" "${ARGS[@]}" >"$W/server.log" 2>&1 &
SERVER_PID=$!
CODE=000
for _ in $(seq 1 100); do
    CODE=$(curl -s -o "$W/health.json" -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/health" 2>/dev/null)
    [ "$CODE" = 200 ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.3
done
if [ "$CODE" = 200 ]; then ok "GET /health -> 200 on 127.0.0.1:$HTTP_PORT ($(head -c 120 "$W/health.json"))"; else
    fail "GET /health -> $CODE"
    tail -n 20 "$W/server.log" | sed 's/^/      | /'
fi
# /health answers during recovery; /ready once the node serves (and its
# local admin socket is up).
READY=000
for _ in $(seq 1 100); do
    READY=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/ready" 2>/dev/null)
    [ "$READY" = 200 ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.3
done
check "GET /ready -> 200 (got $READY)" test "$READY" = 200
check "admin socket at the redirected path" test -S "$W/data/admin.sock"
check "admin socket mode 0600" test "$(stat -c %a "$W/data/admin.sock" 2>/dev/null)" = 600
check "data dir used (WAL written under $W/data)" bash -c "ls -A '$W/data' | grep -q ."
check "no master.key generated in the data dir (key file used)" test ! -e "$W/data/master.key"
kill -TERM "$SERVER_PID" 2>/dev/null
RC=
for _ in $(seq 1 450); do # up to 45 s, the unit's TimeoutStopSec
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID"
        RC=$?
        break
    fi
    sleep 0.1
done
if [ "$RC" = 0 ]; then ok "SIGTERM: graceful stop, exit 0"; else
    fail "SIGTERM: exit ${RC:-timeout}"
    tail -n 20 "$W/server.log" | sed 's/^/      | /'
fi
SERVER_PID=
check "server log is JSON lines" bash -c "head -n 1 '$W/server.log' | grep -q '^{'"
check_not "server log has no ERROR" grep -q '"level":"ERROR"' "$W/server.log"

# Man pages render; completion scripts parse.
if command -v man >/dev/null 2>&1; then
    check "man page renders (man -l tokmesh-server.1.gz)" bash -c "MANWIDTH=80 man -l '$ROOT/usr/share/man/man1/tokmesh-server.1.gz' 2>/dev/null | grep -q 'TokMesh session cache'"
fi
check "bash completion parses" bash -n "$ROOT/usr/share/bash-completion/completions/tokmesh-walctl"
check "bash completion completes subcommands" bash -c "source '$ROOT/usr/share/bash-completion/completions/tokmesh-walctl' && PATH='$ROOT/usr/bin':\$PATH && type __start_tokmesh-walctl >/dev/null && '$ROOT/usr/bin/tokmesh-walctl' __complete ve | grep -q '^verify'"

# ---------------------------------------------------------------------------
section "install, run as tokmesh, upgrade, remove, purge (dpkg in a throw-away overlay)"
# dpkg -i/-r/-P run the real maintainer scripts. /etc, /usr and /var are
# overlay mounts inside a private mount namespace: nothing reaches this
# machine, and the upper dirs are deleted with $TMP. Needs root, unshare
# and overlayfs; SKIP_INSTALL=1 skips it.
can_overlay() {
    [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 &&
        mkdir -p "$TMP/probe/u" "$TMP/probe/w" "$TMP/probe/m" &&
        unshare -m --propagation private mount -t overlay overlay \
            -o "lowerdir=/etc,upperdir=$TMP/probe/u,workdir=$TMP/probe/w" "$TMP/probe/m" 2>/dev/null
}
if [ "${SKIP_INSTALL:-0}" = 1 ]; then
    note "SKIP_INSTALL=1: install test skipped"
elif ! can_overlay; then
    note "install test skipped: needs root, unshare and overlayfs"
else
    IPORT=$(free_port)
    cat >"$TMP/install-test.sh" <<'INNER'
set -u
DEB=$1 TMP=$2 PORT=$3
ok() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; }
check() { local d=$1; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else fail "$d"; fi; }
for d in etc usr var; do
    mkdir -p "$TMP/ovl/$d-up" "$TMP/ovl/$d-work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$TMP/ovl/$d-up,workdir=$TMP/ovl/$d-work" "/$d" || { fail "overlay on /$d"; exit 1; }
done
# Never talk to a real systemd from here.
[ -d /run/systemd ] && mount -t tmpfs tmpfs /run/systemd
getent passwd tokmesh >/dev/null && { fail "a tokmesh user already exists on this machine"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
if dpkg -i "$DEB" >"$TMP/dpkg-i.log" 2>&1; then ok "dpkg -i (preinst, postinst)"; else fail "dpkg -i:"; sed 's/^/      | /' "$TMP/dpkg-i.log"; exit 1; fi
check "postinst prints how to start it" grep -q 'systemctl start tokmesh-server' "$TMP/dpkg-i.log"
check "user tokmesh: system account, home /var/lib/tokmesh-server, nologin" \
    bash -c 'IFS=: read -r _ _ uid _ _ home shell < <(getent passwd tokmesh) && [ "$uid" -lt 1000 ] && [ "$home" = /var/lib/tokmesh-server ] && [[ "$shell" == */nologin ]]'
check "group tokmesh" getent group tokmesh
check "/etc/tokmesh-server root:tokmesh 750" test "$(stat -c '%U:%G %a' /etc/tokmesh-server)" = "root:tokmesh 750"
check "config.yaml root:tokmesh 640" test "$(stat -c '%U:%G %a' /etc/tokmesh-server/config.yaml)" = "root:tokmesh 640"
check "master.key generated: root:tokmesh 640" test "$(stat -c '%U:%G %a' /etc/tokmesh-server/master.key)" = "root:tokmesh 640"
check "master.key holds 64 hex characters" grep -qxE '[0-9a-f]{64}' /etc/tokmesh-server/master.key
check "/var/lib/tokmesh-server tokmesh:tokmesh 700" test "$(stat -c '%U:%G %a' /var/lib/tokmesh-server)" = "tokmesh:tokmesh 700"
check "unit enabled (multi-user.target.wants link)" test -L /etc/systemd/system/multi-user.target.wants/tokmesh-server.service
check "unit not started (no running tokmesh-server)" bash -c '! pgrep -x tokmesh-server -u tokmesh'
check "tokmesh-server on PATH" bash -c 'command -v tokmesh-server | grep -qx /usr/bin/tokmesh-server'
check "man page installed (man -w tokmesh-server)" bash -c 'man -w tokmesh-server 2>/dev/null | grep -q tokmesh-server.1.gz || test -f /usr/share/man/man1/tokmesh-server.1.gz'
KEY1=$(sha256sum /etc/tokmesh-server/master.key)

# The installed config as is, as the service user, in the unit's working
# directory; only the listeners move to free ports.
check "config validate as tokmesh: installed config valid" \
    runuser -u tokmesh -- /usr/bin/tokmesh-server config validate --config /etc/tokmesh-server/config.yaml
cd /var/lib/tokmesh-server
# setpriv execs: $! is the server itself, not a wrapper.
setpriv --reuid=tokmesh --regid=tokmesh --init-groups -- /usr/bin/tokmesh-server --config /etc/tokmesh-server/config.yaml \
    --set "server.http.address=127.0.0.1:$PORT" --set server.resp.address=127.0.0.1:0 >"$TMP/installed.log" 2>&1 &
PID=$!
CODE=000
for _ in $(seq 1 100); do
    CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ready" 2>/dev/null)
    [ "$CODE" = 200 ] && break
    kill -0 $PID 2>/dev/null || break
    sleep 0.3
done
if [ "$CODE" = 200 ]; then ok "installed server ready as user tokmesh (GET /ready 200)"; else fail "installed server: /ready $CODE"; sed 's/^/      | /' "$TMP/installed.log" | tail -n 15; fi
check "admin socket /var/lib/tokmesh-server/admin.sock owned by tokmesh, 0600" test "$(stat -c '%U %a' /var/lib/tokmesh-server/admin.sock 2>/dev/null)" = "tokmesh 600"
check "key from /etc/tokmesh-server/master.key (no key in the data dir)" test ! -e /var/lib/tokmesh-server/master.key
kill -TERM $PID 2>/dev/null
wait $PID
RC=$?
check "installed server: SIGTERM exit 0 (got $RC)" test $RC = 0
cd /

echo "# local edit" >>/etc/tokmesh-server/config.yaml
if dpkg -i "$DEB" >"$TMP/dpkg-up.log" 2>&1; then ok "dpkg -i again (upgrade path)"; else fail "upgrade:"; sed 's/^/      | /' "$TMP/dpkg-up.log"; fi
check "upgrade keeps the master key" test "$(sha256sum /etc/tokmesh-server/master.key)" = "$KEY1"
check "upgrade keeps the edited config (conffile)" grep -qx '# local edit' /etc/tokmesh-server/config.yaml
if dpkg -r tokmesh >"$TMP/dpkg-r.log" 2>&1; then ok "dpkg -r (prerm, postrm remove)"; else fail "dpkg -r:"; sed 's/^/      | /' "$TMP/dpkg-r.log"; fi
check "remove: binaries gone" test ! -e /usr/bin/tokmesh-server
check "remove: unit disabled" test ! -e /etc/systemd/system/multi-user.target.wants/tokmesh-server.service
check "remove: config and key kept" test -f /etc/tokmesh-server/config.yaml -a -f /etc/tokmesh-server/master.key
if dpkg -P tokmesh >"$TMP/dpkg-p.log" 2>&1; then ok "dpkg -P (postrm purge)"; else fail "dpkg -P:"; sed 's/^/      | /' "$TMP/dpkg-p.log"; fi
check "purge: /etc/tokmesh-server removed" test ! -e /etc/tokmesh-server
check "purge: /var/lib/tokmesh-server kept, with a notice" bash -c "test -d /var/lib/tokmesh-server && grep -q 'kept /var/lib/tokmesh-server' '$TMP/dpkg-p.log'"
INNER
    IOUT=$(unshare -m --propagation private bash "$TMP/install-test.sh" "$(readlink -f "$DEB")" "$TMP" "$IPORT" 2>&1)
    printf '%s\n' "$IOUT"
    PASS=$((PASS + $(grep -c '^ok ' <<<"$IOUT")))
    FAIL=$((FAIL + $(grep -c '^FAIL ' <<<"$IOUT")))
fi

# ---------------------------------------------------------------------------
section ".rpm"
if command -v rpm >/dev/null 2>&1; then
    RLIST=$(rpm -qplv "$RPM_X86" 2>/dev/null)
    check "rpm: /usr/lib/systemd/system/tokmesh-server.service" grep -q ' /usr/lib/systemd/system/tokmesh-server.service$' <<<"$RLIST"
    check "rpm: /etc/tokmesh-server/config.yaml root tokmesh 0640" grep -qE '^-rw-r----- .* root +tokmesh .* /etc/tokmesh-server/config.yaml$' <<<"$RLIST"
    check "rpm: config is %config(noreplace)" bash -c "rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' '$RPM_X86' 2>/dev/null | grep -q '^cn /etc/tokmesh-server/config.yaml$'"
    check "rpm: zsh completion in site-functions" grep -q ' /usr/share/zsh/site-functions/_tokmesh-walctl$' <<<"$RLIST"
    check "rpm: scriptlets present" bash -c "rpm -qp --scripts '$RPM_X86' 2>/dev/null | grep -q 'useradd --system'"
else
    note "rpm not installed: .rpm inspection skipped"
fi

# ---------------------------------------------------------------------------
section ".msi (msiinfo $(basename "$MSI"))"
TABLES=$(msiinfo tables "$MSI" 2>/dev/null)
for t in File Component Directory ServiceInstall ServiceControl Environment Upgrade Registry; do
    check "table $t" grep -qx "$t" <<<"$TABLES"
done
row() { msiinfo export "$MSI" "$1" 2>/dev/null | tail -n +4 | tr -d '\r'; }
SI=$(row ServiceInstall)
# Name DisplayName ServiceType StartType ErrorControl LoadOrderGroup Dependencies StartName Password Arguments Component_ Description
SI_FIELDS=$(awk -F'\t' '{print $2"|"$3"|"$4"|"$5"|"$9"|"$11}' <<<"$SI")
check "ServiceInstall: TokMeshServer 'TokMesh Server', own process, auto start, LocalSystem, --config" \
    test "$SI_FIELDS" = 'TokMeshServer|TokMesh Server|16|2|LocalSystem|--config "[DATAROOT]config.yaml"'
EV=$(row ServiceControl | awk -F'\t' '$2 == "TokMeshServer" {print $3}')
# msidbServiceControlEvent: Start=1 Stop=2 (install), Stop=32 Delete=128 (uninstall)
check "ServiceControl: start on install, stop on install+uninstall, delete on uninstall (event $EV)" test "$EV" = 163
FILES=$(row File | cut -f3)
for f in "${BINARIES[@]/%/.exe}" config.yaml; do
    check "File table: $f" grep -qx "$f" <<<"$FILES"
done
DIRS=$(row Directory)
check "Directory: ProgramFiles64Folder\\TokMesh\\bin" bash -c "grep -qP '^INSTALLDIR\tProgramFiles64Folder\tTokMesh$' <<<'$DIRS' && grep -qP '^BINDIR\tINSTALLDIR\tbin$' <<<'$DIRS'"
check "Directory: CommonAppDataFolder\\TokMesh (config)" grep -qP '^DATAROOT\tCommonAppDataFolder\tTokMesh$' <<<"$DIRS"
check "config.yaml component: Permanent + NeverOverwrite (400)" grep -qP '^ConfigFile\t[^\t]*\tDATAROOT\t400\t' <<<"$(row Component)"
check "Environment: bin dir appended to the system PATH" grep -qP '^TokMeshPath\t=-\*PATH\t\[~\];\[BINDIR\]\t' <<<"$(row Environment)"
check "InstallExecuteSequence: WriteEnvironmentStrings" grep -q '^WriteEnvironmentStrings' <<<"$(row InstallExecuteSequence)"
check "Upgrade: fixed UpgradeCode, major upgrade" grep -q '{5E2C9B4A-7D1F-4C8E-9A36-0B8F2D6E41C7}' <<<"$(row Upgrade)"
check "per-machine (ALLUSERS=1)" grep -qP '^ALLUSERS\t1$' <<<"$(row Property)"
check "x64 package" bash -c "msiinfo suminfo '$MSI' | grep -q 'Template: x64'"
if command -v msiextract >/dev/null 2>&1; then
    MX="$TMP/msi"
    mkdir -p "$MX"
    msiextract -C "$MX" "$MSI" >/dev/null 2>&1
    MCONF=$(find "$MX" -name config.yaml | head -n 1)
    check "msi config.yaml: data_dir C:\\ProgramData\\TokMesh\\data" grep -qF 'data_dir: C:\ProgramData\TokMesh\data' "$MCONF"
    check_not "msi config.yaml: no Linux key file (master key in the data dir)" grep -qE '^[[:space:]]*key_file: /' "$MCONF"
    MEXE=$(find "$MX" -name tokmesh-server.exe | head -n 1)
    check "msi tokmesh-server.exe is a PE executable" bash -c "head -c 2 '$MEXE' | grep -q MZ"
fi

# ---------------------------------------------------------------------------
section "container image (no Docker engine: static checks)"
check "packaging/Dockerfile: distroless static, non-root" bash -c "grep -q '^FROM gcr.io/distroless/static-debian12:nonroot' packaging/Dockerfile && grep -q '^USER 65532:65532' packaging/Dockerfile"
check "packaging/Dockerfile: CGO_ENABLED=0 build" grep -q 'CGO_ENABLED=0' packaging/Dockerfile
# Final image = distroless/static (~2 MiB) + the linux binaries + config.
SIZE=0
for b in "${BINARIES[@]}"; do SIZE=$((SIZE + $(stat -c %s "$ROOT/usr/bin/$b"))); done
SIZE=$((SIZE + $(stat -c %s packaging/config.yaml) + 3 * 1024 * 1024))
check "estimated image size $((SIZE / 1024 / 1024)) MiB < 100 MiB" test "$SIZE" -lt $((100 * 1024 * 1024))

summary
