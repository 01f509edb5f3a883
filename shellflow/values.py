"""What a call's value may be: the one rule, and its limits, for both ends of a call.

A call's arguments and its result travel as JSON (the broker's message, the result
backend) and are stored as JSON text (the call records, on SQLite or PostgreSQL). A value
that one of those cannot carry exactly must be refused where it is made, not half carried:
so the client checks every call's input before sending it (``flow task run`` exits 2
naming the limit) and the worker checks every call's result and printed output before
recording it (the call fails with the reason). Both ends ask this module, so the rule is
one: a value is

- ``null``, ``true``/``false``, text, an array (a list or tuple) or an object (a dict whose
  keys are text or integers, as JSON writes them);
- text is Unicode without NUL (U+0000: PostgreSQL text cannot hold it) and without lone
  surrogates (``"\\ud800"``: not Unicode text, no UTF-8 encoding exists);
- numbers are finite (no NaN or Infinity, nothing beyond the float range such as 1e400)
  and integers fit in 64 bits (:data:`INT_MIN` to :data:`INT_MAX`);
- nested at most :data:`MAX_DEPTH` arrays or objects deep;
- at most :data:`MAX_BYTES` of compact JSON (UTF-8).

Input from the shell must be UTF-8 (:func:`decode_text`): bytes that are not are refused,
never replaced. The walk is iterative, so a value nested far deeper than any limit (one a
function built, or a message another client sent) is refused, never a ``RecursionError``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from shellflow.errors import UsageError

MAX_DEPTH = 64  # arrays and objects nested in one another
MAX_BYTES = 8 << 20  # 8 MiB of compact JSON: a call's input (arguments), or its result
MAX_OUTPUT_BYTES = 8 << 20  # what one call prints, in all
MAX_ERROR_CHARS = 64 << 10  # an error message is cut to this (its end marked)
INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1
LIMITS_DOC = "README.md, 'Values and limits'"

_SCALARS = (str, bool, int, float, type(None))
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class ValueRefused(UsageError):
    """A value a call cannot carry; the message names the limit (exit 2 on the client)."""


def read_stored(text: str | None) -> Any:
    """A value as a call row stores it (JSON text), read back. Text no reader can take
    (written past the recorder, by hand or by an older version: not JSON, or nested past
    the parser) comes back as that text, so what reads it shows it and goes on."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def size_text(count: int) -> str:
    """A byte count as the limits are written (8 MiB)."""
    if count >= 1 << 20 and count % (1 << 20) == 0:
        return f"{count >> 20} MiB"
    return f"{count} bytes"


def text_problem(text: str) -> str | None:
    """Why ``text`` is not storable Unicode text (NUL, a lone surrogate), or None."""
    if "\0" in text:
        return (
            f"text holds NUL (U+0000) at character {text.index(chr(0)) + 1}, which is not allowed"
        )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(text[exc.start])
            return (f"text holds a lone surrogate U+{code:04X} at character {exc.start + 1}"
                    " (not Unicode text)")  # fmt: skip
    return None


def problem(value: Any, max_bytes: int = MAX_BYTES) -> str | None:
    """Why ``value`` cannot be a call's value, or None when it can."""
    return shape_problem(value) or size_problem(value, max_bytes)


def size_problem(value: Any, max_bytes: int = MAX_BYTES) -> str | None:
    """Why ``value`` (of a good shape) is too big, or None."""
    size = len(_compact(value).encode("utf-8"))
    if size > max_bytes:
        return f"{size} bytes of JSON, over the {size_text(max_bytes)} limit"
    return None


def shape_problem(value: Any) -> str | None:
    """Why ``value`` is not a JSON value within the limits (its size aside), or None."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        found = _scalar_problem(item)
        if found is not None:
            return found
        if isinstance(item, _SCALARS):
            continue
        if isinstance(item, (list, tuple)):
            children: Any = item
        elif isinstance(item, dict):
            for key in item:
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    return f"an object key is not text ({type(key).__name__})"
                found = _scalar_problem(key)
                if found is not None:
                    return found
            children = item.values()
        else:
            return f"not a JSON value ({type(item).__name__})"
        if depth >= MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        stack.extend((child, depth + 1) for child in children)
    return None


def _scalar_problem(item: Any) -> str | None:
    if isinstance(item, str):
        return text_problem(item)
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        if not INT_MIN <= item <= INT_MAX:
            return "an integer beyond 64 bits"
    elif isinstance(item, float) and not math.isfinite(item):
        if math.isnan(item):
            return "NaN is not a JSON number"
        return "a number beyond the float range"
    return None


def check(value: Any, what: str, max_bytes: int = MAX_BYTES) -> None:
    """Refuse (:class:`ValueRefused`, naming ``what``) a value a call cannot carry."""
    found = problem(value, max_bytes)
    if found is not None:
        raise ValueRefused(f"{what}: {found}")


def check_call(args: Any, kwargs: Any) -> None:
    """Refuse a call's input the worker could not take: each argument, and the whole."""
    for number, arg in enumerate(args or (), 1):
        found = shape_problem(arg)
        if found is not None:
            raise ValueRefused(f"argument {number}: {found}")
    for key, arg in (kwargs or {}).items():
        found = shape_problem(arg)
        if found is not None:
            raise ValueRefused(f"argument {key}: {found}")
    whole = size_problem([list(args or ()), kwargs or {}])
    if whole is not None:
        raise ValueRefused(f"input: {whole}")


def decode_text(data: bytes, what: str) -> str:
    """``data`` as UTF-8 text; refused (naming the first bad byte) when it is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        raise ValueRefused(
            f"{what}: not UTF-8 text at byte {exc.start + 1} (0x{bad:02x}); shellflow carries"
            " text, not bytes (encode binary data, e.g. with base64)"
        ) from None


def shown_text(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Text made storable for a message meant to be read (an error, a traceback): NUL and
    lone surrogates written as escapes, cut to ``limit`` characters with its end marked."""
    if "\0" in text:
        text = text.replace("\0", "\\x00")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit} more characters)"
    return text
