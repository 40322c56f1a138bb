# An app in a zip that imports a pure-Python dependency vendored beside it.
import vendlib


def handle(call):
    return vendlib.shout(call.input.decode())
