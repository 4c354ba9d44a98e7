#!/bin/sh
# Installs the Debian packages pigwf's lab and tests need: only the missing ones, so a second
# run is a no-op. Needs root (the lab itself needs root for network namespaces).
# chromium: the Web UI test opens the Temporal Web UI in headless Chromium (internal/browser).
set -eu
pkgs="openssh-server sudo iproute2 iputils-ping nftables procps psmisc util-linux coreutils
      postgresql-15 postgresql-client-15 pgbackrest etcd-server etcd-client chromium
      haproxy prometheus"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "deps: all Debian packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: run as root to install:$missing" >&2
  exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# policy-rc.d: package scripts must not start system services (postgres on 5432, etcd on 2379)
# on the control host; pigwf runs its own on the lab nodes.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends $missing
