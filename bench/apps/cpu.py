# A CPU-bound Python function for bench/python: workers = 2 against 1. It
# holds the GIL the whole call, so one worker runs one call at a time.


def burn(call):
    n = int(call.input or b"20000")
    h = 0
    for i in range(n):
        h = (h * 31 + i) & 0xFFFFFFFF
    return str(h)
