#!/bin/bash
# promtool_check.sh PROGRAM: PROGRAM's output must pass `promtool check metrics`
# (lint included). Exit 77 (skip) without promtool unless LUTF_TEST_REQUIRE
# names promtool.
set -euo pipefail
if ! command -v promtool >/dev/null 2>&1; then
	case ",${LUTF_TEST_REQUIRE:-}," in
	*,promtool,*) echo "FAIL: promtool required (apt-get install prometheus)" >&2; exit 1 ;;
	esac
	echo "SKIP: promtool not installed (apt-get install prometheus)" >&2
	exit 77
fi
"$1" | promtool check metrics
# And a broken exposition must be refused, or this check proves nothing.
if printf '# TYPE x counter\nx{a="1" 1\n' | promtool check metrics >/dev/null 2>&1; then
	echo "FAIL: promtool accepted broken text" >&2
	exit 1
fi
echo "promtool: ok ($("$1" | grep -vc '^#') samples)"
