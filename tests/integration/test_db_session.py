"""The app's sessions: on SQLite one connection per session, held from its first transaction to close()."""

from __future__ import annotations

import gc
import threading

import pytest
import sqlalchemy as sa

from fundcircle.db import HeldConnectionSession, make_engine, make_sessionmaker


@pytest.fixture
def engine(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _dbapi(session) -> object:  # type: ignore[no-untyped-def]
    return session.connection().connection.dbapi_connection


def test_a_sqlite_session_keeps_its_connection_across_commits_and_returns_it_on_close(engine, backend) -> None:  # type: ignore[no-untyped-def]
    if backend != "sqlite":
        pytest.skip("PostgreSQL sessions check a connection out per transaction (pre-ping)")
    session = make_sessionmaker(engine)()
    assert isinstance(session, HeldConnectionSession)
    first = _dbapi(session)
    session.commit()
    assert engine.pool.checkedout() == 1  # held between transactions
    assert _dbapi(session) is first
    session.rollback()
    assert _dbapi(session) is first
    session.close()
    assert engine.pool.checkedout() == 0
    # a closed session is reusable and checks a connection out again
    assert session.execute(sa.text("SELECT 1")).scalar_one() == 1
    assert engine.pool.checkedout() == 1
    session.reset()
    assert engine.pool.checkedout() == 0


def test_get_bind_engine_is_the_sessions_engine(engine, backend) -> None:  # type: ignore[no-untyped-def]
    with make_sessionmaker(engine)() as session:
        assert session.get_bind().engine is engine
        assert session.get_bind().dialect.name == backend


def test_no_transaction_stays_open_between_commits(engine, backend) -> None:  # type: ignore[no-untyped-def]
    """Another writer can take the write lock while the first session sits idle after its commit:
    a held connection must not keep a transaction (or a SQLite read snapshot) open."""
    sessions = make_sessionmaker(engine)
    with sessions() as idle, sessions() as other:
        idle.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
        idle.commit()
        other.execute(sa.text("INSERT INTO currency (code, exponent) SELECT 'XTS', 2 WHERE 1 = 0"))
        other.commit()
        dbapi = _dbapi(idle)
        idle.rollback()
        if backend == "sqlite":
            assert dbapi.in_transaction is False  # type: ignore[attr-defined]


def test_a_session_dropped_without_close_returns_its_connection(engine, backend) -> None:  # type: ignore[no-untyped-def]
    session = make_sessionmaker(engine)()
    session.execute(sa.text("SELECT 1"))
    session.commit()
    before = engine.pool.checkedout()
    del session
    gc.collect()
    assert engine.pool.checkedout() == before - (1 if backend == "sqlite" else 0) == 0


def test_sessions_in_threads_hold_their_own_connections(engine, backend) -> None:  # type: ignore[no-untyped-def]
    if backend != "sqlite":
        pytest.skip("SQLite only")
    sessions = make_sessionmaker(engine)
    seen: dict[int, list[object]] = {0: [], 1: []}
    # both sessions open at once: a thread that finished before the other began would hand its
    # connection back to the pool, and the other would rightly get the same one
    both_open = threading.Barrier(2, timeout=30)

    def work(k: int) -> None:
        with sessions() as session:
            for _ in range(3):
                seen[k].append(_dbapi(session))
                session.commit()
                both_open.wait()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [len(seen[k]) for k in range(2)] == [3, 3]
    assert all(len({id(c) for c in seen[k]}) == 1 for k in range(2))  # each held its own across commits
    assert seen[0][0] is not seen[1][0]
    assert engine.pool.checkedout() == 0


def test_an_invalidated_session_releases_its_connection(engine, backend) -> None:  # type: ignore[no-untyped-def]
    if backend != "sqlite":
        pytest.skip("SQLite only")
    session = make_sessionmaker(engine)()
    first = _dbapi(session)
    session.invalidate()
    assert engine.pool.checkedout() == 0
    assert _dbapi(session) is not first
    session.close()


def test_a_held_connection_closed_elsewhere_is_replaced(engine, backend) -> None:  # type: ignore[no-untyped-def]
    if backend != "sqlite":
        pytest.skip("SQLite only")
    session = make_sessionmaker(engine)()
    session.get_bind().close()  # e.g. a caller that mistook get_bind() for the engine's own connection
    assert engine.pool.checkedout() == 0
    assert session.execute(sa.text("SELECT 1")).scalar_one() == 1
    assert engine.pool.checkedout() == 1
    session.close()
    assert engine.pool.checkedout() == 0
