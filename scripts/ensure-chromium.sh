#!/usr/bin/env bash
# make e2e takes screenshots of the Airflow UI with a real headless Chromium. Install it from
# Debian's packages when missing and we may (root with apt-get).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Chromium for the e2e screenshots..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    exit 0
fi
echo "make e2e needs Chromium for its screenshots: e.g. 'sudo apt-get install chromium' (Debian)." >&2
exit 1
