# A second app with a module of the same name's role: its own namespace.
NAME = "other"


def init(config):
    return {"who": NAME}


def who(call):
    return f"{call.state['who']} {NAME} {__name__}"
