"""A RabbitMQ node of one test's own, for tests that stop or restart the broker.

The shared RabbitMQ on 5672 serves every other test running at the same time (pytest-xdist
runs several): a test that stops it would fail them. This node has its own name, ports,
data folder and Erlang cookie, and is stopped by its own pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.waiting import poll

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


LOOPBACK = "127.0.0.1"


def _free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _answers(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class PrivateRabbit:
    node: str
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    folder: Path
    host: str = LOOPBACK

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}//"

    def ctl(self, *args: str, timeout: float = 120) -> None:
        """``rabbitmqctl -n NODE ARGS`` on this node (stop_app, start_app, ...)."""
        subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", self.node, *args],
            env=self.env, capture_output=True, timeout=timeout, check=True,
        )  # fmt: skip

    def answers(self) -> bool:
        return _answers(self.port, self.host)


@contextmanager
def private_rabbitmq(host: str = LOOPBACK, heartbeat: int | None = None) -> Iterator[PrivateRabbit]:
    """Start a RabbitMQ node on free ports of ``host`` (an address of this machine: loopback,
    or the host end of the namespaced nodes' links, tests/engine/netns.py); stop it (by its
    pid) afterwards. RabbitMQ's own settings otherwise, its heartbeat (60 s, which a client
    may negotiate down) unless ``heartbeat`` says otherwise."""
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        pytest.skip(f"RabbitMQ's scripts are not in {RABBITMQ_BIN}")
    folder = Path(tempfile.mkdtemp(prefix="sf-rabbit-"))
    home = folder / "home"
    home.mkdir()
    cookie = home / ".erlang.cookie"
    cookie.write_text(uuid.uuid4().hex)
    cookie.chmod(0o400)
    (folder / "enabled_plugins").write_text("[].\n")  # no management listener to collide
    conf = [] if heartbeat is None else [f"heartbeat = {heartbeat}"]
    if host != LOOPBACK:  # guest may log in from elsewhere than loopback (a namespace)
        conf.append("loopback_users = none")
    (folder / "rabbitmq.conf").write_text("".join(f"{line}\n" for line in conf))
    node = f"sftest{uuid.uuid4().hex[:8]}@localhost"
    port = _free_port(host)
    env = {
        **os.environ,
        "HOME": str(home),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": host,
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(_free_port()),
        "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
        "RABBITMQ_LOG_BASE": str(folder / "log"),
        "RABBITMQ_PID_FILE": str(folder / "pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
    }
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")], env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    rabbit = PrivateRabbit(node, port, env, process, folder, host)
    try:
        poll(
            lambda: rabbit.answers() or process.poll() is not None,
            120,
            f"a private RabbitMQ on {host}:{port}",
        )
        if process.poll() is not None:
            pytest.fail("the private RabbitMQ did not start:\n" + _tail(folder / "server.log"))
        yield rabbit
    finally:
        _stop(rabbit)
        shutil.rmtree(folder, ignore_errors=True)


def _stop(rabbit: PrivateRabbit) -> None:
    """Stop the node: politely, then by its process group."""
    if rabbit.process.poll() is None:
        try:
            rabbit.ctl("stop", timeout=30)
            rabbit.process.wait(timeout=30)
        except (subprocess.SubprocessError, OSError):
            os.killpg(rabbit.process.pid, signal.SIGKILL)
            rabbit.process.wait()
    pidfile = rabbit.folder / "pid"  # the Erlang VM, should it have outlived its script
    try:
        pid = int(pidfile.read_text().strip())
        if rabbit.node.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():  # still ours
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
