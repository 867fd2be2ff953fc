"""The database refuses changes to ledger rows, and its seal/posting triggers back up post()."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from fundcircle.db import AppendOnlyViolation, translate_db_error
from fundcircle.ledger import (LedgerImmutable, Money, assert_balance, award, ensure_circle_accounts,
                               record_contribution, verify)
from fundcircle.ledger.models import LEDGER_TABLES, LedgerPosting, LedgerSeal, LedgerTransaction
from tests.integration.ledger.helpers import NOW, World, make_world

EXPECTED_SQLITE_TRIGGERS = {f"{t}_{op}" for t in LEDGER_TABLES for op in ("no_update", "no_delete")} | {
    "ledger_posting_check", "ledger_seal_check"}
EXPECTED_PG_TRIGGERS = {f"{t}_{op}" for t in LEDGER_TABLES for op in ("no_change", "no_truncate")} | {
    "ledger_posting_check", "ledger_seal_check", "ledger_transaction_sealed"}

UPDATES = {
    "currency": "UPDATE currency SET exponent = exponent WHERE code = 'EUR'",
    "ledger_account": "UPDATE ledger_account SET floor_zero = floor_zero",
    "ledger_transaction": "UPDATE ledger_transaction SET memo = 'edited'",
    "ledger_posting": "UPDATE ledger_posting SET amount_minor = amount_minor + 1",
    "ledger_seal": "UPDATE ledger_seal SET sealed_at = sealed_at",
    "ledger_balance_assertion": "UPDATE ledger_balance_assertion SET note = 'edited'",
}


def _funded(db_session: Session, world: World) -> None:
    record_contribution(db_session, world.circle, gross_minor=10_000, fee_minor=300, payment_intent_id="pi_g",
                        now=NOW)
    award(db_session, world.round, world.proposals[0], 4_000, now=NOW)
    assert_balance(db_session, f"{world.circle.id}:stripe:clearing", Money(9_700, "EUR"), source="stripe",
                   reference="bal_g", now=NOW)
    db_session.commit()


def test_expected_triggers_exist(db_session: Session, backend: str) -> None:
    """A migration that loses a guard fails here."""
    if backend == "postgresql":
        names = set(db_session.execute(sa.text(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text = ANY(:t)"),
            {"t": list(LEDGER_TABLES)}).scalars())
        assert EXPECTED_PG_TRIGGERS <= names
    else:
        names = set(db_session.execute(sa.text(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (%s)"
            % ", ".join(f"'{t}'" for t in LEDGER_TABLES))).scalars())
        assert EXPECTED_SQLITE_TRIGGERS <= names


@pytest.mark.parametrize("table", LEDGER_TABLES)
@pytest.mark.parametrize("statement", ["update", "delete", "truncate"])
def test_raw_changes_are_refused(sessions: sessionmaker[Session], db_session: Session, world: World,
                                 backend: str, table: str, statement: str) -> None:
    if statement == "truncate" and backend != "postgresql":
        pytest.skip("SQLite has no TRUNCATE; DELETE without WHERE is covered by the delete case")
    _funded(db_session, world)
    sql = {"update": UPDATES[table], "delete": f"DELETE FROM {table}",
           "truncate": f"TRUNCATE {table} CASCADE"}[statement]
    engine = db_session.get_bind().engine  # get_bind() may be the held Connection
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.exec_driver_sql(sql)
    assert isinstance(translate_db_error(caught.value), AppendOnlyViolation)
    assert "append-only" in str(caught.value)
    with sessions() as fresh:
        assert verify(fresh).ok  # nothing changed
        assert fresh.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() > 0


def test_orm_guard_refuses_dirty_and_deleted_ledger_objects(db_session: Session, world: World) -> None:
    _funded(db_session, world)
    posting = db_session.scalars(sa.select(LedgerPosting).limit(1)).one()
    posting.amount_minor += 1
    with pytest.raises(LedgerImmutable):
        db_session.flush()
    db_session.rollback()
    seal = db_session.scalars(sa.select(LedgerSeal).limit(1)).one()
    db_session.delete(seal)
    with pytest.raises(LedgerImmutable):
        db_session.flush()
    db_session.rollback()
    assert verify(db_session).ok


def _raw_tx(conn: sa.Connection, key: str, *, circle_id: int = 1, reverses_id: int | None = None) -> int:
    return conn.execute(sa.text(
        "INSERT INTO ledger_transaction (circle_id, idempotency_key, request_digest, kind, effective_on, "
        "recorded_at, memo, reverses_id) VALUES (:c, :k, :d, :kind, :e, :r, '', :rev) RETURNING id"),
        {"c": circle_id, "k": key, "d": b"\0" * 32, "kind": "adjustment" if reverses_id is None else "reversal",
         "e": NOW.date(), "r": NOW.replace(tzinfo=None), "rev": reverses_id}).scalar_one()


def _account_id(conn: sa.Connection, key: str) -> int:
    return conn.execute(sa.text("SELECT id FROM ledger_account WHERE key = :k"), {"k": key}).scalar_one()


def _balance(conn: sa.Connection, account_id: int) -> int:
    return conn.execute(sa.text("SELECT balance_after_minor FROM ledger_posting WHERE account_id = :a "
                                "ORDER BY id DESC LIMIT 1"), {"a": account_id}).scalar() or 0


def _posting(conn: sa.Connection, tx: int, account: int, amount: int, *, currency: str = "EUR",
             balance_after: int | None = None) -> None:
    if balance_after is None:
        balance_after = _balance(conn, account) + amount
    conn.execute(sa.text("INSERT INTO ledger_posting (transaction_id, account_id, currency, amount_minor, "
                         "balance_after_minor) VALUES (:t, :a, :c, :m, :b)"),
                 {"t": tx, "a": account, "c": currency, "m": amount, "b": balance_after})


def _seal(conn: sa.Connection, tx: int, *, seq: int | None = None, prev_hash: bytes | None | str = "tip") -> None:
    tip = conn.execute(sa.text("SELECT seq, hash FROM ledger_seal ORDER BY seq DESC LIMIT 1")).one()
    conn.execute(sa.text("INSERT INTO ledger_seal (seq, transaction_id, prev_hash, hash, encoding_version, "
                         "sealed_at) VALUES (:s, :t, :p, :h, 1, :at)"),
                 {"s": tip.seq + 1 if seq is None else seq, "t": tx,
                  "p": bytes(tip.hash) if prev_hash == "tip" else prev_hash, "h": b"\1" * 32,
                  "at": NOW.replace(tzinfo=None)})


CASES = {  # case -> words of the trigger's message (so a test cannot pass for another reason)
    "seq_gap": "tip + 1", "bad_link": "prev_hash", "unbalanced": "sum to zero", "one_posting": "two postings",
    "floor": "floor account", "sealed_tx_posting": "already sealed", "currency": "currency",
    "running_balance": "balance_after_minor",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_triggers_refuse_what_post_refuses(db_session: Session, world: World, case: str) -> None:
    """Writers that bypass post() are stopped by the posting and seal triggers (both databases)."""
    _funded(db_session, world)
    engine = db_session.get_bind().engine  # get_bind() may be the held Connection
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        pot = _account_id(conn, "1:pot:available")
        host = _account_id(conn, "1:oc:host")
        tx = _raw_tx(conn, f"raw:{case}")
        if case == "sealed_tx_posting":
            first = conn.execute(sa.text("SELECT transaction_id FROM ledger_seal WHERE seq = 1")).scalar_one()
            _posting(conn, first, host, 5)
        elif case == "currency":
            _posting(conn, tx, host, 5, currency="USD")
        elif case == "running_balance":
            _posting(conn, tx, host, 5, balance_after=999)
        elif case == "floor":  # take 10,000 from a pot holding 6,000
            _posting(conn, tx, pot, 10_000)
            _posting(conn, tx, host, -10_000)
            _seal(conn, tx)
        else:
            _posting(conn, tx, pot, -5)
            if case != "one_posting":
                _posting(conn, tx, host, 5 if case != "unbalanced" else 4)
            if case == "seq_gap":
                _seal(conn, tx, seq=99)
            elif case == "bad_link":
                _seal(conn, tx, prev_hash=b"\2" * 32)
            else:
                _seal(conn, tx)
    assert CASES[case] in str(caught.value)
    _assert_no_raw_rows(engine)


def test_postgresql_refuses_to_commit_an_unsealed_header(db_session: Session, world: World, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no deferred triggers; verify() reports unsealed headers there")
    _funded(db_session, world)
    engine = db_session.get_bind().engine  # get_bind() may be the held Connection
    with pytest.raises(DBAPIError, match="never sealed"), engine.begin() as conn:
        tx = _raw_tx(conn, "raw:unsealed")
        _posting(conn, tx, _account_id(conn, "1:pot:available"), -5)
        _posting(conn, tx, _account_id(conn, "1:oc:host"), 5)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(LedgerTransaction)) == 2


def _assert_no_raw_rows(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ledger_transaction WHERE idempotency_key LIKE 'raw:%'")
                            ).scalar_one() == 0


# legs as (account key, amount): "1:" keys are the EUR circle's, "2:" keys a USD circle's
PER_CURRENCY = {
    "balanced": [("1:oc:host", 5), ("1:suspense", -5), ("2:oc:host", 7), ("2:suspense", -7)],
    "zero_total_one_each": [("1:oc:host", 5), ("2:oc:host", -5)],
    "zero_total_two_each": [("1:oc:host", 5), ("1:suspense", -3), ("2:oc:host", 3), ("2:suspense", -5)],
}


@pytest.mark.parametrize("case", sorted(PER_CURRENCY))
def test_seal_trigger_sums_each_currency_separately(db_session: Session, world: World, case: str) -> None:
    """Several currencies in one transaction: each must sum to zero; a zero total is not enough."""
    _funded(db_session, world)
    usd = make_world(db_session, slug="hillside", currency="USD")
    ensure_circle_accounts(db_session, usd.circle, now=NOW)
    db_session.commit()
    assert usd.circle.id == 2
    engine = db_session.get_bind().engine  # a connection of its own, rolled back at the end
    with engine.connect() as conn, conn.begin() as tx_scope:
        tx = _raw_tx(conn, f"raw:{case}")
        for key, amount in PER_CURRENCY[case]:
            _posting(conn, tx, _account_id(conn, key), amount, currency="EUR" if key.startswith("1:") else "USD")
        if case == "balanced":
            _seal(conn, tx)
            assert conn.execute(sa.text("SELECT count(*) FROM ledger_seal WHERE transaction_id = :t"),
                                {"t": tx}).scalar_one() == 1
        else:
            with pytest.raises(DBAPIError, match="sum to zero"):
                _seal(conn, tx)
        tx_scope.rollback()
    _assert_no_raw_rows(engine)


def _award_tx(conn: sa.Connection) -> int:
    """The award _funded() sealed at seq 2 (pot:available -> earmark, two legs)."""
    return conn.execute(sa.text("SELECT transaction_id FROM ledger_seal WHERE seq = 2")).scalar_one()


REVERSALS = {  # case -> words of the trigger's message, None when the seal is accepted
    "exact": None,
    "halved": "exactly negate",  # balanced and within floors, but not the original's amounts
    "extra_legs": "exactly negate",  # the exact negation plus a balanced pair of other legs
    "doubled": "floor account",  # also not a negation: the floor check fires first, as it always has
    "of_unsealed": "unsealed",
}


@pytest.mark.parametrize("case", sorted(REVERSALS))
def test_seal_trigger_checks_reversals(db_session: Session, world: World, case: str) -> None:
    """A raw reversal is sealed only when it negates a sealed transaction exactly."""
    _funded(db_session, world)
    engine = db_session.get_bind().engine  # a connection of its own, rolled back at the end
    with engine.connect() as conn, conn.begin() as tx_scope:
        if case == "of_unsealed":
            original = _raw_tx(conn, "raw:original")
            _posting(conn, original, _account_id(conn, "1:oc:host"), 5)
            _posting(conn, original, _account_id(conn, "1:suspense"), -5)
        else:
            original = _award_tx(conn)
        legs = conn.execute(sa.text("SELECT account_id, amount_minor FROM ledger_posting WHERE transaction_id = :t "
                                    "ORDER BY account_id"), {"t": original}).all()
        times, over = {"halved": (1, 2), "doubled": (2, 1)}.get(case, (1, 1))
        rev = _raw_tx(conn, f"raw:{case}", reverses_id=original)
        for account, amount in legs:
            _posting(conn, rev, account, -amount * times // over)
        if case == "extra_legs":
            _posting(conn, rev, _account_id(conn, "1:oc:host"), 5)
            _posting(conn, rev, _account_id(conn, "1:suspense"), -5)
        if REVERSALS[case] is None:
            _seal(conn, rev)
        else:
            with pytest.raises(DBAPIError) as caught:
                _seal(conn, rev)
            assert REVERSALS[case] in str(caught.value)
        tx_scope.rollback()
    _assert_no_raw_rows(engine)

