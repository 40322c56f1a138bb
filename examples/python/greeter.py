# A Python function for lutf (issue #14's greeter). Deploy:
#   lutfctl deploy --tenant demo --app greeter --py greeter.py \
#       --export hello=greeter:handle --export noop=greeter:noop \
#       --export nap=greeter:nap --config hello.greeting=bonjour
# then: lutfctl invoke demo/hello --data world
import json
import time


def init(config):
    # Runs once when the app loads; config: every export's --config, a dict.
    return {"greeting": config.get("greeting", "hello")}


def handle(call):
    name = call.input.decode() or "world"
    call.content_type = "application/json"
    return json.dumps({"msg": f"{call.state['greeting']} {name}"})


def noop(call):
    return None


def nap(call):
    # Blocks without the GIL: labor_watch hands the Cart to another Labor.
    time.sleep(int(call.input or b"10") / 1000)
    return b"rested"
