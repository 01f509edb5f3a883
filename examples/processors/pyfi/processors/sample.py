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
