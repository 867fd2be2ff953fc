"""The compiled "confirm clean" pass of verify() (fundcircle.ledger._native_verify, optional).

Its one property: when it reports a ledger clean, the Python pass reports it clean with the same
counts and head; on any problem it returns None and verify() gives the Python pass's report.
The threshold is lowered to 0 so these small ledgers take the compiled path. SQLite files only
(PostgreSQL and :memory: always run the Python pass).
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from fundcircle.ledger import Leg, Money, checks, post, reverse, verify
from fundcircle.ledger.models import LedgerAccount
from tests.integration.ledger.helpers import NOW, World, engine_and_sessions, make_world
from tests.integration.ledger.test_tamper import REWRITES, TAMPERING, _drop_triggers, _ledger, _rewrite_chain

native = pytest.importorskip("fundcircle.ledger._native_verify", reason="C extension not built")

SQLS = checks.NATIVE_SQL


@pytest.fixture(autouse=True)
def _native_for_small_ledgers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "NATIVE_ABOVE_SEALS", 0)


@pytest.fixture
def sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the compiled pass reads SQLite files only")


def _python_report(session: Session) -> checks.VerifyReport:
    saved = checks._native_verify
    checks._native_verify = None
    try:
        return verify(session)
    finally:
        checks._native_verify = saved


def _checked(report: checks.VerifyReport, by: str) -> bool:
    """The report is clean and came from the ``by`` pass."""
    return report.ok and report.checked_by == by


def _checked_report(report: checks.VerifyReport, by: str) -> checks.VerifyReport:
    assert report.checked_by == by
    return report


def _path(session: Session) -> str:
    path = checks._sqlite_file(session.connection())
    assert path
    return path


def _both(session: Session) -> tuple[checks.VerifyReport, str, checks.VerifyReport]:
    """verify() as shipped (and which pass answered), then the Python pass alone."""
    session.commit()
    report = verify(session)
    used = report.checked_by
    session.commit()
    return report, used, _python_report(session)


def _odd_accounts(session: Session, world: World) -> list[str]:
    """Accounts whose keys need JSON escaping or sort differently by code point than by UTF-16."""
    keys = [f'{world.circle.id}:odd:"quoted"\\back', f"{world.circle.id}:odd:tab\tnl\ncr\r\x01\x1f\x7f",
            f"{world.circle.id}:odd:émoji🎉", f"{world.circle.id}:odd:\uffff", f"{world.circle.id}:odd:𝔘"]
    for key in keys:
        session.add(LedgerAccount(circle_id=world.circle.id, key=key, kind="asset", normal_side="debit",
                                  currency="EUR", floor_zero=False, created_at=NOW))
    session.flush()
    return keys


def test_clean_ledger_same_report_as_python(db_session: Session, world: World, sqlite_only: None) -> None:
    _ledger(db_session, world)
    report, used, python = _both(db_session)
    assert used == "native"
    assert report == python and report.ok and report.transactions == 6 and report.head.seq == 6


def test_clean_ledger_with_odd_keys_and_reversals(db_session: Session, world: World, sqlite_only: None) -> None:
    _ledger(db_session, world)
    keys = _odd_accounts(db_session, world)
    c = world.circle.id
    ids = []
    for i, key in enumerate(keys):
        for j, other in enumerate(keys):
            if i != j:
                ids.append(post(db_session, circle_id=c, kind="adjustment", now=NOW + dt.timedelta(days=i),
                                idempotency_key=f'k"{i}-{j}\\é\x02🎉', legs=[
                                    Leg(key, Money(100 + j, "EUR")), Leg(other, Money(-100 - j, "EUR"))]).transaction_id)
    post(db_session, circle_id=c, kind="adjustment", idempotency_key="many", now=NOW,
         legs=[Leg(k, Money(m, "EUR")) for k, m in zip(keys, (5, -3, 7, -4, -5), strict=True)])
    for tx_id in ids[::3]:
        reverse(db_session, tx_id, now=NOW)
    report, used, python = _both(db_session)
    assert used == "native" and python.ok
    assert report == python


def test_direct_call_returns_the_head(db_session: Session, world: World, sqlite_only: None) -> None:
    _ledger(db_session, world)
    db_session.commit()
    transactions, postings, seq, digest = native.verify(_path(db_session), *SQLS)
    python = _python_report(db_session)
    assert (transactions, postings, seq, digest.hex()) == (python.transactions, python.postings, *python.head)


def test_empty_ledger(db_session: Session, world: World, sqlite_only: None) -> None:
    db_session.commit()
    assert native.verify(_path(db_session), *SQLS) == (0, 0, 0, b"")


def test_uncommitted_writes_use_the_python_pass(db_session: Session, world: World, sqlite_only: None) -> None:
    """A new connection would not see the session's flushed rows: the Python pass must answer."""
    _ledger(db_session, world)
    c = world.circle.id
    post(db_session, circle_id=c, kind="adjustment", idempotency_key="pending", now=NOW,
         legs=[Leg(f"{c}:suspense", Money(1, "EUR")), Leg(f"{c}:stripe:clearing", Money(-1, "EUR"))])
    report = verify(db_session)  # no commit: the seal exists only in this transaction
    assert report.checked_by == "python"
    assert report.ok and report.transactions == 7


def test_uncommitted_write_in_a_deferred_transaction_uses_the_python_pass(db_session: Session, world: World,
                                                                          sqlite_only: None) -> None:
    """A write without begin_write() (not marked SQLITE_WRITE_LOCKED): the write-lock probe sees it."""
    _ledger(db_session, world)
    db_session.commit()
    db_session.execute(sa.text(
        "INSERT INTO ledger_transaction (circle_id, idempotency_key, request_digest, kind, effective_on, "
        "recorded_at, memo) SELECT circle_id, 'unsealed', request_digest, kind, effective_on, recorded_at, '' "
        "FROM ledger_transaction WHERE id = 1"))
    assert not db_session.connection().connection.info.get("fundcircle.sqlite_write_locked")
    report = verify(db_session)
    assert report.checked_by == "python"
    assert [p.code for p in report.problems] == ["unsealed"]
    db_session.rollback()


def test_path_with_uri_characters(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "a b#c%d" / "ledger.sqlite3"
    path.parent.mkdir()
    shutil.copyfile(sqlite_template, path)
    with engine_and_sessions(f"sqlite:///{path}") as (_engine, sessions), sessions() as session:
        world = make_world(session)
        session.commit()
        _ledger(session, world)
        assert _checked(verify(session), "native")


def test_memory_database_uses_the_python_pass(sqlite_only: None) -> None:
    from fundcircle.db import Base, make_engine, make_sessionmaker

    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    with make_sessionmaker(engine)() as session:
        assert _checked(verify(session), "python")
    engine.dispose()


def _tampered(db_session: Session, world: World, backend: str, sql: str, rewrite: bool) -> None:
    _ledger(db_session, world)
    assert _checked(verify(db_session), "native")
    _drop_triggers(db_session, backend)
    raw = sqlite3.connect(_path(db_session), isolation_level=None)  # foreign keys off: orphans allowed
    try:
        raw.execute("PRAGMA ignore_check_constraints = ON")
        raw.executescript(sql)
    finally:
        raw.close()
    db_session.commit()
    if rewrite:
        _rewrite_chain(db_session)
    db_session.commit()


def _assert_python_answers(db_session: Session) -> None:
    assert native.verify(_path(db_session), *SQLS) is None
    report, used, python = _both(db_session)
    assert used == "python" and not report.ok
    assert report == python


EXTRA_TAMPERING = {
    "account": "UPDATE ledger_posting SET account_id = (SELECT id FROM ledger_account WHERE key LIKE '%:fees:stripe') "
               "WHERE id = (SELECT max(id) FROM ledger_posting)",
    "currency": "UPDATE ledger_posting SET currency = 'USD' WHERE id = 1",
    "kind": "UPDATE ledger_transaction SET kind = 'adjustment' WHERE id = (SELECT transaction_id FROM ledger_seal "
            "WHERE seq = 2)",
    "reverses": "UPDATE ledger_transaction SET reverses_id = (SELECT transaction_id FROM ledger_seal WHERE seq = 3) "
                "WHERE id = (SELECT transaction_id FROM ledger_seal WHERE seq = 6)",
    "prev_hash": "UPDATE ledger_seal SET prev_hash = (SELECT hash FROM ledger_seal WHERE seq = 1) WHERE seq = 3",
    "first_prev_hash_empty": "UPDATE ledger_seal SET prev_hash = x'' WHERE seq = 1",
    "seal_deleted_last": "DELETE FROM ledger_seal WHERE seq = 6",
    "unsealed_header": "INSERT INTO ledger_transaction (circle_id, idempotency_key, request_digest, kind, "
                       "effective_on, recorded_at, memo) SELECT circle_id, 'unsealed', request_digest, kind, "
                       "effective_on, recorded_at, '' FROM ledger_transaction WHERE id = 1",
    "amount_as_real": "UPDATE ledger_posting SET amount_minor = amount_minor + 0.5 WHERE id = 1",
    "amount_as_text": "UPDATE ledger_posting SET amount_minor = 'x' WHERE id = 1",
    "hash_as_text": "UPDATE ledger_seal SET hash = 'abc' WHERE seq = 2",
    "posting_orphaned": "UPDATE ledger_posting SET transaction_id = 999 WHERE id = 2",
    "account_missing": "UPDATE ledger_posting SET account_id = 999 WHERE id = 2",
    "invalid_utf8_key": "UPDATE ledger_transaction SET idempotency_key = CAST(x'ff41' AS TEXT) WHERE id = 1",
}
EXTRA_REWRITES = {
    # the schema allows one reversal per transaction (UNIQUE reverses_id): rebuild the table without it
    "double_reversal": "CREATE TABLE lt AS SELECT * FROM ledger_transaction; DROP TABLE ledger_transaction; "
                       "ALTER TABLE lt RENAME TO ledger_transaction; UPDATE ledger_transaction SET kind = 'reversal', reverses_id = (SELECT reverses_id FROM "
                       "ledger_transaction WHERE reverses_id IS NOT NULL) WHERE id = (SELECT transaction_id "
                       "FROM ledger_seal WHERE seq = 5)",
    "floor_via_account": "UPDATE ledger_account SET floor_zero = 1, normal_side = 'credit' WHERE key LIKE '%:stripe:clearing'",
    "normal_side": "UPDATE ledger_account SET normal_side = 'debit' WHERE key LIKE '%:pot:available'",
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_gives_the_python_report(db_session: Session, world: World, backend: str, sqlite_only: None,
                                           case: str) -> None:
    _tampered(db_session, world, backend, TAMPERING[case][0], rewrite=False)
    _assert_python_answers(db_session)


@pytest.mark.parametrize("case", sorted(REWRITES))
def test_rewritten_chain_gives_the_python_report(db_session: Session, world: World, backend: str,
                                                 sqlite_only: None, case: str) -> None:
    _tampered(db_session, world, backend, REWRITES[case][0], rewrite=True)
    _assert_python_answers(db_session)


@pytest.mark.parametrize("case", sorted(EXTRA_TAMPERING))
def test_more_tampering_gives_the_python_report(db_session: Session, world: World, backend: str,
                                                sqlite_only: None, case: str) -> None:
    _tampered(db_session, world, backend, EXTRA_TAMPERING[case], rewrite=False)
    assert native.verify(_path(db_session), *SQLS) is None
    try:
        python = _python_report(db_session)
    except Exception:  # noqa: BLE001 - unreadable rows: the Python pass fails too, never "clean"
        return
    assert not python.ok
    db_session.commit()
    assert _checked_report(verify(db_session), "python") == python


@pytest.mark.parametrize("case", sorted(EXTRA_REWRITES))
def test_more_rewrites_give_the_python_report(db_session: Session, world: World, backend: str,
                                              sqlite_only: None, case: str) -> None:
    _tampered(db_session, world, backend, EXTRA_REWRITES[case], rewrite=True)
    _assert_python_answers(db_session)


def test_seq_order_unlike_id_order_gives_the_python_report(db_session: Session, world: World, backend: str,
                                                           sqlite_only: None) -> None:
    """The compiled pass accepts seals only in transaction id order (as one writer at a time
    writes them); otherwise the Python pass answers, whatever it finds."""
    swap = "UPDATE ledger_seal SET seq = -seq WHERE seq IN (1, 2); UPDATE ledger_seal SET seq = 3 + seq WHERE seq < 0"
    _tampered(db_session, world, backend, swap, rewrite=True)
    assert native.verify(_path(db_session), *SQLS) is None
    report, used, python = _both(db_session)
    assert used == "python" and report == python


def test_triggers_dropped_alone_is_still_clean(db_session: Session, world: World, backend: str,
                                               sqlite_only: None) -> None:
    _ledger(db_session, world)
    _drop_triggers(db_session, backend)
    report, used, python = _both(db_session)
    assert used == "native" and report == python and report.ok


# -- random ledgers, random single-field edits -----------------------------------------------------

@pytest.fixture
def base_ledger(sqlite_template: Path, tmp_path: Path) -> Path:
    """A committed ledger with odd keys and reversals, triggers dropped; each example edits a copy."""
    path = tmp_path / "base.sqlite3"
    shutil.copyfile(sqlite_template, path)
    with engine_and_sessions(f"sqlite:///{path}") as (_engine, sessions):
        session = sessions()
        world = make_world(session)
        session.commit()
        _ledger(session, world)
        keys = _odd_accounts(session, world)
        c = world.circle.id
        for i in range(12):
            a, b = keys[i % len(keys)], keys[(i * 2 + 1) % len(keys)]
            if a == b:
                continue
            tx = post(session, circle_id=c, kind="adjustment", idempotency_key=f"r{i}é\"", now=NOW,
                      legs=[Leg(a, Money(10 * i + 1, "EUR")), Leg(b, Money(-10 * i - 1, "EUR"))]).transaction_id
            if i % 4 == 0:
                reverse(session, tx, now=NOW)
        session.commit()
        _drop_triggers(session, "sqlite")
        session.close()
    return path


EDITABLE = {
    "ledger_posting": ("transaction_id", "account_id", "currency", "amount_minor", "balance_after_minor"),
    "ledger_transaction": ("idempotency_key", "kind", "effective_on", "reverses_id"),
    "ledger_seal": ("seq", "transaction_id", "prev_hash", "hash"),
    "ledger_account": ("key", "currency", "normal_side", "floor_zero"),
}
VALUES = st.one_of(
    st.none(), st.integers(-3, 40), st.integers(-(2**63), 2**63 - 1), st.sampled_from([2**62, -(2**62), 2**63 - 1]),
    st.text(max_size=6), st.sampled_from(["EUR", "USD", "credit", "debit", "2026-11-20", "reversal", "award"]),
    st.binary(max_size=33), st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.sampled_from(sorted(EDITABLE)), data=st.data(), value=VALUES, row=st.integers(0, 60),
       delta=st.sampled_from([None, 1, -1, 100]), rewrite=st.booleans())
def test_random_edit_never_clean_when_python_finds_a_problem(base_ledger: Path, tmp_path: Path, table: str,
                                                             data: st.DataObject, value: object, row: int,
                                                             delta: int | None, rewrite: bool) -> None:
    column = data.draw(st.sampled_from(EDITABLE[table]))
    path = tmp_path / f"{uuid.uuid4().hex}.sqlite3"
    shutil.copyfile(base_ledger, path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    rowid = "seq" if table == "ledger_seal" else "id"
    ids = [r[0] for r in conn.execute(f"SELECT {rowid} FROM {table} ORDER BY {rowid}")]
    target = ids[row % len(ids)]
    try:
        if delta is not None and column not in ("key", "currency", "normal_side", "idempotency_key", "kind",
                                                "effective_on", "prev_hash", "hash"):
            conn.execute(f"UPDATE {table} SET {column} = {column} + ? WHERE {rowid} = ?", (delta, target))
        else:
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE {rowid} = ?", (value, target))
    except sqlite3.Error:  # a constraint refused the edit (NOT NULL, CHECK, UNIQUE)
        assume(False)
    finally:
        conn.close()
    with engine_and_sessions(f"sqlite:///{path}") as (_engine, sessions):
        with sessions() as session:
            if rewrite:
                try:
                    _rewrite_chain(session)
                except Exception:  # noqa: BLE001 - rows the reference encoder cannot read
                    session.rollback()
            session.commit()
            result = native.verify(str(path), *SQLS)
            try:
                python = _python_report(session)
            except Exception:  # noqa: BLE001 - the Python pass cannot read the rows: never "clean"
                assert result is None
                return
            if not python.ok:
                assert result is None, python.problems
            elif result is not None:
                assert result == (python.transactions, python.postings, python.head.seq,
                                  bytes.fromhex(python.head.hash_hex))


def test_threshold_keeps_small_ledgers_on_python(db_session: Session, world: World, sqlite_only: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _ledger(db_session, world)
    monkeypatch.setattr(checks, "NATIVE_ABOVE_SEALS", 6)
    db_session.commit()
    assert _checked(verify(db_session), "python")
    monkeypatch.setattr(checks, "NATIVE_ABOVE_SEALS", 5)
    db_session.commit()
    assert _checked(verify(db_session), "native")
