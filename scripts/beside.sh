#!/usr/bin/env bash
# beside.sh COMMAND [ARGS...]: run COMMAND while a second, bystander lutfd
# serves io_uring traffic beside it, and check that nothing COMMAND does (the
# tests' own lutfds, their kills, cgroups, pins) touches the bystander.
#
# The bystander runs from a given build (LUTF_BESIDE_BUILD, default build/)
# on folders, ports, uid_range, cgroup_name and BPF pin root of its own
# (docs/operator.md "Several lutfds on one host"), with ingress = uring and
# none of the LUTF_* switches of the caller's environment. It serves the
# example app's noop as beside/noop; client_batch (liblutf-client, io_uring
# transport) calls it over TCP in rounds of LUTF_BESIDE_CALLS calls (default
# 1000, each round bounded by `timeout`), LUTF_BESIDE_PAUSE seconds between
# rounds (default 0.5; about 900 calls/s on a 2-vCPU VM), until
# COMMAND exits. Then the traffic stops and the script checks that every call
# was answered OK, that the bystander and its worker are the same processes
# as before, and stops it (SIGTERM, clean exit expected).
#
# Exit status: COMMAND's; 1 when COMMAND passed but the bystander lost a call,
# died, had its worker replaced or did not stop cleanly; 2 on a usage or
# setup error. Usage (root; another user goes through sudo):
#   scripts/beside.sh bash .ci/run
#   LUTF_BESIDE_BUILD=build/release scripts/beside.sh bash -c 'cd build && ctest -L daemon'
set -uo pipefail
. "$(dirname "$0")/as_root.sh"
lutf_as_root "$@"
cd "$(dirname "$0")/.."
root=$(pwd)

if [ $# -eq 0 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
	awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"
	[ $# -eq 0 ] && exit 2 || exit 0
fi
build=$(realpath "${LUTF_BESIDE_BUILD:-build}")
calls=${LUTF_BESIDE_CALLS:-1000}
pause=${LUTF_BESIDE_PAUSE:-0.5}
lutfd=$build/userspace/daemon/lutfd
lutfctl=$build/userspace/cli/lutfctl
batch=$build/examples/client_batch
app=$build/examples/libhello.so
for f in "$lutfd" "$lutfctl" "$batch" "$app"; do
	[ -e "$f" ] || { echo "beside: $f missing: build $build first" >&2; exit 2; }
done
case $calls in '' | *[!0-9]*) echo "beside: LUTF_BESIDE_CALLS must be a number" >&2; exit 2 ;; esac
case $pause in '' | *[!0-9.]*) echo "beside: LUTF_BESIDE_PAUSE must be seconds" >&2; exit 2 ;; esac

# Everything of the bystander is named after this script's pid: its folders,
# pins and cgroups, and 16 uids in 63000-63959, a block that neither the
# tests (100000 and up), nor lutfd's default (61000-61999) use.
tag=lutf-beside-$$
uid_lo=$((63000 + ($$ % 60) * 16))
tmp=$(mktemp -d /tmp/lutf-beside-XXXXXX)
chmod 711 "$tmp" # tenants' workers reach the state folder below it
pin=/sys/fs/bpf/$tag
pid= loader=
say() { echo "beside: $*" >&2; }
cleanup() {
	[ -n "$loader" ] && kill "$loader" 2>/dev/null && wait "$loader" 2>/dev/null
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$pin"
	# A killed bystander leaves its (empty, once the watcher is done) cgroups.
	for _ in $(seq 20); do
		find /sys/fs/cgroup -depth -type d \( -name "$tag" -o -path "*/$tag/*" \) \
			-exec rmdir {} + 2>/dev/null
		find /sys/fs/cgroup -type d -name "$tag" 2>/dev/null | grep -q . || break
		sleep 0.1
	done
	[ -n "${LUTF_BESIDE_KEEP:-}" ] && say "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$tmp/lutfd.conf" <<CONF
[lutfd]
ingress = uring
listen_tcp = 127.0.0.1:0
http_listen = 127.0.0.1:0
admin_listen = 127.0.0.1:0
bpf_pin_root = $pin
cgroup_name = $tag
uid_range = $uid_lo-$((uid_lo + 15))
require_keys = off
CONF
# The caller's LUTF_* switches (LUTF_INGRESS=epoll in a test phase, ...) are
# for the tests' lutfds, not for this one.
env $(compgen -e | grep '^LUTF_' | sed 's/^/-u /') \
	"$lutfd" --config "$tmp/lutfd.conf" --state-dir "$tmp/state" --runtime-dir "$tmp/run" \
	>"$tmp/lutfd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	[ "$(cat "$tmp/run/lutfd.pid" 2>/dev/null)" = "$pid" ] && [ -s "$tmp/run/tcp.addr" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if ! kill -0 "$pid" 2>/dev/null || [ ! -s "$tmp/run/tcp.addr" ]; then
	say "the bystander lutfd did not start:"
	cat "$tmp/lutfd.log" >&2
	exit 2
fi
ctl() { "$lutfctl" --runtime-dir "$tmp/run" "$@"; }
if ! ctl deploy --tenant beside --app hello --so "$app" --export noop >/dev/null; then
	say "deploy failed:"
	tail -20 "$tmp/lutfd.log" >&2
	exit 2
fi
ingress=$(ctl status | awk '$1 == "ingress" {print $2; exit}')
worker() { ctl --json status | grep -o '"worker_pid":[0-9]*' | head -1 | cut -d: -f2; }
worker0=$(worker)
addr=tcp://$(cat "$tmp/run/tcp.addr")
say "lutfd $pid (ingress ${ingress:-?}, worker ${worker0:-?}) on $addr, uids $uid_lo-$((uid_lo + 15)), cgroup $tag, pins $pin"

# The traffic: rounds of client_batch until the stop file appears. Each round
# appends "asked ok" to rounds; a round that did not finish counts as lost.
: >"$tmp/rounds"
(
	while [ ! -e "$tmp/stop" ]; do
		out=$(timeout 60 "$batch" -n "$calls" -c 2 -q 32 -t 10000 beside/noop "$addr" 2>&1)
		ok=$(echo "$out" | awk '$1 == "ok" {sub(",", "", $2); print $2; exit}')
		echo "$calls ${ok:-0}" >>"$tmp/rounds"
		[ "${ok:-0}" = "$calls" ] || echo "$out" >>"$tmp/errors"
		echo "$out" | grep -o 'transport [a-z_]*' | head -1 >>"$tmp/transports"
		sleep "$pause"
	done
) &
loader=$!

"$@"
rc=$?

touch "$tmp/stop"
wait "$loader"
loader=
read -r rounds asked ok < <(awk '{n++; a += $1; o += $2} END {print n + 0, a + 0, o + 0}' "$tmp/rounds")
why=()
alive=yes
kill -0 "$pid" 2>/dev/null || { alive=no; why+=("it died"); }
worker1=$([ $alive = yes ] && worker)
[ -z "$worker0" ] || [ "$worker1" = "$worker0" ] || why+=("its worker was replaced")
[ "$ok" = "$asked" ] && [ "$rounds" -gt 0 ] || why+=("$((asked - ok)) of $asked calls failed")
[ "$ingress" = io_uring ] || why+=("its ingress is '$ingress', not io_uring")
stopped=no
if [ $alive = yes ]; then
	kill -TERM "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		[ $? -eq 0 ] && stopped=yes
		pid=
	fi
fi
[ $stopped = yes ] || why+=("it did not stop cleanly")
transports=$(sort -u "$tmp/transports" 2>/dev/null | sed 's/transport //' | paste -sd, -)
say "command exit $rc; bystander: $rounds rounds, $asked calls, $((asked - ok)) errors" \
	"(client transport ${transports:-?}), alive $alive, worker ${worker0:-?} -> ${worker1:-gone}," \
	"clean stop $stopped"
if [ -s "$tmp/errors" ]; then
	say "failed rounds (last lines):"
	tail -20 "$tmp/errors" >&2
fi
if [ ${#why[@]} -ne 0 ]; then
	say "FAIL: the bystander lutfd was disturbed: $(IFS=';'; echo "${why[*]}" | sed 's/;/; /g'); its log:"
	tail -30 "$tmp/lutfd.log" >&2
	[ $rc -ne 0 ] && exit $rc || exit 1
fi
exit $rc
