#!/usr/bin/env bash
# Installs everything understudy, its demo and its tests need on a Debian or Ubuntu machine, as
# root: the system tools (ip, curl, tcpdump, nft, ping, nc, python3, and rsvg-convert for the
# demo's PNG timeline) with apt-get, then the npm dependencies exactly as locked. Safe to run
# again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=(iproute2 curl netcat-openbsd nftables tcpdump iputils-ping python3 procps librsvg2-bin)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
