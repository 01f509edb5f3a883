"""The Python API (spec 5.5.2-5.5.3, 12.2): sockets as functions, and the object API.

``Socket(name=...)`` (also spelt ``Function``) stands for an existing socket:

    do_something = Socket(name="pyfi.processors.sample.do_something")
    do_something("text").get()          # one call, recorded like 'flow task run'
    step = do_something.p("text")        # a partial, for pipeline/parallel/funnel

Given more than a name (``processor``, ``queue``, ``task``, ...), ``Socket``,
``Processor`` and ``Plug`` create the object in the model database first, unless it exists
with those fields already (see ``shellflow.client.objects``). Nothing is read or written
until it is needed: a module may define its functions before ``shellflow.configure()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shellflow.client.canvas import Partial, funnel, parallel, pipeline
from shellflow.client.objects import authorized, ensure, ensure_queue, row
from shellflow.client.results import CallResult
from shellflow.client.settings import configure, resolve

if TYPE_CHECKING:
    from shellflow.config import Settings

__all__ = [
    "Function", "Plug", "Processor", "Socket", "configure", "funnel", "parallel", "pipeline",
]  # fmt: skip


def _name_of(value: Any, what: str) -> str:
    """An object given as itself or by name."""
    if isinstance(value, str):
        return value
    name = getattr(value, "name", None)
    if isinstance(name, str):
        return name
    raise TypeError(f"{what} is a name or a {what} object, not {value!r}")


class Processor:
    """A processor (git repository + module): ``Processor(name=..., gitrepo=..., module=...)``.

    Other fields as for ``flow add processor``: ``branch``, ``commit``, ``tag``,
    ``hostname``, ``concurrency``, ``modulepath``, ``requirements``, ``beat``, ... The spec's
    ``user=`` is accepted and ignored: objects belong to the user running the script.
    """

    def __init__(
        self, name: str, *, settings: Settings | None = None, user: Any = None, **fields: Any
    ) -> None:
        self.name = name
        self.settings = settings
        self.created = bool(fields) and ensure(
            resolve(settings), "processor", {"name": name, **fields}
        )

    @property
    def row(self) -> dict[str, Any]:
        """The processor as ``flow ls processor -n NAME --json`` shows it."""
        return row(resolve(self.settings), "processor", self.name)

    def __repr__(self) -> str:
        return f"Processor(name={self.name!r})"


class Socket:
    """A socket, callable like the function it serves (spec 5.5.2)."""

    def __init__(
        self,
        name: str,
        *,
        processor: Processor | str | None = None,
        queue: Any = None,
        task: str | None = None,
        settings: Settings | None = None,
        user: Any = None,
        **fields: Any,
    ) -> None:
        self.name = name
        self.settings = settings
        self.created = False
        fields.pop("beat", None)  # the spec's socket-level flag: schedules follow the processor
        if processor is not None or queue is not None or task is not None or fields:
            resolved = resolve(settings)
            values: dict[str, Any] = {"name": name, "task": task, **fields}
            if processor is not None:
                values["processor"] = _name_of(processor, "processor")
            if queue is not None:
                values["queue"] = ensure_queue(resolved, queue)
            self.created = ensure(resolved, "socket", values)

    # -- calling -----------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> CallResult:
        """Send one call now (its own flow run, or ``SHELLFLOW_FLOW``'s); returns its handle."""
        return self.send(args, kwargs)

    def send(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        flow: str | None = None,
        parent: str | None = None,
    ) -> CallResult:
        """Send one call with explicit provenance: ``flow`` joins a flow run, ``parent`` names
        the call it continues."""
        import os

        from shellflow.engine.calls.sender import send

        settings = resolve(self.settings)
        authorized("RUN_TASK", self.name, settings)  # as 'flow task run' asks, before sending
        flow = flow or os.environ.get("SHELLFLOW_FLOW") or None
        sent = send(
            settings, self.name, list(args), dict(kwargs or {}),
            flow=flow, parent=parent,
        )  # fmt: skip
        return CallResult(sent, self.name)

    def delay(self, *args: Any, **kwargs: Any) -> CallResult:
        """Celery's spelling of :meth:`__call__`."""
        return self.send(args, kwargs)

    def p(self, *args: Any, **kwargs: Any) -> Partial:
        """A partial: this socket with some arguments, called when its workflow reaches it
        (with the previous step's result before these arguments)."""
        return Partial(self.name, args, kwargs, settings=self.settings)

    partial = p
    s = p

    def si(self, *args: Any, **kwargs: Any) -> Partial:
        """A partial that ignores the previous step's result (Celery's immutable signature)."""
        return Partial(self.name, args, kwargs, immutable=True, settings=self.settings)

    # -- the object ----------------------------------------------------------------------
    @property
    def row(self) -> dict[str, Any]:
        """The socket as ``flow ls socket -n NAME --json`` shows it."""
        return row(resolve(self.settings), "socket", self.name)

    socket = row  # the spec's spelling: print(json.dumps(do_something.socket))

    def __repr__(self) -> str:
        return f"Socket(name={self.name!r})"


Function = Socket  # spec 5.5.2: "rename Socket to Function as a linguistic preference"


class Plug:
    """An edge from ``source``'s result (or error, ``type="ERROR"``) to ``target``.

    ``Plug(name=..., source=..., target=..., queue=..., argument=None)``; source and target
    are sockets or their names. The spec's ``processor=`` is accepted: a plug always belongs
    to its source's processor, so a different one is a usage error.
    """

    def __init__(
        self,
        name: str,
        *,
        source: Socket | str | None = None,
        target: Socket | str | None = None,
        queue: Any = None,
        processor: Processor | str | None = None,
        settings: Settings | None = None,
        user: Any = None,
        **fields: Any,
    ) -> None:
        self.name = name
        self.settings = settings
        self.created = False
        if source is None and target is None and queue is None and not fields:
            return  # a reference to an existing plug
        resolved = resolve(settings)
        values: dict[str, Any] = {"name": name, **fields}
        if source is not None:
            values["source"] = _name_of(source, "socket")
        if target is not None:
            values["target"] = _name_of(target, "socket")
        if queue is not None:
            values["queue"] = ensure_queue(resolved, queue)
        if processor is not None and "source" in values:
            self._check_processor(resolved, values["source"], _name_of(processor, "processor"))
        self.created = ensure(resolved, "plug", values)

    @staticmethod
    def _check_processor(settings: Settings, source: str, processor: str) -> None:
        from shellflow.errors import UsageError

        owner = row(settings, "socket", source).get("processor")
        if owner is not None and owner != processor:
            raise UsageError(
                f"a plug belongs to its source's processor: {source!r} is on {owner!r}, "
                f"not {processor!r}"
            )

    @property
    def row(self) -> dict[str, Any]:
        return row(resolve(self.settings), "plug", self.name)

    def __repr__(self) -> str:
        return f"Plug(name={self.name!r})"
