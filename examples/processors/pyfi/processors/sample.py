"""The quick start's processor module (spec section 5.5): plain functions, no shellflow import."""


def do_something(message):
    """Tag the message so a pipeline's steps can be told apart."""
    print("Do something:", message)
    return "TEXT:" + str(message)


def do_this(message):
    print("Do this:", message)
    return "Do this: " + str(message)


def add_two(one, two):
    """The spec's join example (chapter 6): runs once both arguments have arrived."""
    return one + two


def double(number):
    """Twice a number: one of the join example's sources."""
    return number * 2


def square(number):
    """A number times itself: the join example's other source."""
    return number * number


def invert(number):
    """One over a number; raises ZeroDivisionError for 0 (to show ERROR plugs)."""
    return 1 / number


def gather(*parts):
    """Its arguments as a list: shows what a step of a Python workflow receives (the previous
    step's result first, then the step's own arguments), so the spec's listings can run."""
    return list(parts)


def fail(message):
    """Always raises ValueError: shows how a failed step ends a Python workflow."""
    raise ValueError(f"failed on {message!r}")
