"""Nodes of a fleet as separate hosts (issue 19): each agent in its own Linux network and UTS
namespace, so each has its own hostname and its own link to the services.

:func:`node_fleet` makes, per test, a bridge on the host and one network namespace per node
(``sf-PID-LAB-NODE``), joined to the bridge by a veth pair, on a free private /24; starts a
private PostgreSQL, Redis and RabbitMQ (``tests/private_*.py``) listening on the bridge's
address (the shared servers listen on loopback only, which a namespace cannot reach); and
starts each agent as ``ip netns exec NS unshare --uts sh -c 'hostname NODE; exec flow agent
start'``, without ``--node``: the node is named by its own hostname, as on a real machine.
:meth:`NetnsFleet.cut` takes the host end of a node's link down (its packets are lost, its
connections hang, nothing is refused), :meth:`NetnsFleet.restore` brings it up again.
Everything it made is undone at the end, by pid and by name, whatever the test did.

Where namespaces cannot be made (not root, no ``ip`` or ``unshare``, ``ip netns add``
refused, or ``SFTEST_NETNS=0`` in the environment), it falls back to
:class:`tests.engine.fleet.Fleet` (agents of this machine against the shared PostgreSQL and
Redis and a private RabbitMQ on loopback, each with its own home and ``--node`` name; a cut
is a ``SIGSTOP``) and says so with a :class:`NamespacesUnavailable` warning in the test
output.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import FlowRunner, _flow_executable
from tests.engine.conftest import deploy
from tests.engine.fleet import Fleet, _is_worker

LOCK = Path(tempfile.gettempdir()) / "shellflow-netns.lock"  # one subnet chosen at a time
POOL = ipaddress.IPv4Network("10.200.0.0/13")  # where the labs' /24s are taken from
_labs = itertools.count()
# The private RabbitMQ's heartbeat, in seconds (a server setting: the lower of the server's
# and the client's wins); 0: RabbitMQ's own, 60 s, so the workers' 10 s
# (shellflow.engine.transport.celery_app.BROKER_HEARTBEAT) is what the tests exercise. A call
# that a cut node's worker holds (unacknowledged) comes back only once RabbitMQ gives that
# connection up: about 28 s after the cut at 10 s (178-179 s at Celery's default of 120 s,
# negotiated down to 60 s). ``SFTEST_BROKER_HEARTBEAT=N`` sets the server's to N seconds.
BROKER_HEARTBEAT = 0


class NamespacesUnavailable(UserWarning):
    """Network namespaces could not be made here: the fleet tests ran on the fallback."""


class _Refused(Exception):
    pass


def _ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise _Refused(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result.stdout


def unavailable() -> str | None:
    """Why namespaces cannot be tried here at all, or None."""
    if os.environ.get("SFTEST_NETNS") == "0":
        return "SFTEST_NETNS=0 in the environment"
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform})"
    if os.geteuid() != 0:
        return "not root (ip netns and unshare --uts need CAP_SYS_ADMIN)"
    missing = [tool for tool in ("ip", "unshare") if shutil.which(tool) is None]
    return f"no {' or '.join(missing)} on PATH" if missing else None


@dataclass
class Links:
    """A bridge on the host and, per node, a namespace joined to it by a veth pair.

    Interface names are at most 15 characters: ``sf`` + the pid in hex + the lab's number,
    then ``b`` (the bridge) or ``h``/``n`` + the node's index (host end, namespace end).
    """

    token: str
    lab: str
    prefix: str = ""  # the first three octets of the lab's /24
    namespaces: dict[str, str] = field(default_factory=dict)  # node -> namespace
    veths: dict[str, str] = field(default_factory=dict)  # node -> the veth's host end
    made: list[tuple[str, str]] = field(default_factory=list)  # ("netns" | "link", name)

    @classmethod
    def new(cls) -> Links:
        lab = next(_labs)
        return cls(token=f"sf{os.getpid():x}{lab}", lab=f"sf-{os.getpid()}-{lab}")

    @property
    def host(self) -> str:
        """The host's address on the bridge: where the private servers listen."""
        return f"{self.prefix}.1"

    def address(self, index: int) -> str:
        return f"{self.prefix}.{10 + index}"

    def create(self, nodes: tuple[str, ...]) -> None:
        """Make the bridge and one linked namespace per node; undo all of it on a refusal."""
        try:
            bridge = f"{self.token}b"
            with open(LOCK, "w") as lock:  # two test processes never pick the same /24
                fcntl.flock(lock, fcntl.LOCK_EX)
                self.prefix = _free_prefix()
                _ip("link", "add", bridge, "type", "bridge")
                self.made.append(("link", bridge))
                _ip("addr", "add", f"{self.host}/24", "dev", bridge)
            _ip("link", "set", bridge, "up")
            for index, node in enumerate(nodes, 1):
                ns, host_end, ns_end = f"{self.lab}-{node}", f"{self.token}h{index}", "eth0"
                _ip("netns", "add", ns)
                self.made.append(("netns", ns))
                self.namespaces[node] = ns
                _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end, "netns", ns)
                self.made.append(("link", host_end))
                self.veths[node] = host_end
                _ip("link", "set", host_end, "master", bridge)
                _ip("link", "set", host_end, "up")
                _ip("-n", ns, "addr", "add", f"{self.address(index)}/24", "dev", ns_end)
                _ip("-n", ns, "link", "set", ns_end, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        except _Refused as exc:
            self.delete()
            raise NamespacesUnavailable(str(exc)) from None

    def cut(self, node: str) -> None:
        _ip("link", "set", self.veths[node], "down")

    def restore(self, node: str) -> None:
        _ip("link", "set", self.veths[node], "up")

    def pids(self, node: str) -> list[int]:
        """Every process in ``node``'s network namespace."""
        return [int(p) for p in _ip("netns", "pids", self.namespaces[node]).split()]

    def delete(self) -> None:
        """Kill every process left in the namespaces (by pid: only this lab's agents and
        workers run there), then delete the namespaces and links, newest first."""
        for node in self.namespaces:
            with contextlib.suppress(_Refused):
                for pid in self.pids(node):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
        for kind, name in reversed(self.made):
            with contextlib.suppress(_Refused):
                _ip(*(("netns", "del", name) if kind == "netns" else ("link", "del", name)))
        self.made.clear()


def _free_prefix() -> str:
    """A /24 of :data:`POOL` that no address or route of this host overlaps, from a place
    that depends on the pid (so that parallel test processes rarely look at the same one)."""
    shown = _ip("-4", "-o", "addr", "show") + _ip("-4", "route", "show", "table", "all")
    taken: list[ipaddress.IPv4Network] = []
    for found in re.findall(r"\b(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", shown):
        with contextlib.suppress(ValueError):
            taken.append(ipaddress.IPv4Network(found, strict=False))
    subnets = list(POOL.subnets(new_prefix=24))
    start = os.getpid() % len(subnets)
    for net in subnets[start:] + subnets[:start]:
        if not any(net.overlaps(other) for other in taken if other.prefixlen >= 8):
            return str(net.network_address).rsplit(".", 1)[0]
    raise _Refused(f"no free /24 in {POOL}")


@dataclass
class NetnsFleet(Fleet):
    """A :class:`Fleet` whose nodes are namespaces of :attr:`links`."""

    links: Links = field(default_factory=Links.new)
    namespaced = True

    def command(self, node: str) -> list[str]:
        """``node``'s agent in its namespace, with ``node`` as its hostname and no ``--node``."""
        agent = [*_flow_executable(), "agent", "start", "--cpus", "2"]
        return ["ip", "netns", "exec", self.links.namespaces[node], "unshare", "--uts",
                "sh", "-c", 'hostname "$0" && exec "$@"', node, *agent]  # fmt: skip

    def processes(self, node: str) -> list[int]:
        """The worker processes (main and pool) in ``node``'s namespace, whoever started them."""
        return [pid for pid in self.links.pids(node) if _is_worker(pid)]

    def cut(self, node: str) -> None:
        """Take the host end of ``node``'s link down: everything on the node runs on, and
        reaches nothing (its packets are lost; connections hang until it comes back)."""
        self.links.cut(node)

    def restore(self, node: str) -> None:
        self.links.restore(node)

    def close(self) -> None:
        for node in self.links.veths:
            with contextlib.suppress(_Refused):
                self.links.restore(node)  # so that the agents can stop cleanly
        super().close()


@contextmanager
def node_fleet(flow: FlowRunner, nodes: tuple[str, ...] = ("n1", "n2", "n3")) -> Iterator[Fleet]:
    """A fleet whose ``nodes`` are namespaces (:class:`NetnsFleet`), or, where those cannot be
    made, agents of this machine (:class:`Fleet`, with a warning saying why). Its agents are
    started by the test (``fleet.start(node)``)."""
    reason, links = unavailable(), Links.new()
    if reason is None:
        try:
            links.create(nodes)
        except NamespacesUnavailable as exc:
            reason = str(exc)
    if reason is not None:
        warnings.warn(
            f"network namespaces unavailable ({reason}): the nodes are agents of this machine "
            "with their own homes and --node names, sharing its hostname, and a cut link is "
            "a SIGSTOP",
            NamespacesUnavailable,
            stacklevel=3,
        )
        from tests.private_rabbitmq import private_rabbitmq

        # The shared PostgreSQL and Redis; a RabbitMQ of its own, for its heartbeat.
        with (
            private_rabbitmq(heartbeat=broker_heartbeat()) as rabbit,
            deploy("distributed", flow, broker=rabbit.url) as d,
        ):
            fleet = Fleet(d)
            try:
                yield fleet
            finally:
                fleet.close()
        return
    try:
        with _servers(links.host) as urls, deploy("distributed", flow, broker=urls[2]) as d:
            from shellflow.model.db import dispose_engines
            from tests import templates

            d.env |= {"SHELLFLOW_DB": urls[0], "SHELLFLOW_BACKEND": urls[1],
                      "SHELLFLOW_PUBSUB": urls[1]}  # fmt: skip
            d.setup("db", "init")
            templates.allow_all(urls[0])
            netns = NetnsFleet(d, links=links)
            try:
                yield netns
            finally:
                netns.close()
                dispose_engines()  # this process's connections, before the server stops
    finally:
        links.delete()


def broker_heartbeat() -> int | None:
    """The private RabbitMQ's heartbeat: :data:`BROKER_HEARTBEAT`, or that of the environment's
    ``SFTEST_BROKER_HEARTBEAT`` (``0``: RabbitMQ's own, 60 s; None is returned for it)."""
    seconds = int(os.environ.get("SFTEST_BROKER_HEARTBEAT", BROKER_HEARTBEAT))
    return seconds or None


@contextmanager
def _servers(host: str) -> Iterator[tuple[str, str, str]]:
    """Private PostgreSQL, Redis and RabbitMQ on ``host``; their URLs (database, Redis,
    broker)."""
    from tests.private_postgres import private_postgres
    from tests.private_rabbitmq import private_rabbitmq
    from tests.private_redis import private_redis

    with ExitStack() as stack:
        rabbit = stack.enter_context(private_rabbitmq(host, heartbeat=broker_heartbeat()))
        pg = stack.enter_context(private_postgres(host))
        redis = stack.enter_context(private_redis(host))
        yield pg.url, redis.url, rabbit.url
