# A vendored "library": only in the app's zip, never on the host.
VERSION = "1.2"


def shout(s):
    return f"{s.upper()}! (vendlib {VERSION})"
