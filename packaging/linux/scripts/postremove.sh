#!/bin/sh
# tokmesh postrm (deb: remove|purge|upgrade|...; rpm: $1 = 0 erase,
# 1 upgrade). purge removes /etc/tokmesh-server (configuration and master
# key) and keeps the data in /var/lib/tokmesh-server; the tokmesh user is
# kept, since it still owns that data (10-packaging §3).
set -e

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi

case "$1" in
    purge)
        rm -rf /etc/tokmesh-server
        if [ -d /var/lib/tokmesh-server ]; then
            echo "tokmesh: kept /var/lib/tokmesh-server (sessions, WAL, snapshots, backups, audit)."
            echo "tokmesh: its master key was in /etc/tokmesh-server/master.key, now deleted; remove the data with: rm -rf /var/lib/tokmesh-server"
        fi
        ;;
    0)
        # rpm has no purge: the configuration (saved as .rpmsave if changed),
        # the master key and the data stay.
        if [ -d /var/lib/tokmesh-server ]; then
            echo "tokmesh: kept /etc/tokmesh-server (master key) and /var/lib/tokmesh-server (data)."
        fi
        ;;
esac
exit 0
