#!/usr/bin/env bash
# Browser tests drive Debian's Chromium; install it once per machine if it is missing.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian chromium for the browser tests ..." >&2
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
    echo "warning: could not install chromium; browser tests will be skipped" >&2
else
  echo "warning: /usr/bin/chromium missing and cannot apt-get install it; browser tests skip" >&2
fi
