"""Running a processor's code as a dedicated unprivileged OS user (``flow agent start
--run-as USER``).

An agent running as root would otherwise run every repository's build code and every
function as root. With ``--run-as USER`` it keeps for itself what holds secrets (its home:
the ini file, the database of the embedded deployment, the git mirrors, whose remote URL may
carry a token, the logs) and gives the user a workspace of its own, in the user's home
directory::

    ~USER/.shellflow-agent/<digest of the agent's home>/   0700, owned by USER
        src/<venv name>/     a copy of the pinned commit's files (no .git), owned by USER
        venvs/<venv name>/   the virtualenv, made by the agent and then given to USER
        workers/<processor>/ each worker's working folder
        spool/...            the workers' record spools (the worker's home is the workspace)

pip runs as the user in its copy of the code (a build writes into its source tree), and each
worker runs as the user, with the user's ``HOME``, no supplementary groups, and its settings
on a descriptor the agent opened (``shellflow.engine.worker.credentials``): the user never
needs, and never gets, a right to any file of the agent's home. Logs are files the agent
opens and hands over as standard output.

``--create-user`` has the agent create a missing user with ``useradd --system`` (its own
group, a home directory, no login shell). The embedded deployment cannot be served so: its
database and broker are files in the agent's home, which the user must not read, so an agent
asked for ``--run-as`` refuses to start unless the database and broker are servers.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shellflow.config import Settings
from shellflow.errors import CallFailed, PermissionDenied, UsageError
from shellflow.urls import Backend, backend_of

FOLDER = ".shellflow-agent"
NOLOGIN = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
# Backends whose data lives in files of the agent's home (see the module's docstring).
LOCAL_BACKENDS = (Backend.SQLITE, Backend.REDIS_SOCKET, Backend.MEMORY)


@dataclass(frozen=True)
class Account:
    """The OS user a processor's code runs as, and its workspace."""

    name: str
    uid: int
    gid: int
    home: Path
    workspace: Path

    def popen(self) -> dict[str, Any]:
        """What ``subprocess`` needs to start a process as this user (no inherited groups)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "umask": 0o077}

    def env(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` for a process of this user: its own home and names."""
        return env | {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name}

    def give(self, path: Path) -> None:
        """Make ``path`` (a folder and all it holds) the user's, private to it."""
        os.chown(path, self.uid, self.gid, follow_symlinks=False)
        for folder, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                os.chown(os.path.join(folder, name), self.uid, self.gid, follow_symlinks=False)

    def folder(self, path: Path) -> Path:
        """A folder of the workspace, made if missing, the user's, 0700."""
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chown(path, self.uid, self.gid)
        path.chmod(0o700)
        return path

    def copy(self, tree: Path, target: Path) -> Path:
        """A copy of a checkout's files (not its ``.git``) for the user to build in."""
        if not target.exists():
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(tree, partial, symlinks=True, ignore=shutil.ignore_patterns(".git"))
            self.give(partial)
            partial.rename(target)
        return target


def refuse_local_services(settings: Settings) -> None:
    """An embedded database or broker cannot be shared with the user (exit 2)."""
    for key in ("db", "broker", "backend", "pubsub"):
        if backend_of(settings[key]) in LOCAL_BACKENDS:
            raise UsageError(
                f"--run-as needs a database and broker on servers: the {key} is a file of the"
                " agent's home, which the run-as user must not read (set db, broker, backend"
                " and pubsub to postgresql://, amqp:// or redis:// URLs)"
            )


def account(user: str, agent_home: Path, create: bool = False) -> Account:
    """The account ``user`` (created when missing and ``create``), with its workspace ready.

    Only root may run code as another user (exit 5 otherwise); root itself, or any account
    of uid 0, is refused (exit 2): it would defeat the purpose.
    """
    if os.geteuid() != 0:
        raise PermissionDenied("--run-as needs the agent to run as root")
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        if not create:
            raise UsageError(
                f"no OS user {user!r} (add --create-user to have the agent create it)"
            ) from None
        entry = _create(user)
    if entry.pw_uid == 0:
        raise UsageError(f"--run-as {user}: the user must not be root (uid 0)")
    home = Path(entry.pw_dir)
    if not home.is_dir():
        raise UsageError(f"--run-as {user}: its home directory {home} does not exist")
    digest = hashlib.sha1(str(agent_home.resolve()).encode()).hexdigest()[:12]
    found = Account(user, entry.pw_uid, entry.pw_gid, home, home / FOLDER / digest)
    found.folder(home / FOLDER)
    found.folder(found.workspace)
    return found


def _create(user: str) -> pwd.struct_passwd:
    shell = next((s for s in NOLOGIN if os.path.exists(s)), "/bin/false")
    command = ["useradd", "--system", "--user-group", "--create-home", "--shell", shell, user]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CallFailed(f"cannot create user {user!r}: {exc}") from None
    if done.returncode != 0:
        reason = " ".join((done.stderr or done.stdout).split()) or f"exit {done.returncode}"
        raise CallFailed(f"cannot create user {user!r}: useradd: {reason}")
    return pwd.getpwnam(user)
