#!/usr/bin/env bash
# Install lutf's build and test dependencies from Debian 12's archive.
# Needs root (or sudo). Skips apt when every package is already installed.
set -euo pipefail

PKGS=(build-essential cmake pkg-config clang llvm bpftool
      libbpf-dev liburing-dev libseccomp-dev libcriterion-dev libinih-dev
      node-llhttp prometheus systemd wrk nginx-light curl
      clang-14 libclang-rt-14-dev)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}; run as root (sudo) to install them" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
