"""Passwords are hidden whole in URLs and in free text, whatever characters they hold."""

from __future__ import annotations

import pytest

from shellflow.redact import mask_text, mask_url, replace_password


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
        ("postgresql+psycopg2://u:secret@h:5432/db", "postgresql+psycopg2://u:***@h:5432/db"),
        ("redis://:secret@localhost:6379/0", "redis://:***@localhost:6379/0"),
        ("amqp://u:se/cr:et@h//vhost", "amqp://u:***@h//vhost"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://h/db?user=u&password=secret&x=1",
            "postgresql://h/db?user=u&password=***&x=1",
        ),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:////tmp/a:b@c.db", "sqlite:////tmp/a:b@c.db"),
        ("redis+socket:///home/me/broker.sock", "redis+socket:///home/me/broker.sock"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert "secret" not in mask_url(url)


def test_mask_text_masks_urls_inside_a_message() -> None:
    text = "cannot reach postgresql://u:secret@h/db (also redis://:pw2@r:1): refused"
    assert (
        mask_text(text) == "cannot reach postgresql://u:***@h/db (also redis://:***@r:1): refused"
    )
    assert "secret" not in mask_text("dsn host=h password=secret user=u")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://ghp_secretsecret0123456789@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("HTTP://glpat-secretsecret012345@gitlab.example/o/r", "HTTP://***@gitlab.example/o/r"),
        ("https://ci@github.com/o/r.git", "https://ci@github.com/o/r.git"),  # a name, short
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
    ],
)
def test_a_token_given_as_the_user_name_of_an_http_url_is_hidden(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert mask_text(f"fatal: unable to access '{url}/'") == f"fatal: unable to access '{masked}/'"
    assert replace_password(url, "${X}") == masked.replace("***", "${X}")
