"""The man pages under man/: current with the click commands, complete, and lint-clean."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAN = ROOT / "man"
PAGES = sorted(MAN.glob("*.1"))


def gendocs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gendocs", ROOT / "tools" / "gendocs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def docs() -> ModuleType:
    return gendocs()


def test_checked_in_man_pages_are_current(docs: ModuleType) -> None:
    stale = docs.stale(files=docs.man_files())
    assert stale == [], (
        f"{len(stale)} man page(s) stale: {', '.join(stale[:8])}"
        f"{' ...' if len(stale) > 8 else ''}; regenerate with: {docs.REGENERATE}"
    )


def test_one_page_per_command(docs: ModuleType) -> None:
    names = set(docs.man_files())
    for page in ("flow", "flow-task", "flow-task-run", "flow-ls-calls", "flow-ls-call",
                 "flow-add-socket", "flow-completion-show", "flow-completion-install"):  # fmt: skip
        assert f"man/{page}.1" in names
    assert "man/flow-ls-sockets.1" not in names  # hidden aliases get no page
    paths = [node.path for node in docs.walk(docs.root())]
    assert len(names) == len(paths)


def test_flow_page_has_every_section(docs: ModuleType) -> None:
    text = docs.man_files()["man/flow.1"]
    sections = re.findall(r"^\.SH (.+)$", text, re.MULTILINE)
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "GLOBAL OPTIONS", "COMMANDS",
                    "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"):  # fmt: skip
        assert section in sections
    for option in ("\\-\\-db", "\\-\\-broker", "\\-\\-backend", "\\-\\-pubsub", "\\-\\-ini",
                   "\\-\\-debug", "\\-\\-config", "\\-\\-version"):  # fmt: skip
        assert f"\\fB{option}\\fR" in text
    for variable in ("SHELLFLOW_HOME", "SHELLFLOW_DB", "SHELLFLOW_BROKER", "SHELLFLOW_BACKEND",
                     "SHELLFLOW_PUBSUB", "SHELLFLOW_INI", "NO_COLOR"):  # fmt: skip
        assert f".TP\n\\fB{variable}\\fR\n" in text
    examples = text.split(".SH EXAMPLES", 1)[1]
    assert "| flow task run" in examples
    assert "tee >(flow task run" in examples


def test_exit_codes_are_the_readmes(docs: ModuleType) -> None:
    from shellflow.errors import ExitCode

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = docs.markdown_table(readme, "Exit codes")
    assert [int(code) for code, _ in table] == [int(c) for c in ExitCode]
    status = docs.man_files()["man/flow.1"].split(".SH EXIT STATUS", 1)[1].split(".SH", 1)[0]
    for code, meaning in table:
        assert f".TP\n.B {code}\n{docs.inline(meaning)}" in status


def test_pages_carry_a_fixed_date_and_the_version(docs: ModuleType) -> None:
    from shellflow import __version__

    for text in docs.man_files().values():
        header = text.split("\n")[1]
        assert header.startswith(".TH ")
        assert f'"{docs.MAN_DATE}" "shellflow {__version__}"' in header


def test_check_mode_names_stale_files_and_the_fix(
    docs: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(MAN, tmp_path / "man")
    shutil.copytree(ROOT / "completions", tmp_path / "completions", symlinks=True)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    files = docs.generated()
    (tmp_path / "man" / "flow-task-run.1").write_text("old\n")
    (tmp_path / "man" / "flow-gone.1").write_text("removed command\n")
    (tmp_path / "completions" / "flow.fish").unlink()
    found = docs.stale(tmp_path, files)
    assert "man/flow-task-run.1 (differs)" in found
    assert "man/flow-gone.1 (no longer generated)" in found
    assert "completions/flow.fish (missing)" in found
    docs.write(tmp_path)
    assert docs.stale(tmp_path, files) == []
    assert not (tmp_path / "man" / "flow-gone.1").exists()
    assert (tmp_path / "man" / "README.md").exists()

    monkey_root = docs.ROOT
    try:
        docs.ROOT = tmp_path
        (tmp_path / "man" / "flow.1").write_text("old\n")
        assert docs.main(["--check"]) == 1
        err = capsys.readouterr().err
        assert "stale: man/flow.1 (differs)" in err
        assert "regenerate with: make docs" in err
    finally:
        docs.ROOT = monkey_root


# -- roff ----------------------------------------------------------------------------------


def test_escaping(docs: ModuleType) -> None:
    assert docs.esc("--db a\\b 'x' ~/é ^") == "\\-\\-db a\\eb \\(aqx\\(aq \\(ti/\\[u00E9] \\(ha"
    assert docs.text_line(".hidden request") == "\\&.hidden request"
    wrapped = docs.text_line(" ".join(["word"] * 40))
    assert all(len(line) <= 80 for line in wrapped.split("\n"))
    assert docs.inline("run `flow db init` first") == "run \\fBflow db init\\fR first"


def test_help_paragraphs_and_verbatim_blocks(docs: ModuleType) -> None:
    help_text = "First line.\n\n    Second\n    paragraph.\n\n    \b\n    keep:\n      indented\n"
    assert docs.body(help_text) == [
        "First line.",
        ".PP",
        "Second paragraph.",
        ".PP",
        ".nf",
        "keep:",
        "  indented",
        ".fi",
    ]


# -- rendering -----------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_groff_renders_without_warnings(page: Path) -> None:
    proc = subprocess.run(
        ["groff", "-ww", "-man", "-Tutf8", "-z", str(page)], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert proc.stderr == ""


@pytest.mark.skipif(shutil.which("mandoc") is None, reason="mandoc is not installed")
def test_mandoc_lint_finds_nothing() -> None:
    proc = subprocess.run(
        ["mandoc", "-T", "lint", "-W", "warning", *map(str, PAGES)], capture_output=True, text=True
    )
    assert proc.stdout + proc.stderr == ""


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_l_renders_flow_1() -> None:
    proc = subprocess.run(
        ["man", "-l", str(MAN / "flow.1")],
        capture_output=True,
        text=True,
        env={**os.environ, "MAN_KEEP_STDERR": "1", "MANWIDTH": "80", "MANPAGER": "cat"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    plain = re.sub(r".\x08", "", proc.stdout)
    for heading in ("SYNOPSIS", "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES"):
        assert f"\n{heading}\n" in plain
    assert "flow --db URL ls queues" in plain  # hyphens stay ASCII, to copy and paste
