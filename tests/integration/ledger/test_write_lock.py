"""The writer lock on SQLite after BEGIN moved from an engine event to a dialect hook: which
transactions hold the write lock, and that the marker never outlives its transaction. Plus what
post() does around it on both databases: the per-connection cursor survives rollbacks and pool
reuse, and a post in a transaction that already read still serializes."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from fundcircle.circles.models import Circle
from fundcircle.db import SQLITE_WRITE_LOCKED, begin_write, sqlite_write_connection
from fundcircle.ledger import Leg, Money, balance, ensure_circle_accounts, post, verify
from fundcircle.ledger.posting import acquire_writer_lock
from tests.integration.ledger.helpers import NOW, World


def _sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's write lock; PostgreSQL uses an advisory lock")


def _other_writer_blocked(database_url: str) -> bool:
    """Whether a second connection cannot take the write lock right now."""
    conn = sqlite3.connect(sa.make_url(database_url).database, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return True
    finally:
        conn.close()


def _fund(session: Session, circle_id: int, key: str, amount_minor: int):  # type: ignore[no-untyped-def]
    ensure_circle_accounts(session, session.get(Circle, circle_id), now=NOW)
    return post(session, circle_id=circle_id, kind="contribution", idempotency_key=key, now=NOW,
                legs=[Leg(f"{circle_id}:pot:available", Money(-amount_minor, "EUR")),
                      Leg(f"{circle_id}:oc:host", Money(amount_minor, "EUR"))])


def test_begin_write_takes_the_lock_and_a_later_read_transaction_does_not(
        sessions: sessionmaker[Session], world: World, backend: str, database_url: str) -> None:
    _sqlite_only(backend)
    s = sessions()
    try:
        begin_write(s)
        assert s.connection().connection.info[SQLITE_WRITE_LOCKED] is True
        assert _other_writer_blocked(database_url)
        begin_write(s)  # already holding it: a no-op
        s.commit()
        assert not _other_writer_blocked(database_url)
        s.execute(sa.text("SELECT 1"))  # a plain (deferred) transaction on the same pooled connection
        assert s.connection().connection.info[SQLITE_WRITE_LOCKED] is False
        assert not _other_writer_blocked(database_url)
        with pytest.raises(RuntimeError, match="before the transaction's first statement"):
            begin_write(s)
    finally:
        s.rollback()
        s.close()


def test_sqlite_write_connection_after_a_read_reports_no_lock(
        sessions: sessionmaker[Session], world: World, backend: str, database_url: str) -> None:
    _sqlite_only(backend)
    s = sessions()
    try:
        s.execute(sa.text("SELECT 1"))
        conn = sqlite_write_connection(s)  # the transaction had already begun deferred
        assert conn.connection.info[SQLITE_WRITE_LOCKED] is False
        acquire_writer_lock(s)  # the no-op write takes it now, once
        assert conn.connection.info[SQLITE_WRITE_LOCKED] is True
        assert _other_writer_blocked(database_url)
        s.rollback()
        assert not _other_writer_blocked(database_url)
    finally:
        s.close()


def test_the_removed_execution_option_is_refused(sessions: sessionmaker[Session], backend: str) -> None:
    _sqlite_only(backend)
    s = sessions()
    try:
        with pytest.raises(ValueError, match="begin_write"):
            s.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    finally:
        s.rollback()
        s.close()


def test_post_after_a_read_in_the_same_transaction(sessions: sessionmaker[Session], world: World,
                                                   database_url: str, backend: str) -> None:
    """ORM work first, then post(): the post takes the lock inside the caller's transaction and
    the session sees its own rows."""
    c = world.circle.id
    s = sessions()
    try:
        s.execute(sa.text("SELECT count(*) FROM ledger_transaction")).scalar_one()
        first = _fund(s, c, "after-read-1", 10_00)
        second = _fund(s, c, "after-read-2", 5_00)
        assert (first.seq, second.seq) == (first.seq, first.seq + 1)
        if backend == "sqlite":
            assert _other_writer_blocked(database_url)
        assert balance(s, f"{c}:pot:available") == Money(15_00, "EUR")
        s.commit()
        assert verify(s).ok
    finally:
        s.close()


def test_the_cached_cursor_survives_rollbacks_and_connection_reuse(sessions: sessionmaker[Session],
                                                                    world: World) -> None:
    """Several sessions share pooled connections (and so the cursor kept per connection): posts,
    rollbacks, replays and conflicts in turn stay correct."""
    c = world.circle.id
    a, b = sessions(), sessions()
    try:
        _fund(a, c, "reuse-1", 10_00)
        a.rollback()  # nothing of it stays
        _fund(b, c, "reuse-1", 20_00)
        b.commit()
        a.close()  # its connection goes back to the pool; b's next transaction may get it
        replay = _fund(b, c, "reuse-1", 20_00)
        assert replay.replayed
        b.commit()
        a = sessions()
        posted = _fund(a, c, "reuse-2", 1_00)
        a.commit()
        assert not posted.replayed and posted.seq == replay.seq + 1
        assert balance(a, f"{c}:pot:available") == Money(21_00, "EUR")
        report = verify(a)
        assert report.ok and report.transactions == 2, report.problems
    finally:
        a.close()
        b.close()
