"""``flow task run|result|cancel|retry``: call a socket from the shell, and follow its calls.

Input is a JSON value (text that is not JSON is passed as a string, never evaluated) from
``--data`` or from stdin, given to the function as its first argument; ``key=value`` and
``key:=json`` words become keyword arguments. The result goes to stdout: strings as they
are, anything else as compact JSON, so one socket's output is the next one's input.
``--stream`` makes each input record one call (``shellflow.client.stream``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from shellflow.client.values import ValueRefused, format_result, input_value, parse_value
from shellflow.commands import later_completer
from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import stdin_is_tty
from shellflow.commands.params import FLOW_ID, SECONDS, TEXT, whole
from shellflow.values import MAX_BYTES, MAX_DEPTH, check_call, size_text

__all__ = ["format_result", "parse_keywords", "parse_value", "task"]


def parse_keywords(words: tuple[str, ...]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for word in words:
        if ":=" in word and word.index(":=") < word.find("=") + 1:
            key, raw = word.split(":=", 1)
            shown = repr(word) if len(word) <= 60 else repr(word[:60]) + "..."
            try:
                kwargs[key] = json.loads(raw)
            except RecursionError:
                raise click.BadParameter(
                    f"{shown}: nested deeper than {MAX_DEPTH} levels"
                ) from None
            except ValueError as exc:
                raise click.BadParameter(f"{shown}: not JSON after ':='") from exc
        elif "=" in word:
            key, raw = word.split("=", 1)
            kwargs[key] = raw
        else:
            raise click.BadParameter(f"{word!r}: expected key=value or key:=json")
        if not key.isidentifier():
            raise click.BadParameter(f"{key!r} is not an argument name")
    return kwargs


@click.group()
def task() -> None:
    """Run and manage calls of sockets."""


@task.command("run")
@click.option(
    "-s",
    "--socket",
    required=True,
    type=TEXT,
    help="Socket to call",
    shell_complete=later_completer("names_of", "socket"),
)
@click.option("--data", help="Input: a JSON value, or text passed as a string")
@click.option("--async", "is_async", is_flag=True, help="Print the call id and return")
@click.option("--timeout", type=SECONDS, help="Seconds to wait for a result")
@click.option("--flow", "flow_id", type=FLOW_ID, help="Join this flow run",
              shell_complete=later_completer("flow_ids"))  # fmt: skip
@click.option("--stream", is_flag=True, help="Each input line is one call")
@click.option("-0", "--null", "nul", is_flag=True, help="--stream: records end with NUL")
@click.option("--json", "json_lines", is_flag=True, help="--stream: records are NDJSON")
@click.option("-j", "--jobs", type=whole(1, 10_000), help="--stream: calls at once")
@click.option("--unordered", is_flag=True, help="--stream: write results as they come")
@click.option("--halt", default="never", metavar="WHEN",
              help="--stream: never, soon,fail=N or now,fail=N")  # fmt: skip
@click.option("--reconnect-timeout", type=SECONDS,
              help="--stream: seconds to wait for a lost service (default 60)")  # fmt: skip
@click.argument("keywords", nargs=-1)
@pass_app
def task_run(
    app: AppContext, socket: str, data: str | None, is_async: bool, timeout: float | None,
    flow_id: str | None, stream: bool, nul: bool, json_lines: bool, jobs: int | None,
    unordered: bool, halt: str, reconnect_timeout: float | None, keywords: tuple[str, ...],
) -> None:  # fmt: skip
    """Call SOCKET with input from --data or stdin, and print its result.

    \b
    The calls of one shell pipeline share one flow run (see 'flow ls call --id ID -g'):
    flow follows the pipes between the commands; --flow ID or SHELLFLOW_FLOW override it.

    \b
    --stream: each input line is one call's input (read as --data is; -0 for NUL-ended
    records, --json for NDJSON), up to -j calls at once (default: 4 per CPU of the
    socket's workers), results in input order (--unordered: as they come), a summary line on
    stderr. --halt soon,fail=N starts no call after N failures; now,fail=N also cancels
    those not started. --timeout applies to each call. A reader that goes away
    ('| head -1') ends the stream with exit 0 and cancels the calls not yet started.
    Each call is recorded pending once sent. A lost broker or result backend is waited
    for (one line on stderr) up to --reconnect-timeout; then exit 6, naming the calls left
    ('flow ls calls --flow ID -u').
    """
    from shellflow.services import calls

    kwargs = parse_keywords(keywords)
    check_call([], kwargs)  # key:=1e400 is refused before any input is read
    stream_only = [name for name, given in (("-0", nul), ("--json", json_lines),
                   ("-j", jobs), ("--unordered", unordered), ("--halt", halt != "never"),
                   ("--reconnect-timeout", reconnect_timeout is not None))
                   if given]  # fmt: skip
    if stream_only and not stream:
        raise click.UsageError(f"{', '.join(stream_only)} only go with --stream")
    if stream and (is_async or data is not None):
        raise click.UsageError("--stream reads its input from stdin; no --data or --async")
    if flow_id is None and os.environ.get("SHELLFLOW_FLOW"):
        flow_id = _flow_from_environment(os.environ["SHELLFLOW_FLOW"])
    place, registry = _pipeline(app) if flow_id is None else (None, None)
    if place is not None and registry is not None and place.key:
        flow_id = registry.flow_for(place.key)
    if stream:
        parent = registry.call_writing(place.upstream) if place and registry else None
        _run_stream(app, socket, kwargs, flow_id, parent, nul=nul, json_lines=json_lines,
                    jobs=jobs, unordered=unordered, halt=halt, timeout=timeout,
                    reconnect_timeout=reconnect_timeout)  # fmt: skip
        return
    args: list[Any] = []
    if data is not None:
        args.append(input_value(data, "--data"))
    elif not stdin_is_tty():
        raw = sys.stdin.buffer.read(MAX_BYTES + 2)
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if len(raw) > MAX_BYTES:
            raise ValueRefused(f"stdin: longer than {size_text(MAX_BYTES)}, the limit of a"
                               " call's input")  # fmt: skip
        if raw or not kwargs:
            args.append(input_value(raw, "stdin"))
    # Upstream commands have recorded their calls by the time our input ended.
    parent = registry.call_writing(place.upstream) if place and registry else None

    published: list[str] = []

    def sent(call_id: str) -> None:
        published.append(call_id)
        if place is not None and registry is not None and place.stdout:
            registry.record_call(place.stdout, call_id)

    if is_async:
        done = calls.send(app.settings, app.principal, socket, args, kwargs, flow=flow_id,
                          parent=parent)  # fmt: skip
        sent(done.call_id)
        click.echo(done.call_id)
        if done.unrecorded:
            click.echo(f"flow: call {done.call_id} is sent, but its pending record was not"
                       f" written ({done.unrecorded}); it is known once a worker takes it",
                       err=True)  # fmt: skip
        return
    from shellflow.errors import ServiceUnavailable

    try:
        result = calls.run(app.settings, app.principal, socket, args, kwargs, flow=flow_id,
                           parent=parent, timeout=timeout, on_sent=sent)  # fmt: skip
    except ServiceUnavailable as exc:
        if published:  # it runs all the same: say where its result will be
            exc.message += (f"; call {published[0]} was sent: flow task result"
                            f" {published[0]} --wait")  # fmt: skip
        raise
    click.echo(format_result(result))


def _run_stream(
    app: AppContext, socket: str, kwargs: dict[str, Any], flow_id: str | None,
    parent: str | None, *, nul: bool, json_lines: bool, jobs: int | None, unordered: bool,
    halt: str, timeout: float | None, reconnect_timeout: float | None,
) -> None:  # fmt: skip
    from shellflow.client.stream import Halt, Options
    from shellflow.client.stream_outage import RECONNECT_TIMEOUT
    from shellflow.errors import ExitCode
    from shellflow.services import calls

    options = Options(
        socket=socket, kwargs=kwargs, jobs=jobs, nul=nul, json_lines=json_lines,
        ordered=not unordered, halt=Halt.parse(halt), timeout=timeout, flow=flow_id,
        parent=parent, progress=_stderr_is_tty(),
        reconnect_timeout=RECONNECT_TIMEOUT if reconnect_timeout is None else reconnect_timeout,
    )  # fmt: skip
    summary = calls.stream(app.settings, app.principal, options)
    if summary.reader_gone:
        raise SystemExit(0)
    if summary.calls or summary.bad_record is None:
        click.echo(summary.line(), err=True)
    if summary.bad_record is not None:
        raise summary.bad_record
    if summary.exit_code != ExitCode.OK:
        raise SystemExit(int(summary.exit_code))


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _flow_from_environment(value: str) -> str:
    """SHELLFLOW_FLOW, checked as --flow is (exit 2 naming the variable)."""
    try:
        return str(FLOW_ID.convert(value, None, None))
    except click.BadParameter as exc:
        raise click.UsageError(f"SHELLFLOW_FLOW: {exc.format_message()}") from None


@task.command("result")
@click.argument("call_id", metavar="ID", type=TEXT)
@click.option("--wait", "wait_", is_flag=True, help="Wait for an unfinished call to end")
@click.option("--timeout", type=SECONDS, help="Seconds to wait with --wait")
@pass_app
def task_result(app: AppContext, call_id: str, wait_: bool, timeout: float | None) -> None:
    """Print the result of call ID, as 'flow task run' prints it.

    \b
    Exit codes: 0 the result is printed; 1 the call failed (its error on stderr) or was
    cancelled; 3 no call with that id is known; 7 the call has not finished yet (without
    --wait: pending in its queue, or running), or did not within --timeout. A call sent
    with 'task run --async' is known as pending from the start; one sent otherwise is
    known once a worker takes it (--wait waits for it either way).
    """
    from shellflow.services import calls

    found = calls.result(app.settings, app.principal, call_id, wait=wait_, timeout=timeout)
    click.echo(format_result(found.result))


@task.command("cancel")
@click.argument("call_id", metavar="ID", type=TEXT)
@click.option("--terminate", is_flag=True, help="Also stop the call if it is running")
@pass_app
def task_cancel(app: AppContext, call_id: str, terminate: bool) -> None:
    """Cancel call ID, or stop it running (--terminate).

    \b
    Workers discard it when its message reaches them, now or after a restart of its
    processor; its record says 'revoked'. --terminate also stops a running call: its
    worker sends SIGTERM to the process running it (the function gets no chance to clean
    up), does not run it again, and records it 'revoked'. Exit codes: 0 cancelled,
    stopped (or it already was cancelled); 4 the call has already finished, or has
    started and --terminate was not given.
    """
    from shellflow.services import calls

    done = calls.cancel(app.settings, app.principal, call_id, terminate=terminate)
    click.echo(done.summary, err=True)


@task.command("retry")
@click.argument("call_id", metavar="[ID]", required=False, type=TEXT)
@click.option("--state", type=click.Choice(("dead", "failed", "revoked")),
              help="Retry every call in this state not retried yet")  # fmt: skip
@click.option("-s", "--socket", type=TEXT, help="With --state: only this socket's calls",
              shell_complete=later_completer("names_of", "socket"))  # fmt: skip
@click.option("--async", "is_async", is_flag=True, help="Print the new call's id and return")
@click.option("--timeout", type=SECONDS, help="Seconds to wait for a result")
@pass_app
def task_retry(
    app: AppContext, call_id: str | None, state: str | None, socket: str | None,
    is_async: bool, timeout: float | None,
) -> None:  # fmt: skip
    """Send call ID again, as a new call linked to it, and print its result.

    \b
    A dead call (its worker died each time it ran it), a failed or a cancelled one can be
    retried: the new call gets its socket, arguments, flow run and parent, and names it
    ('flow ls call --id NEW' shows "retry of"). Like 'task run', it waits for the result
    (--async: prints the new call's id and returns). --state STATE [--socket NAME]
    retries every such call not retried yet, oldest first, printing the new ids.
    Exit codes: 0 sent (and its result printed); 1 the new call failed; 3 no call with
    that id; 4 the call cannot be retried (not ended yet, finished, or no recorded
    arguments); 7 no result within --timeout.
    """
    from shellflow.services import calls

    if (call_id is None) == (state is None):
        raise click.UsageError("give a call ID or --state, not both")
    if socket is not None and state is None:
        raise click.UsageError("--socket only goes with --state")
    if state is not None:
        if timeout is not None:
            raise click.UsageError("--timeout only goes with a call ID")
        done = calls.retry_many(app.settings, app.principal, state, socket)
        for sent in done:
            click.echo(sent.call_id)
            _say_unlinked(sent)
        where = f" of {socket}" if socket else ""
        click.echo(f"flow: retried {len(done)} {state} call(s){where}", err=True)
        return
    assert call_id is not None
    sent = calls.retry(app.settings, app.principal, call_id)
    click.echo(f"flow: call {sent.retry_of} retried as call {sent.call_id}", err=True)
    _say_unlinked(sent)
    if is_async:
        click.echo(sent.call_id)
        return
    found = calls.result(app.settings, app.principal, sent.call_id, wait=True, timeout=timeout)
    click.echo(format_result(found.result))


def _say_unlinked(sent: Any) -> None:
    if sent.unlinked:
        click.echo(f"flow: call {sent.call_id} is sent, but its record or its link to call"
                   f" {sent.retry_of} was not written ({sent.unlinked})", err=True)  # fmt: skip


def _pipeline(app: AppContext) -> tuple[Any, Any]:
    """Where this command sits in its shell pipeline, and the registry of pipelines."""
    from shellflow.client.pipes import Registry, locate

    try:
        return locate(), Registry(app.settings.home)
    except OSError:  # an unreadable /proc or home: calls still run, in their own flows
        return None, None
