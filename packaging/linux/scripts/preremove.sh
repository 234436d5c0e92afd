#!/bin/sh
# tokmesh prerm (deb: remove|upgrade|deconfigure|failed-upgrade; rpm: $1 =
# 0 erase, 1 upgrade). On removal the service is stopped and disabled; on
# upgrade it keeps running until postinst restarts it.
set -e

case "$1" in
    remove|deconfigure|0) ;;
    *) exit 0 ;;
esac

if command -v systemctl >/dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then
        systemctl stop tokmesh-server.service >/dev/null 2>&1 || true
    fi
    systemctl disable tokmesh-server.service >/dev/null 2>&1 || true
fi
exit 0
