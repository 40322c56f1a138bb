# The greeter's no-op (examples/python/greeter.py) as a WSGI app: bench/python's
# uWSGI baseline runs the same handler as lutf does.
import greeter


def application(environ, start_response):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(n)
    out = greeter.noop(None) or b""
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(out)))])
    return [out]
