"""The applicant's journey: draft, submit, edit until the call closes, withdraw; and screening.

Phase rules live here (the templates only hide buttons): drafts may be written while the round
is announced or its call is open; submitting and editing a submitted proposal need an open call;
withdrawing is possible until voting opens.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fundcircle.audit.operations import record
from fundcircle.auth.models import User
from fundcircle.errors import PermissionDenied, RuleViolation, ValidationError
from fundcircle.ledger.money import format_money
from fundcircle.proposals import permissions, queries
from fundcircle.proposals.models import (BudgetLine, PayeeKind, Proposal, ProposalRevision, ProposalStatus,
                                         Screening)
from fundcircle.rounds.models import Phase, Round
from fundcircle.templating import fmt_datetime
from fundcircle.voting.operations import apply_automatic_recusals

OC_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
#: a description shorter than this does not count as "a full description"
MIN_DESCRIPTION_CHARS = 200


@dataclass
class ProposalData:
    title: str
    summary: str
    description: str
    amount_requested_minor: int
    payee_kind: str = PayeeKind.NONE.value
    payee_oc_slug: str = ""
    payee_email: str = ""
    #: (description, amount_minor) rows, blanks already removed
    budget_lines: list[tuple[str, int]] = field(default_factory=list)


def _validate_shape(data: ProposalData) -> None:
    errors: dict[str, list[str]] = {}
    if not data.title.strip():
        errors["title"] = ["Give your proposal a title."]
    if data.amount_requested_minor < 0:
        errors["amount_requested"] = ["The amount cannot be negative."]
    if data.payee_kind not in {k.value for k in PayeeKind}:
        errors["payee_kind"] = ["Choose how the money should be paid."]
    if data.payee_kind == PayeeKind.OPENCOLLECTIVE.value and not OC_SLUG_RE.match(data.payee_oc_slug or ""):
        errors["payee_oc_slug"] = ["Enter the Open Collective account's short name, e.g. riverside-garden."]
    if data.payee_kind == PayeeKind.EMAIL.value and "@" not in (data.payee_email or ""):
        errors["payee_email"] = ["Enter the e-mail address of the person who will be paid."]
    if errors:
        raise ValidationError(next(iter(errors.values()))[0], field_errors=errors)


def eligibility_problems(session: Session, round_: Round, proposal: Proposal) -> list[tuple[str, str]]:
    """Every criterion the proposal fails, as (field, message); empty when eligible."""
    problems: list[tuple[str, str]] = []
    amount = proposal.amount_requested_minor
    currency = round_.currency
    if amount <= 0:
        problems.append(("amount_requested", "Ask for an amount greater than zero."))
    if round_.min_request_minor is not None and amount < round_.min_request_minor:
        problems.append(("amount_requested", f"This round funds requests of at least "
                                             f"{format_money(round_.min_request_minor, currency)}."))
    if round_.max_request_minor is not None and amount > round_.max_request_minor:
        problems.append(("amount_requested", f"This round funds requests of at most "
                                             f"{format_money(round_.max_request_minor, currency)}."))
    if amount > round_.budget_minor:
        problems.append(("amount_requested", f"The request is larger than the round's whole budget "
                                             f"({format_money(round_.budget_minor, currency)})."))
    if not proposal.summary.strip():
        problems.append(("summary", "Add a one- or two-sentence summary."))
    required = set(round_.required_fields or [])
    if "description" in required and len(proposal.description.strip()) < MIN_DESCRIPTION_CHARS:
        problems.append(("description", f"This round asks for a full description (at least "
                                        f"{MIN_DESCRIPTION_CHARS} characters)."))
    if "budget_lines" in required and not proposal.budget_lines:
        problems.append(("budget_lines", "This round asks for an itemised budget."))
    if proposal.budget_lines and proposal.budget_lines_total_minor != amount:
        problems.append(("budget_lines", f"The budget lines add up to "
                                         f"{format_money(proposal.budget_lines_total_minor, currency)}, "
                                         f"not the {format_money(amount, currency)} requested."))
    if "payee" in required and proposal.payee_kind == PayeeKind.NONE.value:
        problems.append(("payee_kind", "This round asks who will receive the money."))
    limit = round_.max_proposals_per_applicant
    if limit is not None:
        others = queries.submitted_count_of(session, round_, proposal.applicant, exclude_id=proposal.id)
        if others >= limit:
            problems.append(("title", f"You can submit at most {limit} proposal{'s' if limit != 1 else ''} "
                                      f"to this round."))
    return problems


def _raise_if_ineligible(session: Session, round_: Round, proposal: Proposal) -> None:
    problems = eligibility_problems(session, round_, proposal)
    if problems:
        field_errors: dict[str, list[str]] = {}
        for name, message in problems:
            field_errors.setdefault(name, []).append(message)
        raise ValidationError("This proposal does not meet the round's criteria yet: "
                              + " ".join(m for _, m in problems), field_errors=field_errors)


def _require_phase(round_: Round, now: dt.datetime, allowed: set[Phase], action: str) -> None:
    phase = round_.phase_at(now)
    if phase in allowed:
        return
    if phase == Phase.DRAFT:
        raise RuleViolation("This round is not published yet.")
    if phase == Phase.ANNOUNCED:
        raise RuleViolation(f"Submissions open on {fmt_datetime(round_.submissions_open_at)}; you cannot "
                            f"{action} before then.")
    raise RuleViolation(f"Submissions for this round closed on {fmt_datetime(round_.submissions_close_at)}; "
                        f"you can no longer {action}.")


def _apply(session: Session, proposal: Proposal, data: ProposalData, now: dt.datetime) -> None:
    proposal.title = data.title.strip()
    proposal.summary = data.summary.strip()
    proposal.description = data.description.strip()
    proposal.amount_requested_minor = data.amount_requested_minor
    proposal.payee_kind = data.payee_kind
    proposal.payee_oc_slug = data.payee_oc_slug.strip() if data.payee_kind == PayeeKind.OPENCOLLECTIVE.value else ""
    proposal.payee_email = data.payee_email.strip().lower() if data.payee_kind == PayeeKind.EMAIL.value else ""
    proposal.updated_at = now
    proposal.budget_lines.clear()
    session.flush()  # the old lines go before the new ones take their positions
    for position, (description, amount_minor) in enumerate(data.budget_lines):
        proposal.budget_lines.append(BudgetLine(position=position, description=description.strip(),
                                                amount_minor=amount_minor))
    session.flush()


def _add_revision(session: Session, proposal: Proposal, author: User, now: dt.datetime) -> ProposalRevision:
    number = (session.scalar(select(func.max(ProposalRevision.number))
                             .where(ProposalRevision.proposal_id == proposal.id)) or 0) + 1
    revision = ProposalRevision(proposal_id=proposal.id, number=number, snapshot=proposal.snapshot(),
                                author_id=author.id, created_at=now)
    session.add(revision)
    session.flush()
    return revision


def create_proposal(session: Session, *, round_: Round, applicant: User, data: ProposalData,
                    now: dt.datetime, submit: bool = False) -> Proposal:
    """Save a new draft (and submit it when ``submit``). Raises RuleViolation outside the call,
    ValidationError for bad input or unmet criteria (nothing is saved then). Flushes."""
    _require_phase(round_, now, {Phase.ANNOUNCED, Phase.CALL_OPEN}, "start a proposal")
    _validate_shape(data)
    proposal = Proposal(round_id=round_.id, applicant_id=applicant.id, currency=round_.currency, created_at=now,
                        updated_at=now, title="", amount_requested_minor=0)
    session.add(proposal)
    session.flush()
    _apply(session, proposal, data, now)
    record(session, actor=applicant, action="proposal.create", circle_id=round_.circle_id, obj=proposal)
    if submit:
        submit_proposal(session, proposal=proposal, actor=applicant, now=now)
    return proposal


def update_proposal(session: Session, *, proposal: Proposal, actor: User, data: ProposalData,
                    now: dt.datetime, submit: bool = False) -> Proposal:
    """Edit a draft, or a submitted proposal while the call is open (kept as a new revision).
    Flushes."""
    if not permissions.is_applicant(actor, proposal):
        raise PermissionDenied("Only the applicant can edit this proposal.")
    if proposal.status == ProposalStatus.WITHDRAWN.value:
        raise RuleViolation("This proposal was withdrawn and can no longer be edited.")
    round_ = proposal.round
    if proposal.status == ProposalStatus.SUBMITTED.value:
        _require_phase(round_, now, {Phase.CALL_OPEN}, "edit your proposal")
    else:
        _require_phase(round_, now, {Phase.ANNOUNCED, Phase.CALL_OPEN}, "edit your draft")
    _validate_shape(data)
    _apply(session, proposal, data, now)
    if proposal.status == ProposalStatus.SUBMITTED.value:
        _raise_if_ineligible(session, round_, proposal)
        _add_revision(session, proposal, actor, now)
        record(session, actor=actor, action="proposal.edit", circle_id=round_.circle_id, obj=proposal)
    elif submit:
        submit_proposal(session, proposal=proposal, actor=actor, now=now)
    else:
        record(session, actor=actor, action="proposal.save_draft", circle_id=round_.circle_id, obj=proposal)
    return proposal


def submit_proposal(session: Session, *, proposal: Proposal, actor: User, now: dt.datetime) -> Proposal:
    """Submit a draft while the call is open, after checking every eligibility criterion.
    Raises ValidationError naming each failed criterion. Flushes."""
    if not permissions.is_applicant(actor, proposal):
        raise PermissionDenied("Only the applicant can submit this proposal.")
    if proposal.status == ProposalStatus.SUBMITTED.value:
        return proposal
    if proposal.status == ProposalStatus.WITHDRAWN.value:
        raise RuleViolation("This proposal was withdrawn.")
    round_ = proposal.round
    _require_phase(round_, now, {Phase.CALL_OPEN}, "submit a proposal")
    _raise_if_ineligible(session, round_, proposal)
    proposal.status = ProposalStatus.SUBMITTED.value
    proposal.submitted_at = now
    proposal.updated_at = now
    _add_revision(session, proposal, actor, now)
    record(session, actor=actor, action="proposal.submit", circle_id=round_.circle_id, obj=proposal)
    session.flush()
    # Recuse an applicant or payee who is a member from this proposal now, not only when they
    # first vote, so the proposal page and the conflict counts show it from the start.
    apply_automatic_recusals(session, round_, now=now)
    return proposal


def withdraw_proposal(session: Session, *, proposal: Proposal, actor: User, now: dt.datetime) -> Proposal:
    """Withdraw a draft or a submitted proposal before voting opens. Flushes."""
    if not permissions.is_applicant(actor, proposal):
        raise PermissionDenied("Only the applicant can withdraw this proposal.")
    if proposal.status == ProposalStatus.WITHDRAWN.value:
        return proposal
    round_ = proposal.round
    if round_.phase_at(now) in (Phase.VOTING, Phase.CLOSED):
        raise RuleViolation("Voting has started; a proposal can no longer be withdrawn. "
                            "Contact the facilitators if something changed.")
    proposal.status = ProposalStatus.WITHDRAWN.value
    proposal.withdrawn_at = now
    proposal.updated_at = now
    record(session, actor=actor, action="proposal.withdraw", circle_id=round_.circle_id, obj=proposal)
    session.flush()
    return proposal


def screen_proposal(session: Session, *, proposal: Proposal, actor: User, eligible: bool, reason: str,
                    now: dt.datetime) -> Proposal:
    """A facilitator marks a submitted proposal eligible or ineligible, with a reason the applicant
    sees (required when ineligible). Possible until voting opens. Flushes."""
    if not permissions.can_screen(actor, proposal):
        raise PermissionDenied("Only facilitators can screen proposals.")
    if proposal.status != ProposalStatus.SUBMITTED.value:
        raise RuleViolation("Only submitted proposals can be screened.")
    if proposal.round.phase_at(now) in (Phase.VOTING, Phase.CLOSED):
        raise RuleViolation("Voting has started; screening decisions are final.")
    reason = reason.strip()
    if not eligible and not reason:
        raise ValidationError("Say why the proposal is not eligible; the applicant will see it.",
                              field_errors={"reason": ["Give a reason."]})
    proposal.screening = (Screening.ELIGIBLE if eligible else Screening.INELIGIBLE).value
    proposal.screening_reason = reason
    proposal.screened_by_id = actor.id
    proposal.screened_at = now
    record(session, actor=actor, action="proposal.screen", circle_id=proposal.round.circle_id, obj=proposal,
           details={"eligible": eligible, "reason": reason})
    session.flush()
    return proposal
