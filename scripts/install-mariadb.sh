#!/usr/bin/env bash
# Installs Debian's MariaDB server (with the `mariadb` client and libmariadb.so.3) for the MySQL
# store's tests, if it is missing. The tests run this themselves and start a private `mariadbd` of
# their own; the system service is never started. It needs root (as in CI) or passwordless sudo.
set -euo pipefail
PATH="$PATH:/usr/sbin:/usr/bin:/sbin:/bin"
installed() {
  for binary in mariadbd mariadb-install-db mariadb mariadb-admin; do
    command -v "$binary" >/dev/null 2>&1 || return 1
  done
}
if installed; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-mariadb: not root and no sudo; install Debian's 'mariadb-server' package" >&2; exit 1; }
  sudo="sudo -n"
fi
# Keep the package's maintainer scripts from starting the system service: a policy-rc.d that
# answers 101 ("action forbidden") stops invoke-rc.d and deb-systemd-invoke. An existing one (as
# in Docker images) is left alone; ours is removed again afterwards.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  $sudo sh -c 'printf "#!/bin/sh\n# Temporary, written by Edda scripts/install-mariadb.sh\nexit 101\n" >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
"${apt[@]}" update -qq
"${apt[@]}" install -y -qq --no-install-recommends mariadb-server >/dev/null
installed || { echo "install-mariadb: mariadbd, mariadb-install-db, mariadb or mariadb-admin is still missing after apt-get" >&2; exit 1; }
