"""Stripe money movements in ledger terms, through the ledger's public API only.

Called by ``fundcircle.contributions.operations`` once a webhook event has been verified, stored
in the inbox and matched to its payment row (which decides *whether* to post; this module decides
*what* to post). Every posting carries a key derived from the Stripe object, so a retried unit of
work replays instead of posting twice:

| money movement | key | legs |
|---|---|---|
| payment settled | ``stripe:payment_intent:<pi>`` | clearing +net, fees:stripe +fee, pot −gross (``record_contribution``) |
| refund (cumulative ``amount_refunded`` went from A to B) | ``stripe:charge:<ch>:refunded:<B>`` | pot +(B−A), clearing −(B−A) |
| dispute opened, funds withdrawn | ``stripe:dispute:<dp>:withdrawn`` | pot +amount, fees:stripe +dispute fee, clearing −(amount+fee) |
| dispute won, funds reinstated | ``stripe:dispute:<dp>:reinstated`` | clearing +amount, pot −amount |

Stripe keeps its processing fee when a payment is refunded, so a refund takes only the refunded
amount from the pot. Money that leaves Stripe when the pot no longer holds it (everything was
awarded already) cannot be refused — it is gone — so the part the pot cannot cover is debited to
``suspense`` for the treasurer to resolve, and the result says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from fundcircle.circles.models import Circle
from fundcircle.ledger import InsufficientFunds, Leg, Money, Posted, ensure_circle_accounts, post, record_contribution
from fundcircle.ledger import accounts as chart


@dataclass(frozen=True)
class Outflow:
    """A posted outflow; ``shortfall_minor`` > 0 when the pot could not cover all of it."""

    posted: Posted
    shortfall_minor: int


def payment_key(payment_intent_id: str) -> str:
    return f"stripe:payment_intent:{payment_intent_id}"


def post_payment(session: Session, circle: Circle, *, payment_intent_id: str, gross_minor: int, fee_minor: int,
                 paid_on: dt.date, now: dt.datetime, memo: str) -> Posted:
    """A settled payment: the gross lands in the pot, Stripe's fee is an explicit expense leg."""
    return record_contribution(session, circle, gross_minor=gross_minor, fee_minor=fee_minor,
                               payment_intent_id=payment_intent_id, effective_on=paid_on, now=now, memo=memo)


def _take_from_pot(session: Session, circle: Circle, *, kind: str, key: str, amount_minor: int,
                   other_legs: list[Leg], now: dt.datetime, effective_on: dt.date, memo: str,
                   external_id: str) -> Outflow:
    """Post ``other_legs`` balanced by taking ``amount_minor`` from the pot (suspense for the part
    the pot cannot cover)."""
    cur = circle.currency
    pot, suspense = chart.pot_available(circle.id).key, chart.suspense(circle.id).key
    ensure_circle_accounts(session, circle, now=now)
    common = dict(circle_id=circle.id, kind=kind, idempotency_key=key, now=now, effective_on=effective_on,
                  external_source="stripe", external_id=external_id)
    try:
        posted = post(session, legs=[Leg(pot, Money(amount_minor, cur)), *other_legs], memo=memo, **common)  # type: ignore[arg-type]
        return Outflow(posted, 0)
    except InsufficientFunds as exc:
        if exc.account_key != pot:
            raise
        covered = max(exc.available_minor, 0)
        shortfall = amount_minor - covered
        legs = ([Leg(pot, Money(covered, cur))] if covered else []) + [Leg(suspense, Money(shortfall, cur))]
        posted = post(session, legs=[*legs, *other_legs],  # type: ignore[arg-type]
                      memo=f"{memo}; the pot could not cover {Money(shortfall, cur)}: booked to suspense", **common)
        return Outflow(posted, shortfall)


def post_refund(session: Session, circle: Circle, *, charge_id: str, refunded_before_minor: int,
                refunded_after_minor: int, now: dt.datetime, refunded_on: dt.date) -> Outflow:
    """Stripe's cumulative ``amount_refunded`` rose from ``refunded_before_minor`` to
    ``refunded_after_minor``: take the difference out of the pot."""
    delta = refunded_after_minor - refunded_before_minor
    if delta <= 0:
        raise ValueError("a refund posting needs a positive difference")
    cur = circle.currency
    clearing = chart.stripe_clearing(circle.id).key
    return _take_from_pot(
        session, circle, kind="refund", key=f"stripe:charge:{charge_id}:refunded:{refunded_after_minor}",
        amount_minor=delta, other_legs=[Leg(clearing, Money(-delta, cur))], now=now, effective_on=refunded_on,
        memo=f"Stripe refund of {Money(delta, cur)} (charge {charge_id}, {Money(refunded_after_minor, cur)} refunded in total)",
        external_id=f"charge:{charge_id}:refunded:{refunded_after_minor}")


def post_dispute_withdrawal(session: Session, circle: Circle, *, dispute_id: str, amount_minor: int,
                            fee_minor: int, now: dt.datetime, opened_on: dt.date) -> Outflow:
    """A chargeback: Stripe withdrew the disputed amount plus its dispute fee."""
    cur = circle.currency
    legs = [Leg(chart.stripe_clearing(circle.id).key, Money(-(amount_minor + fee_minor), cur))]
    if fee_minor:
        legs.append(Leg(chart.fees_stripe(circle.id).key, Money(fee_minor, cur)))
    return _take_from_pot(session, circle, kind="adjustment", key=f"stripe:dispute:{dispute_id}:withdrawn",
                          amount_minor=amount_minor, other_legs=legs, now=now, effective_on=opened_on,
                          memo=f"Stripe dispute {dispute_id}: funds withdrawn",
                          external_id=f"dispute:{dispute_id}:withdrawn")


def post_dispute_reinstatement(session: Session, circle: Circle, *, dispute_id: str, amount_minor: int,
                               now: dt.datetime, closed_on: dt.date) -> Posted:
    """The dispute was won: the disputed amount comes back to the pot (the dispute fee does not)."""
    cur = circle.currency
    ensure_circle_accounts(session, circle, now=now)
    legs = [Leg(chart.stripe_clearing(circle.id).key, Money(amount_minor, cur)),
            Leg(chart.pot_available(circle.id).key, Money(-amount_minor, cur))]
    return post(session, circle_id=circle.id, kind="adjustment", idempotency_key=f"stripe:dispute:{dispute_id}:reinstated",
                legs=legs, now=now, effective_on=closed_on, memo=f"Stripe dispute {dispute_id} won: funds reinstated",
                external_source="stripe", external_id=f"dispute:{dispute_id}:reinstated")
