"""Demo money for a demo circle: a few realistic contributions and a transfer to the host, so the
closed round's tallied awards can be earmarked from the pot. Called by the demo seeder
(fundcircle/demo.py) before it closes and tallies that round."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from fundcircle.circles.models import Circle
from fundcircle.ledger.operations import award, move_to_host, record_contribution
from fundcircle.ledger.posting import Posted
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Round

#: (days before now, gross_minor, fee_minor, Stripe payment intent id or None for a manual entry)
#: fees follow Stripe's European card pricing, 1.5 % + 0.25 EUR, rounded half up to the cent.
_CONTRIBUTIONS: tuple[tuple[int, int, str | None, str | None], ...] = (
    (60, 250_000, None, "bank-statement-2026-09-22-line-4"),  # the founding members' transfer
    (45, 5_000, "pi_demo_3Qw8aF1kLm", None),
    (44, 2_500, "pi_demo_3Qw9bG2nPq", None),
    (40, 10_000, "pi_demo_3QxAcH3rSt", None),
    (33, 120_000, None, "bank-statement-2026-10-19-line-1"),  # a local business's pledge
    (30, 7_500, "pi_demo_3QyBdJ4tUv", None),
    (21, 20_000, "pi_demo_3QzCeK5vWx", None),
)


def _stripe_fee_minor(gross_minor: int) -> int:
    return (gross_minor * 15 + 500) // 1000 + 25


def fund_demo_pot(session: Session, circle: Circle, now: dt.datetime, *, needed_minor: int = 0) -> list[Posted]:
    """Fund ``circle``'s pot with the demo contributions and move the Stripe money to the host.

    The contributions total at least ``needed_minor`` (a "matching donor" top-up is added when
    they do not), so awards of that much can be earmarked afterwards. Idempotent: keys are fixed
    per circle, so running it twice replays. Returns the posted transactions in order. Flushes,
    never commits.
    """
    posted: list[Posted] = []
    stripe_net_minor = 0
    total_minor = 0
    for days_ago, gross_minor, intent, manual in _CONTRIBUTIONS:
        when = now - dt.timedelta(days=days_ago)
        if intent is not None:
            fee = _stripe_fee_minor(gross_minor)
            posted.append(record_contribution(session, circle, gross_minor=gross_minor, fee_minor=fee,
                                              payment_intent_id=f"{intent}_{circle.id}", now=when,
                                              memo="card contribution via Stripe"))
            stripe_net_minor += gross_minor - fee
        else:
            posted.append(record_contribution(session, circle, gross_minor=gross_minor,
                                              manual_reference=f"{manual}:circle-{circle.id}", now=when,
                                              memo="bank transfer to the fiscal host"))
        total_minor += gross_minor
    if needed_minor > total_minor:
        posted.append(record_contribution(
            session, circle, gross_minor=needed_minor - total_minor, now=now - dt.timedelta(days=20),
            manual_reference=f"matching-donor-top-up:circle-{circle.id}", memo="matching donor top-up"))
    posted.append(move_to_host(session, circle, amount_minor=stripe_net_minor,
                               reference=f"po_demo_{circle.id}", now=now - dt.timedelta(days=14)))
    return posted


def seed_demo_ledger(session: Session, circle: Circle, closed_round: Round,
                     awards: Sequence[tuple[Proposal, int]], now: dt.datetime) -> list[Posted]:
    """Fund ``circle``'s pot (``fund_demo_pot``) and earmark ``awards`` (proposal, amount_minor) of
    ``closed_round`` directly in the ledger.

    The demo itself tallies its closed round and lets ``voting.operations.earmark_awards`` post the
    earmarks; this is for callers that have awards without a tally. Idempotent. Flushes.
    """
    posted = fund_demo_pot(session, circle, now, needed_minor=sum(amount for _p, amount in awards))
    for proposal, amount_minor in awards:
        posted.append(award(session, closed_round, proposal, amount_minor, now=now,
                            effective_on=closed_round.voting_close_at.date()))
    return posted
