"""Row-level security on PostgreSQL: a user connecting as their own role sees and changes
only what their shellflow rights allow.

:func:`secure` (run by ``flow db init``, ``migrate`` and ``rebuild`` under the schema lock,
after any migration) enables row-level security on every table of the schema and (re)creates
its policies from :data:`RULES`; it is idempotent, and as it always follows the tables there
are (not a snapshot frozen in a migration), a table a later revision adds is covered by the
next ``flow db migrate``. A table without a rule (``login``, ``passwords``, ``settings``,
``login_failure``, any table added later and not listed here) gets no policy and no grant:
a user's role reads nothing there, fail closed.

The policies ask ``shellflow_holds(VARIADIC rights)``: whether ``current_user`` holds one of
the rights (or ``ALL``). It reads the view ``shellflow_my_rights``, owned by the tables' owner
and filtered on ``current_user``, so a user learns their own rights and nobody else's: the
user's grants and their roles' grants, less ``user_privileges_revoked``, as
``shellflow.model.access`` computes them. The tables' owner (the database URL's user, who
runs the CLI and the engine) bypasses row-level security (it is not FORCEd).

Rights granted on one processor alone (``flow add privilege ... --processor P``) are read
from the view ``shellflow_my_processor_rights`` (right, processor, and each socket of that
processor; the user's and their roles' grants, less ``user_privileges_revoked``): a rule's
``scoped`` condition lets a row through when it belongs to such a processor, so a user with
READ_CALL on P reads P's calls and their events and no others. ``shellflow_holds_on(
processor_id, VARIADIC rights)`` asks the same of one processor, for ad hoc queries.

Secrets stay out of reach: ``users.password_hash`` is left out of the columns a role may
select, and the tables holding tokens, processor password hashes and the signing key are
granted to nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FUNCTION = "shellflow_holds"
VIEW = "shellflow_my_rights"
FUNCTION_ON = "shellflow_holds_on"
VIEW_ON = "shellflow_my_processor_rights"
SECRET_COLUMNS = frozenset({"password_hash", "hash", "token_hash"})
_POLICIES = {"read": "SELECT", "add": "INSERT", "update": "UPDATE", "delete": "DELETE"}
# Tables (plain or partitioned) of the schema shellflow's tables are in.
_IN_SCHEMA = (
    "c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
    " AND c.relkind IN ('r', 'p')"
)
_ME = "(SELECT u.id FROM {s}.users u WHERE u.name = current_user)"


@dataclass(frozen=True)
class Rule:
    """Rights any one of which allows each command on a table (``ALL`` always does).

    ``own``: an SQL condition under which a user reads a row whatever their rights (their own
    user row, their own grants), ``{s}`` standing for the schema.
    """

    read: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    update: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    own: str | None = None
    # An SQL condition letting a row through to a user holding a read right on the row's
    # processor alone: ``{s}`` the schema, ``{sockets}`` the ids of the sockets of the
    # processors on which the user holds one of the rule's read rights.
    scoped: str | None = None

    def __or__(self, other: Rule) -> Rule:
        return Rule(
            self.read + other.read, self.add + other.add, self.update + other.update,
            self.delete + other.delete, self.own or other.own, self.scoped or other.scoped,
        )  # fmt: skip


def _kind(kind: str, *listing: str) -> Rule:
    """The rights ``flow`` itself asks for on a kind: ``READ_X``/``LS_XS``, ``ADD_X``..."""
    return Rule((f"READ_{kind}", *listing), (f"ADD_{kind}",), (f"UPDATE_{kind}",),
                (f"DELETE_{kind}",))  # fmt: skip


# Kinds without rights of their own take the generic verbs, as ``flow add`` does for them.
GENERIC = Rule(("READ",), ("CREATE",), ("UPDATE",), ("DELETE",))
PROCESSOR = _kind("PROCESSOR", "LS_PROCESSORS", "VIEW_PROCESSOR")
SOCKET = _kind("SOCKET", "LS_SOCKETS")
PLUG = _kind("PLUG", "LS_PLUGS")
_USER_READ = ("READ_USER", "LS_USERS", "LS_USER")
_MY_ROWS = "user_id IN " + _ME

RULES: dict[str, Rule] = {
    "processor": PROCESSOR,
    "socket": SOCKET,
    "queue": _kind("QUEUE", "LS_QUEUES"),
    "plug": PLUG,
    "node": _kind("NODE", "LS_NODES"),
    "agent": _kind("AGENT", "LS_AGENTS"),
    "scheduler": _kind("SCHEDULER", "LS_SCHEDULERS"),
    # Parts of a kind follow its rights: a socket's task is made with the socket.
    "task": PROCESSOR | SOCKET,
    "argument": SOCKET | PLUG | GENERIC,
    "deployment": PROCESSOR | GENERIC,
    "network": GENERIC,
    # Written by the engine (the owner) alone; readable with the matching right.
    "worker": Rule(("LS_WORKERS", "READ_AGENT", "LS_AGENTS")),
    "gate": Rule(PLUG.read),
    "join_state": Rule(PLUG.read),
    "work": Rule(("READ_SCHEDULER", "LS_SCHEDULERS")),
    "jobs": Rule(("READ_SCHEDULER", "LS_SCHEDULERS")),
    "log": Rule(("READ_LOG",)),
    "call": Rule(("READ_CALL",), scoped="socket_id IN {sockets}"),
    "event": Rule(
        ("READ_CALL",),
        scoped=("call_id IN (SELECT c.id FROM {s}.call c WHERE c.socket_id IN {sockets})"),
    ),
    # Per-socket, per-minute aggregates of the calls (``flow ls metrics``): read like calls.
    "metrics": Rule(("READ_CALL",), scoped="socket_id IN {sockets}"),
    "alembic_version": Rule(("READ", "DB_INIT")),
    **{t: GENERIC for t in ("action", "container", "file", "flow", "versions", "flows_versions")},
    # Users, roles and grants are changed through flow only (which manages the role too).
    "users": Rule(_USER_READ, own="name = current_user"),
    "role": Rule(("READ_ROLE", *_USER_READ)),
    "privilege": Rule(("READ_PRIVILEGE", "READ_ROLE", *_USER_READ)),
    "user_privileges": Rule(("READ_PRIVILEGE", *_USER_READ), own=_MY_ROWS),
    "user_privileges_revoked": Rule(("READ_PRIVILEGE", *_USER_READ), own=_MY_ROWS),
    "user_processor_privileges": Rule(("READ_PRIVILEGE", *_USER_READ), own=_MY_ROWS),
    "user_roles": Rule(("READ_ROLE", *_USER_READ), own=_MY_ROWS),
    "role_processor_privileges": Rule(("READ_ROLE", "READ_PRIVILEGE", *_USER_READ)),
    "role_privileges": Rule(("READ_ROLE", "READ_PRIVILEGE", *_USER_READ)),
    # Appended by flow alone (its triggers refuse changes); read as `flow ls audit` reads it.
    "audit": Rule(("READ_AUDIT",)),
}
# Never granted to a user's role (no rule above, listed for the record and the tests).
SECRET_TABLES = ("login", "passwords", "settings", "login_failure")

_VIEW_SQL = """
CREATE VIEW {s}.{view} AS
SELECT p."right" FROM {s}.privilege p
  JOIN {s}.user_privileges x ON x.privilege_id = p.id
  JOIN {s}.users u ON u.id = x.user_id WHERE u.name = current_user
UNION
SELECT p."right" FROM {s}.privilege p
  JOIN {s}.role_privileges x ON x.privilege_id = p.id
  JOIN {s}.user_roles ur ON ur.role_id = x.role_id
  JOIN {s}.users u ON u.id = ur.user_id WHERE u.name = current_user
EXCEPT
SELECT p."right" FROM {s}.privilege p
  JOIN {s}.user_privileges_revoked x ON x.privilege_id = p.id
  JOIN {s}.users u ON u.id = x.user_id WHERE u.name = current_user
"""
_MINE = "(SELECT w.id FROM {s}.users w WHERE w.name = current_user)"
_NOT_REVOKED = (
    " AND p.id NOT IN (SELECT v.privilege_id FROM {s}.user_privileges_revoked v"
    " WHERE v.user_id = " + _MINE + ")"
)
_VIEW_ON_SQL = (
    "CREATE VIEW {s}.{view} AS"
    " SELECT g.\"right\", g.processor_id, k.id AS socket_id FROM ("
    " SELECT p.\"right\", x.processor_id FROM {s}.privilege p"
    " JOIN {s}.user_processor_privileges x ON x.privilege_id = p.id"
    " WHERE x.user_id = " + _MINE + _NOT_REVOKED
    + " UNION SELECT p.\"right\", x.processor_id FROM {s}.privilege p"
    " JOIN {s}.role_processor_privileges x ON x.privilege_id = p.id"
    " JOIN {s}.user_roles ur ON ur.role_id = x.role_id"
    " WHERE ur.user_id = " + _MINE + _NOT_REVOKED
    + ") g LEFT JOIN {s}.socket k ON k.processor_id = g.processor_id"
)  # fmt: skip
_FUNCTION_ON_SQL = """
CREATE FUNCTION {s}.{function}(processor text, VARIADIC wanted text[]) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT {s}.{holds}(VARIADIC wanted) OR EXISTS (
    SELECT 1 FROM {s}.{view} m WHERE m.processor_id = $1 AND m."right" = ANY(wanted))
$$
"""
_FUNCTION_SQL = """
CREATE FUNCTION {s}.{function}(VARIADIC wanted text[]) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT EXISTS (SELECT 1 FROM {s}.{view} m WHERE m."right" = 'ALL' OR m."right" = ANY(wanted))
$$
"""


def _schema(cur: Any) -> str:
    cur.execute("SELECT current_schema()")
    return str(cur.fetchone()[0])


def _q(cur: Any, name: str) -> str:
    from psycopg2 import sql

    return str(sql.Identifier(name).as_string(cur))


def _lit(cur: Any, value: str) -> str:
    from psycopg2 import sql

    return str(sql.Literal(value).as_string(cur))


def unsecure(cur: Any) -> None:
    """Drop the view and the function (their policies go with them): a migration may then
    change the columns they read. :func:`secure` puts everything back."""
    s = _q(cur, _schema(cur))
    cur.execute(f"DROP FUNCTION IF EXISTS {s}.{FUNCTION_ON}(text, text[]) CASCADE")
    cur.execute(f"DROP FUNCTION IF EXISTS {s}.{FUNCTION}(text[]) CASCADE")
    cur.execute(f"DROP VIEW IF EXISTS {s}.{VIEW_ON} CASCADE")
    cur.execute(f"DROP VIEW IF EXISTS {s}.{VIEW} CASCADE")


def _tables(cur: Any) -> list[tuple[str, bool]]:
    cur.execute(
        f"SELECT c.relname, c.relrowsecurity FROM pg_class c WHERE {_IN_SCHEMA} ORDER BY c.relname"
    )
    return [(str(name), bool(on)) for name, on in cur.fetchall()]


def _condition(cur: Any, s: str, rights: tuple[str, ...], own: str | None,
               scoped: str | None = None) -> str:  # fmt: skip
    listed = ", ".join(_lit(cur, r) for r in dict.fromkeys(rights))
    holds = f"(SELECT {s}.{FUNCTION}({listed}))"
    either = [holds]
    if own:
        either.append(own.format(s=s))
    if scoped:
        sockets = f'(SELECT m.socket_id FROM {s}.{VIEW_ON} m WHERE m."right" IN ({listed}))'
        either.append(scoped.format(s=s, sockets=sockets))
    return "(" + " OR ".join(either) + ")"


def secure(connection: Any) -> list[str]:
    """Enable row-level security with shellflow's policies on every table; the tables on
    which it was not enabled before. Grants follow for every user's role."""
    cur = _cursor(connection)
    unsecure(cur)
    s = _q(cur, _schema(cur))
    cur.execute(_VIEW_SQL.format(s=s, view=VIEW))
    cur.execute(_FUNCTION_SQL.format(s=s, function=FUNCTION, view=VIEW))
    cur.execute(_VIEW_ON_SQL.format(s=s, view=VIEW_ON))
    cur.execute(_FUNCTION_ON_SQL.format(s=s, function=FUNCTION_ON, holds=FUNCTION, view=VIEW_ON))
    enabled, statements = [], []
    for table, on in _tables(cur):
        t = f"{s}.{_q(cur, table)}"
        if not on:
            statements.append(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
            enabled.append(table)
        rule = RULES.get(table)
        for field, command in _POLICIES.items():
            policy = f"shellflow_{field}"
            statements.append(f"DROP POLICY IF EXISTS {policy} ON {t}")
            rights: tuple[str, ...] = getattr(rule, field) if rule else ()
            if not rights:
                continue
            own, scoped = (rule.own, rule.scoped) if rule and field == "read" else (None, None)
            check = _condition(cur, s, rights, own, scoped)
            clause = {"read": f"USING {check}", "delete": f"USING {check}",
                      "add": f"WITH CHECK {check}"}  # fmt: skip
            how = clause.get(field, f"USING {check} WITH CHECK {check}")
            statements.append(f"CREATE POLICY {policy} ON {t} FOR {command} {how}")
    cur.execute(";\n".join(statements))  # one round trip
    for role in user_roles(cur):
        grant_to(cur, role)
    return enabled


def _cursor(connection: Any) -> Any:
    from shellflow.model.pg_roles import raw_cursor

    return raw_cursor(connection)


def user_roles(cur: Any) -> list[str]:
    """The roles of this database's users that shellflow manages."""
    from shellflow.model.pg_roles import ours

    cur.execute("SELECT name FROM users ORDER BY name")
    return [name for (name,) in cur.fetchall() if ours(cur, name)]


def revoke_from(cur: Any, role: str) -> None:
    """Take back everything this database's schema granted ``role``."""
    s, r = _q(cur, _schema(cur)), _q(cur, role)
    cur.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}")
    cur.execute(f"REVOKE ALL ON SCHEMA {s} FROM {r}")


def grant_to(cur: Any, role: str) -> bool:
    """Grant ``role`` exactly what the rules allow (row-level security narrows it to rows):
    usage of the schema, the commands of each ruled table, the view of its own rights.
    False (nothing granted) on a database :func:`secure` has not secured yet.

    The statements go in one round trip: a database with many users re-grants them all on
    every ``flow db migrate``.
    """
    revoke_from(cur, role)
    s, r = _q(cur, _schema(cur)), _q(cur, role)
    cur.execute(
        "SELECT to_regclass(quote_ident(current_schema()) || %s) IS NOT NULL", (f".{VIEW}",)
    )
    if not cur.fetchone()[0]:
        return False  # not secured yet: a grant would show every row
    # Only tables under row-level security: a grant on any other would show every row.
    present = {name for name, on in _tables(cur) if on}
    columns = _columns(cur)
    statements = [f"GRANT USAGE ON SCHEMA {s} TO {r}", f"GRANT SELECT ON {s}.{VIEW} TO {r}",
                  f"GRANT SELECT ON {s}.{VIEW_ON} TO {r}"]  # fmt: skip
    for table, rule in RULES.items():
        if table not in present:
            continue
        t = f"{s}.{_q(cur, table)}"
        commands = [c for f, c in _POLICIES.items() if getattr(rule, f) and f != "read"]
        if commands:
            statements.append(f"GRANT {', '.join(commands)} ON {t} TO {r}")
        readable = ", ".join(_q(cur, c) for c in columns.get(table, ()))
        if rule.read and readable:
            statements.append(f"GRANT SELECT ({readable}) ON {t} TO {r}")
    cur.execute(";\n".join(statements))
    return True


def _columns(cur: Any) -> dict[str, list[str]]:
    """Each table's columns a role may read: all but the secret hashes."""
    cur.execute(
        "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        f" WHERE {_IN_SCHEMA}"
        " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
    )
    found: dict[str, list[str]] = {}
    for table, column in cur.fetchall():
        if column not in SECRET_COLUMNS:
            found.setdefault(table, []).append(column)
    return found
