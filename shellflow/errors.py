"""The one exit-code table and the errors that map onto it.

Every expected failure raises a :class:`ShellflowError` subclass; the CLI's entry point turns
it into one line on stderr and the matching exit code, so scripts can branch on ``$?``
without parsing messages.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import IntEnum

from shellflow.redact import mask_text, mask_url


class ExitCode(IntEnum):
    """Exit codes of every ``flow`` command (documented in the README and man page)."""

    OK = 0
    CALL_FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4
    PERMISSION_DENIED = 5
    UNAVAILABLE = 6
    TIMED_OUT = 7
    INTERRUPTED = 130


class ShellflowError(Exception):
    """Base of all expected failures; ``exit_code`` says how the CLI ends."""

    exit_code: ExitCode = ExitCode.CALL_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CallFailed(ShellflowError):
    exit_code = ExitCode.CALL_FAILED


class UsageError(ShellflowError):
    exit_code = ExitCode.USAGE


class NotFound(ShellflowError):
    """An object named by the user does not exist; suggests close names when there are any."""

    exit_code = ExitCode.NOT_FOUND

    def __init__(self, kind: str, name: str, candidates: Iterable[str] = ()) -> None:
        close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
        message = f"no {kind} named {name!r}"
        if close:
            message += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.suggestions = close


class Conflict(ShellflowError):
    """The object already exists, or others depend on it."""

    exit_code = ExitCode.CONFLICT


class PermissionDenied(ShellflowError):
    exit_code = ExitCode.PERMISSION_DENIED


class ServiceUnavailable(ShellflowError):
    """A database, broker or pub/sub server cannot be reached; the URL is shown masked."""

    exit_code = ExitCode.UNAVAILABLE

    def __init__(self, service: str, url: str, reason: str = "") -> None:
        message = f"{service} unavailable at {mask_url(url)}"
        if reason:  # a driver's reason may quote the URL again
            message += f": {mask_text(reason)}"
        super().__init__(message)
        self.service = service
        self.url = url


class TimedOut(ShellflowError):
    exit_code = ExitCode.TIMED_OUT
