#!/usr/bin/env bash
# Build lutf, start lutfd on its defaults (state /var/lib/lutf, sockets in
# /run/lutf) with the example functions deployed, and print how to call them.
# lutfd keeps running in the background; its log is /run/lutf/lutfd.log.
# Stop it with: sudo kill $(cat /run/lutf/lutfd.pid)
# Usage: sudo scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DLUTF_TESTS=OFF -DLUTF_BENCH=OFF >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null
bin=$root/build/release
lutfctl=$bin/userspace/cli/lutfctl

# A lutfd started by an earlier run is replaced by the one just built.
if [ -f /run/lutf/lutfd.pid ]; then
	old=$(cat /run/lutf/lutfd.pid)
	if kill -0 "$old" 2>/dev/null; then
		echo "stopping the running lutfd (pid $old)"
		kill "$old"
		for _ in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
	fi
fi
mkdir -p /run/lutf
nohup "$bin/userspace/daemon/lutfd" >/run/lutf/lutfd.log 2>&1 &
pid=$!
for _ in $(seq 100); do
	[ -S /run/lutf/control.sock ] && [ -S /run/lutf/lutf.sock ] && break
	kill -0 "$pid" 2>/dev/null || { echo "lutfd failed to start:"; cat /run/lutf/lutfd.log; exit 1; }
	sleep 0.05
done
echo "lutfd is running (pid $pid, log /run/lutf/lutfd.log)"

ex=$bin/examples
"$lutfctl" deploy --tenant demo --app hello --so "$ex/libhello.so" --export hello --export noop \
	--config 'hello.greeting=hello from lutf, ' >/dev/null
"$lutfctl" deploy --tenant demo --app pi --so "$ex/libpi.so" --export pi >/dev/null
"$lutfctl" deploy --tenant demo --app sleep --so "$ex/libsleep.so" --export sleep=sleep_ms >/dev/null
"$lutfctl" list
cat <<MSG

Call them (lutfctl is $lutfctl):
  $lutfctl invoke demo/hello --data world
  $lutfctl invoke demo/pi --data 100
  $lutfctl invoke demo/sleep --data 20
  $lutfctl status
  KEY=\$($lutfctl key create demo)                            (an API key, shown once)
  curl -s -H "Authorization: Bearer \$KEY" --data world http://127.0.0.1:8080/fn/demo/hello
  curl -s -H "Authorization: Bearer \$(cat /var/lib/lutf/admin.token)" http://127.0.0.1:9090/metrics | head
Stop lutfd: sudo kill \$(cat /run/lutf/lutfd.pid)
MSG
echo
echo "demo/hello says: $("$lutfctl" invoke demo/hello --data world)"
