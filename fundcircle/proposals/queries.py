"""Read functions for proposals, scoped by round and visibility."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fundcircle.auth.models import User
from fundcircle.errors import NotFound
from fundcircle.proposals import permissions
from fundcircle.proposals.models import Proposal, ProposalStatus
from fundcircle.rounds.models import Round


def proposal_or_404(session: Session, round_: Round, proposal_id: int, user: User | None) -> Proposal:
    proposal = session.scalar(select(Proposal).where(Proposal.id == proposal_id, Proposal.round_id == round_.id))
    if proposal is None or not permissions.can_view(user, proposal):
        raise NotFound("There is no such proposal in this round.")
    return proposal


def public_proposals(session: Session, round_: Round) -> list[Proposal]:
    return list(session.scalars(select(Proposal).where(
        Proposal.round_id == round_.id, Proposal.status == ProposalStatus.SUBMITTED.value)
        .order_by(Proposal.submitted_at, Proposal.id)))


def proposals_of(session: Session, round_: Round, user: User | None) -> list[Proposal]:
    if user is None:
        return []
    return list(session.scalars(select(Proposal).where(Proposal.round_id == round_.id,
                                                       Proposal.applicant_id == user.id).order_by(Proposal.id)))


def all_proposals_of(session: Session, user: User) -> list[Proposal]:
    return list(session.scalars(select(Proposal).where(Proposal.applicant_id == user.id)
                                .order_by(Proposal.created_at.desc())))


def submitted_count_of(session: Session, round_: Round, user: User, exclude_id: int | None = None) -> int:
    query = select(func.count()).select_from(Proposal).where(
        Proposal.round_id == round_.id, Proposal.applicant_id == user.id,
        Proposal.status == ProposalStatus.SUBMITTED.value)
    if exclude_id is not None:
        query = query.where(Proposal.id != exclude_id)
    return session.scalar(query) or 0
