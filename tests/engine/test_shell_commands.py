"""Sockets as shell commands: `flow shell install DIR` and `flow shell aliases`."""

from __future__ import annotations

import os
from pathlib import Path

from tests.engine.conftest import Deployment
from tests.engine.test_pipelines import _bash


def test_installed_commands_compose_like_listing_3(live: tuple[Deployment, dict[str, str]]) -> None:
    d, n = live
    folder = Path(d.env["SHELLFLOW_HOME"]) / "bin"
    d.ok("shell", "install", str(folder))
    assert os.access(folder / n["do_something"], os.X_OK)
    script = (
        f'PATH="{folder}:$PATH"; echo "HI THERE!" | {n["do_something"]}'
        f' | echo "$(cat -) add some text" | {n["do_this"]}'
    )
    done = _bash(d, script)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Do this: TEXT:HI THERE! add some text\n"
    # A deleted socket's command goes; files shellflow did not write stay.
    (folder / "mine").write_text("#!/bin/sh\necho mine\n")
    d.ok("delete", "socket", "-n", n["add_two"])
    d.ok("shell", "install", str(folder))
    assert not (folder / n["add_two"]).exists()
    assert (folder / "mine").exists()


def test_aliases_evaluate_in_bash(live: tuple[Deployment, dict[str, str]]) -> None:
    d, n = live
    lines = d.ok("shell", "aliases").stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("alias ") for line in lines)
    script = (
        "shopt -s expand_aliases\n"
        'eval "$($FLOW shell aliases --absolute)"\n'
        f"echo hi | {n['do_something']} | {n['do_this']}\n"
    )
    done = _bash(d, script)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Do this: TEXT:hi\n"
