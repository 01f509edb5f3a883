"""The one URL classifier: every form of every backend shellflow reads (shellflow.urls)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shellflow.model.urls import dialect_of
from shellflow.urls import (
    Backend,
    backend_of,
    is_amqp,
    is_redis,
    scheme_of,
    socket_path,
    transport_url,
    url_problem,
    uses_tls,
)

FORMS = [
    ("redis://localhost:6379/0", Backend.REDIS),
    ("REDIS://localhost", Backend.REDIS),
    ("rediss://user:pw@cache.example:6380/1?ssl_cert_reqs=required", Backend.REDIS),
    ("redis+socket:///tmp/sf/broker.sock", Backend.REDIS_SOCKET),
    ("unix:///tmp/sf/broker.sock?db=2", Backend.REDIS_SOCKET),
    ("socket:///tmp/sf/broker.sock", Backend.REDIS_SOCKET),
    ("amqp://guest:guest@localhost:5672//", Backend.AMQP),
    ("amqps://guest:guest@rabbit.example:5671/vhost", Backend.AMQP),
    ("pyamqp://guest@localhost//", Backend.AMQP),
    ("rpc://", Backend.RPC),
    ("memory://", Backend.MEMORY),
    ("sqlite:///home/me/.local/share/shellflow/shellflow.db", Backend.SQLITE),
    ("sqlite://", Backend.SQLITE),
    ("sqlite+pysqlite:///x.db", Backend.SQLITE),
    ("postgresql://u:p@localhost:5432/sf", Backend.POSTGRESQL),
    ("postgresql+psycopg2://u:p@localhost/sf", Backend.POSTGRESQL),
    ("postgres://u@localhost/sf", Backend.POSTGRESQL),
    ("mysql://u@localhost/sf", Backend.OTHER),
    ("sentinel://localhost:26379", Backend.OTHER),
    ("redis-ish://nope", Backend.OTHER),
    ("unixfoo:///tmp/x", Backend.OTHER),
    ("/tmp/broker.sock", Backend.OTHER),
    ("", Backend.OTHER),
]


@pytest.mark.parametrize(("url", "backend"), FORMS, ids=[u or "empty" for u, _ in FORMS])
def test_backend_of_every_form(url: str, backend: Backend) -> None:
    assert backend_of(url) is backend
    assert is_redis(url) == (backend in (Backend.REDIS, Backend.REDIS_SOCKET))
    assert is_amqp(url) == (backend is Backend.AMQP)


def test_scheme_is_read_lower_case_and_only_before_a_colon() -> None:
    assert scheme_of("PostgreSQL+Psycopg2://h/db") == "postgresql+psycopg2"
    assert scheme_of("no scheme here") == ""


@pytest.mark.parametrize("scheme", ["redis+socket", "unix", "socket"])
def test_the_three_socket_forms_name_one_socket_and_one_transport_url(scheme: str) -> None:
    url = f"{scheme}:///tmp/sf/broker.sock?db=1"
    assert socket_path(url) == Path("/tmp/sf/broker.sock")
    assert transport_url(url) == "redis+socket:///tmp/sf/broker.sock?db=1"


def test_socket_path_skips_credentials_but_keeps_an_at_sign_in_the_path() -> None:
    assert socket_path("unix://user:secret@/run/redis.sock") == Path("/run/redis.sock")
    assert socket_path("redis+socket:///tmp/a@b/broker.sock") == Path("/tmp/a@b/broker.sock")


@pytest.mark.parametrize(
    "url",
    ["redis://localhost:6379/0", "rediss://h/0", "amqp://guest@h//", "sqlite:///x.db", "unix:"],
)
def test_other_urls_have_no_socket_and_pass_through_unchanged(url: str) -> None:
    assert socket_path(url) is None
    assert transport_url(url) == url


def test_tls_is_read_from_the_scheme() -> None:
    assert uses_tls("rediss://h/0") and uses_tls("amqps://h//")
    assert not uses_tls("redis://h/0") and not uses_tls("amqp://h//")
    assert not uses_tls("redis+socket:///tmp/x.sock")


def test_the_model_dialect_is_the_classifier_s_database() -> None:
    assert dialect_of("postgresql+psycopg2://u@h/db") == "postgresql"
    assert dialect_of("postgres://u@h/db") == "postgresql"
    assert dialect_of("sqlite:///x.db") == "sqlite"
    assert dialect_of("mysql+pymysql://u@h/db") == "mysql"  # named in the usage error


def test_every_caller_accepts_every_redis_socket_form() -> None:
    """The ``socket://``/``unix://`` split is gone: Celery's URL, the embedded broker, the
    live channels, the fast result path and the worker's guards (all asking
    ``shellflow.urls.is_redis``) agree on all three."""
    from shellflow.engine.records.events import carries_live_events
    from shellflow.engine.transport import resultwire

    for scheme in ("redis+socket", "unix", "socket"):
        url = f"{scheme}:///tmp/sf/broker.sock"
        assert carries_live_events(url) and is_redis(url)
        assert resultwire.handles(transport_url(url)) and resultwire.handles(url)
        assert resultwire._endpoint(url)[0] == "/tmp/sf/broker.sock"


def test_the_wire_clients_leave_tls_and_options_to_the_libraries() -> None:
    from shellflow.engine.transport import amqpwire, resultwire

    assert resultwire.handles("redis://localhost:6379/0")
    assert not resultwire.handles("rediss://localhost:6379/0")
    assert not resultwire.handles("redis://localhost/0?socket_timeout=3")
    assert amqpwire.handles("amqp://guest:guest@localhost//")
    assert amqpwire.handles("pyamqp://guest:guest@localhost//")
    assert not amqpwire.handles("amqps://guest:guest@localhost//")
    assert not amqpwire.handles("redis://localhost/0")


def test_the_celery_app_speaks_redis_socket_for_every_socket_form(tmp_path: Path) -> None:
    """``app.py`` rewrote ``unix://`` only; ``socket://`` reached kombu, which has no such
    transport. Both are now ``redis+socket://`` and get the Redis visibility timeout."""
    from shellflow.config import load_settings
    from shellflow.engine.transport.celery_app import VISIBILITY_TIMEOUT, celery_conf

    for scheme in ("unix", "socket"):
        broker = f"{scheme}://{tmp_path}/broker.sock"
        settings = load_settings(
            flags={"home": str(tmp_path), "broker": broker},
            ini=tmp_path / "absent.ini", environ={}, ini_must_exist=False,
        )  # fmt: skip
        options = celery_conf(settings)["broker_transport_options"]
        assert options.get("visibility_timeout") == VISIBILITY_TIMEOUT
        assert transport_url(settings.broker).startswith("redis+socket://")


# (setting, URL, a word of the problem; None: the URL is taken)
CHECKED = [
    ("db", "sqlite:///x.db", None),
    ("db", "postgresql+psycopg2://u:p@h:5432/sf", None),
    ("db", "nosuchscheme://x", "unsupported database scheme 'nosuchscheme'"),
    ("db", "redis://h/0", "unsupported database scheme 'redis'"),
    ("db", "nonsense", "without a scheme"),
    ("db", "postgresql://u@h:port/db", "Port could not be cast"),
    ("broker", "redis+socket:///tmp/b.sock", None),
    ("broker", "amqps://g:g@h:5671//", None),
    ("broker", "memory://", None),
    ("broker", "xyz://a", "unsupported broker scheme 'xyz'"),
    ("broker", "redis://h:99999/0", "Port out of range"),
    ("broker", "redis://h:6379/notanumber", "database 'notanumber' is not a number"),
    ("broker", "redis://h:6379/0\x1b[2J", "control characters"),
    ("backend", "rpc://", None),
    ("backend", "redis://h:6379/3", None),
    ("backend", "amqp://g@h//", "unsupported result backend scheme 'amqp'"),
    ("pubsub", "unix:///run/redis.sock?db=2", None),
    ("pubsub", "rpc://", "unsupported pub/sub scheme 'rpc'"),
    ("pubsub", "", "without a scheme"),
]


@pytest.mark.parametrize(("role", "url", "problem"), CHECKED)
def test_a_setting_takes_the_urls_of_its_own_services_only(
    role: str, url: str, problem: str | None
) -> None:
    found = url_problem(role, url)
    assert (found is None) == (problem is None), found
    if problem is not None:
        assert problem in str(found)
