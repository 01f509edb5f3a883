"""Signed results: a caller takes a call's result only if a party of the deployment made it.

The result backend is a shared channel: whoever can ``PUBLISH`` on its Redis (or, with an
``rpc://`` backend, publish on the broker) could push a forged result into a caller's
pipeline, or overwrite a stored one. So every result metadata a shellflow process stores
(a worker's result, ``flow task cancel``'s revocation) carries :data:`SIG_FIELD`, an
HMAC-SHA256 of the fields a caller acts on (:data:`SIGNED_FIELDS`: the call's id, its
status, its task, arguments and result) under the deployment's key
(``shellflow.model.result_keys``: kept in the model database, which a Redis or broker
account alone does not open). Every road a result takes to a caller checks it:

- the cold one-shot call (``shellflow.client.oneshot``: plain Redis, no Celery) calls
  :func:`trusted` on each message and stored value;
- everything that goes through a Celery app made by
  ``shellflow.engine.transport.celery_app`` (``--stream`` and its bursts, ``flow task
  result [--wait]``, the Python API, ``flow task cancel``) gets a result backend of
  :func:`signed_class`: it signs what it stores and drops, in ``meta_from_decoded`` and in
  its result consumer, an ended result whose signature does not check: the caller sees the
  call as still pending and keeps waiting for the real one.

A dropped result is logged (one warning line; on the CLI, on stderr). Statuses that end
nothing (``PENDING``, ``STARTED``, ``RETRY``) are not checked: no caller acts on them.
The fields are signed as compact JSON of the values as the worker had them; JSON carries
shellflow's values exactly (``shellflow.values``), so the caller's decoded copy gives the
same text. Cost: one HMAC over the result's JSON on each side (see docs/engine.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Mapping
from functools import cache
from typing import Any

from shellflow.model import result_keys
from shellflow.model.result_keys import KeyRing

SIG_FIELD = "shellflow_sig"
SIGNED_FIELDS = ("task_id", "status", "name", "args", "kwargs", "result", "traceback")
ENDED = frozenset(("SUCCESS", "FAILURE", "REVOKED"))  # Celery's READY_STATES
_VERSION = "v1:"
_CHECKED = object()  # put in SIG_FIELD once checked: JSON can never decode to it

log = logging.getLogger(__name__)


def _signed_text(meta: Mapping[str, Any]) -> bytes:
    fields = [meta.get(name) for name in SIGNED_FIELDS]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def signature(key: bytes, meta: Mapping[str, Any]) -> str:
    """The signature of a result's metadata under ``key``."""
    return _VERSION + hmac.new(key, _signed_text(meta), hashlib.sha256).hexdigest()


def sign(ring: KeyRing, meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with its signature under the ring's current key (set in place)."""
    meta[SIG_FIELD] = signature(ring.current, meta)
    return meta


def checks(ring: KeyRing, meta: Mapping[str, Any]) -> bool:
    """Whether the metadata's signature is one of the ring's accepted keys'."""
    given = meta.get(SIG_FIELD)
    if not isinstance(given, str) or not given.startswith(_VERSION):
        return False
    text = _signed_text(meta)
    for key in ring.accepted():
        wanted = _VERSION + hmac.new(key, text, hashlib.sha256).hexdigest()
        if hmac.compare_digest(wanted, given):
            return True
    return False


def trusted(db: str, meta: Mapping[str, Any], call_id: str | None = None) -> bool:
    """Whether a caller may act on this result metadata: it ends nothing, or it is signed by
    the deployment (under the key held, else the key read again, for a rotation) and, when
    ``call_id`` is given, is that call's. A result refused is logged."""
    if meta.get("status") not in ENDED:
        return True
    if meta.get(SIG_FIELD) is _CHECKED:
        return True
    task_id = meta.get("task_id")
    if call_id is None or task_id == call_id:
        try:
            if checks(result_keys.ring_for(db), meta):
                return True
            again = result_keys.ring_again(db)
            if again is not None and checks(again, meta):
                return True
        except Exception as exc:  # the key cannot be read: nothing can be trusted yet
            log.warning("result of call %s not checked yet (signing key unreadable: %s)",
                        str(call_id or task_id)[:80], exc)  # fmt: skip
            return False
    log.warning(
        "ignored a result for call %s that is not signed by this deployment (forged "
        "publish?); still waiting for the call's own result",
        str(call_id or task_id)[:80],
    )
    return False


def ran_as_sent(meta: Mapping[str, Any], sent: tuple[str, Any, Any] | None) -> bool:
    """Whether a (signed) result was made by a run of the call as its caller sent it:
    ``sent`` is (task, args, kwargs) as JSON values. A worker signs whatever it runs, so a
    message that reused the call's id with other arguments gets a signed result too: the
    task and arguments it carries (Celery's extended metadata, signed) tell it apart. A
    result that names none (a cancellation) is the call's. Logged when refused."""
    if sent is None or meta.get("status") not in ENDED or meta.get("args") is None:
        return True
    name, args, kwargs = sent
    if (meta.get("name"), meta.get("args"), meta.get("kwargs") or {}) == (name, args, kwargs):
        return True
    log.warning(
        "ignored a result for call %s made from other arguments than it was sent with (a "
        "message reusing its id?); still waiting for the call's own result",
        str(meta.get("task_id"))[:80],
    )
    return False


# What this process's calls not ended yet were sent with, by call id: a signed result made
# by a message that reused one's id with other arguments is not that call's result. Bounded:
# past EXPECTED_MAX the oldest expectation is forgotten (its result is then taken on its
# signature alone, as before anything was expected).
EXPECTED_MAX = 100_000
_expected: dict[str, tuple[str, Any, Any]] = {}
_expected_lock = threading.Lock()


def expect(call_id: str, task: str, args: Any, kwargs: Any) -> None:
    """Remember what call ``call_id`` was sent with (JSON values), for its result's check."""
    with _expected_lock:
        if len(_expected) >= EXPECTED_MAX:
            _expected.pop(next(iter(_expected)))
        _expected[call_id] = (task, list(args), dict(kwargs))


def _as_expected(meta: Mapping[str, Any]) -> bool:
    """An ended result of a call this process sent: made from what it was sent with (the
    expectation is then done with); any other result: nothing to compare."""
    call_id = str(meta.get("task_id"))
    with _expected_lock:
        sent = _expected.get(call_id)
    if sent is None:
        return True
    if not ran_as_sent(meta, sent):
        return False
    with _expected_lock:
        _expected.pop(call_id, None)
    return True


# -- Celery's result backends ---------------------------------------------------------------


def _is_result(data: Any) -> bool:
    return isinstance(data, dict) and "status" in data and "task_id" in data


class _Signing:
    """Mixed into a Celery result backend class (before it): signs what is stored, drops
    ended results whose signature does not check. The app names the deployment's database
    as ``shellflow_db`` (``shellflow.engine.transport.celery_app.make_app``); an app without
    one neither signs nor checks."""

    app: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        consumer = getattr(self, "result_consumer", None)
        if consumer is not None and self._db is not None:
            plain = consumer.on_state_change  # what pushed results are handed to

            def on_state_change(meta: Any, message: Any) -> None:
                if not isinstance(meta, dict) or self._trusted(meta):
                    plain(meta, message)

            consumer.on_state_change = on_state_change

    @property
    def _db(self) -> str | None:
        return getattr(self.app, "shellflow_db", None)

    def _trusted(self, meta: dict[str, Any]) -> bool:
        db = self._db
        if db is None or trusted(db, meta):
            if meta.get("status") in ENDED:
                if not _as_expected(meta):
                    return False
                meta[SIG_FIELD] = _CHECKED
            return True
        return False

    def _signed(self, meta: dict[str, Any]) -> dict[str, Any]:
        db = self._db
        if db is None:
            return meta
        return sign(result_keys.ring_for(db), dict(meta))

    def encode(self, data: Any) -> Any:
        """Key-value backends (Redis): the stored and published metadata, signed."""
        if _is_result(data):
            data = self._signed(data)
        return super().encode(data)  # type: ignore[misc]

    def _to_result(self, *args: Any, **kwargs: Any) -> Any:
        """The ``rpc://`` backend: the metadata it publishes, signed."""
        return self._signed(super()._to_result(*args, **kwargs))  # type: ignore[misc]

    def meta_from_decoded(self, meta: Any) -> Any:
        """An ended result not signed by the deployment reads as still pending."""
        if isinstance(meta, dict) and not self._trusted(meta):
            return {"status": "PENDING", "result": None, "task_id": meta.get("task_id")}
        return super().meta_from_decoded(meta)  # type: ignore[misc]


@cache
def signed_class(backend: type) -> type:
    """The backend class with signing mixed in (one class per backend class), under the
    backend's own name (what code that tells backends apart by name reads)."""
    return type(backend.__name__, (_Signing, backend), {"__module__": __name__})
