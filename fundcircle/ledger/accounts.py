"""The chart of accounts of one circle, and how account keys are spelled.

Decision (pot per circle, earmarks per round and proposal). A circle's money is one pot: members
and donors give to *the circle*, not to a round that may not exist yet, and a treasurer reconciles
one Stripe balance and one Open Collective balance per circle. So contributions land in
``<circle>:pot:available``; each award moves money from that pot into
``<circle>:pot:<round>:earmarked:<proposal>``, which keeps the per-round view (what round 3 awarded,
paid and still owes) without splitting the pot up front. A round's budget is a ceiling checked by
the round logic, not a separate pot of money; leftovers simply stay in the circle pot for the next
round. (Reference §1.3 sketches per-round pot accounts; a circle that wants ring-fenced money per
round can later add ``<circle>:pot:<round>:available`` accounts fed by transfers, without changing
anything already posted.)

Keys use the numeric ids of circle, round and proposal, never slugs or titles: keys are hashed into
the chain forever, and slugs and titles can be edited.

| key | kind | normal side | floor |
|---|---|---|---|
| ``<c>:stripe:clearing`` | asset | debit | no |
| ``<c>:oc:host`` | asset | debit | no |
| ``<c>:pot:available`` | liability | credit | yes |
| ``<c>:pot:<round>:earmarked:<proposal>`` | liability | credit | yes |
| ``<c>:fees:stripe``, ``<c>:fees:oc`` | expense | debit | no |
| ``<c>:suspense`` | liability | credit | no |
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccountSpec:
    """What an account is; accounts are created on first use with these properties."""

    key: str
    kind: str
    floor_zero: bool


def stripe_clearing(circle_id: int) -> AccountSpec:
    return AccountSpec(f"{circle_id}:stripe:clearing", "asset", False)


def oc_host(circle_id: int) -> AccountSpec:
    return AccountSpec(f"{circle_id}:oc:host", "asset", False)


def pot_available(circle_id: int) -> AccountSpec:
    return AccountSpec(f"{circle_id}:pot:available", "liability", True)


def earmark(circle_id: int, round_id: int, proposal_id: int) -> AccountSpec:
    return AccountSpec(f"{circle_id}:pot:{round_id}:earmarked:{proposal_id}", "liability", True)


def fees_stripe(circle_id: int) -> AccountSpec:
    return AccountSpec(f"{circle_id}:fees:stripe", "expense", False)


def fees_oc(circle_id: int) -> AccountSpec:
    return AccountSpec(f"{circle_id}:fees:oc", "expense", False)


def suspense(circle_id: int) -> AccountSpec:
    return AccountSpec(f"{circle_id}:suspense", "liability", False)


def standard_accounts(circle_id: int) -> list[AccountSpec]:
    """The accounts every circle has (earmarks are created per award)."""
    return [stripe_clearing(circle_id), oc_host(circle_id), pot_available(circle_id), fees_stripe(circle_id),
            fees_oc(circle_id), suspense(circle_id)]


def is_earmark_key(key: str) -> bool:
    parts = key.split(":")
    return len(parts) == 5 and parts[1] == "pot" and parts[3] == "earmarked"
