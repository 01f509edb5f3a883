"""The one name rule (shellflow.model.checks): what real names look like passes, any shell,
terminal or graph syntax is refused with the rule in the message."""

from __future__ import annotations

import pytest

from shellflow.errors import ExitCode, UsageError
from shellflow.model.checks import NAME_RULE, check_name, valid_name

ACCEPTED = [
    "pyfi.processors.sample.do_this",  # the spec's sockets
    "pyfi.queue1",
    "proc1@node-1",  # a deployment, as placement names it
    "joe.smith@example.com",  # a user named by e-mail
    "ADD_PROCESSOR",  # a privilege is named by its right
    "q:1",
    "_private",
    "9lives",
    "x" * 200,
]
HOSTILE = [
    "",
    " ",
    "a b",
    "a$(touch pwned)",
    "a`id`",
    "a;b",
    "a|b",
    "a&b",
    "a>b",
    "a'b",
    'x"];',
    "a\nb",
    "a\tb",
    "a\rb",
    "\x1b]52;c;aGk=\x07",
    "[/]",
    "a/b",
    "..",
    ".hidden",
    "-rf",
    "@x",
    ":x",
    "café",
    "a\u202eb",  # right-to-left override
    "x" * 201,
]


@pytest.mark.parametrize("name", ACCEPTED)
def test_real_names_follow_the_rule(name: str) -> None:
    assert valid_name(name)
    check_name("socket", name)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_with_the_rule(name: str) -> None:
    assert not valid_name(name)
    with pytest.raises(UsageError) as caught:
        check_name("socket", name)
    assert caught.value.exit_code == ExitCode.USAGE
    message = caught.value.message
    assert "\n" not in message and "\t" not in message and "\x1b" not in message
    if len(name) > 200:
        assert "at most 200 characters" in message
    else:
        assert NAME_RULE in message


@pytest.mark.parametrize("value", [None, 1, b"bytes", ["a"]])
def test_a_name_that_is_not_text_is_refused(value: object) -> None:
    assert not valid_name(value)
    with pytest.raises(UsageError, match="is not allowed"):
        check_name("queue", value)
