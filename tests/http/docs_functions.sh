#!/bin/bash
# docs_functions.sh LUTFD LUTFCTL INCLUDE_DIR GUIDE: run every ```sh block of
# docs/functions.md (GUIDE), top to bottom in one shell with `set -e`,
# against a lutfd started here on private folders (HTTP on an ephemeral
# port). Any failing command fails the test. Exit 77 (skip) when not root.
# The guide runs as a reader runs it after scripts/run.sh: from a folder laid
# out as the repository's top (build/release/userspace/cli/lutfctl and
# include/), with no LUTFCTL or LUTF_INCLUDE set; only RUNTIME_DIR names this
# private lutfd instead of /run/lutf.
set -euo pipefail
lutfd=$(realpath "$1") lutfctl=$(realpath "$2") include=$(realpath "$3") guide=$(realpath "$4")
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root (lutfd)" >&2
	exit 77
fi
for tool in cc cmake curl; do
	command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (scripts/deps.sh)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/lutf-docs-XXXXXX)
chmod 711 "$tmp" # tenants' workers reach the state folder below it
pin=/sys/fs/bpf/lutfdoc$$
# Its own cgroup_name and 16 uids (750000 and up: neither the harness's
# 100000-740031 nor lutfd's default 61000-61999), so that this lutfd never
# kills the workers of another lutfd on the host, nor they its own.
uid_lo=$((750000 + ($$ % 10000) * 16))
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$pin"
	[ -n "${LUTF_TEST_KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
cat >"$tmp/lutfd.conf" <<CONF
[lutfd]
bpf_pin_root = $pin
listen_tcp = off
http_listen = 127.0.0.1:0
admin_listen = 127.0.0.1:0
cgroup_name = lutfdoc$$
uid_range = $uid_lo-$((uid_lo + 15))
CONF
"$lutfd" --config "$tmp/lutfd.conf" --state-dir "$tmp/state" --runtime-dir "$tmp/run" \
	>"$tmp/lutfd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	[ -S "$tmp/run/control.sock" ] && [ -s "$tmp/run/http.addr" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/lutfd.log" >&2; exit 1; }
	sleep 0.1
done
# The guide's blocks, in order.
awk '/^```sh$/ {on=1; next} /^```$/ {on=0} on' "$guide" >"$tmp/guide.sh"
test -s "$tmp/guide.sh"
echo "running $(grep -c '' "$tmp/guide.sh") lines from $guide"
mkdir -p "$tmp/top/build/release/userspace/cli"
ln -s "$lutfctl" "$tmp/top/build/release/userspace/cli/lutfctl"
ln -s "$include" "$tmp/top/include"
if ! (cd "$tmp/top" && env -u LUTFCTL -u LUTF_INCLUDE RUNTIME_DIR="$tmp/run" TENANT=docs \
	bash -euo pipefail -x "$tmp/guide.sh"); then
	echo "FAIL: a command of $guide failed; lutfd's log:" >&2
	tail -20 "$tmp/lutfd.log" >&2
	exit 1
fi
echo "PASS: $guide ran end to end"
