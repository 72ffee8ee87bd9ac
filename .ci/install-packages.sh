#!/usr/bin/env bash
# Installs the named Debian packages (apt-get, as root or through sudo),
# keeping them from starting system services: the tests and the benchmark
# start their own servers on free ports, and a system redis-server or nginx
# would only hold ports for nothing (or fail to start on a taken one).
set -euo pipefail
(($#)) || exit 0
echo "installing: $*"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
policy=/usr/sbin/policy-rc.d
placed_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  placed_policy=1
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
[ -z "$placed_policy" ] || $sudo rm -f "$policy"
