"""shellflow.printable: every control character of stored text written out, nothing else."""

from __future__ import annotations

import unicodedata

from shellflow.printable import printable


def test_escapes_each_kind_of_control_character() -> None:
    assert printable("a\x1b]52;c;cHduZWQ=\x07b") == "a\\x1b]52;c;cHduZWQ=\\x07b"  # OSC 52
    assert printable("\x1b[2J\x1bc") == "\\x1b[2J\\x1bc"  # clear screen, reset
    assert printable("\x9b31m\x9d0;t\x9c") == "\\x9b31m\\x9d0;t\\x9c"  # C1 CSI, OSC, ST
    assert printable("\x00\x7f\x08") == "\\x00\\x7f\\x08"
    assert printable("one\ttwo\nthree\rfour") == "one\\ttwo\\nthree\\rfour"
    assert printable("lone \ud800") == "lone \\ud800"


def test_multiline_keeps_newlines_and_tabs_only() -> None:
    assert printable("a\tb\nc\r\x1b[0m", multiline=True) == "a\tb\nc\\r\\x1b[0m"


def test_leaves_printable_text_alone() -> None:
    text = "café ☕ 日本 [bold]\\x1b[/] a\u00a0b"  # no-break space is printable in a terminal
    assert printable(text) == text


def test_every_code_point_is_shown_once_and_no_control_survives() -> None:
    """All of Unicode, one character at a time: exhaustive where a fuzzer would sample."""
    for code in range(0x110000):
        char = chr(code)
        kind = unicodedata.category(char)
        shown, kept = printable(char), printable(char, multiline=True)
        if kind in ("Cc", "Cs"):
            assert shown.startswith("\\") and shown.isascii() and shown.isprintable(), hex(code)
            assert kept == (char if char in "\t\n" else shown), hex(code)
        else:
            assert shown == kept == char, hex(code)


def test_a_streamed_call_failure_is_one_line_with_its_controls_written_out() -> None:
    """``flow task run --stream``: a call's error (the function's own text) on stderr."""
    import io
    from types import SimpleNamespace

    from shellflow.client.stream_input import Call
    from shellflow.client.stream_output import OrderedOutput

    output = OrderedOutput()
    output.options = SimpleNamespace(progress=False)  # type: ignore[assignment]
    output.err = io.StringIO()
    output._write(Call(3, "c-1", None, 0.0, "failed", "Boom\x1b]52;c;eA==\x07\nline 2\x9b"))
    assert output.err.getvalue() == (
        "flow: record 3 (call c-1): Boom\\x1b]52;c;eA==\\x07\\nline 2\\x9b\n"
    )
