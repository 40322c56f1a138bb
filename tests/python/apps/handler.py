# The greeter, plus the statuses the tests need (tests/python).
import json
import os
import time

LOADED = time.monotonic()


def init(config):
    return {"greeting": config.get("greeting", "hello"), "calls": 0}


def handle(call):
    name = call.input.decode() or "world"
    call.content_type = "application/json"
    call.state["calls"] += 1
    return json.dumps({"msg": f"{call.state['greeting']} {name}"})


def echo(call):
    return call.input


def meta(call):
    call.log("meta asked for " + call.input.decode())
    return call.meta(call.input.decode()) or "none"


def boom(call):
    raise ValueError("no such thing: " + call.input.decode())


def refuse(call):
    call.write(b"partial")
    call.fail("refused by the app")


def spin(call):
    while True:
        pass


def sleep(call):
    time.sleep(int(call.input or b"10") / 1000)
    return "slept"


def shell(call):
    os.system("true")
    return "ran a shell"


def hog(call):
    keep = []
    while True:
        keep.append(bytearray(1 << 20))


def count(call):
    return str(call.state["calls"])


def bad_return(call):
    return 42


def nomem(call):
    raise MemoryError("asked for too much")


def bigalloc(call):
    return bytes(1 << 44)  # 16 TiB: malloc refuses it, Python raises MemoryError


def caught(call):
    try:
        bytes(1 << 44)
    except MemoryError:
        return "caught"
    return "allocated?"
