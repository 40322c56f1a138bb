def broken(call):
    return (
