"""The call service: rights, cancel refusals, result exit codes, and how calls are sent.

The engine and client functions it acts through are replaced by recording stand-ins, so
these tests check the service's own decisions (and run without a broker); the engine tests
run the same paths against real servers. The last tests drive ``flow task ...`` and the
dashboard's actions and check both reach the same service function.
"""

from __future__ import annotations

from typing import Any

import pytest

from shellflow.config import Settings, load_settings
from shellflow.engine.calls import outcomes, sender
from shellflow.errors import (
    CallFailed,
    Conflict,
    ExitCode,
    NotFound,
    PermissionDenied,
    TimedOut,
    UsageError,
)
from shellflow.model.access import Principal
from shellflow.services import calls

OWNER = Principal("owner", local_owner=True)
GUEST = Principal("guest")
CALL = "5b0e6f0c-3f0a-4c57-9d2e-0c6b1d1f7a10"  # fixed: xdist workers must collect the same ids


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return load_settings({"db": f"sqlite:///{tmp_path / 'model.db'}"})


@pytest.fixture
def engine_cancel(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``engine_cancel.found = Outcome(...)`` chooses what the engine's cancel reports."""

    class Stand:
        found = outcomes.Outcome(CALL, "queued")
        asked: list[tuple[str, bool]] = []

        def __call__(self, _s: Settings, call_id: str, *, terminate: bool = False) -> Any:
            self.asked.append((call_id, terminate))
            return self.found

    stand = Stand()
    monkeypatch.setattr(outcomes, "cancel", stand)
    return stand


# -- cancel --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "terminate", "how", "summary"),
    [
        ("queued", False, "cancelled", f"cancelled call {CALL}"),
        ("revoked", False, "already", f"call {CALL} was already cancelled"),
        ("running", True, "stopping",
         f"stopping call {CALL} (running); its record will say 'revoked'"),
        ("received", True, "stopping",
         f"stopping call {CALL} (received); its record will say 'revoked'"),
    ],
)  # fmt: skip
def test_cancel_accepted(
    settings: Settings, engine_cancel: Any, state: str, terminate: bool, how: str, summary: str
) -> None:
    engine_cancel.found = outcomes.Outcome(CALL, state)
    done = calls.cancel(settings, OWNER, CALL, terminate=terminate)
    assert (done.how, done.state, done.summary) == (how, state, summary)
    assert engine_cancel.asked == [(CALL, terminate)]


@pytest.mark.parametrize(
    ("state", "terminate", "says"),
    [
        ("finished", False, "has already finished; it cannot be cancelled"),
        ("failed", True, "has already failed; it cannot be cancelled"),
        ("running", False, "has already started (running); use --terminate to stop it"),
        ("unknown", True, "has already started (unknown); use --terminate to stop it"),
    ],
)
def test_cancel_refused_is_a_conflict(
    settings: Settings, engine_cancel: Any, state: str, terminate: bool, says: str
) -> None:
    engine_cancel.found = outcomes.Outcome(CALL, state)
    with pytest.raises(Conflict) as caught:
        calls.cancel(settings, OWNER, CALL, terminate=terminate)
    assert caught.value.message == f"call {CALL} {says}"
    assert caught.value.exit_code == ExitCode.CONFLICT


def test_cancel_of_what_is_not_a_call_id_reaches_no_engine(
    settings: Settings, engine_cancel: Any
) -> None:
    with pytest.raises(UsageError, match="'nope' is not a call id"):
        calls.cancel(settings, OWNER, "nope")
    assert engine_cancel.asked == []


def test_cancel_without_the_right_reaches_no_engine(settings: Settings, engine_cancel: Any) -> None:
    with pytest.raises(PermissionDenied, match=f"CANCEL_TASK right on {CALL}"):
        calls.cancel(settings, GUEST, CALL)
    assert engine_cancel.asked == []


# -- result --------------------------------------------------------------------------------------


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``stored["now"]`` is what the engine knows of CALL; ``stored["later"]`` what a wait
    ends with (``stored["waited"]`` records the timeout it was given)."""
    known: dict[str, Any] = {"now": None, "later": None, "waited": []}
    monkeypatch.setattr(outcomes, "outcome", lambda _s, _id: known["now"])

    def wait_for(_s: Settings, _id: str, timeout: float | None = None) -> Any:
        known["waited"].append(timeout)
        return known["later"]

    monkeypatch.setattr(outcomes, "wait_for", wait_for)
    return known


def test_result_of_a_finished_call(settings: Settings, stored: dict[str, Any]) -> None:
    stored["now"] = outcomes.Outcome(CALL, "finished", result={"sum": 3})
    assert calls.result(settings, OWNER, CALL).result == {"sum": 3}
    assert stored["waited"] == []


def test_result_waits_only_when_asked(settings: Settings, stored: dict[str, Any]) -> None:
    stored["now"] = outcomes.Outcome(CALL, "running")
    stored["later"] = outcomes.Outcome(CALL, "finished", result=None)
    with pytest.raises(TimedOut, match=r"not finished yet \(running\); use --wait"):
        calls.result(settings, OWNER, CALL)
    assert calls.result(settings, OWNER, CALL, wait=True, timeout=2.5).state == "finished"
    assert stored["waited"] == [2.5]


@pytest.mark.parametrize(
    ("found", "error", "says", "code"),
    [
        (outcomes.Outcome(CALL, "unknown"), NotFound, f"no call {CALL} is known",
         ExitCode.NOT_FOUND),
        (outcomes.Outcome(CALL, "pending"), TimedOut, "waits in its queue for a worker",
         ExitCode.TIMED_OUT),
        (outcomes.Outcome(CALL, "revoked"), CallFailed, f"call {CALL} was cancelled",
         ExitCode.CALL_FAILED),
        (outcomes.Outcome(CALL, "failed", error="ValueError: no"), CallFailed,
         "ValueError: no", ExitCode.CALL_FAILED),
        (outcomes.Outcome(CALL, "failed"), CallFailed, f"call {CALL} failed",
         ExitCode.CALL_FAILED),
        (outcomes.Outcome(CALL, "dead", error="DeadLettered: delivered 6 times"), CallFailed,
         f"call {CALL} is dead: DeadLettered: delivered 6 times; 'flow task retry {CALL}'",
         ExitCode.CALL_FAILED),
    ],
)  # fmt: skip
def test_result_that_is_not_a_value_raises_with_its_exit_code(
    settings: Settings, stored: dict[str, Any], found: Any, error: type[Exception], says: str,
    code: ExitCode,
) -> None:  # fmt: skip
    stored["now"] = found
    with pytest.raises(error) as caught:
        calls.result(settings, OWNER, CALL)
    assert says in caught.value.message  # type: ignore[attr-defined]  # what flow prints
    assert caught.value.exit_code == code  # type: ignore[attr-defined]


# -- run and send --------------------------------------------------------------------------------


@pytest.fixture
def publishers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Stand-ins for the client's one-shot send and the engine's sender."""
    from shellflow.client import oneshot

    seen: list[tuple[Any, ...]] = []

    def send_async(_s: Settings, socket: str, args: list[Any], kwargs: dict[str, Any],
                   **kw: Any) -> tuple[str, str | None]:  # fmt: skip
        seen.append(("send_async", socket, args, kwargs, kw))
        return "id-1", None

    def send(_s: Settings, socket: str, args: list[Any], kwargs: dict[str, Any],
             **kw: Any) -> sender.Sent:  # fmt: skip
        seen.append(("sender.send", socket, args, kwargs, kw))
        return sender.Sent("id-2", "flow-2", handle="handle")

    def call_once(_s: Settings, socket: str, args: list[Any], kwargs: dict[str, Any],
                  **kw: Any) -> Any:  # fmt: skip
        seen.append(("call_once", socket, args, kwargs, kw))
        return 42

    monkeypatch.setattr(oneshot, "send_async", send_async)
    monkeypatch.setattr(oneshot, "call_once", call_once)
    monkeypatch.setattr(sender, "send", send)
    monkeypatch.setattr(sender, "release", lambda handle: seen.append(("release", handle)))
    return seen


def test_send_records_pending_through_the_one_shot_path(
    settings: Settings, publishers: list[tuple[Any, ...]]
) -> None:
    sent = calls.send(settings, OWNER, "sock", [1], {"k": 2}, flow="f", parent="p")
    assert sent == calls.Sent("id-1", None)
    assert publishers == [("send_async", "sock", [1], {"k": 2}, {"flow": "f", "parent": "p"})]


def test_send_without_a_pending_record_releases_its_result_handle(
    settings: Settings, publishers: list[tuple[Any, ...]]
) -> None:
    sent = calls.send(settings, OWNER, "sock", [1], {}, record_pending=False)
    assert sent == calls.Sent("id-2", None)
    assert [p[0] for p in publishers] == ["sender.send", "release"]
    assert publishers[1] == ("release", "handle")


def test_run_returns_the_result(settings: Settings, publishers: list[tuple[Any, ...]]) -> None:
    assert calls.run(settings, OWNER, "sock", [], {}, timeout=3) == 42
    assert publishers[0][4]["timeout"] == 3


@pytest.mark.parametrize("how", ["run", "send", "send-unrecorded"])
def test_nothing_is_sent_without_run_task(
    settings: Settings, publishers: list[tuple[Any, ...]], how: str
) -> None:
    with pytest.raises(PermissionDenied, match="RUN_TASK right on sock"):
        if how == "run":
            calls.run(settings, GUEST, "sock", [], {})
        else:
            calls.send(settings, GUEST, "sock", [], {}, record_pending=how == "send")
    assert publishers == []


# -- one path: the CLI and the dashboard reach the same service functions ----------------------


def test_flow_task_cancel_and_the_dashboard_call_the_same_cancel(
    settings: Settings, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shellflow.tui.data.actions import cancel

    asked: list[tuple[str, bool]] = []

    def stand_in(_s: Settings, _p: Principal, call_id: str, *, terminate: bool = False) -> Any:
        asked.append((call_id, terminate))
        return calls.Cancelled(call_id, "cancelled", "queued")

    monkeypatch.setattr(calls, "cancel", stand_in)
    assert cli.ok("-d", settings.db, "task", "cancel", CALL, "--terminate").stderr == (
        f"cancelled call {CALL}\n"
    )
    assert cancel(settings, CALL, terminate=True).run() == f"cancelled call {CALL}"
    assert asked == [(CALL, True), (CALL, True)]


def test_flow_task_run_and_the_dashboard_rerun_call_the_same_send(
    settings: Settings, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shellflow.tui.data.actions import rerun

    asked: list[tuple[Any, ...]] = []

    def stand_in(_s: Settings, _p: Principal, socket: str, args: list[Any],
                 kwargs: dict[str, Any], **kw: Any) -> calls.Sent:  # fmt: skip
        asked.append((socket, args, kwargs, kw.get("record_pending", True)))
        return calls.Sent("id-9")

    monkeypatch.setattr(calls, "send", stand_in)
    monkeypatch.setenv("SHELLFLOW_FLOW", "f")  # no shell pipeline to look for
    result = cli.ok("-d", settings.db, "task", "run", "-s", "sock", "--data", "3", "--async")
    assert result.stdout == "id-9\n"
    assert rerun(settings, "sock", {"args": [3], "kwargs": {}}).run() == (
        "sent sock again as call id-9"
    )
    assert asked == [("sock", [3], {}, True), ("sock", [3], {}, False)]


def test_flow_task_retry_and_the_dashboard_call_the_same_retry(
    settings: Settings, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shellflow.tui.data.actions import retry

    asked: list[str] = []

    def stand_in(_s: Settings, _p: Principal, call_id: str) -> calls.Retried:
        asked.append(call_id)
        return calls.Retried("id-7", call_id, "sock")

    monkeypatch.setattr(calls, "retry", stand_in)
    result = cli.ok("-d", settings.db, "task", "retry", CALL, "--async")
    assert result.stdout == "id-7\n" and f"call {CALL} retried as call id-7" in result.stderr
    assert retry(settings, CALL).run() == f"retried call {CALL} as call id-7"
    assert asked == [CALL, CALL]


def test_flow_task_retry_by_state_prints_the_new_ids(
    settings: Settings, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str | None]] = []

    def stand_in(_s: Settings, _p: Principal, state: str, socket: str | None) -> Any:
        asked.append((state, socket))
        return [calls.Retried(f"new-{i}", f"old-{i}", "sock") for i in range(2)]

    monkeypatch.setattr(calls, "retry_many", stand_in)
    result = cli.ok("-d", settings.db, "task", "retry", "--state", "dead", "--socket", "sock")
    assert result.stdout == "new-0\nnew-1\n"
    assert "retried 2 dead call(s) of sock" in result.stderr
    assert asked == [("dead", "sock")]


@pytest.mark.parametrize(
    "words",
    [(), (CALL, "--state", "dead"), (CALL, "--socket", "s"), ("--state", "dead", "--timeout", "1"),
     ("--state", "finished")],
)  # fmt: skip
def test_flow_task_retry_usage_mistakes_are_exit_2(
    settings: Settings, cli: Any, words: tuple[str, ...]
) -> None:
    result = cli("-d", settings.db, "task", "retry", *words)
    assert result.code == ExitCode.USAGE and "Traceback" not in result.stderr
