"""The decorator API (spec 12.2.1): a network described by plain classes and methods.

    @processor(name="proc2", gitrepo=REPO, module="pyfi.processors.sample", concurrency=1)
    class ProcessorB(ProcessorBase):
        @socket(name="proc2.do_this", processor="proc2", arguments=True, queue={"name": "q2"})
        def do_this(message): ...

        @plug(name="plug1", target="proc1.do_something", queue={"name": "q1"})
        @socket(name="proc2.do_that", queue={"name": "q2"})
        def do_that(message): ...

``@socket`` and ``@plug`` only mark a method; ``@processor`` creates, when the class is
defined, the processor, then each marked method's socket (its task is the method's name,
its arguments with ``arguments=True`` are the method's parameters), then the plugs, all
through the object API (idempotent, see ``shellflow.client.objects``). A plug's target must
exist by then: define the class holding it first, as the spec says ("prevents cycles").

The code that runs is the processor's module from git, never the method's body: after
decoration each marked method is replaced by its :class:`~shellflow.client.api.Socket`, so
``ProcessorB.do_this("x").get()`` calls the network, and the original function stays
reachable as ``ProcessorB.do_this.function``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from shellflow.client.api import Plug, Processor, Socket
from shellflow.client.objects import ensure_arguments
from shellflow.client.settings import resolve
from shellflow.errors import UsageError
from shellflow.model.checks import check_name

if TYPE_CHECKING:
    from shellflow.config import Settings

_MARK = "__shellflow_socket__"
C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])


class ProcessorBase:
    """Base of classes describing a processor; ``@processor`` fills these in."""

    processor: ClassVar[Processor]
    sockets: ClassVar[dict[str, Socket]]
    plugs: ClassVar[dict[str, Plug]]


@dataclass
class _SocketMark:
    name: str
    processor: str | None
    queue: Any
    task: str | None
    arguments: bool
    fields: dict[str, Any]
    plugs: list[dict[str, Any]] = field(default_factory=list)


def _function(value: Any) -> Callable[..., Any] | None:
    inner = value.__func__ if isinstance(value, staticmethod | classmethod) else value
    return inner if callable(inner) else None


def socket(
    name: str,
    *,
    queue: Any,
    processor: str | None = None,
    task: str | None = None,
    arguments: bool = False,
    **fields: Any,
) -> Callable[[F], F]:
    """Mark a method as a socket of its class's processor (``interval``, ``cron``, ``wait``,
    ``description`` as for ``flow add socket``)."""

    check_name("socket", name)  # refused where it is written, before any class is built

    def mark(function: F) -> F:
        target = _function(function)
        if target is None:
            raise TypeError("@socket decorates a function")
        plugs = getattr(target, _MARK).plugs if hasattr(target, _MARK) else []
        setattr(target, _MARK, _SocketMark(name, processor, queue, task, arguments, fields, plugs))
        return function

    return mark


def plug(
    name: str, *, target: str, queue: Any, argument: str | None = None, **fields: Any
) -> Callable[[F], F]:
    """Mark a socket's method with a plug carrying its result (``type="ERROR"``: its errors)
    to ``target``; put it above ``@socket``."""
    check_name("plug", name)
    if argument is not None:  # a new argument of the target's task: the same rule
        check_name("argument", argument)

    def mark(function: F) -> F:
        inner = _function(function)
        socket_mark: _SocketMark | None = getattr(inner, _MARK, None)
        if socket_mark is None:
            raise UsageError(f"@plug {name!r} must be placed above a @socket decorator")
        socket_mark.plugs.append(
            {"name": name, "target": target, "queue": queue, "argument": argument, **fields}
        )
        return function

    return mark


def _parameters(function: Callable[..., Any]) -> list[tuple[str, int]]:
    params = list(inspect.signature(function).parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    return [(p.name, int(p.kind)) for p in params]


def processor(
    name: str, *, gitrepo: str, module: str, settings: Settings | None = None, **fields: Any
) -> Callable[[C], C]:
    """Create the processor ``name`` and the sockets and plugs its class's methods mark."""
    check_name("processor", name)

    def build(cls: C) -> C:
        resolved = resolve(settings)
        proc = Processor(name, gitrepo=gitrepo, module=module, settings=resolved, **fields)
        marked: list[tuple[str, Callable[..., Any], _SocketMark]] = []
        for attribute, value in list(vars(cls).items()):
            function = _function(value)
            mark = getattr(function, _MARK, None) if function is not None else None
            if function is not None and isinstance(mark, _SocketMark):
                marked.append((attribute, function, mark))
        sockets: dict[str, Socket] = {}
        for attribute, function, mark in marked:
            if mark.processor not in (None, name):
                raise UsageError(
                    f"socket {mark.name!r} names processor {mark.processor!r} but is declared "
                    f"in the class of processor {name!r}"
                )
            sock = Socket(
                mark.name, processor=name, queue=mark.queue,
                task=mark.task or function.__name__, settings=resolved, **mark.fields,
            )  # fmt: skip
            if mark.arguments:
                ensure_arguments(resolved, mark.name, _parameters(function))
            sock.function = function  # type: ignore[attr-defined]
            sockets[mark.name] = sock
            setattr(cls, attribute, sock)
        plugs: dict[str, Plug] = {}
        for _attribute, _, mark in marked:
            for spec in mark.plugs:
                plugs[spec["name"]] = Plug(source=mark.name, settings=resolved, **spec)
        cls.processor = proc  # type: ignore[attr-defined]
        cls.sockets = sockets  # type: ignore[attr-defined]
        cls.plugs = plugs  # type: ignore[attr-defined]
        return cls

    return build
