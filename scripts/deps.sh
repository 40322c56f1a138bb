#!/usr/bin/env bash
# Install lutf's build and test dependencies from Debian 12's archive; with
# --bench also the tools only the benchmarks use (wrk, nginx-light).
# Skips apt when every package is already installed; otherwise needs root (a
# non-root user goes through sudo when it exists). Invariant: installing
# enables and starts no service: starts are refused while apt runs
# (policy-rc.d), recommends are left out, and every unit or init script that
# the install enabled is disabled again.
set -euo pipefail
. "$(dirname "$0")/as_root.sh"

# prometheus: only for promtool (tests/http/promtool_check.sh); systemd: only
# for systemd-analyze (tests/http/unit_verify.sh). Neither service is wanted.
# g++, rustc, golang-go: the C++, Rust and Go example apps (examples/, tested
# by tests/langs; .ci/run requires them through LUTF_TEST_REQUIRE=langs).
# nats-server: the cluster tests start their own (tests/cluster); its unit
# is disabled below like any other.
PKGS=(build-essential cmake pkg-config clang llvm bpftool
      libbpf-dev liburing-dev libseccomp-dev libcriterion-dev libinih-dev
      node-llhttp prometheus systemd curl
      clang-14 libclang-rt-14-dev libsodium-dev
      g++ rustc golang-go
      nats-server libnats-dev
      libpython3.11-dev)
BENCH_PKGS=(wrk nginx-light jq valgrind uwsgi-core uwsgi-plugin-python3)

case "${1:-}" in
--bench) PKGS+=("${BENCH_PKGS[@]}") ;;
"") ;;
*) echo "usage: deps.sh [--bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
lutf_as_root "$@"

# What is enabled now: systemd's wants/alias links and SysV start links.
enabled() {
	{
		find /etc/systemd/system -type l
		find /etc/rc[0-6S].d -type l -name 'S*'
	} 2>/dev/null | sort
}
before=$(mktemp)
enabled >"$before"

# Refuse every service start while apt runs (invoke-rc.d and
# deb-systemd-invoke obey policy-rc.d); put back any policy the host had.
policy=/usr/sbin/policy-rc.d
saved=
if [ -e "$policy" ]; then
	saved=$(mktemp)
	cp -p "$policy" "$saved"
fi
restore_policy() {
	if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
	rm -f "$before"
}
trap restore_policy EXIT
printf '#!/bin/sh\n# lutf scripts/deps.sh: no service starts during its install\nexit 101\n' >"$policy"
chmod 755 "$policy"

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Disable what the install enabled (it started nothing: see above).
declare -A disabled=()
while read -r link; do
	name=$(basename "$link")
	case $link in
	/etc/systemd/*)
		if ! systemctl disable --quiet "$name" 2>/dev/null; then
			rm -f "$link" # an alias or wants link systemctl would not take back
		fi
		;;
	*)
		name=${name#S[0-9][0-9]}
		update-rc.d -f "$name" disable >/dev/null 2>&1 || rm -f "$link"
		;;
	esac
	disabled[$name]=1
done < <(enabled | comm -13 "$before" -)
if [ ${#disabled[@]} -gt 0 ]; then
	echo "deps.sh: disabled what the install enabled: ${!disabled[*]}"
fi
