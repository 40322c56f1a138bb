#!/bin/bash
# install_check.sh: what `cmake --install BUILD` puts into a DESTDIR, met the
# way a user meets it: a program built against the installed files through
# pkg-config alone runs, and a shared library exports exactly the symbols of
# its version map. Two checks share those steps:
#   install_check.sh BUILD PREFIX SBINDIR BINDIR INCLUDEDIR LIBDIR SYSCONFDIR DATADIR DOCDIR UNITDIR
#     (label daemon) every file where a distribution would put it, the unit
#     points at the installed lutfd and config, the config has no active key,
#     liblutf-client through pkg-config lutf-client, exporting exactly its map;
#   install_check.sh --runtime BUILD INCLUDEDIR LIBDIR MAP
#     (label engine) liblutf through pkg-config lutf: an in-process runtime
#     adds a function by pointer and one from a .so, invokes, submits, reaps;
#     liblutf.so exports exactly MAP's symbols, which are what runtime.h declares.
# Install paths are absolute (CMAKE_INSTALL_FULL_*).
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
mode=daemon
if [ "${1:-}" = --runtime ]; then
	mode=runtime
	shift
fi
build=$1
tmp=$(mktemp -d /tmp/lutf-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root

# install: cmake --install BUILD into $dest.
install_into_dest() {
	DESTDIR=$dest cmake --install "$build" >"$tmp/install.log" ||
		{ cat "$tmp/install.log"; fail "cmake --install"; }
}

# pc_flags PC INCLUDEDIR LIBDIR LIB: pkg-config's flags for PC, pointing into
# $dest only (nothing of the source or build tree).
pc_flags() {
	local pc=$1 includedir=$2 libdir=$3 lib=$4 flags
	flags=$(PKG_CONFIG_PATH=$dest$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest \
		pkg-config --cflags --libs "$pc") || fail "pkg-config $pc"
	case " $flags " in *" -I$dest$includedir "*) ;; *) fail "$pc cflags: $flags" ;; esac
	case " $flags " in *" -L$dest$libdir "*) ;; *) fail "$pc libs: $flags" ;; esac
	case " $flags " in *" -l$lib "*) ;; *) fail "$pc libs: $flags" ;; esac
	case "$flags" in *"$build"* | *"$(cd "$(dirname "$0")/../.." && pwd)"*)
		fail "$pc points into the build or source tree: $flags" ;;
	esac
	echo "$flags"
}

# check_exports SO MAP: the .so's defined dynamic symbols are exactly MAP's
# globals, each bound to a version node of MAP.
check_exports() {
	local so=$1 map=$2 nodes want got
	nodes=$(grep -oE '^[A-Z][A-Z0-9_]*_[0-9]+\.[0-9]+' "$map" | sort -u)
	[ -n "$nodes" ] || fail "no version node in $map"
	want=$(sed -n '/global:/,/}/p' "$map" | grep -oE '^[[:space:]]*[a-z_][a-z0-9_]*;' |
		tr -d ' \t;' | sort -u)
	[ -n "$want" ] || fail "no global symbol in $map"
	nm -D --defined-only "$so" >"$tmp/nm.txt" || fail "nm -D $so"
	# Version nodes show as absolute symbols (type A); every other one must be versioned.
	got=$(awk '$2 != "A" { print $3 }' "$tmp/nm.txt" | sort -u)
	while read -r sym; do
		case "$sym" in *@@*) ;; *) fail "$(basename "$so"): $sym has no version" ;; esac
		printf '%s\n' "$nodes" | grep -qx "${sym#*@@}" || fail "$(basename "$so"): $sym: unknown node"
	done <<<"$got"
	got=$(printf '%s\n' "$got" | sed 's/@.*//' | sort -u)
	if [ "$got" != "$want" ]; then
		diff <(echo "$want") <(echo "$got") | sed 's/^</  missing:/; s/^>/  extra:/' | grep ':' >&2
		fail "$(basename "$so") does not export exactly the symbols of $(basename "$map")"
	fi
	echo "$want"
}

if [ $mode = runtime ]; then
	includedir=$2 libdir=$3 map=$4
	install_into_dest
	for f in "$includedir/lutf/runtime.h" "$includedir/lutf/function.h" \
		"$includedir/lutf/protocol.h" "$libdir/liblutf.so" "$libdir/liblutf.so.0" \
		"$libdir/pkgconfig/lutf.pc"; do
		[ -e "$dest$f" ] || fail "$f not installed"
	done
	# The public headers include only each other and the C library.
	inc=$(grep -hoE '^#include [<"][^>"]+[>"]' "$dest$includedir"/lutf/{runtime,function,protocol}.h |
		grep -vE '<(std[a-z]+|lutf/(function|protocol))\.h>' || true)
	[ -z "$inc" ] || fail "installed headers include more than the public API: $inc"
	soname=$(objdump -p "$dest$libdir/liblutf.so" | awk '$1 == "SONAME" { print $2 }')
	[ "$soname" = liblutf.so.0 ] || fail "SONAME: '$soname'"
	exported=$(check_exports "$dest$libdir/liblutf.so" "$map")
	for internal in lutf_runtime_attach lutf_runtime_attach_to lutf_labors_start \
		lutf_region_format lutf_supervisor_create lutf_runtime_reap_arm lutf_runtime_worker_lost; do
		! grep -qx "$internal" <<<"$exported" || fail "$internal is exported"
	done
	# The header declares exactly what the map exports (no public name left
	# out of the map, no exported name without a declaration).
	declared=$(grep -v '^static' "$dest$includedir/lutf/runtime.h" |
		grep -oE '^[a-z][a-z0-9_ ]*[ *](lutf_[a-z0-9_]+)\(' | grep -oE 'lutf_[a-z0-9_]+\($' |
		tr -d '(' | sort -u)
	[ "$declared" = "$exported" ] ||
		fail "runtime.h declares: $(tr '\n' ' ' <<<"$declared"); the map exports: $(tr '\n' ' ' <<<"$exported")"
	flags=$(pc_flags lutf "$includedir" "$libdir" lutf)

	cat >"$tmp/greet.c" <<'C'
#include <string.h>
#include <lutf/function.h>
LUTF_APP_ABI;
LUTF_FUNCTION(greet)
{
	const char *g = lutf_config(call, "greeting");

	if (!g)
		return lutf_fail(call, "no greeting");
	lutf_write(call, g, strlen(g));
	return lutf_write(call, call->input, call->input_len);
}
C
	cat >"$tmp/prog.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <lutf/runtime.h>

static int upper(struct lutf_call *call)
{
	char buf[64];
	size_t n = call->input_len < sizeof(buf) ? call->input_len : sizeof(buf);

	for (size_t i = 0; i < n; i++) {
		char c = ((const char *)call->input)[i];

		buf[i] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
	}
	lutf_set_content_type(call, "text/plain");
	return lutf_write(call, buf, n);
}

static int run(struct lutf_runtime *rt, uint32_t id, const char *in, char *out, size_t cap)
{
	struct lutf_request req = {.input = in, .input_len = strlen(in)};
	struct lutf_result res;
	int err = lutf_runtime_invoke(rt, id, &req, &res);

	if (err)
		return err;
	snprintf(out, cap, "%s:%.*s", lutf_status_str(res.status), (int)res.output_len,
		 (const char *)res.output);
	lutf_result_release(&res);
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const greeting[] = {"greeting", "hi, ", NULL};
	struct lutf_fn_opts opts = {.config = greeting};
	struct lutf_request req = {.input = "async", .input_len = 5};
	struct lutf_completion c;
	struct lutf_runtime_stats st;
	struct lutf_config cfg;
	struct lutf_runtime *rt;
	uint32_t up, gr, id;
	char a[128], b[128];
	int n, err;

	if (argc != 2)
		return 2;
	lutf_config_init(&cfg);
	cfg.carts = 1;
	cfg.labors = 2;
	cfg.labors_max = 2;
	cfg.cart_capacity = 64;
	cfg.arena_bytes = 4u << 20;
	cfg.max_payload = 1u << 16;
	cfg.watch = LUTF_WATCH_POLL;
	if ((err = lutf_runtime_create(&cfg, &rt)))
		return fprintf(stderr, "create: %d\n", err), 1;
	if ((err = lutf_runtime_add_fn(rt, "t/upper", upper, NULL, &up)) ||
	    (err = lutf_runtime_add_so(rt, "t/greet", argv[1], "greet", &opts, &gr)))
		return fprintf(stderr, "add: %d %s\n", err, lutf_runtime_last_error()), 1;
	if (lutf_runtime_add_so(rt, "t/none", argv[1], "no_such_symbol", NULL, &id) != -ESRCH ||
	    !*lutf_runtime_last_error())
		return fprintf(stderr, "add_so of a missing symbol did not fail -ESRCH\n"), 1;
	if (lutf_runtime_lookup(rt, "t/greet", &id) || id != gr ||
	    lutf_runtime_lookup(rt, "t/none", &id) != -ENOENT)
		return fprintf(stderr, "lookup\n"), 1;
	if ((err = run(rt, up, "hello", a, sizeof(a))) || (err = run(rt, gr, "lutf", b, sizeof(b))))
		return fprintf(stderr, "invoke: %d\n", err), 1;
	if ((err = lutf_runtime_submit(rt, up, &req, 42)))
		return fprintf(stderr, "submit: %d\n", err), 1;
	n = lutf_runtime_reap(rt, &c, 1, 5000);
	if (n != 1 || c.user_data != 42 || c.result.status != LUTF_STATUS_OK)
		return fprintf(stderr, "reap: %d\n", n), 1;
	if (lutf_runtime_pause(rt, up) || lutf_runtime_resume(rt, up) || lutf_runtime_delete(rt, gr) ||
	    lutf_runtime_delete(rt, gr) != -ENOENT)
		return fprintf(stderr, "pause/resume/delete\n"), 1;
	lutf_runtime_stats(rt, &st);
	printf("%s %s %.*s %s %llu\n", a, b, (int)c.result.output_len, (const char *)c.result.output,
	       lutf_watch_mode_str(st.watch), (unsigned long long)st.completed);
	lutf_result_release(&c.result);
	lutf_runtime_destroy(rt);
	return lutf_status_from_errno(-EAGAIN) == LUTF_STATUS_OVERLOADED ? 0 : 1;
}
C
	cc -std=c11 -Wall -Wextra -Werror -fPIC -shared -I"$dest$includedir" "$tmp/greet.c" \
		-o "$tmp/libgreet.so" || fail "an app does not build against the installed function.h"
	# A library built with ASan (the sanitizer build's engine phase) needs its
	# runtime loaded first: build the program the same way.
	san=
	if objdump -p "$dest$libdir/liblutf.so" | grep -q 'NEEDED.*libasan'; then
		san=-fsanitize=address,undefined
	fi
	# shellcheck disable=SC2086
	cc -std=c11 -Wall -Wextra -Werror $san "$tmp/prog.c" -o "$tmp/prog" $flags ||
		fail "a program does not build with pkg-config lutf"
	# The public headers are usable from C++ too.
	c++ -x c++ -std=c++17 -Wall -Werror -fsyntax-only -I"$dest$includedir" - <<<'#include <lutf/runtime.h>' ||
		fail "runtime.h does not compile as C++"
	out=$(LD_LIBRARY_PATH=$dest$libdir "$tmp/prog" "$tmp/libgreet.so") ||
		fail "the program did not run: $out"
	ldd_lib=$(LD_LIBRARY_PATH=$dest$libdir ldd "$tmp/prog" | awk '$1 == "liblutf.so.0" { print $3 }')
	[ "$ldd_lib" = "$dest$libdir/liblutf.so.0" ] || fail "the program loads liblutf from '$ldd_lib'"
	[ "$out" = "ok:HELLO ok:hi, lutf ASYNC poll 3" ] || fail "unexpected output: $out"
	echo "install: ok (liblutf.so exports $(wc -l <<<"$exported") symbols, all LUTF_0.1)"
	exit 0
fi

prefix=$2 sbindir=$3 bindir=$4 includedir=$5 libdir=$6 sysconfdir=$7 datadir=$8
docdir=$9 unitdir=${10}
install_into_dest
for f in "$sbindir/lutfd" "$bindir/lutfctl" "$includedir/lutf/client.h" \
	"$includedir/lutf/protocol.h" "$includedir/lutf/function.h" "$libdir/liblutf-client.so" \
	"$libdir/liblutf-client.so.0" "$libdir/liblutf-client.a" "$libdir/pkgconfig/lutf-client.pc" \
	"$unitdir/lutfd.service" "$sysconfdir/lutf/lutfd.conf" "$datadir/lutf/policies/README.md" \
	"$docdir/operator.md" "$docdir/functions.md"; do
	[ -e "$dest$f" ] || fail "$f not installed"
done
[ -x "$dest$sbindir/lutfd" ] && [ -x "$dest$bindir/lutfctl" ] || fail "binaries not executable"
# Python functions (a build with lutf_python.so): the module is installed, and
# the installed lutfd's zygote loads that one (found relative to lutfd's own
# executable), not the build tree's, and runs a Python function with it.
if [ -e "$build/userspace/worker/lutf_python.so" ]; then
	pymod=$libdir/lutf/lutf_python.so
	[ -e "$dest$pymod" ] || fail "$pymod not installed"
	if [ "$(id -u)" = 0 ]; then
		mkdir -p "$tmp/py/state" "$tmp/py/run"
		chmod 711 "$tmp" "$tmp/py"
		printf '[lutfd]\nbpf = off\ncgroup = off\nuid_range = off\nlisten_tcp = off\nhttp_listen = off\nadmin_listen = off\nrequire_keys = off\npolicy_dir = %s\n' \
			"$dest$datadir/lutf/policies" >"$tmp/py/lutfd.conf"
		"$dest$sbindir/lutfd" --config "$tmp/py/lutfd.conf" --state-dir "$tmp/py/state" \
			--runtime-dir "$tmp/py/run" >"$tmp/py/lutfd.log" 2>&1 &
		lutfd_pid=$!
		trap 'kill $lutfd_pid 2>/dev/null || true; wait $lutfd_pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
		ctl=("$dest$bindir/lutfctl" --runtime-dir "$tmp/py/run")
		for _ in $(seq 100); do [ -S "$tmp/py/run/control.sock" ] && break; sleep 0.1; done
		printf 'def hi(call):\n    return "py:" + call.input.decode()\n' >"$tmp/py/hi.py"
		"${ctl[@]}" deploy --tenant inst --app hi --py "$tmp/py/hi.py" --export hi=hi:hi \
			>"$tmp/py/deploy.log" 2>&1 || { cat "$tmp/py/deploy.log" "$tmp/py/lutfd.log"; fail "installed lutfd: Python deploy"; }
		out=$("${ctl[@]}" invoke inst/hi --data ok) || fail "installed lutfd: Python invoke: $out"
		[ "$out" = "py:ok" ] || fail "installed lutfd: Python answered '$out'"
		zy=$(pgrep -P "$lutfd_pid" -x lutf-zygote) || fail "installed lutfd: no zygote"
		grep -q " $dest$pymod\$" "/proc/$zy/maps" ||
			fail "the installed zygote did not load $dest$pymod: $(grep -o '/[^ ]*lutf_python.so' "/proc/$zy/maps" | sort -u)"
		kill "$lutfd_pid"
		wait "$lutfd_pid" 2>/dev/null || true
		echo "install: the installed lutfd runs Python with $pymod"
	fi
fi
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

flags=$(pc_flags lutf-client "$includedir" "$libdir" lutf-client)
check_exports "$dest$libdir/liblutf-client.so" "$(dirname "$0")/../../userspace/client/liblutf-client.map" >/dev/null
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
c++ -x c++ -std=c++17 -Wall -Werror -fsyntax-only -I"$dest$includedir" - <<<'#include <lutf/client.h>' ||
	fail "client.h does not compile as C++"
out=$(LD_LIBRARY_PATH=$dest$libdir "$tmp/prog") || fail "the program did not run: $out"
[ "$out" = "deadline -2" ] || fail "unexpected output: $out"
echo "install: ok ($(cd "$dest" && find . -type f | wc -l) files under $prefix)"
