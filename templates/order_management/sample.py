def generate(ctx):
    return {}
