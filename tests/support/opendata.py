"""Builders for the open-data tests (API, exports, receipts, the private-data canary): tallied
rounds made from real cast ballots through the voting operations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from fundcircle.auth.models import User
from fundcircle.circles.models import Circle
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Round
from tests.support.factories import DAY, T0, create_proposal, create_round, create_user

def add_members(session: Session, circle: Circle, count: int, *, prefix: str = "voter",
                joined_at: dt.datetime | None = None) -> list[User]:
    """``count`` new members of ``circle`` (plain members, no roles). Flushed."""
    from fundcircle.circles.models import Membership

    users = [create_user(session, f"{prefix}{n}@{circle.slug}.example", f"{prefix.title()} {n}")
             for n in range(count)]
    for user in users:
        session.add(Membership(circle_id=circle.id, user_id=user.id, joined_at=joined_at or T0 - 30 * DAY))
    session.flush()
    return users


def create_tallied_round(session: Session, circle: Circle, voters: list[User], ballots: list[Any], *,
                         now: dt.datetime, rule_id: str = "approval-greedy", rule_params: dict[str, Any] | None = None,
                         proposals: list[dict[str, Any]] | None = None, title: str = "Autumn grants",
                         changes: dict[int, Any] | None = None, superseded: list[Any] | None = None
                         ) -> tuple[Round, list[Proposal], list[Any]]:
    """A round whose voting closed a day before ``now``, with proposals, cast ballots and a stored
    result (``close_and_tally``). ``ballots[i]`` is voter i's choices with proposal *indexes* (ints
    in a list, or dict keys) that are replaced by the proposals' ids. Returns (round, proposals,
    receipts). ``changes`` {voter index: choices} re-casts those ballots before the close; the first
    receipts of changed ballots are appended to ``superseded``. Flushed, not committed."""
    from fundcircle.voting import operations as voting_ops

    opens = now - 40 * DAY
    round_ = create_round(session, circle, now=opens - 5 * DAY, title=title, rule_id=rule_id,
                          rule_params=rule_params or {}, submissions_open_at=opens,
                          submissions_close_at=opens + 10 * DAY, deliberation_open_at=opens + 12 * DAY,
                          voting_open_at=opens + 20 * DAY, voting_close_at=now - DAY)
    specs = proposals or [dict(title="Community fridge", amount_requested_minor=800_00),
                          dict(title="Repair café", amount_requested_minor=600_00,
                               budget_lines=[("Tools", 600_00)], payee_oc_slug="repair-cafe"),
                          dict(title="Bike workshop", amount_requested_minor=1_500_00,
                               budget_lines=[("Stands", 1_500_00)], payee_oc_slug="bike-workshop")]
    applicant = create_user(session, f"applicant@{circle.slug}.example", "Ada Applicant")
    specs = [{"budget_lines": [("Everything", spec["amount_requested_minor"])], **spec}
             if "amount_requested_minor" in spec else spec for spec in specs]
    made = [create_proposal(session, round_, applicant, now=opens + DAY, **spec) for spec in specs]
    ids = [p.id for p in made]
    def value_of(choices: Any) -> Any:
        return {ids[k]: v for k, v in choices.items()} if isinstance(choices, dict) else [ids[k] for k in choices]

    receipts = [voting_ops.cast_ballot(session, round_, voter, value_of(choices), opens + 21 * DAY)
                for voter, choices in zip(voters, ballots)]
    for index, choices in (changes or {}).items():
        if superseded is not None:
            superseded.append(receipts[index])
        receipts[index] = voting_ops.cast_ballot(session, round_, voters[index], value_of(choices), opens + 22 * DAY)
    voting_ops.close_and_tally(session, round_, now - DAY)
    session.flush()
    return round_, made, receipts
