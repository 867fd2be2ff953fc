"""post(), reverse() and the award flow through the public API, on both databases."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fundcircle.errors import IdempotencyConflict, NotFound, RuleViolation, ValidationError
from fundcircle.ledger import (
    CurrencyMismatch,
    InsufficientFunds,
    Leg,
    Money,
    award,
    balance,
    cancel_award,
    circle_balances,
    ensure_circle_accounts,
    head,
    move_to_host,
    post,
    record_contribution,
    record_payout,
    reverse,
    verify,
)
from fundcircle.ledger.demo import seed_demo_ledger
from fundcircle.ledger.models import LedgerTransaction
from tests.integration.ledger.helpers import NOW, World, make_world

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "ledger_golden_v1.json"


def _fund(session: Session, world: World, gross_minor: int = 100_00, fee_minor: int = 0, pi: str = "pi_1"):  # type: ignore[no-untyped-def]
    return record_contribution(session, world.circle, gross_minor=gross_minor, fee_minor=fee_minor,
                               payment_intent_id=pi, now=NOW)


def test_golden_ledger_posted_through_the_api_has_the_golden_hashes(db_session: Session, world: World) -> None:
    """post() seals exactly what the golden vectors say, on SQLite and PostgreSQL alike."""
    ensure_circle_accounts(db_session, world.circle, now=NOW)
    entries = json.loads(GOLDEN.read_text(encoding="utf-8"))["transactions"]
    from fundcircle.ledger.accounts import earmark
    from fundcircle.ledger.posting import ensure_account

    for rid, pid in ((1, 2), (1, 3)):
        ensure_account(db_session, earmark(1, rid, pid), circle_id=1, currency="EUR", now=NOW)
    tx_by_seq: dict[int, int] = {}
    for e in entries:
        day = dt.date.fromisoformat(e["effective_on"])
        if e["reverses"] is not None:
            posted = reverse(db_session, tx_by_seq[e["reverses"]], now=NOW, effective_on=day)
        else:
            posted = post(db_session, circle_id=1, kind=e["kind"], idempotency_key=e["key"], now=NOW,
                          effective_on=day, legs=[Leg(k, Money(m, c)) for k, c, m in e["postings"]])
        assert (posted.seq, posted.hash_hex, posted.idempotency_key) == (e["seq"], e["hash"], e["key"])
        tx_by_seq[posted.seq] = posted.transaction_id
    db_session.commit()
    assert verify(db_session).ok
    assert head(db_session) == (entries[-1]["seq"], entries[-1]["hash"])


def test_contribution_replay_and_conflict(db_session: Session, world: World) -> None:
    first = _fund(db_session, world, 100_00, 320)
    again = _fund(db_session, world, 100_00, 320)
    assert again.replayed and not first.replayed
    assert again.transaction_id == first.transaction_id and again.hash_hex == first.hash_hex
    with pytest.raises(IdempotencyConflict, match="stripe:payment_intent:pi_1"):
        _fund(db_session, world, 100_01, 320)
    db_session.commit()
    assert db_session.scalar(sa.select(sa.func.count()).select_from(LedgerTransaction)) == 1
    assert balance(db_session, "1:pot:available") == Money(100_00, "EUR")
    assert balance(db_session, "1:stripe:clearing") == Money(96_80, "EUR")
    assert balance(db_session, "1:fees:stripe") == Money(3_20, "EUR")
    assert verify(db_session).ok


def test_award_payout_cancel_and_balances(db_session: Session, world: World) -> None:
    _fund(db_session, world, 500_00, 0)
    move_to_host(db_session, world.circle, amount_minor=500_00, reference="po_1", now=NOW)
    p1, p2, p3 = world.proposals
    award(db_session, world.round, p1, 200_00, now=NOW)
    award(db_session, world.round, p2, 150_00, now=NOW)
    assert award(db_session, world.round, p2, 150_00, now=NOW).replayed
    with pytest.raises(IdempotencyConflict):
        award(db_session, world.round, p2, 151_00, now=NOW)
    with pytest.raises(InsufficientFunds) as refused:
        award(db_session, world.round, p3, 200_00, now=NOW)
    assert "holds 150.00 EUR, short by 50.00 EUR" in str(refused.value)
    record_payout(db_session, world.round, p1, expense_id=4711, amount_minor=200_00, fee_minor=5_00, now=NOW)
    with pytest.raises(RuleViolation, match="already paid out"):
        cancel_award(db_session, world.round, p1, now=NOW)
    cancelled = cancel_award(db_session, world.round, p2, now=NOW)
    assert cancel_award(db_session, world.round, p2, now=NOW).transaction_id == cancelled.transaction_id
    with pytest.raises(NotFound):
        cancel_award(db_session, world.round, p3, now=NOW)
    db_session.commit()
    summary = circle_balances(db_session, world.circle.id, "EUR")
    assert (summary.pot_available_minor, summary.earmarked_minor, summary.paid_out_minor, summary.fees_minor) == (
        300_00, 0, 200_00, 5_00)
    assert summary.oc_host_minor == 500_00 - 205_00
    assert balance(db_session, "1:pot:1:earmarked:2") == Money(0, "EUR")
    report = verify(db_session)
    assert report.ok, report.problems
    assert head(db_session, world.circle.id) == report.head


def test_overdraft_of_an_earmark_names_account_and_shortfall(db_session: Session, world: World) -> None:
    _fund(db_session, world, 100_00)
    award(db_session, world.round, world.proposals[0], 60_00, now=NOW)
    with pytest.raises(InsufficientFunds, match=r"1:pot:1:earmarked:1 cannot go below zero: it holds 60\.00 EUR, "
                                                r"this payout takes 70\.00 EUR, short by 10\.00 EUR"):
        record_payout(db_session, world.round, world.proposals[0], expense_id=1, amount_minor=70_00, now=NOW)


def test_reversal_negates_exactly_and_only_once(db_session: Session, world: World) -> None:
    tx = _fund(db_session, world, 10_00)
    rev = reverse(db_session, tx.transaction_id, now=NOW)
    assert rev.idempotency_key == f"reversal:{tx.transaction_id}"
    assert reverse(db_session, tx.transaction_id, now=NOW).replayed
    # a hand-made second reversal under another key is refused (UNIQUE reverses_id backs this up)
    legs = [Leg("1:pot:available", Money(10_00, "EUR")), Leg("1:stripe:clearing", Money(-10_00, "EUR"))]
    with pytest.raises(RuleViolation, match="already reversed"):
        post(db_session, circle_id=1, kind="reversal", idempotency_key="other", legs=legs, now=NOW,
             reverses_id=tx.transaction_id)
    db_session.commit()
    assert balance(db_session, "1:pot:available") == Money(0, "EUR")
    assert verify(db_session).ok


@pytest.mark.parametrize("bad", ["unbalanced", "currency", "one_leg", "duplicate", "unknown_account", "zero",
                                 "other_circle", "bad_kind", "empty_key", "naive_now", "not_negation"])
def test_post_refuses_malformed_requests_and_writes_nothing(db_session: Session, world: World, bad: str) -> None:
    _fund(db_session, world, 10_00)
    other = make_world(db_session, slug="hillside")
    ensure_circle_accounts(db_session, other.circle, now=NOW)
    db_session.commit()
    eur = lambda m: Money(m, "EUR")  # noqa: E731
    kwargs = dict(circle_id=1, kind="adjustment", idempotency_key=f"k:{bad}", now=NOW,
                  legs=[Leg("1:oc:host", eur(5)), Leg("1:suspense", eur(-5))])
    expected: type[Exception] = ValidationError
    if bad == "unbalanced":
        kwargs["legs"] = [Leg("1:oc:host", eur(5)), Leg("1:suspense", eur(-4))]
    elif bad == "currency":
        kwargs["legs"] = [Leg("1:oc:host", Money(5, "USD")), Leg("1:suspense", Money(-5, "USD"))]
        expected = CurrencyMismatch
    elif bad == "one_leg":
        kwargs["legs"] = [Leg("1:oc:host", eur(5))]
    elif bad == "duplicate":
        kwargs["legs"] = [Leg("1:oc:host", eur(5)), Leg("1:oc:host", eur(-5))]
    elif bad == "unknown_account":
        kwargs["legs"] = [Leg("1:oc:host", eur(5)), Leg("1:nowhere", eur(-5))]
        expected = NotFound
    elif bad == "zero":
        kwargs["legs"] = [Leg("1:oc:host", eur(0)), Leg("1:suspense", eur(0))]
    elif bad == "other_circle":
        kwargs["legs"] = [Leg("1:oc:host", eur(5)), Leg(f"{other.circle.id}:suspense", eur(-5))]
    elif bad == "bad_kind":
        kwargs["kind"] = "gift"
    elif bad == "empty_key":
        kwargs["idempotency_key"] = ""
    elif bad == "naive_now":
        kwargs["now"] = NOW.replace(tzinfo=None)
    elif bad == "not_negation":
        first = db_session.scalar(sa.select(LedgerTransaction.id))
        kwargs.update(kind="reversal", reverses_id=first)
    before = verify(db_session).head
    with pytest.raises(expected):
        post(db_session, **kwargs)  # type: ignore[arg-type]
    db_session.commit()
    assert verify(db_session).head == before


def test_mixed_currency_circles_keep_separate_books(db_session: Session) -> None:
    eur = make_world(db_session, slug="eur")
    jpy = make_world(db_session, slug="jpy", currency="JPY")
    record_contribution(db_session, eur.circle, gross_minor=1_000, manual_reference="a", now=NOW)
    record_contribution(db_session, jpy.circle, gross_minor=5_000, manual_reference="b", now=NOW)
    with pytest.raises(CurrencyMismatch):
        post(db_session, circle_id=eur.circle.id, kind="adjustment", idempotency_key="x", now=NOW,
             legs=[Leg(f"{eur.circle.id}:oc:host", Money(5, "JPY")), Leg(f"{eur.circle.id}:suspense", Money(-5, "JPY"))])
    db_session.commit()
    assert balance(db_session, f"{jpy.circle.id}:pot:available") == Money(5_000, "JPY")
    assert verify(db_session).ok


def test_demo_seeding_funds_the_pot_and_earmarks_awards(db_session: Session, world: World) -> None:
    awards = [(world.proposals[0], 1_500_00), (world.proposals[1], 2_000_00)]
    posted = seed_demo_ledger(db_session, world.circle, world.round, awards, NOW)
    again = seed_demo_ledger(db_session, world.circle, world.round, awards, NOW)
    assert all(p.replayed for p in again) and [p.transaction_id for p in again] == [p.transaction_id for p in posted]
    db_session.commit()
    summary = circle_balances(db_session, world.circle.id, "EUR")
    assert summary.earmarked_minor == 3_500_00
    assert summary.pot_available_minor >= 0 and summary.fees_minor > 0
    assert verify(db_session).ok
