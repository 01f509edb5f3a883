"""Deploying a processor's code: a pinned git checkout and a virtualenv of its own.

Everything lives under the shellflow home::

    git/<repo>/mirror.git        one mirror clone per repository URL (fetched, never edited)
    git/<repo>/<commit>          one detached worktree per commit; it never moves once made
    venvs/<repo>-<commit>[-<h>]  one virtualenv per (repo, commit), reused when it exists

With ``flow agent start --run-as USER`` the virtualenvs (and a copy of each commit's files,
for pip to build in as that user) are made in the user's workspace instead, while the git
mirrors stay in the agent's home (:mod:`shellflow.engine.fleet.runas`). pip never gets
shellflow's settings in its environment (:mod:`shellflow.engine.worker.credentials`).

``<repo>`` is a readable name plus a hash of the normalised URL (a local path and its
``file://`` URL are the same repository). A processor pins a commit, a tag or a branch (in
that order of precedence; none means the remote's default branch). A tag or a branch is
resolved once: the commit found is recorded (``Source.resolved``, the processor's
``deployed_commit``) and deployed from then on, so a moved branch is not followed until it
is resolved again (``flow proc update --pull``; see ``shellflow.engine.fleet.trusted``,
which also checks the repository allowlist before any clone). Two processors on the
same commit share a worktree and a virtualenv; when they name different ``modulepath`` or
``requirements`` the virtualenv key also carries a hash ``<h>`` of those, since the two
would otherwise install different things into one environment.

The repository is installed into its virtualenv with pip (its ``pyproject.toml`` or
``setup.py``: in ``modulepath`` when that folder has one, otherwise at the repository root;
plus the processor's requirements file). When that fails (old repositories have a setup.py
that modern setuptools rejects) the processor is not lost: the worker gets the checkout's
``modulepath`` (or root) on its path instead, and the deployment carries a warning that the
agent shows as the processor's ``status_reason``.

Why a ``.pth`` file: the worker runs with the virtualenv's interpreter, but it is shellflow
(and Celery, kombu, SQLAlchemy...) that serves the processor's sockets. Installing those
into every virtualenv would take a minute and the network each time; instead a ``.pth`` file
in the virtualenv's site-packages appends the agent's own site-packages (and, for an
editable install, shellflow's source root). ``site`` processes ``.pth`` lines after it has
put the virtualenv's own site-packages on ``sys.path``, so they come *after* it: whatever the
processor pins in its virtualenv wins over the agent's copy, and what it does not install
falls through to the shared one. pip runs with the same path, so a requirement the agent's
environment already satisfies is not installed again, while a different pinned version is
installed into the virtualenv, where it wins. The processor's own code comes only from its
virtualenv (or, in the fallback, from its checkout); the worker is started with ``-P`` and a
neutral working directory so nothing else lands on its path.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import site
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shellflow.engine.fleet.build_checks import backend_available, pip_reason
from shellflow.engine.fleet.runas import Account
from shellflow.engine.worker.credentials import scrubbed
from shellflow.errors import ShellflowError
from shellflow.private import tighten_tree

log = logging.getLogger(__name__)

MARKER = ".shellflow-venv.json"  # written last: a virtualenv without it is rebuilt
PTH_NAME = "zz-shellflow-agent.pth"  # sorts after the processor's own .pth files
INSTALL_TIMEOUT = 30 * 60.0
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "GCM_INTERACTIVE": "never"}
# Variables that would put code other than the processor's own on the worker's path.
FOREIGN_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")


class DeployError(ShellflowError):
    """The processor's code cannot be checked out or its environment cannot be made."""


@dataclass(frozen=True)
class Source:
    """What a processor asks to run: where its code is and how it is pinned."""

    gitrepo: str
    branch: str | None = None
    commit: str | None = None
    gittag: str | None = None
    modulepath: str | None = None
    requirements: str | None = None
    # The commit recorded when the pin was first resolved (processor.deployed_commit). Not
    # compared: recording it changes nothing an agent runs, so it must not redeploy.
    resolved: str | None = field(default=None, compare=False)

    @property
    def pinned(self) -> str | None:
        """The commit to deploy, when one is known without asking the remote."""
        return self.resolved or self.commit

    @property
    def pin(self) -> str:
        if self.resolved:
            return (f"commit {self.resolved[:12]} (recorded; 'flow proc update --pull' resolves"
                    f" {self._named} again)")  # fmt: skip
        return self._named

    @property
    def _named(self) -> str:
        if self.commit:
            return f"commit {self.commit}"
        if self.gittag:
            return f"tag {self.gittag}"
        if self.branch:
            return f"branch {self.branch}"
        return "the default branch"


@dataclass(frozen=True)
class Deployed:
    """A processor's code, ready to serve: the interpreter to run and what to put on its path."""

    commit: str
    checkout: Path
    venv: Path
    python: Path
    installed: bool
    paths: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def warning(self) -> str | None:
        return "; ".join(self.warnings) or None


# -- repositories --------------------------------------------------------------------------


def normalise(url: str) -> str:
    """One spelling per repository: local paths and ``file://`` URLs become absolute paths."""
    url = url.strip()
    if url.startswith("file://"):
        url = url[len("file://") :]
    if "://" in url or re.match(r"^[\w.-]+@[\w.-]+:", url):  # a URL, or scp-like user@host:path
        return url.rstrip("/")
    return str(Path(url).expanduser().resolve())


def repo_key(url: str) -> str:
    """A short, readable folder name for a repository: its last path part plus a hash."""
    canonical = normalise(url)
    tail = re.split(r"[/:]", canonical.rstrip("/"))[-1]
    tail = tail.removesuffix(".git")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", tail)[:24] or "repo"
    digest = hashlib.sha1(canonical.encode()).hexdigest()[:10]
    return f"{name}-{digest}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock across threads and processes (two agents may share one home)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _git_reason(exc: Exception) -> str:
    """The telling line of a git failure (its last ``fatal:`` or ``error:`` line)."""
    text = str(getattr(exc, "stderr", "") or exc)
    lines = [
        re.sub(r"^\s*stderr:", "", ln).strip().strip("'\"").strip() for ln in text.splitlines()
    ]
    lines = [ln for ln in lines if ln]
    telling = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
    return (telling or lines or [type(exc).__name__])[-1]


def _clone_url(url: str) -> str:
    """What git is given: a local path as an absolute path, anything else unchanged."""
    canonical = normalise(url)
    return canonical if canonical.startswith("/") else url.strip()


def _resolve(repo: Any, source: Source) -> str | None:
    """The commit the source pins, as found in the mirror (None when it is not there)."""
    if source.pinned:
        ref = f"{source.pinned}^{{commit}}"
    elif source.gittag:
        ref = f"refs/tags/{source.gittag}^{{commit}}"
    elif source.branch:
        ref = f"refs/heads/{source.branch}^{{commit}}"
    else:
        ref = "HEAD^{commit}"
    import git

    try:
        return str(repo.git.rev_parse("--verify", "--quiet", ref)).strip() or None
    except git.GitCommandError:  # --verify --quiet: exit 1 and no output when it is not there
        return None


def _fetched(mirror: Path, source: Source) -> tuple[Any, str | None, list[str]]:
    """The repository's mirror, cloned or fetched as needed (call it under the mirror's
    lock), the commit the source pins (None: not there) and the warnings."""
    import git

    warnings: list[str] = []
    if not (mirror / "HEAD").exists():
        shutil.rmtree(mirror, ignore_errors=True)
        mirror.parent.mkdir(parents=True, exist_ok=True)
        try:
            repo = git.Repo.clone_from(_clone_url(source.gitrepo), mirror, mirror=True, env=GIT_ENV)
        except git.GitCommandError as exc:
            shutil.rmtree(mirror, ignore_errors=True)
            raise DeployError(f"cannot clone {source.gitrepo}: {_git_reason(exc)}") from None
        return repo, _resolve(repo, source), warnings
    repo = git.Repo(mirror)
    repo.git.update_environment(**GIT_ENV)
    sha = _resolve(repo, source) if source.pinned else None
    if sha is None:  # a branch or tag may have moved; a commit may be new
        try:
            repo.git.fetch("--prune", "origin")
        except git.GitCommandError as exc:
            warnings.append(f"fetch failed, using the cached copy: {_git_reason(exc)}")
        sha = _resolve(repo, source)
    return repo, sha, warnings


def checkout(home: Path, source: Source) -> tuple[str, Path, list[str]]:
    """Clone or fetch the repository and make the pinned commit's worktree.

    Returns (commit sha, worktree, warnings). A fetch that fails is only a warning when the
    pinned commit is already in the cache (an agent can restart without the network).
    """
    import git

    key = repo_key(source.gitrepo)
    base = home / "git" / key
    with _locked(home / "git" / f"{key}.lock"):
        repo, sha, warnings = _fetched(base / "mirror.git", source)
        if sha is None:
            raise DeployError(f"{source.gitrepo} has no {source.pin}")
        worktree = base / sha[:12]
        if not (worktree / ".git").exists():
            shutil.rmtree(worktree, ignore_errors=True)
            try:
                repo.git.worktree("prune")
                repo.git.worktree("add", "--detach", "--force", str(worktree), sha)
            except git.GitCommandError as exc:
                shutil.rmtree(worktree, ignore_errors=True)
                raise DeployError(
                    f"cannot check out {sha[:12]} of {source.gitrepo}: {_git_reason(exc)}"
                ) from None
    return sha, worktree, warnings


# -- virtualenvs ---------------------------------------------------------------------------


def shared_paths() -> list[str]:
    """What a processor's virtualenv borrows from the agent: its site-packages and, for an
    editable install, shellflow's source root."""
    candidates = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:  # ``pip install --user`` puts shellflow there
        candidates.insert(0, site.getusersitepackages())
    paths = [p for p in dict.fromkeys(candidates) if os.path.isdir(p)]
    root = _source_root()
    if root not in paths:
        paths.append(root)
    return paths


def _source_root() -> str:
    """The folder holding the shellflow package. Its location is all that is needed, so it is
    looked up rather than imported: the package's root is the public API, a layer above the
    engine (see the import-linter contracts in pyproject.toml)."""
    spec = importlib.util.find_spec("shellflow")
    if spec is None or spec.origin is None:  # cannot happen while this module runs from it
        raise RuntimeError("cannot locate the shellflow package")
    return str(Path(spec.origin).resolve().parent.parent)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _site_packages(venv: Path) -> Path:
    python = venv_python(venv)
    out = subprocess.run(
        [str(python), "-P", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return Path(out.stdout.strip())


def create_venv(venv: Path) -> None:
    """A fresh virtualenv without pip (pip comes from the agent through the .pth file)."""
    import venv as venv_module

    shutil.rmtree(venv, ignore_errors=True)
    venv_module.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(venv)
    purelib = _site_packages(venv)
    purelib.mkdir(parents=True, exist_ok=True)
    (purelib / PTH_NAME).write_text("\n".join(shared_paths()) + "\n")


def worker_env(base: dict[str, str] | None = None, venv: Path | None = None) -> dict[str, str]:
    """The environment of a process running in a processor's virtualenv."""
    env = dict(os.environ if base is None else base)
    for name in FOREIGN_ENV:
        env.pop(name, None)
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def _project_folder(checkout: Path, modulepath: str | None) -> tuple[Path | None, Path]:
    """(folder to pip install or None, folder to put on the path in the fallback)."""
    base = checkout
    if modulepath:
        candidate = (checkout / modulepath).resolve()
        if not candidate.is_relative_to(checkout.resolve()):
            raise DeployError(f"modulepath {modulepath!r} leaves the repository")
        base = candidate if candidate.is_dir() else candidate.parent
    for folder in dict.fromkeys([base, checkout]):
        if (folder / "pyproject.toml").exists() or (folder / "setup.py").exists():
            return folder, base
    return None, base


def install(
    venv: Path,
    checkout: Path,
    source: Source,
    logfile: Path,
    base_env: Mapping[str, str] | None = None,
    account: Account | None = None,
) -> tuple[bool, list[str]]:
    """pip install the repository (and its requirements file) into the virtualenv.

    pip runs the repository's build code (``setup.py``, a build backend), so it runs with
    ``base_env`` (the agent's environment without shellflow's settings, see
    ``shellflow.engine.fleet.launch.build_env``); without one, with this process's
    environment minus the settings' variables; as ``account``'s user when there is one.
    Returns (installed, warnings); never raises for a failed install (the caller falls back).
    """
    project, _ = _project_folder(checkout, source.modulepath)
    warnings: list[str] = []
    args: list[str] = []
    if source.requirements:
        requirements = (checkout / source.requirements).resolve()
        if requirements.is_relative_to(checkout.resolve()) and requirements.is_file():
            args += ["-r", str(requirements)]
        else:
            warnings.append(f"requirements file {source.requirements!r} not found in the repo")
    if project is None:
        warnings.append("no pyproject.toml or setup.py: serving the code from its checkout")
    else:
        args.append(str(project))
    if not args:
        return False, warnings
    if importlib.util.find_spec("pip") is None:
        return False, [*warnings, "pip is not installed in shellflow's environment"]
    command = [str(venv_python(venv)), "-P", "-m", "pip", "install", "--no-input",
               "--disable-pip-version-check"]  # fmt: skip
    if project is None or backend_available(project):
        command.append("--no-build-isolation")
    base = scrubbed(os.environ if base_env is None else base_env)
    env = worker_env(base, venv) | {"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    as_user = {} if account is None else account.popen()
    if account is not None:
        env = account.env(env)
    log.info("installing %s into %s", project or source.requirements, venv)
    with open(logfile, "w") as out:
        try:
            done = subprocess.run(
                [*command, *args], cwd=checkout, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, timeout=INSTALL_TIMEOUT, check=False, **as_user,
            )  # fmt: skip
            code: int | None = done.returncode
        except subprocess.TimeoutExpired:
            code = None
    if code == 0:
        return project is not None, warnings
    reason = (
        pip_reason(logfile.read_text(errors="replace"))
        if code is not None
        else f"timed out after {INSTALL_TIMEOUT:g} s"
    )
    return False, [*warnings, f"pip install failed ({reason}); serving the code from its checkout"]


def venv_name(source: Source, sha: str) -> str:
    name = f"{repo_key(source.gitrepo)}-{sha[:12]}"
    spec = f"{source.modulepath or ''}\0{source.requirements or ''}"
    if spec != "\0":
        name += "-" + hashlib.sha1(spec.encode()).hexdigest()[:6]
    return name


def deploy(
    home: Path,
    source: Source,
    build_env: Mapping[str, str] | None = None,
    account: Account | None = None,
) -> Deployed:
    """Check out the processor's pinned commit and make (or reuse) its virtualenv; pip runs
    with ``build_env`` (see :func:`install`). With an ``account`` (``--run-as``), the
    virtualenv and a copy of the code are made in its workspace and pip runs as its user
    (:mod:`shellflow.engine.fleet.runas`); the git mirrors stay in the agent's home."""
    sha, worktree, warnings = checkout(home, source)
    venvs = home / "venvs" if account is None else account.folder(account.workspace / "venvs")
    name = venv_name(source, sha)
    venv = venvs / name
    with _locked(venvs / f"{name}.lock"):
        marker = venv / MARKER
        saved = _read_marker(marker)
        if saved is None or not venv_python(venv).exists():
            try:
                create_venv(venv)
                tree = worktree
                if account is not None:
                    account.give(venv)
                    tree = account.copy(worktree, account.folder(account.workspace / "src") / name)
            except (OSError, subprocess.SubprocessError) as exc:
                shutil.rmtree(venv, ignore_errors=True)
                raise DeployError(f"cannot create a virtualenv in {venv}: {exc}") from None
            installed, notes = install(venv, tree, source, venv / "install.log", build_env, account)
            _, fallback = _project_folder(tree, source.modulepath)
            saved = {
                "commit": sha, "installed": installed, "warnings": notes,
                "paths": [] if installed else [str(fallback)],
            }  # fmt: skip
            marker.write_text(json.dumps(saved, indent=2))
            for made in (venv, worktree):  # copied modes (activate scripts, egg-info): 0600
                tighten_tree(made)
    return Deployed(
        commit=sha, checkout=worktree, venv=venv, python=venv_python(venv),
        installed=bool(saved["installed"]), paths=tuple(saved["paths"]),
        warnings=tuple([*warnings, *saved["warnings"]]),
    )  # fmt: skip


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not {"installed", "paths", "warnings"} <= set(data):
        return None
    return data


def describe(deployed: Deployed) -> dict[str, Any]:
    """A JSON-able summary (for logs and tests)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(deployed).items()}
