#!/bin/sh
# tokmesh postinst (deb: configure [old-version]; rpm: $1 = 1 install,
# 2 upgrade). Fixes ownership and modes, generates the master key if it is
# missing, enables the unit; it never starts the service on a fresh install
# (10-packaging §3). On upgrade a running service is restarted so it runs
# the new binary.
set -e

case "$1" in
    configure) [ -n "$2" ] && upgrade=1 || upgrade= ;;
    1) upgrade= ;;
    [2-9]*) upgrade=1 ;;
    *) exit 0 ;; # abort-upgrade, abort-remove, ...: nothing to do
esac

TOKMESH_USER=tokmesh
ETC=/etc/tokmesh-server
DATA=/var/lib/tokmesh-server
KEY=$ETC/master.key

# The user normally exists since preinst; be idempotent anyway.
if ! getent passwd "$TOKMESH_USER" >/dev/null 2>&1; then
    echo "tokmesh: user $TOKMESH_USER is missing (preinst did not run?)" >&2
    exit 1
fi

install -d -o root -g "$TOKMESH_USER" -m 0750 "$ETC"
if [ -f "$ETC/config.yaml" ]; then
    chown root:"$TOKMESH_USER" "$ETC/config.yaml"
    chmod 0640 "$ETC/config.yaml"
fi
install -d -o "$TOKMESH_USER" -g "$TOKMESH_USER" -m 0700 "$DATA"

if [ ! -e "$KEY" ]; then
    # keygen writes 0600 and refuses to overwrite; the key never leaves /etc.
    umask 077
    /usr/bin/tokmesh-server keygen --out "$KEY" >/dev/null
    echo "tokmesh: generated the master key $KEY (back it up: without it the data cannot be read)"
fi
chown root:"$TOKMESH_USER" "$KEY"
chmod 0640 "$KEY"

if command -v systemctl >/dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || true
    fi
    # enable works without a running systemd (it only creates the links).
    systemctl enable tokmesh-server.service >/dev/null 2>&1 || \
        echo "tokmesh: could not enable tokmesh-server.service" >&2
    if [ -n "$upgrade" ] && [ -d /run/systemd/system ]; then
        systemctl try-restart tokmesh-server.service >/dev/null 2>&1 || \
            echo "tokmesh: could not restart tokmesh-server.service; restart it by hand" >&2
    fi
fi

if [ -z "$upgrade" ]; then
    cat <<'MSG'
tokmesh: installed and enabled, not started. Review /etc/tokmesh-server/config.yaml
(plaintext HTTP and RESP listen on loopback only), then:
    sudo systemctl start tokmesh-server
    sudo -u tokmesh tokmesh-cli apikey create --role admin   # once tokmesh-cli is installed
Logs: journalctl -u tokmesh-server. Data: /var/lib/tokmesh-server.
MSG
fi
exit 0
