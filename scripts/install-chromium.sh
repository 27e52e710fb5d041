#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the viewer's browser tests, if it is missing.
# The tests run this themselves; it needs root (as in CI) or passwordless sudo.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-chromium: not root and no sudo; install Debian's 'chromium' package" >&2; exit 1; }
  sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "install-chromium: chromium is still missing after apt-get" >&2; exit 1; }
