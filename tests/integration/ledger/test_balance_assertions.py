"""Balance assertions: outside statements compared with the books, stored insert-only, on both
databases."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from fundcircle.errors import IdempotencyConflict, NotFound, ValidationError
from fundcircle.ledger import (
    CurrencyMismatch,
    Money,
    assert_balance,
    award,
    balance,
    balance_assertions,
    balance_at,
    move_to_host,
    recheck_balance_assertions,
    record_contribution,
    verify,
)
from tests.integration.ledger.helpers import NOW, World

DAY1, DAY2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def _books(db_session: Session, world: World) -> str:
    """Two Stripe payments on two days, a transfer to the host and an award; returns the Stripe
    clearing account key."""
    c = world.circle
    record_contribution(db_session, c, gross_minor=100_00, fee_minor=3_20, payment_intent_id="pi_1", now=NOW,
                        effective_on=DAY1)
    record_contribution(db_session, c, gross_minor=50_00, fee_minor=1_70, payment_intent_id="pi_2", now=NOW,
                        effective_on=DAY2)
    move_to_host(db_session, c, amount_minor=90_00, reference="po_1", now=NOW, effective_on=DAY2)
    award(db_session, world.round, world.proposals[0], 120_00, now=NOW)
    db_session.commit()
    return f"{c.id}:stripe:clearing"


def test_matching_and_mismatching_statements_are_both_recorded(db_session: Session, world: World) -> None:
    clearing = _books(db_session, world)
    assert balance(db_session, clearing) == Money(55_10, "EUR")  # 96.80 + 48.30 - 90.00
    ok = assert_balance(db_session, clearing, Money(55_10, "EUR"), source="stripe", reference="bal_1", now=NOW)
    assert ok.matched and ok.as_of_seq == 4 and ok.difference == Money(0, "EUR") and not ok.replayed
    off = assert_balance(db_session, f"{world.circle.id}:oc:host", Money(91_00, "EUR"), source="opencollective",
                         reference="host-2026-11-21", now=NOW, note="host shows one euro more")
    assert not off.matched and off.ledger == Money(90_00, "EUR") and off.difference == Money(1_00, "EUR")
    db_session.commit()
    assert [a.reference for a in balance_assertions(db_session, circle_id=world.circle.id)] == [
        "bal_1", "host-2026-11-21"]
    assert [a.id for a in balance_assertions(db_session, mismatched_only=True)] == [off.id]
    assert recheck_balance_assertions(db_session) == []
    assert verify(db_session).ok  # a mismatch with the world is a finding, not a broken ledger


def test_as_of_date_and_as_of_seq_exclude_later_entries(db_session: Session, world: World) -> None:
    clearing = _books(db_session, world)
    # end of day 1: only the first payment (96.80); seq 1 is the same state
    assert balance_at(db_session, clearing, as_of_date=DAY1) == Money(96_80, "EUR")
    assert balance_at(db_session, clearing, as_of_seq=1) == Money(96_80, "EUR")
    assert balance_at(db_session, clearing, as_of_seq=0) == Money(0, "EUR")
    pot = f"{world.circle.id}:pot:available"
    assert balance_at(db_session, pot, as_of_seq=3) == Money(150_00, "EUR")
    assert balance_at(db_session, pot) == Money(30_00, "EUR")  # after the award
    check = assert_balance(db_session, clearing, Money(96_80, "EUR"), source="stripe", reference="day1",
                           as_of_date=DAY1, now=NOW)
    assert check.matched and check.as_of_date == DAY1
    with pytest.raises(ValidationError, match="beyond the chain head"):
        balance_at(db_session, clearing, as_of_seq=5)


def test_a_statement_replays_and_a_changed_one_conflicts(db_session: Session, world: World) -> None:
    clearing = _books(db_session, world)
    first = assert_balance(db_session, clearing, Money(55_00, "EUR"), source="stripe", reference="bal_9", now=NOW)
    record_contribution(db_session, world.circle, gross_minor=10_00, payment_intent_id="pi_3", now=NOW)
    again = assert_balance(db_session, clearing, Money(55_00, "EUR"), source="stripe", reference="bal_9", now=NOW)
    assert again.replayed and again.id == first.id and again.as_of_seq == first.as_of_seq  # not re-evaluated
    with pytest.raises(IdempotencyConflict, match="stripe:bal_9"):
        assert_balance(db_session, clearing, Money(55_10, "EUR"), source="stripe", reference="bal_9", now=NOW)
    db_session.commit()
    assert len(balance_assertions(db_session)) == 1


@pytest.mark.parametrize("bad", ["currency", "account", "source", "reference", "naive", "seq"])
def test_malformed_assertions_are_refused_and_write_nothing(db_session: Session, world: World, bad: str) -> None:
    clearing = _books(db_session, world)
    kwargs: dict = dict(source="stripe", reference="r", now=NOW)  # type: ignore[type-arg]
    account, expected = clearing, Money(1, "EUR")
    error: type[Exception] = ValidationError
    if bad == "currency":
        expected, error = Money(1, "USD"), CurrencyMismatch
    elif bad == "account":
        account, error = "1:nope", NotFound
    elif bad == "source":
        kwargs["source"] = ""
    elif bad == "reference":
        kwargs["reference"] = "x" * 256
    elif bad == "naive":
        kwargs["now"] = NOW.replace(tzinfo=None)
    else:
        kwargs["as_of_seq"] = 99
    with pytest.raises(error):
        assert_balance(db_session, account, expected, **kwargs)
    db_session.commit()
    assert balance_assertions(db_session) == []


def test_rows_are_append_only_and_recheck_catches_altered_history(db_session: Session, world: World,
                                                                  backend: str) -> None:
    clearing = _books(db_session, world)
    assert_balance(db_session, clearing, Money(55_10, "EUR"), source="stripe", reference="bal_1", now=NOW)
    db_session.commit()
    engine = db_session.get_bind().engine  # get_bind() may be the held Connection
    for sql in ("UPDATE ledger_balance_assertion SET expected_minor = 1", "DELETE FROM ledger_balance_assertion"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(sql)
    # an insider drops the guards and changes a sealed posting on the clearing account
    with engine.begin() as conn:
        if backend == "postgresql":
            conn.exec_driver_sql("ALTER TABLE ledger_posting DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER ledger_posting_no_update")
        conn.execute(sa.text("UPDATE ledger_posting SET amount_minor = amount_minor + 1 WHERE id = "
                             "(SELECT min(p.id) FROM ledger_posting p JOIN ledger_account a ON a.id = p.account_id "
                             "WHERE a.key = :k)"), {"k": clearing})
    db_session.expire_all()
    problems = recheck_balance_assertions(db_session)
    assert [p.code for p in problems] == ["assertion_changed"]
    assert "bal_1" in problems[0].message and problems[0].seq == 4
    assert verify(db_session).first_bad_seq == 1  # the chain names where the history was altered


def test_cli_verify_rechecks_assertions_and_lists_mismatches(db_session: Session, world: World,
                                                              database_url: str, backend: str) -> None:
    import json

    from click.testing import CliRunner

    from fundcircle.cli import main

    clearing = _books(db_session, world)
    assert_balance(db_session, clearing, Money(55_10, "EUR"), source="stripe", reference="bal_1", now=NOW)
    assert_balance(db_session, clearing, Money(50_00, "EUR"), source="stripe", reference="bal_2", now=NOW)
    db_session.commit()
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    human = runner.invoke(main, ["ledger", "verify"], env=env)
    assert human.exit_code == 0, human.output
    assert "balance assertions: 2 rechecked, 0 changed since recorded, 1 did not match" in human.stdout
    report = json.loads(runner.invoke(main, ["ledger", "verify", "--json"], env=env).stdout)
    assert report["ok"] and [m["reference"] for m in report["balance_assertions"]["mismatched"]] == ["bal_2"]
    # altered history fails the command through the assertion as well as the chain
    engine = db_session.get_bind().engine  # get_bind() may be the held Connection
    with engine.begin() as conn:
        if backend == "postgresql":
            conn.exec_driver_sql("ALTER TABLE ledger_posting DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER ledger_posting_no_update")
        conn.exec_driver_sql("UPDATE ledger_posting SET amount_minor = amount_minor - 5 WHERE id = 2")
    broken = runner.invoke(main, ["ledger", "verify"], env=env)
    assert broken.exit_code == 1 and "[assertion_changed]" in broken.stderr and "[hash]" in broken.stderr
