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
