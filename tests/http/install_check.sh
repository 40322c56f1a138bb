#!/bin/bash
# install_check.sh BUILD PREFIX SBINDIR BINDIR INCLUDEDIR LIBDIR SYSCONFDIR DATADIR DOCDIR UNITDIR
# (absolute install paths): `cmake --install BUILD` into a DESTDIR puts every
# file where a distribution would, the unit points at the installed lutfd
# and config, the config has no active key, and a program builds against the
# client library through pkg-config and runs.
set -euo pipefail
build=$1 prefix=$2 sbindir=$3 bindir=$4 includedir=$5 libdir=$6 sysconfdir=$7 datadir=$8
docdir=$9 unitdir=${10}
tmp=$(mktemp -d /tmp/lutf-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR=$dest cmake --install "$build" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
for f in "$sbindir/lutfd" "$bindir/lutfctl" "$includedir/lutf/client.h" \
	"$includedir/lutf/protocol.h" "$includedir/lutf/function.h" "$libdir/liblutf-client.so" \
	"$libdir/liblutf-client.so.0" "$libdir/liblutf-client.a" "$libdir/pkgconfig/lutf-client.pc" \
	"$unitdir/lutfd.service" "$sysconfdir/lutf/lutfd.conf" "$datadir/lutf/policies/README.md" \
	"$docdir/operator.md" "$docdir/functions.md"; do
	[ -e "$dest$f" ] || fail "$f not installed"
done
[ -x "$dest$sbindir/lutfd" ] && [ -x "$dest$bindir/lutfctl" ] || fail "binaries not executable"
for p in "$(dirname "$0")"/../../policies/*.policy; do
	[ -e "$p" ] || continue
	[ -e "$dest$datadir/lutf/policies/$(basename "$p")" ] || fail "policy $(basename "$p") not installed"
done
# Nothing lands outside the prefix except the config (FULL sysconfdir: /etc for /usr).
stray=$(cd "$dest" && find . -type f | sed 's|^\.||' | grep -v "^$prefix/" | grep -v "^$sysconfdir/" || true)
[ -z "$stray" ] || fail "installed outside $prefix: $stray"

grep -qx "ExecStart=$sbindir/lutfd --config $sysconfdir/lutf/lutfd.conf" "$dest$unitdir/lutfd.service" ||
	fail "the unit does not start the installed lutfd with the installed config"
active=$(grep -vE '^[[:space:]]*(#|$|\[)' "$dest$sysconfdir/lutf/lutfd.conf" || true)
[ -z "$active" ] || fail "active keys in the installed config: $active"
"$dest$sbindir/lutfd" --version | grep -q '^lutfd ' || fail "installed lutfd does not run"
"$dest$bindir/lutfctl" --help >/dev/null 2>&1 || fail "installed lutfctl does not run"

export PKG_CONFIG_PATH=$dest$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
flags=$(pkg-config --cflags --libs lutf-client) || fail "pkg-config lutf-client"
case " $flags " in *" -I$dest$includedir "*) ;; *) fail "cflags: $flags" ;; esac
case " $flags " in *" -L$dest$libdir "*) ;; *) fail "libs: $flags" ;; esac
case " $flags " in *" -llutf-client "*) ;; *) fail "libs: $flags" ;; esac
cat >"$tmp/prog.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <lutf/client.h>
#include <lutf/function.h>
int main(void)
{
	struct lutf_client *c;
	int err = lutf_client_connect("unix:///nonexistent/lutf.sock", &c);

	printf("%s %d\n", lutf_status_str(LUTF_STATUS_DEADLINE), err);
	return err == -ENOENT ? 0 : 1;
}
C
# shellcheck disable=SC2086
cc -Wall -Werror "$tmp/prog.c" -o "$tmp/prog" $flags || fail "a program does not build with pkg-config"
out=$(LD_LIBRARY_PATH=$dest$libdir "$tmp/prog") || fail "the program did not run: $out"
[ "$out" = "deadline -2" ] || fail "unexpected output: $out"
echo "install: ok ($(cd "$dest" && find . -type f | wc -l) files under $prefix)"
