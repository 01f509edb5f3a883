"""A processor's build and its functions never see shellflow's secrets (issue 17, point 2).

The processor's repository holds a probe: its ``setup.py`` (run by pip when the agent
deploys it) and its function each look for the deployment's URLs and passwords in
``os.environ``, ``/proc/self/environ`` (what the process was started with), every regular
file the process has open (``/proc/self/fd``: the worker's settings descriptor must be
closed before the function's module is imported) and the files of the agent's home, and
report what they found. They must find nothing; a control variable shows they did look.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import FlowRunner
from tests.engine.agents import agent_log, running_agent
from tests.engine.conftest import Deployment, deploy
from tests.engine.repos import new_repo

PASSWORD = "pw-issue17-not-for-builds"  # PostgreSQL trusts the tests' connections: unused
CONTROL = ("SF_PROBE_CONTROL", "the probe reads the environment")

PROBE = """
import json
import os
import stat

# In hex: the probe's own files (in the checkout and the virtualenv) must not hold them.
NEEDLES = [bytes.fromhex(h).decode() for h in {needles}]
FILE_NEEDLES = [bytes.fromhex(h).decode() for h in {file_needles}]
HOME = {home!r}
CONTROL = {control_name!r}
REPORTS = {reports!r}


def _read(path, limit=1 << 24):
    with open(path, "rb") as handle:
        return handle.read(limit).decode("utf-8", "replace")


def _hits(text, needles):
    return sorted(n for n in needles if n in text)


def look(_=None):
    found = {{"control": os.environ.get(CONTROL), "pid": os.getpid(), "uid": os.getuid()}}
    found["environ"] = _hits(json.dumps(dict(os.environ)), NEEDLES)
    found["environ_names"] = sorted(
        n for n in os.environ if n in ("SHELLFLOW_DB", "SHELLFLOW_BROKER", "SHELLFLOW_BACKEND",
                                       "SHELLFLOW_PUBSUB", "SHELLFLOW_HOME")
    )
    found["proc_environ"] = _hits(_read("/proc/self/environ"), NEEDLES)
    fds = {{}}
    for fd in os.listdir("/proc/self/fd"):
        path = f"/proc/self/fd/{{fd}}"
        try:
            if stat.S_ISREG(os.stat(path).st_mode):
                hits = _hits(_read(path), NEEDLES)
                if hits:
                    fds[os.readlink(path)] = hits
        except OSError:
            pass
    found["open_files"] = fds
    files, readable = {{}}, 0
    for folder, _, names in os.walk(HOME):
        for name in names:
            path = os.path.join(folder, name)
            try:
                if not stat.S_ISREG(os.stat(path).st_mode):
                    continue
                text = _read(path)
            except OSError:
                continue
            readable += 1
            hits = _hits(text, FILE_NEEDLES)
            if hits:
                files[path] = hits
    found["home_files"] = files
    found["home_files_readable"] = readable
    ancestors, readable, pid = {{}}, 0, os.getppid()
    while pid > 1:  # the environment of pip, of the agent...
        try:
            hits = _hits(_read(f"/proc/{{pid}}/environ"), NEEDLES)
            readable += 1
            if hits:
                ancestors[pid] = hits
        except OSError:
            pass
        try:
            pid = int(_read(f"/proc/{{pid}}/stat").rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    found["ancestors"] = ancestors
    found["ancestors_readable"] = readable
    return found


def early():
    # Run by the .pth file when an interpreter of the virtualenv starts, before any of
    # shellflow's own code: what could a package's .pth file or sitecustomize find?
    with open("/proc/self/cmdline", "rb") as handle:
        cmdline = handle.read().replace(b"\\0", b" ").decode("utf-8", "replace")
    if "worker" not in cmdline:
        return
    found = look()
    found["cmdline"] = cmdline
    with open(os.path.join(REPORTS, f"early-{{os.getpid()}}.json"), "w") as out:
        json.dump(found, out)
"""

SETUP = """
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probe  # noqa: E402

with open(os.path.join({reports!r}, f"setup-{{os.getpid()}}.json"), "w") as out:
    json.dump(probe.look(), out)

import sysconfig  # noqa: E402

from setuptools import setup  # noqa: E402

# A .pth file runs its import lines when the virtualenv's interpreter starts.
site_packages = os.path.relpath(sysconfig.get_paths()["purelib"], sys.prefix)
setup(
    name="secret-probe", version="0.1", py_modules=["probe"],
    data_files=[(site_packages, ["secret-probe.pth"])],
)
"""


def secrets(env: dict[str, str]) -> list[str]:
    """What no build or function may find: each URL setting and the password."""
    keys = ("SHELLFLOW_DB", "SHELLFLOW_BROKER", "SHELLFLOW_BACKEND", "SHELLFLOW_PUBSUB")
    return sorted({env[key] for key in keys if env.get(key)} | {PASSWORD})


def probe_repo(root: Path, d: Deployment, reports: Path) -> Path:
    needles = secrets(d.env)
    home = d.env["SHELLFLOW_HOME"]
    probe = PROBE.format(
        needles=repr([n.encode().hex() for n in needles]),
        file_needles=repr([PASSWORD.encode().hex()]), home=home,
        control_name=CONTROL[0], reports=str(reports),
    )  # fmt: skip
    return new_repo(root / "probe", {
        "probe.py": probe,
        "secret-probe.pth": "import probe; probe.early()\n",
        "setup.py": SETUP.format(reports=str(reports)),
    })  # fmt: skip


def assert_found_nothing(report: dict, where: str, ancestors: bool = False) -> None:
    """Nothing found where the probe looked (in the environments of the processes that
    started it too, when ``ancestors``: another OS user's, with ``--run-as``)."""
    assert report["control"] == CONTROL[1], f"{where}: the probe did not see its environment"
    for key in ("environ", "environ_names", "proc_environ"):
        assert report[key] == [], f"{where}: found {report[key]} in {key}"
    assert report["open_files"] == {}, f"{where}: an open file holds {report['open_files']}"
    assert report["home_files"] == {}, f"{where}: the home's files hold {report['home_files']}"
    if ancestors:
        assert report["ancestors"] == {}, f"{where}: its ancestors hold {report['ancestors']}"


def _probe_network(d: Deployment, repo: Path) -> str:
    """A processor serving the probe's ``look``; its socket's name."""
    queue, name, socket = d.name("probe.q"), d.name("probe"), d.name("probe.look")
    d.setup("add", "queue", "-n", queue, "-t", "direct")
    d.setup("add", "processor", "-n", name, "-g", str(repo), "-m", "probe", "-h", "localhost",
            "-c", "1")  # fmt: skip
    d.setup("add", "socket", "-n", socket, "-q", queue, "-pn", name, "-t", "look")
    d.broker_exchanges.append(queue)
    d.broker_queues += [socket, socket + ".dead"]
    return socket


def test_builds_and_functions_find_no_secret(deployment: Deployment, tmp_path: Path) -> None:
    d = deployment
    if d.kind == "distributed":  # a password in the database URL (trust: never asked for)
        d.env["SHELLFLOW_DB"] = d.env["SHELLFLOW_DB"].replace(
            "postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@"
        )
    reports = tmp_path / "reports"
    reports.mkdir()
    repo = probe_repo(tmp_path, d, reports)
    socket = _probe_network(d, repo)
    os.environ[CONTROL[0]] = CONTROL[1]  # the agent inherits it; so do its children
    try:
        with running_agent(d):
            out = d.ok("task", "run", "-s", socket, "--data", "null", "--timeout", "120")
            log = agent_log(d)
    finally:
        del os.environ[CONTROL[0]]
    function = json.loads(out.stdout)
    assert_found_nothing(function, "the function")
    assert function["home_files_readable"] > 0  # it did look (the agent's user, no --run-as)
    if os.geteuid() == 0:  # root reads every process's environment: hence --run-as
        assert function["ancestors"], "the probe did not look at the agent's environment"
    else:  # the agent's is closed to its own user's processes (it is undumpable)
        assert function["ancestors"] == {}, f"found {function['ancestors']} in the agent's"
    builds = [json.loads(p.read_text()) for p in sorted(reports.glob("setup-*.json"))]
    assert builds, f"setup.py never ran:\n{log}"
    for build in builds:
        assert_found_nothing(build, "setup.py")
    early = [json.loads(p.read_text()) for p in sorted(reports.glob("early-*.json"))]
    assert early, f"the .pth file never ran in a worker:\n{log}"
    for report in early:  # a package's .pth file runs before any of shellflow's code
        assert_found_nothing(report, f"a .pth file in {report['cmdline']}")


# -- --run-as: the processor's code as an unprivileged OS user --------------------------------

SERVERS = {  # only their form is read before the agent would connect
    "SHELLFLOW_DB": "postgresql://postgres@127.0.0.1:5432/none",
    "SHELLFLOW_BROKER": "amqp://guest:guest@127.0.0.1:5672//",
    "SHELLFLOW_BACKEND": "redis://127.0.0.1:6379/0",
    "SHELLFLOW_PUBSUB": "redis://127.0.0.1:6379/0",
}


@contextmanager
def new_user() -> Iterator[str]:
    """A user name no account has; the account the test makes under it is deleted after."""
    name = f"sf17{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)


def needs_root() -> None:
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("--run-as needs root and useradd")


def test_run_as_is_refused_clearly_before_the_agent_starts(flow: FlowRunner) -> None:
    with deploy("embedded", flow) as d:
        lone = d.run("agent", "start", "--create-user")
        assert (lone.code, lone.stderr) == (2, "flow: --create-user needs --run-as USER\n")
        embedded = d.run("agent", "start", "--run-as", "nobody")
        assert embedded.code == 2 and "needs a database and broker on servers" in embedded.stderr
        assert embedded.stdout == ""
        if os.geteuid() == 0:
            with new_user() as name:
                missing = d.run("agent", "start", "--run-as", name, env=SERVERS)
                assert missing.code == 2
                assert f"no OS user '{name}' (add --create-user" in missing.stderr
            root = d.run("agent", "start", "--run-as", "root", env=SERVERS)
            assert root.code == 2 and "must not be root" in root.stderr
        assert d.query("SELECT count(*) FROM agent") == [(0,)]  # none ever started


def test_create_user_makes_an_unprivileged_user_with_a_private_workspace(tmp_path: Path) -> None:
    needs_root()
    from shellflow.engine.fleet.runas import account

    with new_user() as name:
        made = account(name, tmp_path / "agent-home", create=True)
        entry = pwd.getpwnam(name)
        assert (made.uid, made.gid) == (entry.pw_uid, entry.pw_gid) and made.uid != 0
        assert made.workspace.is_relative_to(Path(entry.pw_dir))
        for folder in (made.workspace, made.workspace.parent):
            info = folder.stat()
            assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (made.uid, 0o700)
        assert account(name, tmp_path / "agent-home") == made  # found again, not made again


def _can_run_python(user: str) -> bool:
    done = subprocess.run(
        ["runuser", "-u", user, "--", sys.executable, "-c", "import shellflow"],
        capture_output=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


def test_run_as_user_cannot_read_the_agent_home(flow: FlowRunner, tmp_path: Path) -> None:
    """With --run-as, the build and the function run as the user, who cannot read any file
    of the agent's home (not even the ini file holding the URLs)."""
    needs_root()
    from shellflow.engine.fleet.runas import account

    with new_user() as name, deploy("distributed", flow) as d:
        account(name, Path(d.env["SHELLFLOW_HOME"]), create=True)
        if not _can_run_python(name):
            pytest.skip(f"an unprivileged user cannot run this Python ({sys.executable})")
        reports = Path(tempfile.mkdtemp(prefix="sf17", dir="/tmp"))  # setup.py writes here
        reports.chmod(0o777)  # as the run-as user
        ini = Path(d.env["SHELLFLOW_HOME"]) / "agent.ini"
        ini.write_text(f"[shellflow]\ndb = {d.env['SHELLFLOW_DB']}\n")
        repo = probe_repo(tmp_path, d, reports)
        socket = _probe_network(d, repo)
        os.environ[CONTROL[0]] = CONTROL[1]
        try:
            with running_agent(d, "--run-as", name):
                out = d.ok("task", "run", "-s", socket, "--data", "null", "--timeout", "120")
            builds = [json.loads(p.read_text()) for p in sorted(reports.glob("setup-*.json"))]
            early = [json.loads(p.read_text()) for p in sorted(reports.glob("early-*.json"))]
        finally:
            del os.environ[CONTROL[0]]
            shutil.rmtree(reports, ignore_errors=True)
        function = json.loads(out.stdout)
        assert_found_nothing(function, "the function", ancestors=True)
        assert function["home_files_readable"] == 0
        assert function["uid"] == pwd.getpwnam(name).pw_uid
        assert builds and early, agent_log(d)
        for report in [*builds, *early]:
            assert_found_nothing(report, "setup.py or a .pth file", ancestors=True)
            assert report["home_files_readable"] == 0 and report["uid"] == function["uid"]
