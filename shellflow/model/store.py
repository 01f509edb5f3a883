"""Create, change and delete the network's objects through the ORM.

The commands hand over plain values (names of related objects, not ids); this module
resolves them, refuses duplicates and dangling references with the matching shellflow error,
and never leaves a half-applied change: the caller's session commits or rolls back whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

import shellflow.model.tables  # noqa: F401  (every mapper must be known before the first query)
from shellflow.errors import Conflict, NotFound, UsageError
from shellflow.model import pg_roles, scale
from shellflow.model.audit import append as audit_append
from shellflow.model.audit import snapshot
from shellflow.model.base import Base, utcnow
from shellflow.model.busy import MOVES, Revocation, claim, moves
from shellflow.model.checks import check_cron, check_lengths, check_name, check_values
from shellflow.model.infra import Agent, Deployment, Network, Node, Scheduler
from shellflow.model.network import Argument, Plug, Processor, Queue, Socket, Task
from shellflow.model.passwords import hash_password
from shellflow.model.security import Password, Privilege, Role, User

MODELS: dict[str, type[Base]] = {
    "queue": Queue,
    "processor": Processor,
    "socket": Socket,
    "plug": Plug,
    "argument": Argument,
    "node": Node,
    "agent": Agent,
    "scheduler": Scheduler,
    "deployment": Deployment,
    "network": Network,
    "user": User,
    "role": Role,
    "privilege": Privilege,
}

# Values that name another object: option key -> (kind of the referenced object, attribute).
REFERENCES: dict[str, dict[str, tuple[str, str]]] = {
    "queue": {"network": ("network", "network")},
    "socket": {"processor": ("processor", "processor"), "queue": ("queue", "queue")},
    "plug": {
        "source": ("socket", "source"),
        "target": ("socket", "target"),
        "queue": ("queue", "queue"),
    },
    "node": {"scheduler": ("scheduler", "scheduler"), "network": ("network", "network")},
    "agent": {"node": ("node", "node")},
    "scheduler": {"network": ("network", "network")},
    "deployment": {"processor": ("processor", "processor")},
}


# A processor's fields that say which code it runs: a change is checked against the
# repository allowlist and makes its agents resolve the commit again (``model.repos``).
SOURCE_KEYS = ("gitrepo", "branch", "commit", "gittag")


class Store:
    """Object operations inside one session, acting for ``owner``.

    ``repos_allow``: the ini file's repository patterns, in force when the database holds
    no ``repos.allow`` list (``shellflow.model.repos``).
    """

    def __init__(
        self, session: Session, owner: str | None = None,
        repos_allow: tuple[str, ...] | None = None,
    ) -> None:  # fmt: skip
        self.session = session
        self.owner = owner
        self.repos_allow = repos_allow
        self.granted = ""  # what the last grant did, in words (model.grants)
        # Calls a forced change strands, revoked once the session commits (model.busy).
        self.revocation = Revocation()
        # What the caller should tell the user (a user who got no PostgreSQL login role...).
        self.notes: list[str] = []
        # Users added get a PostgreSQL login role of their own (model.pg_roles); a service
        # identity, which acts only through shellflow by token, needs none.
        self.login_roles = True

    def _note(self, note: str | None) -> None:
        if note:
            self.notes.append(note)

    def audit(
        self, action: str, kind: str, name: str | None, before: Any = None, after: Any = None
    ) -> None:
        """Append a row to the audit trail in this session: committed with the change, or
        rolled back with it (``shellflow.model.audit``)."""
        audit_append(self.session, self.owner, action, kind, name, before, after)

    def _forced(self, change: str, kind: str, name: str, force: bool, calls_before: int) -> None:
        """A change made with ``force`` on a kind calls run on gets a ``force`` row of its
        own, saying which change it forced and how many calls it strands."""
        if force and kind in MOVES:
            stranded = len(self.revocation.calls) - calls_before
            self.audit("force", kind, name, after={"change": change, "stranded calls": stranded})

    # -- lookups -------------------------------------------------------------------------
    def find(self, kind: str, name: str) -> Any:
        model: Any = MODELS[kind]
        return self.session.scalar(select(model).where(model.name == name))

    def get(self, kind: str, name: str) -> Any:
        obj = self.find(kind, name)
        if obj is None:
            model: Any = MODELS[kind]
            candidates = self.session.scalars(select(model.name))
            raise NotFound(kind, name, candidates)
        return obj

    def get_argument(self, name: str, socket: str) -> Argument:
        task = self.get("socket", socket).task
        for argument in task.arguments:
            if argument.name == name:
                return argument
        raise NotFound(f"argument of socket {socket!r}", name, [a.name for a in task.arguments])

    # -- create --------------------------------------------------------------------------
    def add(self, kind: str, values: Mapping[str, Any]) -> Any:
        values = {k: v for k, v in values.items() if v is not None}
        check_values(kind, MODELS[kind], values)
        if kind == "privilege":
            return self.grant(values["name"], values.get("user"), values.get("role"),
                              values.get("processor"))  # fmt: skip
        if kind == "argument":
            argument = self._add_argument(values)
            self.audit("add", kind, argument.name, after=snapshot(argument))
            return argument
        name = values["name"]
        if self.find(kind, name) is not None:
            raise Conflict(f"{kind} {name!r} already exists")
        obj = MODELS[kind](owner=self.owner)
        with self.session.no_autoflush:
            self._apply(kind, obj, values)
        self.session.add(obj)
        self.session.flush()
        if kind == "user" and self.login_roles:  # on PostgreSQL, a login role of the same name
            self._note(pg_roles.create(self.session, name, values.get("password")))
        self.audit("add", kind, name, after=snapshot(obj))
        return obj

    def _add_argument(self, values: dict[str, Any]) -> Argument:
        task = self.get("socket", values["socket"]).task
        if any(a.name == values["name"] for a in task.arguments):
            raise Conflict(f"argument {values['name']!r} of task {task.name!r} already exists")
        position = values.get("position", len(task.arguments))
        argument = Argument(
            name=values["name"], position=position, kind=values.get("kind"), owner=self.owner
        )
        task.arguments.append(argument)
        self.session.flush()
        return argument

    # -- change --------------------------------------------------------------------------
    def update(
        self, kind: str, name: str, values: Mapping[str, Any], *, force: bool = False,
        action: str = "update",
    ) -> Any:  # fmt: skip
        """Change an object; one with calls running is refused a change that strands them
        (a rename, a new queue...: ``shellflow.model.busy``) unless ``force``.

        ``action``: what the audit trail says happened (``start``, ``stop``... for the
        requested status a processor action writes)."""
        values = {k: v for k, v in values.items() if v is not None}
        check_values(kind, MODELS[kind], values)
        if kind == "argument":
            argument = self.get_argument(name, values.pop("socket"))
            before = snapshot(argument)
            self._update_argument(argument, name, values)
            self.session.flush()
            self.audit(action, kind, argument.name, before, snapshot(argument))
            return argument
        obj = self.get(kind, name)
        before = snapshot(obj)
        calls_before = len(self.revocation.calls)
        self._update(kind, obj, name, values, force)
        self.audit(action, kind, obj.name, before, snapshot(obj))
        self._forced(action, kind, obj.name, force, calls_before)
        return obj

    def _update_argument(self, argument: Argument, name: str, values: dict[str, Any]) -> None:
        for key in ("position", "kind"):
            if key in values:
                setattr(argument, key, values[key])
        new_name = values.get("rename")
        if new_name and new_name != name:
            if any(a.name == new_name for a in argument.task.arguments):
                raise Conflict(
                    f"argument {new_name!r} of task {argument.task.name!r} already exists"
                )
            argument.name = new_name

    def _update(self, kind: str, obj: Any, name: str, values: dict[str, Any], force: bool) -> None:
        moved = moves(kind, values, obj)
        if moved:
            what = "renamed" if moved == ["rename"] else "changed (" + ", ".join(moved) + ")"
            if moved == ["requested_status"]:
                what = "removed"
            claim(self.session, kind, obj, what, force, self.revocation)
        new_name = values.pop("rename", None)
        if new_name and new_name != name:
            if self.find(kind, new_name) is not None:
                raise Conflict(f"{kind} {new_name!r} already exists")
            obj.name = new_name
        with self.session.no_autoflush:
            self._apply(kind, obj, values)
        obj.lastupdated = utcnow()
        self.session.flush()
        if kind == "user":  # the login role follows the user (model.pg_roles)
            if obj.name != name:
                self._note(pg_roles.rename(self.session, name, obj.name))
            if values.get("password") is not None:
                self._note(pg_roles.set_password(self.session, obj.name, values["password"]))

    def _apply(self, kind: str, obj: Any, values: Mapping[str, Any]) -> None:
        refs = REFERENCES.get(kind, {})
        self._check_unique_values(kind, obj, values)
        if kind == "processor":
            self._check_source(obj, values)
        for key, value in values.items():
            if key in refs:
                ref_kind, attribute = refs[key]
                target = self.get(ref_kind, value)
                self._check_one_to_one(kind, obj, key, target)
                setattr(obj, attribute, target)
            elif key == "password":
                self._set_password(kind, obj, value)
            elif key in ("task", "argument", "add_role", "remove_role"):
                continue  # resolved below, once the references they depend on are set
            else:
                setattr(obj, key, value)
        if kind == "socket" and ("task" in values or "processor" in values):
            # The task is a function of the processor's module: follow either change.
            function = values.get("task") or obj.task.function
            self._retask(obj, self._task_for(obj.processor, function))
        if kind == "processor":
            scale.check(obj)  # its autoscaling bounds, as changed (shellflow.model.scale)
        if kind == "processor" and "module" in values:
            for socket in obj.sockets:
                self._retask(socket, self._task_for(obj, socket.task.function))
        if kind == "socket":
            self._schedule(obj, values)
        if kind == "plug":
            self._wire_plug(obj, values)
        if kind == "user":
            self._change_roles(obj, values.get("add_role", ()), values.get("remove_role", ()))

    def _schedule(self, socket: Socket, values: Mapping[str, Any]) -> None:
        """A socket runs on an interval or on a cron line, never both: the newer one wins."""
        if values.get("interval") and values.get("cron"):
            raise UsageError("give either --interval or --cron, not both")
        if values.get("interval"):
            socket.cron = None
            socket.schedule_type, socket.scheduled = "INTERVAL", True
        if values.get("cron"):
            check_cron(values["cron"])
            socket.interval = None
            socket.schedule_type, socket.scheduled = "CRON", True

    def _change_roles(self, user: User, give: Iterable[str], take: Iterable[str]) -> None:
        """Like privileges: giving a held role conflicts, taking one not held is not found."""
        for name in give:
            role = self.get("role", name)
            if role in user.roles:
                raise Conflict(f"user {user.name!r} already has role {name!r}")
            user.roles.append(role)
            from shellflow.model.grants import stamp_role

            stamp_role(self, user, role)
        for name in take:
            role = self.get("role", name)
            if role not in user.roles:
                raise NotFound(f"role of user {user.name!r}", name, [r.name for r in user.roles])
            user.roles.remove(role)

    def _check_unique_values(self, kind: str, obj: Any, values: Mapping[str, Any]) -> None:
        """Refuse, with a message naming the value, what a unique column would reject."""
        email = values.get("email")
        if kind == "user" and email is not None:
            holder = self.session.scalar(select(User).where(User.email == email))
            if holder is not None and holder is not obj:
                raise Conflict(f"a user with email {email!r} already exists ({holder.name!r})")

    def _check_source(self, processor: Processor, values: Mapping[str, Any]) -> None:
        """A new repository, branch, tag or commit: refused unless the repository is allowed
        (exit 5), and resolved afresh by the agents (its recorded commit is cleared)."""
        changed = [k for k in SOURCE_KEYS if k in values and values[k] != getattr(processor, k)]
        if not changed:
            return
        from shellflow.model.repos import effective

        url = values.get("gitrepo") or processor.gitrepo
        effective(self.session, self.repos_allow).check(url)
        processor.deployed_commit = None

    def _check_one_to_one(self, kind: str, obj: Any, key: str, target: Any) -> None:
        """A node runs one agent: re-pointing the ORM's one-to-one would orphan the other."""
        if kind == "agent" and key == "node" and target.agent not in (None, obj):
            raise Conflict(f"node {target.name!r} already has agent {target.agent.name!r}")

    def _set_password(self, kind: str, obj: Any, password: str) -> None:
        if kind == "user":
            obj.password_hash = hash_password(password)
        elif kind == "processor":
            if obj.password is None:
                obj.password = Password(hash=hash_password(password))
            else:
                obj.password.hash = hash_password(password)
        else:
            raise UsageError(f"a {kind} has no password")

    def _task_for(self, processor: Processor, function: str) -> Task:
        """The task ``module.function`` of the processor's module, created on first use."""
        if not function.isidentifier():
            raise UsageError(f"task {function!r} is not a Python function name")
        name = f"{processor.module}.{function}"
        check_lengths("task", Task, {"name": name})
        # Look among unflushed tasks too: one command may ask for the same task twice.
        pending = (o for o in self.session.new if isinstance(o, Task) and o.name == name)
        task = next(pending, None) or self.session.scalar(select(Task).where(Task.name == name))
        if task is None:
            task = Task(
                name=name, module=processor.module, function=function,
                gitrepo=processor.gitrepo, owner=self.owner,
            )  # fmt: skip
            self.session.add(task)
        return task

    def _retask(self, socket: Socket, task: Task) -> None:
        """Point a socket at another task; plugs feeding it follow to the same-named argument."""
        old = socket.task
        socket.task = task
        if old is None or old is task:
            return
        for plug in socket.targetplugs:
            if plug.argument is not None:
                plug.argument = self._argument_of(task, plug.argument.name)

    def _argument_of(self, task: Task, name: str, given: bool = False) -> Argument:
        """The task's argument ``name``, added after the others when it is new. A ``given``
        name (a plug's ``argument``, typed or composed) that adds one follows the name rule
        like ``flow add argument``; one carried over from a stored plug keeps its name."""
        argument = next((a for a in task.arguments if a.name == name), None)
        if argument is None:
            if given:
                check_name("argument", name)
            argument = Argument(name=name, position=len(task.arguments), owner=self.owner)
            task.arguments.append(argument)
        return argument

    def _wire_plug(self, plug: Plug, values: Mapping[str, Any]) -> None:
        if plug.source is plug.target and plug.source is not None:
            raise UsageError("a plug cannot connect a socket to itself")
        plug.processor = plug.source.processor
        given = values.get("argument")
        name = given or (plug.argument.name if plug.argument else None)
        if name is not None:  # a new target keeps feeding the argument of the same name
            plug.argument = self._argument_of(plug.target.task, name, given=bool(given))

    # -- privileges ----------------------------------------------------------------------
    def _privilege(self, right: str) -> Privilege:
        privilege = self.find("privilege", right)
        if privilege is None:  # rights are seeded by migrations; tolerate a bare database
            privilege = Privilege(name=right, right=right, owner=self.owner)
            self.session.add(privilege)
        return privilege

    def grant(self, right: str, user: str | None, role: str | None,
              processor: str | None = None) -> Privilege:  # fmt: skip
        """Grant ``right`` (clearing a revocation of it for the user), on ``processor``
        alone when one is named: see model.grants."""
        from shellflow.model.grants import grant, grant_on, scopable

        if processor is not None:
            scopable(right)
        privilege = self._privilege(right)
        if processor is not None:
            self.granted = grant_on(self, privilege, user, role, processor)
        else:
            self.granted = grant(self, privilege, user, role)
        self.session.flush()
        self.audit("grant", "privilege", right, after=self._holding(user, role, processor))
        return privilege

    @staticmethod
    def _holding(user: str | None, role: str | None, processor: str | None) -> dict[str, str]:
        """Whom a grant or revocation is for (and on which processor alone, if one), as the
        audit row keeps it."""
        holding = {"user": str(user)} if user else {"role": str(role)}
        return {**holding, "processor": processor} if processor else holding

    def revoke(self, right: str, user: str | None, role: str | None,
               processor: str | None = None) -> str:  # fmt: skip
        """Take ``right`` away (a revocation when a role grants it): see model.grants."""
        from shellflow.model.grants import revoke, revoke_on

        if processor is not None:
            said = revoke_on(self, right, user, role, processor)
        else:
            said = revoke(self, right, user, role)
        self.audit("revoke", "privilege", right, before=self._holding(user, role, processor))
        return said

    # -- delete --------------------------------------------------------------------------
    def dependents(self, kind: str, obj: Any) -> list[tuple[str, Any]]:
        """Objects that would dangle if ``obj`` went away, as (kind, object) pairs."""
        found: list[tuple[str, Any]] = []
        if kind == "processor":
            found += [("socket", s) for s in obj.sockets]
            found += [("plug", p) for p in obj.plugs]
            found += [("deployment", d) for d in obj.deployments]
        elif kind == "queue":
            found += [
                ("socket", s)
                for s in self.session.scalars(select(Socket).where(Socket.queue_id == obj.id))
            ]
            found += [
                ("plug", p)
                for p in self.session.scalars(select(Plug).where(Plug.queue_id == obj.id))
            ]
        elif kind == "socket":
            plugs = select(Plug).where(or_(Plug.source_id == obj.id, Plug.target_id == obj.id))
            found += [("plug", p) for p in self.session.scalars(plugs)]
        elif kind == "node" and obj.agent is not None:
            found.append(("agent", obj.agent))
        elif kind == "argument":
            found += [("plug", p) for p in obj.plugs]
        return found

    def delete(
        self, kind: str, name: str, *, cascade: bool = False, force: bool = False, **extra: Any
    ) -> list[str]:
        """Delete an object; its dependents too with ``cascade``, else refuse and name them.

        An object with calls pending or running is refused unless ``force``
        (``shellflow.model.busy``), which leaves them in :attr:`revocation`."""
        if kind == "privilege":
            return [self.revoke(name, extra.get("user"), extra.get("role"),
                                extra.get("processor"))]  # fmt: skip
        obj = (
            self.get_argument(name, extra["socket"]) if kind == "argument" else self.get(kind, name)
        )
        deleted: list[str] = []
        calls_before = len(self.revocation.calls)
        self._delete(kind, obj, cascade, deleted, seen=set(), force=force)
        self.session.flush()
        self._forced("delete", kind, name, force, calls_before)
        return deleted

    def _delete(
        self, kind: str, obj: Any, cascade: bool, deleted: list[str], seen: set[str],
        force: bool = False,
    ) -> None:  # fmt: skip
        if obj.id in seen:
            return
        seen.add(obj.id)
        if kind in MOVES:
            claim(self.session, kind, obj, "deleted", force, self.revocation)
        dependents = self.dependents(kind, obj)
        if dependents and not cascade:
            listed = ", ".join(f"{k} {o.name!r}" for k, o in dependents)
            raise Conflict(
                f"{kind} {obj.name!r} is used by {listed}; use --cascade to delete them too"
            )
        for dep_kind, dep in dependents:
            self._delete(dep_kind, dep, cascade, deleted, seen, force)
        if dependents:  # reload collections that still hold the dependents just deleted
            self.session.expire(obj)
        name = obj.name
        if kind == "user":
            self._note(pg_roles.drop(self.session, name))
        self.audit("delete", kind, name, before=snapshot(obj))
        if kind == "processor" and obj.password is not None:
            self.session.delete(obj.password)  # a hash nobody could use any more
        self.session.delete(obj)
        self.session.flush()
        deleted.append(f"{kind} {name}")
