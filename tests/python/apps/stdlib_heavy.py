# json, hashlib, re, base64, collections: a function that leans on the stdlib.
import base64
import collections
import hashlib
import json
import re


def digest(call):
    words = re.findall(r"[a-z]+", call.input.decode().lower())
    top = collections.Counter(words).most_common(2)
    h = hashlib.sha256(call.input).hexdigest()
    return json.dumps({"top": top, "sha256": h[:16],
                       "b64": base64.b64encode(call.input[:6]).decode()})
