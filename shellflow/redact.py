"""Hide the passwords in URLs and messages before they are shown or logged.

The lowest module of shellflow: settings mask the URLs they list, and errors mask the URL of a
service they could not reach, so both import this and it imports nothing of shellflow.
"""

from __future__ import annotations

import logging
import re

# The user-info part of a URL: the password runs from the first ':' after the user name to
# the last '@' (greedy), so a password holding '/', ':' or '@' is hidden whole. Hiding too
# much of a malformed URL is harmless; showing part of a password is not.
_PASSWORD_IN_URL = re.compile(r"^(?P<head>[a-zA-Z][\w+.-]*://[^:/@?#]*:)(?P<secret>.*)(?P<tail>@)")
# The same inside free text (a driver's error message): a URL ends at whitespace.
_PASSWORD_IN_TEXT = re.compile(
    r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@?#\s]*:)(?P<secret>\S*)(?P<tail>@)"
)
# An access token given as the user name alone (``https://ghp_...@github.com/org/repo``, a
# GitHub, GitLab or Bitbucket habit): over HTTP a user name of 16 characters or more is taken
# for a token. Short names (``git``, ``ci``) are shown; ``ssh://git@host`` is not HTTP.
_TOKEN_AS_USER = re.compile(
    r"(?P<head>(?<![\w+.-])https?://)(?P<secret>[^:/@?#\s]{16,})(?P<tail>@)", re.IGNORECASE
)
# libpq and several brokers also accept the password as a parameter (``?password=``).
_PASSWORD_IN_QUERY = re.compile(
    r"(?P<head>(?:^|[?&\s])(?:password|passwd|pwd)=)(?P<secret>[^&#\s]*)", re.IGNORECASE
)


def mask_url(url: str) -> str:
    """Hide the password of a URL (``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``)."""
    return replace_password(url, "***")


def replace_password(url: str, replacement: str) -> str:
    """The URL with its password (user-info or ``?password=``) replaced by ``replacement``."""
    masked = _PASSWORD_IN_URL.sub(lambda m: f"{m['head']}{replacement}{m['tail']}", url, count=1)
    masked = _TOKEN_AS_USER.sub(lambda m: f"{m['head']}{replacement}{m['tail']}", masked, count=1)
    return _PASSWORD_IN_QUERY.sub(lambda m: f"{m['head']}{replacement}", masked)


def mask_text(text: str) -> str:
    """Hide the password of every URL inside a message."""
    masked = _PASSWORD_IN_TEXT.sub(lambda m: f"{m['head']}***{m['tail']}", text)
    masked = _TOKEN_AS_USER.sub(lambda m: f"{m['head']}***{m['tail']}", masked)
    return _PASSWORD_IN_QUERY.sub(lambda m: f"{m['head']}***", masked)


class MaskingFormatter(logging.Formatter):
    """A log formatter that hides the passwords of URLs in the whole line, traceback
    included: a library's message (git's, a driver's, Celery's) may quote a URL."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))


class MaskingFilter(logging.Filter):
    """The same for handlers someone else formats (Celery's worker log): the message and
    its traceback are masked before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True


def mask_handlers(logger: logging.Logger) -> None:
    """Mask every line the handlers of ``logger`` write."""
    for handler in logger.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
