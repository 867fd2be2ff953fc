"""Money flows of a circle in ledger terms (reference §1.4): contribution, award, payout, cancel.

Each function takes the session and explicit arguments (the acting user's id, ``now``), posts one
ledger transaction through ``post()``/``reverse()``, flushes and never commits. Keys come from the
real-world object, so calling again with the same arguments replays instead of double-posting.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fundcircle.circles.models import Circle
from fundcircle.errors import NotFound, RuleViolation, ValidationError
from fundcircle.ledger import accounts as chart
from fundcircle.ledger.models import LedgerTransaction
from fundcircle.ledger.money import Money, format_money
from fundcircle.ledger.posting import (
    InsufficientFunds,
    Leg,
    Posted,
    ensure_account,
    ensure_accounts,
    post,
    reverse,
)
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Round


def ensure_circle_accounts(session: Session, circle: Circle, *, now: dt.datetime) -> None:
    """Create the circle's standard accounts (in its currency) if missing. Flushes."""
    ensure_accounts(session, chart.standard_accounts(circle.id), circle_id=circle.id, currency=circle.currency,
                    now=now)


def record_contribution(
    session: Session,
    circle: Circle,
    *,
    gross_minor: int,
    now: dt.datetime,
    fee_minor: int = 0,
    payment_intent_id: str | None = None,
    manual_reference: str | None = None,
    effective_on: dt.date | None = None,
    actor_id: int | None = None,
    memo: str = "",
) -> Posted:
    """Money given to the circle lands in its pot (gross); the processor fee is an expense.

    Exactly one of:
      - ``payment_intent_id`` (a settled Stripe payment): debit ``stripe:clearing`` G−F and
        ``fees:stripe`` F, credit ``pot:available`` G; key ``stripe:payment_intent:<id>``.
      - ``manual_reference`` (a treasurer's entry for money received by the fiscal host, e.g. a bank
        transfer): debit ``oc:host`` G−F and ``fees:oc`` F, credit ``pot:available`` G; key
        ``manual:<reference>`` — the reference should name the outside document (bank statement line).

    Raises ValidationError (amounts, missing/both references), IdempotencyConflict (same
    payment recorded with other amounts). Flushes, never commits.
    """
    if (payment_intent_id is None) == (manual_reference is None):
        raise ValidationError("give either a Stripe payment intent id or a manual reference")
    if gross_minor <= 0:
        raise ValidationError("a contribution must be positive")
    if not 0 <= fee_minor <= gross_minor:
        raise ValidationError("the fee must be between zero and the gross amount")
    cur = circle.currency
    ensure_circle_accounts(session, circle, now=now)
    if payment_intent_id is not None:
        key, asset, fees = f"stripe:payment_intent:{payment_intent_id}", chart.stripe_clearing, chart.fees_stripe
        external = ("stripe", payment_intent_id)
    else:
        assert manual_reference is not None
        key, asset, fees = f"manual:{manual_reference}", chart.oc_host, chart.fees_oc
        external = (None, None)
    legs = [Leg(chart.pot_available(circle.id).key, Money(-gross_minor, cur))]
    if gross_minor - fee_minor:
        legs.append(Leg(asset(circle.id).key, Money(gross_minor - fee_minor, cur)))
    if fee_minor:
        legs.append(Leg(fees(circle.id).key, Money(fee_minor, cur)))
    return post(session, circle_id=circle.id, kind="contribution", idempotency_key=key, legs=legs, now=now,
                effective_on=effective_on, memo=memo, actor_id=actor_id, external_source=external[0],
                external_id=external[1])


def award_key(round_id: int, proposal_id: int) -> str:
    return f"award:{round_id}:{proposal_id}"


def _circle_of(session: Session, round_: Round, proposal: Proposal) -> Circle:
    if proposal.round_id != round_.id:
        raise ValidationError(f"proposal #{proposal.id} is not in round #{round_.id}")
    circle = session.get(Circle, round_.circle_id)
    if circle is None:  # pragma: no cover - foreign key
        raise NotFound(f"circle #{round_.circle_id} does not exist")
    if not (round_.currency == proposal.currency == circle.currency):
        raise ValidationError(f"round #{round_.id}, proposal #{proposal.id} and circle {circle.slug} must share "
                              f"one currency (the pot's, {circle.currency})")
    return circle


def award(session: Session, round_: Round, proposal: Proposal, amount_minor: int, *, now: dt.datetime,
          actor_id: int | None = None, effective_on: dt.date | None = None) -> Posted:
    """Earmark ``amount_minor`` of the circle pot for ``proposal`` (the reserve step).

    Moves pot:available → ``pot:<round>:earmarked:<proposal>``; key ``award:<round>:<proposal>``.
    Retrying with the same amount and effective date replays. Raises InsufficientFunds (a
    RuleViolation naming the pot, what it holds and the shortfall) when the pot cannot cover it,
    IdempotencyConflict when this proposal was already awarded another amount, ValidationError.
    Flushes, never commits.
    """
    if amount_minor <= 0:
        raise ValidationError("an award must be positive")
    circle = _circle_of(session, round_, proposal)
    cur = circle.currency
    ensure_circle_accounts(session, circle, now=now)
    mark = ensure_account(session, chart.earmark(circle.id, round_.id, proposal.id), circle_id=circle.id,
                          currency=cur, now=now)
    legs = [Leg(chart.pot_available(circle.id).key, Money(amount_minor, cur)), Leg(mark.key, Money(-amount_minor, cur))]
    try:
        return post(session, circle_id=circle.id, kind="award", idempotency_key=award_key(round_.id, proposal.id),
                    legs=legs, now=now, effective_on=effective_on, actor_id=actor_id,
                    memo=f"award to proposal #{proposal.id} of round #{round_.id}")
    except InsufficientFunds as exc:
        raise InsufficientFunds(
            f"The pot of {circle.name} cannot cover an award of {format_money(amount_minor, cur)} to "
            f"“{proposal.title}”: it holds {format_money(exc.available_minor, cur)}, short by "
            f"{format_money(exc.shortfall_minor, cur)}.",
            account_key=exc.account_key, currency=cur, available_minor=exc.available_minor,
            requested_minor=exc.requested_minor) from None


def record_payout(session: Session, round_: Round, proposal: Proposal, *, expense_id: str | int,
                  amount_minor: int, now: dt.datetime, fee_minor: int = 0, actor_id: int | None = None,
                  effective_on: dt.date | None = None) -> Posted:
    """The Open Collective expense was read back as PAID: clear the earmark to the host (the post step).

    Debit ``earmarked:<proposal>`` A (and ``fees:oc`` F when the host charged a fee), credit
    ``oc:host`` A+F; key ``oc:expense:<id>:paid``. Raises InsufficientFunds when the earmark holds
    less than A (paying more than was awarded), IdempotencyConflict, ValidationError. Flushes.
    """
    if amount_minor <= 0 or fee_minor < 0:
        raise ValidationError("a payout must be positive and its fee not negative")
    circle = _circle_of(session, round_, proposal)
    cur = circle.currency
    ensure_circle_accounts(session, circle, now=now)
    mark = ensure_account(session, chart.earmark(circle.id, round_.id, proposal.id), circle_id=circle.id,
                          currency=cur, now=now)
    legs = [Leg(mark.key, Money(amount_minor, cur)), Leg(chart.oc_host(circle.id).key, Money(-(amount_minor + fee_minor), cur))]
    if fee_minor:
        legs.append(Leg(chart.fees_oc(circle.id).key, Money(fee_minor, cur)))
    return post(session, circle_id=circle.id, kind="payout", idempotency_key=f"oc:expense:{expense_id}:paid",
                legs=legs, now=now, effective_on=effective_on, actor_id=actor_id, external_source="opencollective",
                external_id=f"expense:{expense_id}", memo=f"payout of proposal #{proposal.id} (OC expense {expense_id})")


def cancel_award(session: Session, round_: Round, proposal: Proposal, *, now: dt.datetime,
                 actor_id: int | None = None, memo: str = "") -> Posted:
    """Void an unpaid award: reverse it, so the earmark returns to the pot (the void step).

    Idempotent (a second cancel replays the first). Raises NotFound when the proposal has no award,
    RuleViolation when (part of) it was already paid out — reverse the payout first.
    Flushes, never commits.
    """
    _circle_of(session, round_, proposal)
    tx_id = session.execute(
        sa.select(LedgerTransaction.id).where(LedgerTransaction.idempotency_key == award_key(round_.id, proposal.id))
    ).scalar()
    if tx_id is None:
        raise NotFound(f"proposal #{proposal.id} of round #{round_.id} has no award to cancel")
    try:
        return reverse(session, tx_id, now=now, actor_id=actor_id, memo=memo or f"award to proposal #{proposal.id} cancelled")
    except InsufficientFunds as exc:
        raise RuleViolation(f"The award to “{proposal.title}” cannot be cancelled: "
                            f"{format_money(exc.shortfall_minor, exc.currency)} of it was already paid out.") from None


def move_to_host(session: Session, circle: Circle, *, amount_minor: int, reference: str, now: dt.datetime,
                 actor_id: int | None = None, effective_on: dt.date | None = None) -> Posted:
    """Stripe paid money out to the fiscal host: debit ``oc:host``, credit ``stripe:clearing``;
    key ``transfer:<reference>`` (e.g. the Stripe payout id ``po_…``). Flushes, never commits."""
    if amount_minor <= 0:
        raise ValidationError("a transfer must be positive")
    cur = circle.currency
    ensure_circle_accounts(session, circle, now=now)
    legs = [Leg(chart.oc_host(circle.id).key, Money(amount_minor, cur)),
            Leg(chart.stripe_clearing(circle.id).key, Money(-amount_minor, cur))]
    return post(session, circle_id=circle.id, kind="transfer", idempotency_key=f"transfer:{reference}", legs=legs,
                now=now, effective_on=effective_on, actor_id=actor_id, memo="Stripe payout to the fiscal host")
