raise RuntimeError("this plugin fails at import time")
