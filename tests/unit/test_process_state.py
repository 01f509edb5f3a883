"""The runtime object: per-process state in one place, reset in a forked child.

Each test forks: the child checks what it was left and exits 0 when it holds.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shellflow import process_state
from shellflow.config import Settings, load_settings
from shellflow.engine.calls import sender
from tests.unit.test_forks import in_child

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork")


def _settings(home: Path) -> Settings:
    """Settings of a network of its own (nothing is started: the tests stub what they use)."""
    flags = {"home": str(home), "db": f"sqlite:///{home}/model.db"}
    return load_settings(flags=flags, environ={})


class Part:
    def __init__(self) -> None:
        self.forked = 0

    def after_fork(self) -> None:
        self.forked += 1


def test_every_part_resets_in_the_child_and_not_in_the_parent() -> None:
    part = process_state.own("tests.unit.test_process_state", Part())
    try:
        assert process_state.STATE.parts()["tests.unit.test_process_state"] is part
        assert in_child(lambda: part.forked == 1) == 0
        assert part.forked == 0
    finally:
        process_state.STATE._parts.pop("tests.unit.test_process_state", None)


def test_the_modules_state_is_all_in_the_runtime_object() -> None:
    import shellflow.client.settings
    import shellflow.engine.dataflow.plugs
    import shellflow.engine.records.recorder
    import shellflow.model.db  # noqa: F401

    owners = set(process_state.STATE.parts())
    assert {
        "shellflow.client.settings",
        "shellflow.engine.calls.sender",
        "shellflow.engine.dataflow.plugs",
        "shellflow.engine.records.recorder",
        "shellflow.model.db",
    } <= owners


def test_the_route_cache_is_not_shared_across_a_fork(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reads: list[str] = []

    @contextlib.contextmanager
    def reader(url: str) -> Iterator[None]:
        yield None

    def socket_route(conn: Any, socket: str) -> str:
        reads.append(socket)
        return f"route of {socket}"

    monkeypatch.setattr(sender, "reader", reader)
    monkeypatch.setattr(sender, "socket_route", socket_route)
    settings = _settings(tmp_path)
    sender.forget_routes()
    try:
        assert sender.route_for(settings, "s") == "route of s"
        assert reads == ["s"]

        def child_reads_again() -> bool:
            cached = (settings.db, "s") in sender._cache.routes
            sender.route_for(settings, "s")
            return not cached and reads == ["s", "s"]

        assert in_child(child_reads_again) == 0
        sender.route_for(settings, "s")  # the parent's cache is whole
        assert reads == ["s"]
    finally:
        sender.forget_routes()


def test_a_child_builds_its_own_celery_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made: list[object] = []

    def make_app(settings: Settings) -> object:
        made.append(object())
        return made[-1]

    monkeypatch.setattr(sender, "make_app", make_app)
    settings = _settings(tmp_path)
    first = sender.app_for(settings)
    try:
        assert sender.app_for(settings) is first
        assert in_child(lambda: sender.app_for(settings) is not first and len(made) == 2) == 0
        assert sender.app_for(settings) is first and len(made) == 1
    finally:
        sender._cache.apps.pop((settings.broker, settings.backend, settings.db), None)


def test_made_once_makes_each_value_once_across_threads() -> None:
    import threading
    import time

    from shellflow.process_state import made_once

    table: dict[str, object] = {}
    lock = threading.Lock()
    made: list[str] = []

    def make() -> object:
        made.append("x")
        time.sleep(0.01)  # long enough for every thread to miss the first lookup
        return object()

    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(made_once(table, lock, "k", make)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == ["x"]
    assert len({id(value) for value in got}) == 1 and got[0] is table["k"]
