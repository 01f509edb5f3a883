"""Who acts and the route are read on one kept connection, never a stale or a broken one."""

from __future__ import annotations

import pytest

from shellflow.model import kept
from shellflow.model.kept import kept_reader


def test_the_next_look_up_gets_the_same_connection_until_it_is_old(
    initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with kept_reader(initialised_db) as first:
        first.query("SELECT 1")
    with kept_reader(initialised_db) as second:
        assert second is first  # kept: no second connection, no second schema parse
    monkeypatch.setattr(kept, "KEPT_FOR", 0.0)
    with kept_reader(initialised_db) as third:
        assert third is not first  # too old to trust: a new one


def test_a_connection_whose_block_raised_is_closed_not_kept(initialised_db: str) -> None:
    with pytest.raises(RuntimeError), kept_reader(initialised_db) as failed:
        raise RuntimeError("the look-up failed")
    with kept_reader(initialised_db) as after:
        assert after is not failed
    with pytest.raises(Exception):  # noqa: B017  (the driver's own error: closed)
        failed.query("SELECT 1")


def test_a_forked_child_forgets_the_parents_connection(initialised_db: str) -> None:
    with kept_reader(initialised_db) as parents:
        pass
    kept._state.after_fork()
    with kept_reader(initialised_db) as childs:
        assert childs is not parents
    parents.close()


def test_a_connection_is_never_handed_to_another_thread(initialised_db: str) -> None:
    """SQLite refuses a connection made in another thread: the dashboard resolves who acts
    in each action's worker thread, after the main thread read it on start-up."""
    import threading

    with kept_reader(initialised_db) as mains:
        mains.query("SELECT 1")
    seen: list[object] = []

    def look_up() -> None:
        with kept_reader(initialised_db) as conn:
            conn.query("SELECT 1")  # raised ProgrammingError on SQLite with the main's
            seen.append(conn)

    thread = threading.Thread(target=look_up)
    thread.start()
    thread.join()
    assert seen and seen[0] is not mains
    with kept_reader(initialised_db) as again:
        assert again is mains  # the main thread's own, still kept
    assert all(key[1] != thread.ident for key in kept._state.readers)  # the ended one's: gone
