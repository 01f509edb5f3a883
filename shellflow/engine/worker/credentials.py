"""Keeping shellflow's secrets away from the processor's code (its build and its functions).

The agent knows the URLs of the database, the broker, the result backend and the live
channel, passwords included. Neither a processor's build (``setup.py``, a build backend, run
by pip) nor its functions (imported by the worker) may see them, so:

- **No secret in any child's environment.** :func:`scrubbed` is the environment every child
  of the agent gets (pip and the workers): it drops the settings' variables (``SHELLFLOW_DB``,
  ``SHELLFLOW_BROKER``, ``SHELLFLOW_BACKEND``, ``SHELLFLOW_PUBSUB``, ``SHELLFLOW_HOME`` and
  ``SHELLFLOW_INI``, which names the file holding them) and any other variable whose value
  holds one of the URLs or one of their passwords (a ``DATABASE_URL`` or a
  ``CELERY_BROKER_URL`` the agent happened to inherit). ``PATH``, ``HOME``, proxies,
  ``PIP_*`` and shellflow's tuning variables stay. What a process is started with is what
  ``/proc/<pid>/environ`` shows for its whole life, so a secret must never be there at all:
  removing it from ``os.environ`` later would not be enough.
- **The worker's settings come by an inherited descriptor.** :func:`hand_over` writes them
  as JSON to a file that is created 0600 and has no name (``O_TMPFILE``; where the file
  system cannot do that, a ``mkstemp`` file unlinked at once), and returns its descriptor;
  the agent passes it to the worker (``--settings-fd N``, a number, not a secret) and closes
  its own copy. The worker's boot script (``shellflow.commands.worker_boot``, run before
  ``site``, so before any ``.pth`` file or ``sitecustomize`` of the processor's packages)
  reads it and closes it; ``flow worker start --settings-fd N`` (:func:`take_over`) does
  the same for a worker started otherwise, before the processor's module is imported.
  Why a descriptor rather than a path: there is never a moment when a path leads to the
  secrets (no file to find in the home, no race between writing and deleting, nothing left
  behind by a killed agent), and once the boot script has closed it, ``/proc/self/fd`` no
  longer leads there either. Why not a pipe:
  a file can be read again from offset 0, has no capacity to fill before the child runs,
  and its mode says who may open it.

What stays possible, and is accepted: the worker's own process holds the URLs in memory
(it needs them to consume its queues and write its records), so a function that reads its
process's memory can find them. Where that matters, the deployment's broker and database
accounts should be ones made for workers (docs/security.md). When the agent runs as root
with ``--run-as``, the processor's code also runs as another OS user, who cannot read the
agent's home (its ini file, database and logs).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from shellflow.config import ENV, ENV_INI, KEYS

SETTINGS_FD_OPTION = "--settings-fd"
URL_KEYS = tuple(key for key in KEYS if key != "home")  # the settings that may hold passwords
# Every variable naming a setting or the file holding them.
SECRET_NAMES = frozenset([*ENV.values(), ENV_INI])
# The password of a URL (as shellflow.redact reads it) or of a ``password=`` parameter.
_PASSWORD = re.compile(r"^[a-zA-Z][\w+.-]*://[^:/@?#]*:(?P<secret>.*)@")
_PASSWORD_PARAM = re.compile(r"(?:^|[?&])(?:password|passwd|pwd)=(?P<secret>[^&#]*)", re.I)
MIN_SECRET = 4  # shorter passwords are only looked for as part of their whole URL


def secrets_of(values: Mapping[str, str]) -> list[str]:
    """The strings no child may be given: each URL of the settings ``values`` and each
    password inside one (the home is a place, not a secret: it is only dropped by name)."""
    found: list[str] = []
    for value in (values.get(key, "") for key in URL_KEYS):
        if not value:
            continue
        found.append(value)
        for pattern in (_PASSWORD, _PASSWORD_PARAM):
            for match in pattern.finditer(value):
                if len(match["secret"]) >= MIN_SECRET:
                    found.append(match["secret"])
    return found


def scrubbed(env: Mapping[str, str], secrets: Iterable[str] = ()) -> dict[str, str]:
    """``env`` without shellflow's settings nor any variable holding one of ``secrets``."""
    needles = [s for s in secrets if s]
    return {
        name: value
        for name, value in env.items()
        if name not in SECRET_NAMES and not any(needle in value for needle in needles)
    }


def hand_over(values: Mapping[str, str], folder: Path | None = None) -> int:
    """A readable descriptor of a nameless 0600 file holding ``values`` (see the module).

    ``folder`` is where the file system entry would be made (the agent's private home);
    the caller passes the descriptor to one child and closes it.
    """
    unknown = set(values) - set(KEYS)
    if unknown:
        raise ValueError(f"not settings: {sorted(unknown)}")
    data = json.dumps(dict(values)).encode()
    # TemporaryFile uses O_TMPFILE where it can, else mkstemp (0600) and unlinks it at once.
    handle = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 - its descriptor is handed over
    try:
        fd = os.dup(handle.fileno())
    finally:
        handle.close()
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def take_over(fd: int) -> dict[str, str]:
    """Read the settings the agent handed over on ``fd`` and close it (in the worker)."""
    try:
        chunks: list[bytes] = []
        os.lseek(fd, 0, os.SEEK_SET)
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return _parsed(b"".join(chunks))


def _parsed(data: bytes) -> dict[str, str]:
    values = json.loads(data.decode())
    if not isinstance(values, dict) or not set(values) <= set(KEYS):
        raise ValueError("the settings handed over are not a JSON object of settings")
    return {str(k): str(v) for k, v in values.items() if v}


_received: list[bytes] = []  # what the worker's boot script read before ``site`` ran


def receive(data: bytes) -> None:
    """Keep the settings the boot script read from its descriptor
    (``shellflow.commands.worker_boot``) for :func:`received`."""
    _received[:] = [data]


def received() -> dict[str, str] | None:
    """The settings the boot script received (once), or None when it did not run."""
    if not _received:
        return None
    data = _received.pop()
    return _parsed(data)


def forget_environment(secrets: Iterable[str] = ()) -> None:
    """Remove shellflow's settings (and anything holding ``secrets``) from ``os.environ``.

    Only what this process would pass on: ``/proc/self/environ`` keeps what it was started
    with, which is why the agent never puts them there (:func:`scrubbed`).
    """
    keep = scrubbed(os.environ, secrets)
    for name in [n for n in os.environ if n not in keep]:
        del os.environ[name]
