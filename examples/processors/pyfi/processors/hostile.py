"""Functions that return or print what no call can carry, for the value tests (plain
functions, no imports from shellflow): each call must end recorded, and fail alone.

Each takes an ignored first argument: `flow task run` with an empty stdin passes "".
"""

import os


def echo(value):
    return value


def pid(_=None):
    """The worker process serving the call: the same one before and after the battery."""
    return os.getpid()


def deep(_=None, levels=100000):
    value = []
    for _ in range(levels):
        value = [value]
    return value


def big(_=None, megabytes=40):
    return "x" * (megabytes << 20)


def nul_result(_=None):
    return "a\0b"


def surrogate_result(_=None):
    return {"text": "\ud800"}


def print_nul(_=None):
    print("before\0after")
    return "printed"


def raise_nul(_=None):
    raise ValueError("bad\0news \udce9")


def not_json(_=None):
    return {"when": object()}


def huge_int(_=None):
    return 10**5000


def nan(_=None):
    return float("nan")
