"""The shellflow home is private: folders 0700, files 0600, for its owner alone.

Why: the embedded home holds the model database and its WAL, the embedded broker's
append-only file (every call's arguments and results), logs, spools and credentials. Any
local user able to read them reads every secret that ever passed through a call.

How, in three parts:

* Creation sites in the home pass explicit modes (:func:`private_dir`, :func:`private_file`),
  so a file is never readable by others, not even for a moment, whatever the umask of the
  process that creates it (the CLI keeps the user's umask: the completion scripts and socket
  commands it writes elsewhere are meant for others too).
* Long-running processes that write into the home through other programs (the agent's git
  and pip, the embedded Redis server) run with :data:`PRIVATE_UMASK`; the agent sets it at
  start (:func:`use_private_umask`), so its workers and their virtualenvs inherit it. The
  owner runs them all, so 0700 executables still run.
* A home found looser than 0700 (made by an older shellflow) is repaired on start by
  :func:`repair_home`: one walk removing group and other access, reported on one line.

Imports nothing of shellflow: every layer may call it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
OPEN = 0o077  # group and other bits

# Names only a shellflow home holds: a folder holding none of them is some other folder the
# user pointed SHELLFLOW_HOME at, and is never changed wholesale (an empty one is made 0700).
_MARKERS = (
    "shellflow.db", "broker.sock", "broker.lock", "broker.pid", "broker.log", "appendonlydir",
    "appendonly.aof", "logs", "spool", "pipes", "git", "venvs", "workers",
)  # fmt: skip

_checked: set[str] = set()


def use_private_umask() -> int:
    """Make everything this process and its children create private; the previous umask."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """Make ``path`` and its missing parents with mode 0700 (existing folders are kept as
    they are: a parent such as ``~/.local/share`` belongs to the user, not to shellflow)."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another process made it first
            continue
        os.chmod(folder, DIR_MODE)  # mkdir's mode is narrowed by the umask only, never widened
    return path


def private_file(path: Path, flags: int = os.O_WRONLY | os.O_APPEND) -> int:
    """Open (creating it 0600 if missing) ``path`` for writing; its descriptor."""
    return os.open(path, flags | os.O_CREAT, FILE_MODE)


def touch_private(path: Path) -> None:
    """Create ``path`` empty and 0600 unless it exists (SQLite then gives its WAL and journal
    files the same mode as the database file)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def _names(home: Path) -> set[str] | None:
    try:
        return set(os.listdir(home))
    except OSError:
        return None


def _is_shellflow_home(names: set[str]) -> bool:
    return any(n in names for n in _MARKERS) or any(
        n.startswith("agent-") and n.endswith(".pid") for n in names
    )


def repair_home(home: Path) -> str | None:
    """Take group and other access away from a home that has it; what was done, or None.

    Cheap when the home is private already (one ``lstat``, once per process). Only a folder
    owned by this user, without the sticky bit (``/tmp``), that looks like a shellflow home
    is changed; symbolic links are never followed.
    """
    key = str(home)
    if key in _checked:
        return None
    _checked.add(key)
    try:
        info = os.lstat(home)
    except OSError:
        return None
    mode = stat.S_IMODE(info.st_mode)
    if (
        not stat.S_ISDIR(info.st_mode)
        or not mode & OPEN
        or mode & stat.S_ISVTX
        or info.st_uid != os.geteuid()
    ):
        return None
    names = _names(home)
    if names == set():  # made empty by the user for shellflow: nothing to report
        _tighten(home)
        return None
    if names is None or not _is_shellflow_home(names):
        return None
    changed = tighten_tree(home)
    return (
        f"the shellflow home {home} was open to other users (mode {mode:04o}); made it "
        f"private: {changed} folders and files lost group and other access"
    )


def tighten_tree(top: Path) -> int:
    """Drop group and other access below ``top``: for files whose makers copy a mode instead
    of honouring the umask (``venv``'s activate scripts, a build's metadata); how many."""
    changed = _tighten(top)
    for root, dirs, files in os.walk(top, followlinks=False):
        for name in (*dirs, *files):
            changed += _tighten(Path(root) / name)
    return changed


def _tighten(path: Path) -> int:
    """Drop group and other bits of one entry; 1 when it changed. Symbolic links, and files
    with other hard links (a local repository's git objects, shared by a clone), are left:
    changing them would change a file outside the home, whose folder guards the link."""
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode) or not stat.S_IMODE(info.st_mode) & OPEN:
            return 0
        if not stat.S_ISDIR(info.st_mode) and info.st_nlink > 1:
            return 0
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~OPEN)
    except OSError:  # gone meanwhile, or not ours: the home folder's 0700 still guards it
        return 0
    return 1
