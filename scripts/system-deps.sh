#!/usr/bin/env bash
# Installs what the test suite needs from outside PyPI, only where it is missing:
# SoftHSM2 (PKCS#11 tests), the PostgreSQL and Redis servers (fault tests) and Chromium (the
# browser tests in tests/browser, driven by Playwright) from Debian, and node's `jose` and
# `openid-client` (cross-checks, a second relying party) from npm.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v softhsm2-util >/dev/null 2>&1 || need_apt+=(softhsm2)
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need_apt+=(softhsm2)
# The fault tests start private clusters of their own (tests/helpers/services.py).
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
# Playwright cannot download its own browser here; tests/browser launches Debian's build.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing ${need_apt[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Reinstall the node packages whenever the lock file changed since the last install.
if [ -f tests/node/package-lock.json ]; then
  want=$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)
  stamp=tests/node/node_modules/.sealring-lock-sha256
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd tests/node && npm ci --no-audit --no-fund --silent)
    echo "$want" > "$stamp"
  fi
fi
