#!/bin/bash
# unit_verify.sh UNIT: `systemd-analyze verify` must accept UNIT (a copy of
# etc/lutfd.service.in whose ExecStart is the lutfd of this build) with no
# complaint at all: systemd only warns about unknown keys, so any output
# fails. PID 1 need not be systemd: --man=no and a private unit folder.
# Exit 77 (skip) without systemd-analyze unless LUTF_TEST_REQUIRE names systemd.
set -euo pipefail
unit=$1
if ! command -v systemd-analyze >/dev/null 2>&1; then
	case ",${LUTF_TEST_REQUIRE:-}," in
	*,systemd,*) echo "FAIL: systemd-analyze required (apt-get install systemd)" >&2; exit 1 ;;
	esac
	echo "SKIP: systemd-analyze not installed (apt-get install systemd)" >&2
	exit 77
fi
tmp=$(mktemp -d /tmp/lutf-unit-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/good" "$tmp/bad"
cp "$unit" "$tmp/good/lutfd.service"
grep -q '^ExecStart=/' "$tmp/good/lutfd.service"
if ! out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$tmp/good/lutfd.service" 2>&1) ||
	[ -n "$out" ]; then
	echo "FAIL: systemd-analyze verify complains about lutfd.service:" >&2
	echo "$out" >&2
	exit 1
fi
# The same check must catch a misspelt option, or it proves nothing.
sed 's/^Delegate=yes/Delegat=yes/' "$tmp/good/lutfd.service" >"$tmp/bad/lutfd.service"
out=$(systemd-analyze verify --man=no "$tmp/bad/lutfd.service" 2>&1 || true)
if [ -z "$out" ]; then
	echo "FAIL: a misspelt key went unnoticed" >&2
	exit 1
fi
for key in Type=notify NotifyAccess=main ExecReload= KillMode=mixed Delegate=yes RuntimeDirectory=lutf \
	StateDirectory=lutf ProtectSystem=strict 'ReadWritePaths=/sys/fs/bpf /sys/fs/cgroup' \
	ProtectHome=yes PrivateTmp=yes LimitMEMLOCK=infinity LimitNOFILE=; do
	grep -q "^$key" "$tmp/good/lutfd.service" || { echo "FAIL: no $key" >&2; exit 1; }
done
echo "lutfd.service: systemd-analyze verify ok"
