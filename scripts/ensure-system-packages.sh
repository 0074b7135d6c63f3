#!/usr/bin/env bash
# The MySQL provider (tests only) depends on mysqlclient, which compiles against the MariaDB/MySQL
# client headers. Install them from Debian's packages when missing and we may (root with apt-get).
# make demo does not run this: it needs no system package.
set -euo pipefail
if pkg-config --exists mysqlclient 2>/dev/null || pkg-config --exists mariadb 2>/dev/null; then
    exit 0  # already there: apt is not touched
fi

# Another package manager (unattended-upgrades, a second make) may hold apt's or dpkg's lock.
# apt-get's own DPkg::Lock::Timeout covers dpkg's lock only, not `apt-get update`'s lists lock,
# and waits silently under -qq: so retry every 5 s, up to this long, saying who holds the lock.
LOCK_WAIT_SECONDS=${TRACKLY_APT_LOCK_WAIT_SECONDS:-600}

apt_get() {
    local waited=0 errors busy
    while ! errors=$(DEBIAN_FRONTEND=noninteractive apt-get -qq "$@" 2>&1 >/dev/null); do
        busy=$(grep -m1 -o 'Could not get lock .*' <<<"$errors" || true)
        if [ -z "$busy" ] || [ "$waited" -ge "$LOCK_WAIT_SECONDS" ]; then
            echo "$errors" >&2
            [ -n "$busy" ] && echo "Gave up waiting after ${waited} s for the package manager's lock." >&2
            return 1
        fi
        if [ $((waited % 60)) = 0 ]; then  # at once, then every minute
            echo "apt-get $1: waiting for another package manager (${waited} of ${LOCK_WAIT_SECONDS} s): ${busy#Could not get lock }"
        fi
        sleep 5
        waited=$((waited + 5))
    done
}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing MariaDB client headers (libmariadb-dev) for mysqlclient..."
    apt_get update
    apt_get install -y libmariadb-dev pkg-config
    exit 0
fi
echo "mysqlclient needs the MySQL/MariaDB client headers and pkg-config." >&2
echo "Install them first, e.g. 'sudo apt-get install libmariadb-dev pkg-config' (Debian/Ubuntu)." >&2
exit 1
