"""Predicates for proposals."""

from __future__ import annotations

from fundcircle.auth.models import User
from fundcircle.circles import permissions as circle_permissions
from fundcircle.proposals.models import Proposal, ProposalStatus


def is_applicant(user: User | None, proposal: Proposal) -> bool:
    return user is not None and proposal.applicant_id == user.id


def can_view(user: User | None, proposal: Proposal) -> bool:
    """Submitted (and withdrawn) proposals of published rounds are public; drafts are the
    applicant's alone."""
    if is_applicant(user, proposal):
        return True
    if proposal.status == ProposalStatus.DRAFT.value:
        return False
    return proposal.round.published_at is not None


def can_see_private_fields(user: User | None, proposal: Proposal) -> bool:
    """Payee e-mail and screening notes: the applicant and the circle's facilitators/treasurers."""
    circle = proposal.round.circle
    return (is_applicant(user, proposal) or circle_permissions.is_facilitator(user, circle)
            or circle_permissions.is_treasurer(user, circle))


def can_screen(user: User | None, proposal: Proposal) -> bool:
    return circle_permissions.is_facilitator(user, proposal.round.circle)
