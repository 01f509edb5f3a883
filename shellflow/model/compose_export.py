"""Writing the stored network as a compose file (``flow compose export``)."""

from __future__ import annotations

from typing import Any

import yaml
from sqlalchemy import select

from shellflow.model.compose_format import FIELDS, HEADER, KINDS, VERSION, current
from shellflow.model.compose_secrets import hide
from shellflow.model.store import MODELS, Store


def export(store: Store) -> str:
    """The stored queues, processors, sockets and plugs as a compose file, by name.

    Fields at their default are left out, so the text is the shortest file that makes the
    same network; exporting it again after an ``up`` gives the same text. A password in a
    processor's git URL is written as a reference (``shellflow.model.compose_secrets``).
    """
    document: dict[str, Any] = {"version": VERSION}
    for kind in KINDS:
        model: Any = MODELS[kind]
        defaults = {f.name: f.default for f in FIELDS[kind]}
        section = {}
        for obj in store.session.scalars(select(model).order_by(model.name)):
            values = current(kind, obj)
            if kind == "processor" and values.get("gitrepo"):
                values["gitrepo"] = hide(values["gitrepo"], obj.name)  # a reference, not a token
            section[obj.name] = {k: v for k, v in values.items() if v != defaults[k]}
        if section:
            document[f"{kind}s"] = section
    body = yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    return HEADER + body
