#!/usr/bin/env bash
# Build lutf, start lutfd on its defaults (state /var/lib/lutf, sockets in
# /run/lutf) with the example functions deployed, and print how to call them,
# with the HTTP and /metrics addresses lutfd reports in /run/lutf.
# lutfd keeps running in the background; its log is /run/lutf/lutfd.log.
# Stop it with: kill $(cat /run/lutf/lutfd.pid)
# Usage (root; another user goes through sudo): scripts/run.sh
set -euo pipefail
. "$(dirname "$0")/as_root.sh"
lutf_as_root "$@"
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DLUTF_TESTS=OFF -DLUTF_BENCH=OFF >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null
bin=$root/build/release
lutfctl=$bin/userspace/cli/lutfctl
run=/run/lutf

# A lutfd started by an earlier run is replaced by the one just built.
if [ -f $run/lutfd.pid ]; then
	old=$(cat $run/lutfd.pid)
	if kill -0 "$old" 2>/dev/null; then
		echo "stopping the running lutfd (pid $old)"
		kill "$old"
		for _ in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
	fi
fi
mkdir -p $run
nohup "$bin/userspace/daemon/lutfd" >$run/lutfd.log 2>&1 &
pid=$!
for _ in $(seq 200); do
	# lutfd writes its pid file once every listener is bound and
	# http.addr / admin.addr are written (or removed, for one that is off).
	[ "$(cat $run/lutfd.pid 2>/dev/null)" = "$pid" ] && [ -S $run/control.sock ] && break
	kill -0 "$pid" 2>/dev/null || { echo "lutfd failed to start:"; cat $run/lutfd.log; exit 1; }
	sleep 0.05
done
if [ "$(cat $run/lutfd.pid 2>/dev/null)" != "$pid" ]; then
	echo "lutfd did not get ready within 10 s; its log:"
	cat $run/lutfd.log
	exit 1
fi
echo "lutfd is running (pid $pid, log $run/lutfd.log)"

ex=$bin/examples
"$lutfctl" deploy --tenant demo --app hello --so "$ex/libhello.so" --export hello --export noop \
	--config 'hello.greeting=hello from lutf, ' >/dev/null
"$lutfctl" deploy --tenant demo --app pi --so "$ex/libpi.so" --export pi >/dev/null
"$lutfctl" deploy --tenant demo --app sleep --so "$ex/libsleep.so" --export sleep=sleep_ms >/dev/null
# A Python function (examples/python/greeter.py): embedded CPython, same tenant.
"$lutfctl" deploy --tenant demo --app greeter --py "$root/examples/python/greeter.py" \
	--export greet=greeter:handle --config 'greet.greeting=bonjour' >/dev/null
"$lutfctl" list

# The addresses lutfd bound (a taken default port moves or turns a listener
# off, and lutfd says so in its log): /metrics is on the admin listener, or
# on the HTTP gateway when there is no admin listener.
http=$(cat $run/http.addr 2>/dev/null || true)
metrics=$(cat $run/admin.addr 2>/dev/null || true)
[ -n "$metrics" ] || metrics=$http
cat <<MSG

Call them (lutfctl is $lutfctl):
  $lutfctl invoke demo/hello --data world
  $lutfctl invoke demo/pi --data 100
  $lutfctl invoke demo/sleep --data 20
  $lutfctl invoke demo/greet --data world     (Python)
  $lutfctl status
MSG
echo "  KEY=\$($lutfctl key create demo)     (an API key for TCP and HTTP calls, shown once)"
if [ -n "$http" ]; then
	echo "  curl -s -H \"Authorization: Bearer \$KEY\" --data world http://$http/fn/demo/hello     (the HTTP gateway)"
else
	echo "  (no HTTP gateway: see $run/lutfd.log)"
fi
if [ -n "$metrics" ]; then
	echo "  curl -s -H \"Authorization: Bearer \$(cat /var/lib/lutf/admin.token)\" http://$metrics/metrics | head     (Prometheus metrics, admin token)"
else
	echo "  (no /metrics listener: see $run/lutfd.log)"
fi
echo "Stop lutfd: kill \$(cat $run/lutfd.pid)"
echo
echo "demo/hello says: $("$lutfctl" invoke demo/hello --data world)"
