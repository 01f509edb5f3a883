"""``flow ls calls`` and ``flow ls call``: call history, one call's story, call graphs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from shellflow.commands import later_completer
from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.params import TEXT, parse_since, whole
from shellflow.printable import printable

CALL_LIST_COLUMNS = ["name", "id", "state", "started", "finished", "worker"]


@click.command("calls")
@click.option("-p", "--page", type=whole(1), default=1, show_default=True)
@click.option("-r", "--rows", type=click.IntRange(1, 10_000), default=10, show_default=True)
@click.option("-u", "--unfinished", is_flag=True, help="Only calls still pending or running")
@click.option("-a", "--ascend", is_flag=True, help="Oldest first")
@click.option("--socket", type=TEXT, help="Only calls of this socket",
              shell_complete=later_completer("names_of", "socket"))  # fmt: skip
@click.option("--state", help="Only calls in this state (finished, failed, dead, running, ...)",
              shell_complete=later_completer("call_states"))  # fmt: skip
@click.option("--since", metavar="TIME",
              help="Only calls started since TIME (ISO time, or 90s, 15m, 2h, 1d ago)")  # fmt: skip
@click.option("--flow", "flow_id", metavar="ID", type=TEXT,
              help="Only calls of this flow run (a stream's calls share one)")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="NDJSON (one JSON object a line)")
@pass_app
def ls_calls(
    app: AppContext, page: int, rows: int, unfinished: bool, ascend: bool, socket: str | None,
    state: str | None, since: str | None, flow_id: str | None, as_json: bool,
) -> None:  # fmt: skip
    """List calls, newest first, a page at a time."""
    from shellflow.commands.output import info, print_rows
    from shellflow.model.history import list_calls

    # READ_CALL held on some processors only: their calls alone are listed.
    scope = app.principal.processors("READ_CALL")
    if not scope:
        app.authorize("READ_CALL", f"socket {socket}" if socket else "calls")
    if state is not None:
        from shellflow.commands.complete import CALL_STATES

        if state not in CALL_STATES:
            states = ", ".join(CALL_STATES)
            raise click.BadParameter(f"{state!r} is not one of {states}", param_hint="--state")
    with app.reader() as conn:
        result = list_calls(
            conn, page=page, rows=rows, unfinished=unfinished, ascending=ascend, socket=socket,
            state=state, since=parse_since(since) if since is not None else None, flow=flow_id,
            processors=scope,
        )  # fmt: skip
        if socket is not None and not result.rows and not result.total:
            _known_socket(conn, socket)
    print_rows(CALL_LIST_COLUMNS, result.rows, as_json)
    about = "" if result.exact else "~"  # PostgreSQL's estimate for a large total
    info(f"Page {result.page} of {about}{result.pages} of {about}{result.total} total records")


def _known_socket(conn: Any, name: str) -> None:
    """NotFound (exit 3, with close names) for a socket neither stored nor in any call:
    a typing mistake, not an empty list."""
    from shellflow.errors import NotFound
    from shellflow.model.listing import names

    known = names(conn, "socket")
    if name not in known:
        raise NotFound("socket", name, known)


def _tree_lines(nodes: list[dict[str, Any]], prefix: str = "") -> Iterator[str]:
    """The call tree drawn for a person: stored names and ids with their controls escaped."""
    for index, node in enumerate(nodes):
        last = index == len(nodes) - 1
        branch = (
            "" if not prefix and index == 0 and len(nodes) == 1 else ("└── " if last else "├── ")
        )
        yield printable(f"{prefix}{branch}{node['name']}  {node['id']}  {node['state']}")
        extension = "    " if last else "│   "
        yield from _tree_lines(node["children"], prefix + (extension if branch else ""))


def _graph_text(nodes: list[dict[str, Any]], fmt: str) -> list[str]:
    edges: list[tuple[dict[str, Any], dict[str, Any]]] = []
    flat: list[dict[str, Any]] = []

    seen: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if node["id"] in seen:  # a call fed by several: drawn once, with an edge from each
            return
        seen.add(node["id"])
        flat.append(node)
        for child in node["children"]:
            edges.append((node, child))
            walk(child)

    for node in nodes:
        walk(node)
    if fmt == "dot":
        lines = ["digraph flow {"]
        lines += [
            f'  "{_dot(n["id"])}" [label="{_dot(n["name"])}\\n{_dot(n["state"])}"];' for n in flat
        ]
        lines += [f'  "{_dot(a["id"])}" -> "{_dot(b["id"])}";' for a, b in edges]
        return [*lines, "}"]
    # Mermaid ids are bare words: number the calls rather than trust a stored id.
    key = {n["id"]: f"c{index}" for index, n in enumerate(flat)}
    lines = ["graph TD"]
    lines += [f'  {key[n["id"]]}["{_mermaid(n["name"])}<br/>{_mermaid(n["state"])}"]' for n in flat]
    lines += [f"  {key[a['id']]} --> {key[b['id']]}" for a, b in edges]
    return lines


def _dot(value: Any) -> str:
    """Text inside a DOT double-quoted string: a quote cannot end it, a backslash cannot
    start an escape (``\\l``, ``\\N``), and a line break or control character is shown as
    its escape, so no stored name adds a statement or an attribute."""
    text = "" if value is None else str(value)
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif not char.isprintable():
            out.append(char.encode("unicode_escape").decode("ascii").replace("\\", "\\\\"))
        else:
            out.append(char)
    return "".join(out)


# Characters Mermaid would read in a quoted label: the closing quote, its entity marker #,
# the backtick of a markdown string, and HTML (labels are rendered as HTML).
_MERMAID = {'"': "#quot;", "#": "#35;", "`": "#96;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}


def _mermaid(value: Any) -> str:
    """Text inside a Mermaid ``["..."]`` label, as entity codes where Mermaid would read it
    as syntax; a line break or control character is shown as its escape."""
    text = "" if value is None else str(value)
    return "".join(
        _MERMAID.get(c, c) if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


def _strip(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**n, "children": _strip(n["children"])} for n in nodes]


@click.command("call")
@click.option("--id", "call_id", required=True, type=TEXT, help="ID of the call",
              shell_complete=later_completer("call_ids"))  # fmt: skip
@click.option("-r", "--result", is_flag=True, help="Include the call's result")
@click.option("-t", "--tree", "show_tree", is_flag=True, help="Show the forward call tree")
@click.option("-g", "--graph", is_flag=True, help="Show the whole flow run's call graph")
@click.option("-f", "--flow", "show_flow", is_flag=True, help="List every call of its flow run")
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "mermaid"]), default="text",
              help="Graph format for --tree and --graph")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="JSON output")
@pass_app
def ls_call(
    app: AppContext, call_id: str, result: bool, show_tree: bool, graph: bool, show_flow: bool,
    fmt: str, as_json: bool,
) -> None:  # fmt: skip
    """Show one call: its provenance, events, and optionally its result, tree or graph."""
    from shellflow.commands.output import print_object, print_rows, to_json, write_lines
    from shellflow.model.history import flow_calls, get_call, processor_of_call, tree

    scope = app.principal.processors("READ_CALL")  # None: held everywhere
    if not scope:
        app.authorize("READ_CALL", f"call {call_id}")
    with app.reader() as conn:
        if scope:  # held on some processors: the call must be one of theirs
            app.authorize("READ_CALL", f"call {call_id}", processor_of_call(conn, call_id))
        call = get_call(conn, call_id, result=result)
        related = flow_calls(conn, call["flow"], scope) if call["flow"] else [call]
    if show_flow:
        print_rows(["name", "id", "state", "started", "finished", "parent"], related, as_json)
        return
    if show_tree or graph:
        nodes = tree(related, None if graph else call_id)
        if as_json:
            write_lines(to_json(n) for n in _strip(nodes))
        elif fmt != "text":
            write_lines(_graph_text(nodes, fmt))
        else:
            write_lines(_tree_lines(nodes))
        return
    print_object(call, as_json)
