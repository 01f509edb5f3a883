"""How shell text becomes a call's input, and a result becomes shell text.

Kept apart from the streaming engine so ``flow task run`` imports only this for one call.
"""

from __future__ import annotations

import json
from typing import Any


def parse_value(text: str) -> Any:
    """A JSON value, or the text itself when it is not JSON (never evaluated)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def format_result(value: Any) -> str:
    """Strings as they are, anything else as compact JSON: the next command's input."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
