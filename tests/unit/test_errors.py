"""The exit-code table: one IntEnum, the same table in the README, and errors mapped onto it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shellflow import errors
from shellflow.errors import ExitCode, NotFound, ServiceUnavailable

README = Path(__file__).resolve().parents[2] / "README.md"

# What each member means, in the words of the issue; the README must say the same.
MEANINGS = {
    ExitCode.OK: "ok",
    ExitCode.CALL_FAILED: "a call failed",
    ExitCode.USAGE: "usage",
    ExitCode.NOT_FOUND: "not found",
    ExitCode.CONFLICT: "already exists",
    ExitCode.PERMISSION_DENIED: "permission denied",
    ExitCode.UNAVAILABLE: "a service is unavailable",
    ExitCode.TIMED_OUT: "timed out",
    ExitCode.INTERRUPTED: "interrupted",
}


def readme_exit_codes() -> dict[int, str]:
    """The rows of the README's "Exit codes" table, code -> meaning."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*(.+?)\s*\|\s*$", section, flags=re.MULTILINE)
    assert rows, "the README has no exit-code table"
    codes = [int(code) for code, _ in rows]
    assert len(codes) == len(set(codes)), "a code appears twice in the README"
    return {int(code): meaning for code, meaning in rows}


def test_exit_codes_are_exactly_the_documented_ones() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5, 6, 7, 130]
    assert set(MEANINGS) == set(ExitCode)


def test_readme_table_matches_the_enum() -> None:
    table = readme_exit_codes()
    assert sorted(table) == sorted(int(c) for c in ExitCode)
    for code, meaning in MEANINGS.items():
        assert table[code].lower().startswith(meaning), (code, table[code])


def test_every_error_class_maps_to_a_documented_code() -> None:
    classes = [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, errors.ShellflowError)
    ]
    assert len(classes) >= 8
    for cls in classes:
        assert isinstance(cls.exit_code, ExitCode), cls
    assert errors.CallFailed.exit_code == 1
    assert errors.UsageError.exit_code == 2
    assert NotFound.exit_code == 3
    assert errors.Conflict.exit_code == 4
    assert errors.PermissionDenied.exit_code == 5
    assert ServiceUnavailable.exit_code == 6
    assert errors.TimedOut.exit_code == 7


def test_not_found_suggests_close_names() -> None:
    error = NotFound("queue", "pyfi.queu1", ["pyfi.queue1", "pyfi.queue2", "other"])
    assert error.exit_code == ExitCode.NOT_FOUND
    assert set(error.suggestions) == {"pyfi.queue1", "pyfi.queue2"}
    assert error.message.startswith("no queue named 'pyfi.queu1'; did you mean ")
    assert "'pyfi.queue1'" in error.message
    assert "\n" not in error.message


@pytest.mark.parametrize("candidates", [[], ["completely", "different"]])
def test_not_found_without_close_names_says_only_what_is_missing(
    candidates: list[str],
) -> None:
    error = NotFound("processor", "proc1", candidates)
    assert error.message == "no processor named 'proc1'"
    assert error.suggestions == []


def test_not_found_suggests_at_most_three() -> None:
    error = NotFound("socket", "s1", [f"s{i}" for i in range(10)])
    assert 1 <= len(error.suggestions) <= 3


def test_service_unavailable_masks_the_password() -> None:
    error = ServiceUnavailable("database", "postgresql://u:secret@h:5432/db", "refused")
    assert error.message == "database unavailable at postgresql://u:***@h:5432/db: refused"
    assert error.exit_code == ExitCode.UNAVAILABLE
