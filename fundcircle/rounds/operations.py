"""Creating, editing and publishing rounds. The phase follows from the dates; what may change
once a phase has closed is decided here, not in templates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fundcircle.audit.operations import record
from fundcircle.auth.models import User
from fundcircle.circles.models import Circle
from fundcircle.errors import PermissionDenied, RuleViolation, ValidationError
from fundcircle.ledger.money import exponent
from fundcircle.proposals.models import Proposal, ProposalStatus
from fundcircle.rounds import permissions
from fundcircle.rounds.models import REQUIRABLE_FIELDS, Round
from fundcircle.circles import permissions as circle_permissions


@dataclass
class RoundData:
    """What a facilitator sets on a round (amounts already parsed to minor units)."""

    title: str
    call_text: str
    budget_minor: int
    currency: str
    rule_id: str
    rule_params: dict[str, Any]
    submissions_open_at: dt.datetime
    submissions_close_at: dt.datetime
    deliberation_open_at: dt.datetime
    voting_open_at: dt.datetime
    voting_close_at: dt.datetime
    min_request_minor: int | None = None
    max_request_minor: int | None = None
    required_fields: list[str] = field(default_factory=list)
    max_proposals_per_applicant: int | None = None
    show_running_results: bool = False


def _validate(data: RoundData) -> None:
    errors: dict[str, list[str]] = {}
    if data.budget_minor <= 0:
        errors["budget"] = ["The budget must be more than zero."]
    try:
        exponent(data.currency)
    except ValidationError:
        errors["currency"] = ["Unsupported currency."]
    order = [
        ("submissions_close_at", data.submissions_open_at < data.submissions_close_at,
         "Submissions must close after they open."),
        ("deliberation_open_at", data.submissions_close_at <= data.deliberation_open_at,
         "Deliberation cannot start before submissions close."),
        ("voting_open_at", data.deliberation_open_at <= data.voting_open_at,
         "Voting cannot open before deliberation starts."),
        ("voting_close_at", data.voting_open_at < data.voting_close_at, "Voting must close after it opens."),
    ]
    for name, ok, message in order:
        if not ok:
            errors.setdefault(name, []).append(message)
    if data.min_request_minor is not None and data.max_request_minor is not None \
            and data.max_request_minor < data.min_request_minor:
        errors["max_request"] = ["The largest request cannot be below the smallest."]
    if data.max_request_minor is not None and data.max_request_minor > data.budget_minor:
        errors.setdefault("max_request", []).append("The largest request cannot exceed the budget.")
    unknown = [f for f in data.required_fields if f not in REQUIRABLE_FIELDS]
    if unknown:
        errors["required_fields"] = [f"Unknown field(s): {', '.join(unknown)}"]
    if data.max_proposals_per_applicant is not None and data.max_proposals_per_applicant < 1:
        errors["max_proposals_per_applicant"] = ["At least 1, or leave it empty."]
    # The rule and its parameters are validated by the rule itself (pure voting package).
    from fundcircle.voting.registry import get_rule, UnknownRule

    try:
        rule = get_rule(data.rule_id)
        rule.resolve_params(data.rule_params)
    except UnknownRule as err:
        errors["rule_id"] = [err.user_message]
    except ValidationError as err:
        errors["rule_params"] = [err.user_message]
    if errors:
        first = next(iter(errors.values()))[0]
        raise ValidationError(first, field_errors=errors)


def create_round(session: Session, *, circle: Circle, actor: User, data: RoundData, now: dt.datetime) -> Round:
    """A new draft round. Facilitators only. Flushes."""
    if not circle_permissions.is_facilitator(actor, circle):
        raise PermissionDenied("Only facilitators can create rounds.")
    _validate(data)
    round_ = Round(circle_id=circle.id, created_by_id=actor.id, created_at=now, **_columns(data))
    session.add(round_)
    session.flush()
    record(session, actor=actor, action="round.create", circle_id=circle.id, obj=round_)
    return round_


def _columns(data: RoundData) -> dict[str, Any]:
    return {k: getattr(data, k) for k in RoundData.__dataclass_fields__}


def _has_submissions(session: Session, round_: Round) -> bool:
    return (session.scalar(select(func.count()).select_from(Proposal).where(
        Proposal.round_id == round_.id, Proposal.status != ProposalStatus.DRAFT.value)) or 0) > 0


def _locked_changes(session: Session, round_: Round, data: RoundData, now: dt.datetime) -> dict[str, list[str]]:
    """Changes refused because something already depends on the current value."""
    errors: dict[str, list[str]] = {}
    published = round_.published_at is not None
    submissions = _has_submissions(session, round_)

    def lock(name: str, message: str) -> None:
        if getattr(data, name) != getattr(round_, name):
            errors.setdefault(name, []).append(message)

    if published and now >= round_.submissions_open_at and submissions:
        lock("submissions_open_at", "Submissions have started; their opening date is fixed.")
        lock("currency", "Proposals already ask for money in this currency.")
    if published and now >= round_.submissions_close_at:
        # Reopening a closed call would let some applicants edit after others were told it closed.
        if data.submissions_close_at != round_.submissions_close_at and (submissions or data.submissions_close_at > now):
            errors.setdefault("submissions_close_at", []).append(
                "Submissions have closed; the closing date can no longer change.")
    if published and now >= round_.voting_open_at:
        for name in ("rule_id", "rule_params", "budget_minor", "currency", "voting_open_at",
                     "deliberation_open_at", "min_request_minor", "max_request_minor", "required_fields"):
            lock(name, "Voting has opened; this can no longer change.")
    if published and now >= round_.voting_close_at:
        lock("voting_close_at", "Voting has closed; the closing date can no longer change.")
    if published:
        # Moving a phase that has not started yet into the past would skip it silently.
        for name in ("submissions_close_at", "voting_open_at", "voting_close_at"):
            new, old = getattr(data, name), getattr(round_, name)
            if new != old and new <= now and old > now:
                errors.setdefault(name, []).append("This date cannot be moved into the past.")
    return errors


def update_round(session: Session, *, round_: Round, actor: User, data: RoundData, now: dt.datetime) -> Round:
    """Edit a round. Facilitators only; refuses changes that would reopen a closed phase or change
    what submissions or votes already depend on. Flushes."""
    if not permissions.can_manage_round(actor, round_):
        raise PermissionDenied("Only facilitators can edit rounds.")
    _validate(data)
    locked = _locked_changes(session, round_, data, now)
    if locked:
        first = next(iter(locked.values()))[0]
        raise RuleViolation(first, field_errors=locked)
    changed = {k: v for k, v in _columns(data).items() if getattr(round_, k) != v}
    for key, value in changed.items():
        setattr(round_, key, value)
    record(session, actor=actor, action="round.update", circle_id=round_.circle_id, obj=round_,
           details={"changed": sorted(changed)})
    session.flush()
    return round_


def publish_round(session: Session, *, round_: Round, actor: User, now: dt.datetime) -> Round:
    """Make a draft round public. Flushes."""
    if not permissions.can_manage_round(actor, round_):
        raise PermissionDenied("Only facilitators can publish rounds.")
    if round_.published_at is not None:
        return round_
    if round_.voting_close_at <= now:
        raise RuleViolation("This round's voting has already closed; change the dates before publishing.")
    round_.published_at = now
    record(session, actor=actor, action="round.publish", circle_id=round_.circle_id, obj=round_)
    session.flush()
    return round_

