"""Who may read, write and moderate the discussion of a proposal, and when.

Reading: whoever may see the proposal (``proposals.permissions.can_view``). A submitted proposal
of a published round is public, and so is its discussion. We chose public over members-only
because the circle's promise is that every decision and its reasons are open ("in the open", see
DESIGN.md): applicants, most of whom are not members, must read the questions put to them, and
the public reading a result should be able to see what was asked and answered before the vote.
Moderation (hiding with a public reason) keeps that safe. What is not public is who the members
are: only members of the circle see each other's names in the discussion; the public and the
applicant see the applicant's name and "Member A", "Member B" … (``queries.author_labels``), and
notifications to the applicant use the same labels. A per-circle switch to members-only
deliberation would be the next step if a circle asks for it.

Writing (comment, question, answer): circle members and the proposal's applicant, on a submitted
proposal, from the call opening until voting closes (phases call open, screening, deliberation
and voting): questions are most useful while the applicant can still edit, and members keep
discussing while they vote. Before the call nothing is submitted; after the close the record is
frozen. Questions are asked by members (not by the applicant), answers given by the applicant.

Moderation: facilitators of the circle, at any time (something harmful may be noticed after
the close), except on a proposal they applied for or are recused from.
"""

from __future__ import annotations

import datetime as dt

from fundcircle.auth.models import User
from fundcircle.circles import permissions as circle_permissions
from fundcircle.proposals import permissions as proposal_permissions
from fundcircle.proposals.models import Proposal, ProposalStatus
from fundcircle.rounds.models import Phase, Round

#: phases in which comments, questions and answers may be posted (and conflicts declared)
OPEN_PHASES = frozenset({Phase.CALL_OPEN, Phase.SCREENING, Phase.DELIBERATION, Phase.VOTING})


def can_read(user: User | None, proposal: Proposal) -> bool:
    return proposal_permissions.can_view(user, proposal)


def is_member(user: User | None, proposal: Proposal) -> bool:
    return circle_permissions.is_member(user, proposal.round.circle)


def can_take_part(user: User | None, proposal: Proposal) -> bool:
    """May post in this proposal's discussion at all (phase and status aside)."""
    return is_member(user, proposal) or proposal_permissions.is_applicant(user, proposal)


def can_ask(user: User | None, proposal: Proposal) -> bool:
    return is_member(user, proposal) and not proposal_permissions.is_applicant(user, proposal)


def can_answer(user: User | None, proposal: Proposal) -> bool:
    return proposal_permissions.is_applicant(user, proposal)


def can_moderate(user: User | None, proposal: Proposal, recused_ids: set[int] | frozenset[int] = frozenset()
                 ) -> bool:
    """Facilitators, but not on a proposal they applied for or are recused from (``recused_ids``:
    the proposals of the round the user is recused from)."""
    return (circle_permissions.is_facilitator(user, proposal.round.circle)
            and not proposal_permissions.is_applicant(user, proposal) and proposal.id not in recused_ids)


def can_declare_conflict(user: User | None, proposal: Proposal) -> bool:
    return is_member(user, proposal)


def is_open(round_: Round, now: dt.datetime) -> bool:
    return round_.phase_at(now) in OPEN_PHASES


def closed_reason(proposal: Proposal, now: dt.datetime) -> str | None:
    """Why nobody can post on this proposal now, or None when posting is open."""
    if proposal.status == ProposalStatus.DRAFT.value:
        return "The discussion opens when the proposal is submitted."
    if proposal.status == ProposalStatus.WITHDRAWN.value:
        return "This proposal was withdrawn; its discussion is closed."
    phase = proposal.round.phase_at(now)
    if phase in OPEN_PHASES:
        return None
    if phase is Phase.CLOSED:
        return "Voting has closed; the discussion is kept as it was."
    return "The discussion opens with the call for proposals."
