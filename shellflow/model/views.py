"""What ``flow ls`` shows for each kind of object, as plain SQL over the model's tables.

Kept free of SQLAlchemy on purpose: importing SQLAlchemy alone costs about 20 times a bare
Python start, and listing (like shell completion) must answer fast. A test checks every
table and column named here against the ORM's metadata, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A column: (output key, SQL expression, kind); kind is str, int, float, bool or time, or
# masked: text that may hold a URL with its password (a git URL, git's error about it),
# shown with the password replaced by *** (shellflow.redact).
Column = tuple[str, str, str]


@dataclass(frozen=True)
class Related:
    """A list shown under one object: ``sql`` takes the object's id as its only parameter."""

    key: str
    columns: tuple[str, ...]
    sql: str
    times: tuple[str, ...] = ()  # columns holding times, shown as ISO UTC on both databases


@dataclass(frozen=True)
class View:
    table: str
    columns: tuple[Column, ...]
    joins: str = ""
    order: str = "o.name"
    related: tuple[Related, ...] = field(default_factory=tuple)
    unique: bool = True  # False: ``-n NAME`` filters a list instead of naming one object

    def select(self, where: str = "") -> str:
        cols = ", ".join(expr for _, expr, _ in self.columns)
        sql = f"SELECT o.id, {cols} FROM {self.table} o {self.joins}"
        if where:
            sql += f" WHERE {where}"
        return f"{sql} ORDER BY {self.order}"


def _std(*cols: Column) -> tuple[Column, ...]:
    return (("name", "o.name", "str"), *cols)


_STATUS: Column = ("status", "o.status", "str")
_CREATED: Column = ("created", "o.created", "time")
_UPDATED: Column = ("lastupdated", "o.lastupdated", "time")
_OWNER: Column = ("owner", "o.owner", "str")

_PLUGS_OF_SOCKET = Related(
    "plugs",
    ("name", "direction", "type", "socket", "argument", "queue"),
    "SELECT p.name, CASE WHEN p.source_id = ? THEN 'out' ELSE 'in' END, p.type,"
    " CASE WHEN p.source_id = ? THEN t.name ELSE s.name END, a.name, q.name"
    " FROM plug p JOIN socket s ON s.id = p.source_id JOIN socket t ON t.id = p.target_id"
    " LEFT JOIN argument a ON a.id = p.argument_id LEFT JOIN queue q ON q.id = p.queue_id"
    " WHERE p.source_id = ? OR p.target_id = ? ORDER BY p.name",
)

# What the scheduler said of the socket (a schedule it skipped, and why), newest first.
_LOG_OF_SOCKET = Related(
    "log",
    ("text",),
    "SELECT text FROM log WHERE oid = ? AND discriminator = 'socket'"
    " ORDER BY created DESC, id DESC LIMIT 10",
)

_NOT_REVOKED = (
    " AND p.id NOT IN (SELECT v.privilege_id FROM user_privileges_revoked v WHERE v.user_id = ?)"
)
_ON = " || ' on ' || o.name"  # a right held on one processor alone: "READ_CALL on proc1"
_EFFECTIVE = (
    "SELECT p.name, 'direct', x.granted_by, x.granted_at FROM privilege p"
    " JOIN user_privileges x ON x.privilege_id = p.id WHERE x.user_id = ?" + _NOT_REVOKED
    + " UNION ALL SELECT p.name, 'role ' || r.name, x.granted_by, x.granted_at FROM privilege p"
    " JOIN role_privileges x ON x.privilege_id = p.id JOIN role r ON r.id = x.role_id"
    " JOIN user_roles ur ON ur.role_id = r.id WHERE ur.user_id = ?" + _NOT_REVOKED
    + " UNION ALL SELECT p.name" + _ON + ", 'direct', x.granted_by, x.granted_at"
    " FROM privilege p JOIN user_processor_privileges x ON x.privilege_id = p.id"
    " JOIN processor o ON o.id = x.processor_id WHERE x.user_id = ?" + _NOT_REVOKED
    + " UNION ALL SELECT p.name" + _ON + ", 'role ' || r.name, x.granted_by, x.granted_at"
    " FROM privilege p JOIN role_processor_privileges x ON x.privilege_id = p.id"
    " JOIN processor o ON o.id = x.processor_id JOIN role r ON r.id = x.role_id"
    " JOIN user_roles ur ON ur.role_id = r.id WHERE ur.user_id = ?" + _NOT_REVOKED
    + " UNION ALL SELECT p.name, 'revoked', x.granted_by, x.granted_at FROM privilege p"
    " JOIN user_privileges_revoked x ON x.privilege_id = p.id WHERE x.user_id = ?"
    " ORDER BY 1, 2"
)  # fmt: skip

VIEWS: dict[str, View] = {
    "queue": View(
        "queue",
        _std(
            ("type", "o.qtype", "str"),
            ("durable", "o.durable", "bool"),
            ("message_ttl", "o.message_ttl", "int"),
            ("expires", "o.expires", "int"),
            ("network", "n.name", "str"),
            _CREATED,
        ),
        "LEFT JOIN network n ON n.id = o.network_id",
        related=(
            Related(
                "sockets", ("name",), "SELECT name FROM socket WHERE queue_id = ? ORDER BY name"
            ),
            Related("plugs", ("name",), "SELECT name FROM plug WHERE queue_id = ? ORDER BY name"),
        ),
    ),
    "processor": View(
        "processor",
        _std(
            ("module", "o.module", "str"),
            ("gitrepo", "o.gitrepo", "masked"),
            ("branch", "o.branch", "str"),
            ("commit", 'o."commit"', "str"),
            ("deployed_commit", "o.deployed_commit", "str"),
            ("hostname", "o.hostname", "str"),
            ("concurrency", "o.concurrency", "int"),
            ("min_workers", "o.min_workers", "int"),
            ("max_workers", "o.max_workers", "int"),
            ("workers_current", "o.workers_current", "int"),
            ("workers_desired", "o.workers_desired", "int"),
            ("scale_reason", "o.scale_reason", "str"),
            _STATUS,
            ("requested_status", "o.requested_status", "str"),
            ("status_reason", "o.status_reason", "masked"),
        ),
        related=(
            Related(
                "sockets",
                ("name", "task", "queue"),
                "SELECT s.name, t.name, q.name FROM socket s JOIN task t ON t.id = s.task_id"
                " JOIN queue q ON q.id = s.queue_id WHERE s.processor_id = ? ORDER BY s.name",
            ),
            Related(  # its shares when spread over several nodes (engine.fleet.spread)
                "deployments",
                (
                    "name",
                    "node",
                    "hostname",
                    "cpus",
                    "workers_current",
                    "workers_desired",
                    "scale_reason",
                ),
                "SELECT d.name, n.name, d.hostname, d.cpus, d.workers_current,"
                " d.workers_desired, d.scale_reason FROM deployment d LEFT JOIN node n"
                " ON n.id = d.node_id WHERE d.processor_id = ? ORDER BY d.name",
            ),
        ),
    ),
    "socket": View(
        "socket",
        _std(
            ("processor", "p.name", "str"),
            ("queue", "q.name", "str"),
            ("task", "t.function", "str"),
            ("module", "t.module", "str"),
            ("interval", "o.interval", "int"),
            ("cron", "o.cron", "str"),
            ("wait", "o.wait", "bool"),
            _STATUS,
        ),
        "JOIN processor p ON p.id = o.processor_id JOIN queue q ON q.id = o.queue_id"
        " JOIN task t ON t.id = o.task_id",
        related=(_PLUGS_OF_SOCKET, _LOG_OF_SOCKET),
    ),
    "plug": View(
        "plug",
        _std(
            ("type", "o.type", "str"),
            ("source", "s.name", "str"),
            ("target", "t.name", "str"),
            ("argument", "a.name", "str"),
            ("queue", "q.name", "str"),
            ("processor", "p.name", "str"),
        ),
        "JOIN socket s ON s.id = o.source_id JOIN socket t ON t.id = o.target_id"
        " JOIN queue q ON q.id = o.queue_id JOIN processor p ON p.id = o.processor_id"
        " LEFT JOIN argument a ON a.id = o.argument_id",
    ),
    "argument": View(
        "argument",
        (
            ("name", "o.name", "str"),
            ("task", "t.name", "str"),
            ("position", "o.position", "int"),
            ("kind", "o.kind", "int"),
        ),
        "JOIN task t ON t.id = o.task_id",
        order="t.name, o.position, o.name",
        unique=False,
    ),
    "node": View(
        "node",
        _std(
            ("hostname", "o.hostname", "str"),
            ("cpus", "o.cpus", "int"),
            ("cpuload", "o.cpuload", "float"),
            ("state", "o.state", "str"),
            ("scheduler", "s.name", "str"),
            ("network", "n.name", "str"),
            ("heartbeat", "o.heartbeat", "time"),
            _STATUS,
        ),
        "LEFT JOIN scheduler s ON s.id = o.scheduler_id LEFT JOIN network n ON n.id = o.network_id",
        related=(Related("agent", ("name",), "SELECT name FROM agent WHERE node_id = ?"),),
    ),
    "agent": View(
        "agent",
        _std(
            ("node", "n.name", "str"),
            ("hostname", "o.hostname", "str"),
            ("cpus", "o.cpus", "int"),
            ("pid", "o.pid", "int"),
            ("heartbeat", "o.heartbeat", "time"),
            _STATUS,
        ),
        "JOIN node n ON n.id = o.node_id",
    ),
    "scheduler": View(
        "scheduler",
        _std(
            ("strategy", "o.strategy", "str"),
            ("interval", "o.interval", "int"),
            ("network", "n.name", "str"),
            _STATUS,
        ),
        "LEFT JOIN network n ON n.id = o.network_id",
        related=(
            Related(
                "nodes", ("name",), "SELECT name FROM node WHERE scheduler_id = ? ORDER BY name"
            ),
        ),
    ),
    "deployment": View(
        "deployment",
        _std(
            ("processor", "p.name", "str"),
            ("node", "nd.name", "str"),
            ("hostname", "o.hostname", "str"),
            ("cpus", "o.cpus", "int"),
            _STATUS,
        ),
        "JOIN processor p ON p.id = o.processor_id LEFT JOIN node nd ON nd.id = o.node_id",
    ),
    "network": View(
        "network",
        _std(_OWNER, _CREATED),
        related=(
            Related(
                "queues", ("name",), "SELECT name FROM queue WHERE network_id = ? ORDER BY name"
            ),
            Related("nodes", ("name",), "SELECT name FROM node WHERE network_id = ? ORDER BY name"),
            Related(
                "schedulers",
                ("name",),
                "SELECT name FROM scheduler WHERE network_id = ? ORDER BY name",
            ),
        ),
    ),
    "user": View(
        "users",
        _std(("email", "o.email", "str"), _OWNER, _CREATED),
        related=(
            Related(
                "privileges",
                ("right",),
                "SELECT p.name FROM privilege p JOIN user_privileges up"
                " ON up.privilege_id = p.id WHERE up.user_id = ? ORDER BY p.name",
            ),
            Related(
                "roles",
                ("name",),
                "SELECT r.name FROM role r JOIN user_roles ur ON ur.role_id = r.id"
                " WHERE ur.user_id = ? ORDER BY r.name",
            ),
            # Spec listing 18: each right the user holds (or was refused) with where it
            # comes from, who granted (or revoked) it and when (from the audit trail where
            # it tells: shellflow.model.listing.get_object).
            Related(
                "effective",
                ("right", "source", "by", "last_updated"),
                _EFFECTIVE,
                times=("last_updated",),
            ),
        ),
    ),
    "role": View(
        "role",
        _std(_OWNER, _CREATED),
        related=(
            Related(
                "privileges",
                ("right",),
                "SELECT p.name FROM privilege p JOIN role_privileges rp"
                " ON rp.privilege_id = p.id WHERE rp.role_id = ? ORDER BY p.name",
            ),
        ),
    ),
    # A privilege's rows are its grants: one per user or role holding the right.
    "privilege": View(
        "(SELECT p.id AS id, p.name AS name, u.name AS grantee_user, NULL AS grantee_role,"
        " NULL AS processor FROM privilege p JOIN user_privileges x ON x.privilege_id = p.id"
        " JOIN users u ON u.id = x.user_id"
        " UNION ALL SELECT p.id, p.name, NULL, r.name, NULL FROM privilege p"
        " JOIN role_privileges x ON x.privilege_id = p.id JOIN role r ON r.id = x.role_id"
        " UNION ALL SELECT p.id, p.name, u.name, NULL, o.name FROM privilege p"
        " JOIN user_processor_privileges x ON x.privilege_id = p.id"
        " JOIN users u ON u.id = x.user_id JOIN processor o ON o.id = x.processor_id"
        " UNION ALL SELECT p.id, p.name, NULL, r.name, o.name FROM privilege p"
        " JOIN role_processor_privileges x ON x.privilege_id = p.id"
        " JOIN role r ON r.id = x.role_id JOIN processor o ON o.id = x.processor_id)",
        (
            ("name", "o.name", "str"),
            ("user", "o.grantee_user", "str"),
            ("role", "o.grantee_role", "str"),
            ("processor", "o.processor", "str"),
        ),
        # COALESCE: SQLite sorts NULLs first and PostgreSQL last; grants to roles lead on both.
        order="o.name, COALESCE(o.grantee_user, ''), COALESCE(o.grantee_role, ''),"
        " COALESCE(o.processor, '')",
        unique=False,
    ),
}

KINDS: tuple[str, ...] = tuple(VIEWS)
