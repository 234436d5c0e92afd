#!/bin/sh
# tokmesh preinst (deb: install|upgrade; rpm: $1 = 1 install, 2 upgrade).
# Creates the system group and user tokmesh before the payload is unpacked,
# so /etc/tokmesh-server and /var/lib/tokmesh-server get their group and
# owner (10-packaging §3).
set -e

TOKMESH_USER=tokmesh
TOKMESH_HOME=/var/lib/tokmesh-server

nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin
[ -x "$nologin" ] || nologin=/bin/false

if ! getent group "$TOKMESH_USER" >/dev/null 2>&1; then
    if command -v groupadd >/dev/null 2>&1; then
        groupadd --system "$TOKMESH_USER"
    else
        addgroup --system "$TOKMESH_USER"
    fi
fi
if ! getent passwd "$TOKMESH_USER" >/dev/null 2>&1; then
    if command -v useradd >/dev/null 2>&1; then
        useradd --system --gid "$TOKMESH_USER" --home-dir "$TOKMESH_HOME" --no-create-home \
            --shell "$nologin" --comment "TokMesh server" "$TOKMESH_USER"
    else
        adduser --system --ingroup "$TOKMESH_USER" --home "$TOKMESH_HOME" --no-create-home \
            --shell "$nologin" --gecos "TokMesh server" "$TOKMESH_USER"
    fi
fi
exit 0
