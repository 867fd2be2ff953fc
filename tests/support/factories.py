"""Row factories built through the operations (so they obey the same rules as the app)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fundcircle.auth.models import User
from fundcircle.circles import operations as circle_ops
from fundcircle.circles.models import Circle
from fundcircle.proposals import operations as proposal_ops
from fundcircle.proposals.models import Proposal
from fundcircle.rounds import operations as round_ops
from fundcircle.rounds.models import Round

T0 = dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def create_user(session: Session, email: str, name: str = "") -> User:
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, display_name=name or email.split("@")[0].title(), created_at=T0 - 30 * DAY)
        session.add(user)
        session.flush()
    return user


def create_circle(session: Session, slug: str = "test-circle", facilitator_email: str = "fac@example.org",
                  currency: str = "EUR") -> Circle:
    founder = create_user(session, facilitator_email)
    return circle_ops.create_circle(session, founder=founder, slug=slug, name=slug.replace("-", " ").title(),
                                    purpose="A circle for tests.", currency=currency, now=T0 - 30 * DAY)


def round_data(**overrides: Any) -> round_ops.RoundData:
    """Call open [T0, T0+10d), deliberation [T0+12d, T0+20d), voting [T0+20d, T0+27d)."""
    values: dict[str, Any] = dict(
        title="Spring grants", call_text="Small projects.", budget_minor=5_000_00, currency="EUR",
        rule_id="approval-greedy", rule_params={}, submissions_open_at=T0, submissions_close_at=T0 + 10 * DAY,
        deliberation_open_at=T0 + 12 * DAY, voting_open_at=T0 + 20 * DAY, voting_close_at=T0 + 27 * DAY,
        min_request_minor=100_00, max_request_minor=2_000_00, required_fields=[])
    values.update(overrides)
    return round_ops.RoundData(**values)


def create_round(session: Session, circle: Circle, *, publish: bool = True, now: dt.datetime | None = None,
                 **overrides: Any) -> Round:
    """A round (published unless ``publish=False``), created at ``now`` (default T0 - 5 days)."""
    facilitator = next(m.user for m in circle.memberships if m.is_facilitator)
    created = now or (overrides.get("submissions_open_at", T0) - 5 * DAY)
    round_ = round_ops.create_round(session, circle=circle, actor=facilitator, data=round_data(**overrides),
                                    now=created)
    if publish:
        round_ops.publish_round(session, round_=round_, actor=facilitator, now=created)
    return round_


def proposal_data(**overrides: Any) -> proposal_ops.ProposalData:
    values: dict[str, Any] = dict(
        title="Community fridge", summary="A fridge where neighbours share surplus food.",
        description="We will install and run a community fridge at the corner shop. " * 6,
        amount_requested_minor=800_00, budget_lines=[("Fridge", 600_00), ("Signs and cleaning kit", 200_00)],
        payee_kind="opencollective", payee_oc_slug="corner-fridge")
    values.update(overrides)
    return proposal_ops.ProposalData(**values)


def create_proposal(session: Session, round_: Round, applicant: User, *, submit: bool = True,
                    now: dt.datetime | None = None, **overrides: Any) -> Proposal:
    return proposal_ops.create_proposal(session, round_=round_, applicant=applicant,
                                        data=proposal_data(**overrides), now=now or T0 + DAY, submit=submit)


# -- voting (ballot pages, issue 5) ------------------------------------------------------------------

#: the voting window of ``round_data``'s defaults: [VOTING_OPENS, VOTING_CLOSES)
VOTING_OPENS = T0 + 20 * DAY
VOTING_CLOSES = T0 + 27 * DAY


def create_voting_round(session: Session, *, slug: str = "vote-circle", members: int = 3,
                        proposals: int = 3, rule_id: str = "approval-greedy",
                        rule_params: dict[str, Any] | None = None, proposals_at: dt.datetime | None = None,
                        **overrides: Any) -> dict[str, Any]:
    """A circle (facilitator fac@<slug>.example plus ``members`` members m<n>@<slug>.example), a
    published round voting in [VOTING_OPENS, VOTING_CLOSES) (unless ``overrides`` move the dates;
    then pass ``proposals_at`` inside the call) and ``proposals`` submitted proposals by a
    non-member (800, 810, 820 EUR ...). Flushed; returns ids and e-mails."""
    circle = create_circle(session, slug=slug, facilitator_email=f"fac@{slug}.example")
    emails = [f"m{n}@{slug}.example" for n in range(1, members + 1)]
    for email in emails:
        circle_ops.add_member(session, circle=circle, user=create_user(session, email), now=T0 - 20 * DAY)
    round_ = create_round(session, circle, rule_id=rule_id, rule_params=rule_params or {}, **overrides)
    applicant = create_user(session, f"applicant@{slug}.example", "Applicant")
    props = [create_proposal(session, round_, applicant, title=f"Project {chr(65 + n)}", now=proposals_at,
                             amount_requested_minor=800_00 + n * 10_00,
                             budget_lines=[("Everything", 800_00 + n * 10_00)])
             for n in range(proposals)]
    session.flush()
    return {"circle_id": circle.id, "slug": circle.slug, "round_id": round_.id, "members": emails,
            "facilitator": f"fac@{slug}.example", "applicant": f"applicant@{slug}.example",
            "proposal_ids": [p.id for p in props]}
