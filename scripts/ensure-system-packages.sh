#!/usr/bin/env bash
# The MySQL provider (tests only) depends on mysqlclient, which compiles against the MariaDB/MySQL
# client headers. Install them from Debian's packages when missing and we may (root with apt-get).
set -euo pipefail
if pkg-config --exists mysqlclient 2>/dev/null || pkg-config --exists mariadb 2>/dev/null; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing MariaDB client headers (libmariadb-dev) for mysqlclient..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmariadb-dev pkg-config >/dev/null
    exit 0
fi
echo "mysqlclient needs the MySQL/MariaDB client headers and pkg-config." >&2
echo "Install them first, e.g. 'sudo apt-get install libmariadb-dev pkg-config' (Debian/Ubuntu)." >&2
exit 1
