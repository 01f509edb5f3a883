"""Workflows of socket calls: ``pipeline``, ``parallel`` and ``funnel`` (spec 1.2, 5.6, 12.2.3).

A partial (``socket.p("One")``) is one deferred call; the three functions nest partials and
each other into a tree, which runs only when called. What each node does with its input:

- a **partial** calls its socket with the input *before* its own arguments (Celery's rule for
  signatures): ``do_this.p("x")`` given ``v`` runs ``do_this(v, "x")``; without input it runs
  ``do_this("x")``. ``socket.si(...)`` makes a partial that ignores its input.
- a **pipeline** gives its input to the first step, each step's result to the next, and
  returns the last result.
- a **parallel** gives its input to every member at once and returns their results as a list,
  in the members' order.
- a **funnel** ``funnel(members, final)`` runs the members as a parallel, then gives the list
  to ``final`` (without ``final``, the list is the result).

Calling a workflow starts it: ``wf()`` without input, ``wf(value)`` with one, and
``wf(step)`` with another partial or workflow sends ``wf``'s result on to it, as the spec's
``_funnel(do_something("Four"))`` does ("gather the result from the funnel and send it to
do_something"; Celery's ``chord(...)(body)`` would instead replace a final step already
given, which loses ``final`` silently). The call returns a
:class:`~shellflow.client.results.FlowResult` at once.

Why the client drives the workflow (and Celery's canvas does not): every call of a run must
be recorded with the run's flow id and its parent call, which shellflow's worker reads from
its own message headers (``FLOW_HEADER``, ``PARENT_HEADER``); Celery's tracer publishes a
chain's next message with that signature's own options and Celery's ``parent_id``/``root_id``
only, so the worker would record each continuation as a flow run of its own. A socket of
another processor is reached through a route read from the model database (its exchange
type, its queue's arguments), which a worker's Celery app does not know when it sends that
message; and a chord needs a result backend with chord support plus a ``chord_unlock`` task
nobody serves. So each step is an ordinary,
durable, recorded call made with ``shellflow.engine.calls.sender.send``; only the sequencing lives
in the calling process, which must stay up until ``get()`` returns.

Provenance: all calls of one run share one flow run; a call's parent is the call whose
result it received, and the first calls of a run have no parent (or the ``parent=`` given to
:meth:`Step.start`). A call given the list of a parallel or funnel received the results of
every member's last call: those are its sources, and the last of them its parent. So
``flow ls call --id ID --graph`` draws the nesting, with an edge from each member.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shellflow.client.results import FlowResult
from shellflow.client.settings import resolve

if TYPE_CHECKING:
    from shellflow.config import Settings
    from shellflow.engine.calls.sender import Sent

NO_INPUT: tuple[Any, ...] = ()
# Where a step's input came from: one call, the last calls of a parallel's members, or none.
Parents = str | tuple[str, ...] | None


@dataclass
class _Run:
    """What the steps of one run share."""

    settings: Settings
    flow: str
    result: FlowResult | None = None

    def sent(self, call_id: str) -> None:
        if self.result is not None:
            self.result.sent(call_id)


class Step:
    """Something a workflow can run: one partial call, or a workflow of steps."""

    settings: Settings | None = None

    def _run(self, run: _Run, given: tuple[Any, ...], parent: Parents) -> tuple[Any, Parents]:
        """Run with ``given`` (empty, or the one input value); return (result, last call id)."""
        raise NotImplementedError

    def partials(self) -> Iterator[Partial]:
        """Every partial of the tree, in order (to check the sockets before starting)."""
        raise NotImplementedError

    def start(
        self,
        *given: Any,
        flow: str | None = None,
        parent: str | None = None,
        settings: Settings | None = None,
    ) -> FlowResult:
        """Start a run in a thread; ``flow`` joins an existing flow run (else the one named
        by ``SHELLFLOW_FLOW``, as for ``flow task run``, else a new one).

        Every socket named in the tree is looked up first, so a misspelt name raises
        :class:`~shellflow.errors.NotFound` here rather than halfway through the run, and
        a socket the user may not call raises ``PermissionDenied`` (``RUN_TASK``).
        """
        from shellflow.client.objects import authorized
        from shellflow.engine.calls.sender import route_for

        settings = settings or self.settings or resolve(None)
        for partial in self.partials():
            own = partial.settings or settings
            route_for(own, partial.socket)
            authorized("RUN_TASK", partial.socket, own)  # refused before any step is sent
        flow = flow or os.environ.get("SHELLFLOW_FLOW") or str(uuid.uuid4())
        run = _Run(settings, flow)

        def main(result: FlowResult) -> Any:
            run.result = result
            return self._run(run, tuple(given), parent)[0]

        return FlowResult(flow, main)

    def __call__(self, *given: Any) -> FlowResult:
        if len(given) == 1 and isinstance(given[0], Step):
            return Pipeline([self, given[0]]).start()
        if len(given) > 1:
            raise TypeError("a workflow takes one input value (or one step to send its result to)")
        return self.start(*given)


class Partial(Step):
    """One deferred call of a socket: ``socket.p(*args, **kwargs)``."""

    def __init__(
        self,
        socket: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        immutable: bool = False,
        settings: Settings | None = None,
    ) -> None:
        self.socket = socket
        self.args = list(args)
        self.kwargs = dict(kwargs or {})
        self.immutable = immutable
        self.settings = settings

    def partials(self) -> Iterator[Partial]:
        yield self

    def _send(self, run: _Run, given: tuple[Any, ...], parent: Parents) -> Sent:
        from shellflow.engine.calls.sender import send

        args = self.args if self.immutable else [*given, *self.args]
        sent = send(
            self.settings or run.settings, self.socket, args, self.kwargs,
            flow=run.flow, parent=parent,
        )  # fmt: skip
        run.sent(sent.call_id)
        return sent

    def _run(self, run: _Run, given: tuple[Any, ...], parent: Parents) -> tuple[Any, Parents]:
        from shellflow.engine.calls.sender import wait

        sent = self._send(run, given, parent)
        return wait(sent), sent.call_id

    def __repr__(self) -> str:
        words = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        mark = ".si" if self.immutable else ".p"
        return f"{self.socket}{mark}({', '.join(words)})"


def _flat(parents: Iterable[Parents]) -> tuple[str, ...]:
    """The calls that made a parallel's list (a nested parallel's members included)."""
    found: list[str] = []
    for parent in parents:
        if isinstance(parent, tuple):
            found += parent
        elif parent:
            found.append(parent)
    return tuple(found)


def _steps(steps: Iterable[Any], what: str) -> list[Step]:
    found = list(steps)
    if not found:
        from shellflow.errors import UsageError

        raise UsageError(f"{what} needs at least one step")
    for step in found:
        if not isinstance(step, Step):
            raise TypeError(
                f"{what} takes partials (socket.p(...)) and workflows, not {type(step).__name__}"
            )
    return found


class Pipeline(Step):
    """Steps one after the other, each given the previous step's result."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps = _steps(steps, "pipeline")

    def partials(self) -> Iterator[Partial]:
        for step in self.steps:
            yield from step.partials()

    def _run(self, run: _Run, given: tuple[Any, ...], parent: Parents) -> tuple[Any, Parents]:
        value: Any = None
        for step in self.steps:
            value, parent = step._run(run, given, parent)
            given = (value,)
        assert parent is not None  # every step sent at least one call
        return value, parent

    def __repr__(self) -> str:
        return f"pipeline({self.steps!r})"


class Parallel(Step):
    """Members at the same time, each given the same input; their results as a list."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps = _steps(steps, "parallel")

    def partials(self) -> Iterator[Partial]:
        for step in self.steps:
            yield from step.partials()

    def _run(self, run: _Run, given: tuple[Any, ...], parent: Parents) -> tuple[Any, Parents]:
        from shellflow.engine.calls.sender import wait

        outcomes: list[tuple[Any, Parents] | BaseException | None] = [None] * len(self.steps)

        def member(index: int) -> None:
            try:
                outcomes[index] = self.steps[index]._run(run, given, parent)
            except BaseException as exc:  # reported below, in the members' order
                outcomes[index] = exc

        # Partials are sent at once from this thread and waited for here; each workflow
        # member gets a thread of its own (it may be a long pipeline, and a thread waiting on
        # a call costs little). Each thread sends and waits for its own calls, so each uses
        # its own result-backend connection (Celery keeps one per thread).
        sent: dict[int, Sent] = {}
        threads: list[threading.Thread] = []
        for index, step in enumerate(self.steps):
            if isinstance(step, Partial):
                try:
                    sent[index] = step._send(run, given, parent)
                except BaseException as exc:
                    outcomes[index] = exc
                    break
            else:
                threads.append(threading.Thread(target=member, args=(index,), daemon=True))
                threads[-1].start()
        for index, call in sent.items():
            try:
                outcomes[index] = (wait(call), call.call_id)
            except BaseException as exc:
                outcomes[index] = exc
        for thread in threads:
            thread.join()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        done = [o for o in outcomes if isinstance(o, tuple)]
        return [value for value, _ in done], _flat(last for _, last in done)

    def __repr__(self) -> str:
        return f"parallel({self.steps!r})"


class Funnel(Step):
    """Members in parallel, their list of results given to one final step."""

    def __init__(self, steps: Iterable[Step], final: Step | None = None) -> None:
        self.members = Parallel(_steps(steps, "funnel"))
        if final is not None and not isinstance(final, Step):
            raise TypeError(f"a funnel's final step is a partial or workflow, not {final!r}")
        self.final = final

    def partials(self) -> Iterator[Partial]:
        yield from self.members.partials()
        if self.final is not None:
            yield from self.final.partials()

    def _run(self, run: _Run, given: tuple[Any, ...], parent: Parents) -> tuple[Any, Parents]:
        values, last = self.members._run(run, given, parent)
        if self.final is None:
            return values, last
        return self.final._run(run, (values,), last)

    def __repr__(self) -> str:
        return f"funnel({self.members.steps!r}, {self.final!r})"


def pipeline(steps: Iterable[Step]) -> Pipeline:
    """Run ``steps`` in order, passing each result to the next step (spec listing 1)."""
    return Pipeline(steps)


def parallel(steps: Iterable[Step]) -> Parallel:
    """Run ``steps`` at the same time; the result is the list of their results."""
    return Parallel(steps)


def funnel(steps: Iterable[Step], final: Step | None = None) -> Funnel:
    """Run ``steps`` in parallel and pass the list of their results to ``final``."""
    return Funnel(steps, final)
