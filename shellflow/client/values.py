"""How shell text becomes a call's input, and a result becomes shell text.

Kept apart from the streaming engine so ``flow task run`` imports only this for one call.
Input is checked here against the one value rule (``shellflow.values``): bytes that are not
UTF-8, and values no call can carry, are refused with the limit named, never replaced.
"""

from __future__ import annotations

import json
from typing import Any

from shellflow.values import MAX_DEPTH, ValueRefused, check, decode_text

__all__ = ["ValueRefused", "format_result", "input_value", "parse_value"]


def _not_json(word: str) -> Any:
    raise ValueError(f"{word} is not JSON")  # NaN, Infinity: JSON has no such numbers


def parse_value(text: str) -> Any:
    """A JSON value, or the text itself when it is not JSON (never evaluated).

    Strict JSON: ``NaN`` and ``Infinity`` are text. (JSON nested too deep for the parser is
    text here; :func:`input_value` refuses it.)
    """
    try:
        return _parsed(text)
    except ValueRefused:
        return text


def _parsed(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise ValueRefused(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        return text


def input_value(data: bytes | str, what: str) -> Any:
    """One call's input from the shell (``--data``, stdin, a stream's record): UTF-8 text,
    read as :func:`parse_value` does, and checked; :class:`ValueRefused` naming ``what``."""
    if isinstance(data, str):  # argv: bytes that are not UTF-8 come as surrogate escapes
        data = _argv_bytes(data)
    text = decode_text(data, what)
    try:
        value = _parsed(text)
    except ValueRefused as exc:
        raise ValueRefused(f"{what}: {exc}") from None
    check(value, what)
    return value


def _argv_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no byte stands for: not UTF-8 either
        return text.encode("utf-8", "surrogatepass")


def format_result(value: Any) -> str:
    """Strings as they are, anything else as compact JSON: the next command's input."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
