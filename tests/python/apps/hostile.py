# Hostile Python apps (label hostile): each must end in a clear status, the
# worker alive or recycled, never lutfd hurt.
import sys

kept = []


def keep(call):
    kept.append(call)
    return "kept"


def use_kept(call):
    return kept[-1].input  # the earlier call is over: RuntimeError


def recurse(call):
    def f(n):
        return f(n + 1)
    return f(0)


def flood(call):
    call.write(b"x" * (2 << 20))


def bad_ctype(call):
    call.content_type = "text/plain\r\nx-evil: 1"
    return "no"


def exit_(call):
    sys.exit(3)


def keyerr(call):
    return call.state["missing"]
