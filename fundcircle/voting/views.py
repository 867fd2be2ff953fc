"""Voting pages: the ballot (every ballot kind), the receipt, and the facilitator's close action.

Handlers stay thin: load the circle and round (404), check membership (403), build and validate
the ballot form, call one operation (``cast_ballot`` or ``close_and_tally``), respond. The round
page shows a small voting panel built by ``voting_panel`` (a template global).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app, flash, g, redirect, render_template, request, url_for

from fundcircle.auth.forms import EmptyForm
from fundcircle.auth.models import User
from fundcircle.auth.permissions import current_user, require, require_user
from fundcircle.auth.second_factor import require_second_factor
from fundcircle.audit.operations import record as audit
from fundcircle.circles import permissions as circle_permissions
from fundcircle.circles import queries as circle_queries
from fundcircle.circles.models import Circle, Membership
from fundcircle.db import utcnow
from fundcircle.errors import FundcircleError, RuleViolation
from fundcircle.extensions import db
from fundcircle.notifications.operations import queue_mail
from fundcircle.proposals.models import Proposal
from fundcircle.rounds import permissions as round_permissions
from fundcircle.rounds import queries as round_queries
from fundcircle.rounds.models import Phase, Round
from fundcircle.voting import operations as ops
from fundcircle.voting.base import BallotKind
from fundcircle.voting.forms import (BallotFormBase, BallotProposal, BallotRules, build_ballot_form, describe_ballot,
                                     merge_choices, posted_foreign_choices)
from fundcircle.voting.models import ConflictLevel, ConflictOfInterest, StoredBallot
from fundcircle.voting.registry import get_rule

log = logging.getLogger(__name__)

RECUSAL_REASONS = {
    "applicant": "you applied for it",
    "payee": "you would receive its money",
    "co_applicant": "you declared that you are a co-applicant",
    "family": "you declared a close personal relationship with the applicant",
    "financial": "you declared that you would gain money from it",
    "organisation": "you declared that you work for or govern the applicant organisation",
    "other": "you declared a conflict of interest",
}


@dataclass(frozen=True)
class RecusedProposal:
    id: int
    title: str
    why: str


@dataclass
class BallotPage:
    """Everything the ballot page shows, loaded once per request."""

    circle: Circle
    round: Round
    user: User
    now: dt.datetime
    phase: Phase
    rule: Any
    rules: BallotRules
    proposals: list[BallotProposal]
    recused: list[RecusedProposal]
    stored: StoredBallot | None
    stored_value: Any
    is_tallied: bool

    @property
    def is_open(self) -> bool:
        return self.phase is Phase.VOTING and not self.is_tallied


def _ballot_rules(round_: Round, params: dict[str, Any]) -> BallotRules:
    rule = get_rule(round_.rule_id)
    return BallotRules(rule_id=rule.id, kind=BallotKind(rule.ballot_kind), params=params,
                       currency=round_.currency, budget_minor=round_.budget_minor)


def _ballot_proposals(round_: Round) -> list[Proposal]:
    """Proposals on the ballot (:func:`ops.on_ballot`), as ORM objects for the ballot page."""
    return list(db.session.scalars(sa.select(Proposal).where(*ops.on_ballot(round_.id)).order_by(Proposal.id)))


def _recusals(round_: Round, user: User, proposals: list[Proposal]) -> dict[int, str]:
    """proposal id -> why this member does not vote on it: declared recusals, plus the automatic
    ones the cast would record (computed here without writing: a GET changes nothing)."""
    c = ConflictOfInterest.__table__
    ids = [p.id for p in proposals]
    reasons: dict[int, str] = {}
    if not ids:
        return reasons
    for row in db.session.execute(sa.select(c.c.proposal_id, c.c.reason_category).where(
            c.c.user_id == user.id, c.c.proposal_id.in_(ids), c.c.level == ConflictLevel.RECUSE.value)):
        reasons[row.proposal_id] = RECUSAL_REASONS.get(row.reason_category, RECUSAL_REASONS["other"])
    for _user_id, proposal_id, category in ops._automatic_conflicts(db.session, round_.id, [user]):
        reasons.setdefault(proposal_id, RECUSAL_REASONS[category])
    return reasons


def _load_page(slug: str, round_id: int) -> BallotPage:
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    user = require_user()
    round_ = round_queries.round_or_404(db.session, circle, round_id, user)
    require(circle_permissions.is_member(user, circle), "Only members of this circle can vote in this round.")
    now = utcnow()
    rule = get_rule(round_.rule_id)
    if BallotKind(rule.ballot_kind) is BallotKind.NONE:
        raise RuleViolation("This round is decided without ballots (its rule needs none).")
    params = ops.round_params(db.session, round_)
    proposals = _ballot_proposals(round_)
    recused_why = _recusals(round_, user, proposals)
    mine = ops.ballot_of(db.session, round_.id, user.id)
    return BallotPage(
        circle=circle, round=round_, user=user, now=now, phase=round_.phase_at(now), rule=rule,
        rules=_ballot_rules(round_, params),
        proposals=[BallotProposal(p.id, p.title, p.summary, p.amount_requested_minor, p.currency)
                   for p in proposals if p.id not in recused_why],
        recused=[RecusedProposal(p.id, p.title, recused_why[p.id]) for p in proposals if p.id in recused_why],
        stored=mine[0] if mine else None, stored_value=mine[1] if mine else None,
        is_tallied=ops.has_result(db.session, round_.id))


def _render(page: BallotPage, form: BallotFormBase | None, status: int = 200,
            error: str = ""):  # type: ignore[no-untyped-def]
    g._no_store = True  # a ballot (even half-filled) is private: no shared or back-button caches
    return render_template("voting/ballot.html", page=page, circle=page.circle, round=page.round, form=form,
                           rules=page.rules, kind=page.rules.kind.value, error=error), status


def ballot(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    page = _load_page(slug, round_id)
    if request.method == "GET":
        if not page.is_open:
            return _render(page, None)
        return _render(page, build_ballot_form(page.rules, page.proposals, stored=page.stored_value))
    if not page.is_open:
        # refused by the operation too; answered here without touching the database
        return _render(page, None, 409, error=_closed_message(page))
    form = build_ballot_form(page.rules, page.proposals, formdata=request.form)
    if not form.validate_on_submit():
        return _render(page, form, 422)
    try:
        choices = merge_choices(page.rules.kind, form.choices(),
                                posted_foreign_choices(page.rules.kind, request.form, {p.id for p in page.proposals}))
        receipt = ops.cast_ballot(db.session, page.round, page.user, choices, page.now)
    except FundcircleError as err:
        log.info("vote_rejected round=%s user=%s reason=%s", page.round.id, page.user.id, type(err).__name__)
        if isinstance(err, ops.VotingClosed):  # a close won the race: no form to send again
            page.is_tallied = True
            message = err.user_message
            if "not recorded" not in message:
                message += " Your ballot was not recorded."
            return _render(page, None, err.http_status, error=message)
        form.attach_errors(err)
        return _render(page, form, err.http_status)
    _mail_receipt(page, receipt)
    log.info("vote_cast round=%s user=%s change=%s", page.round.id, page.user.id, receipt.is_change)
    g._no_store = True
    # what the database now holds for this member (read back in the same transaction)
    stored = ops.ballot_of(db.session, page.round.id, page.user.id)
    cast = describe_ballot(page.rules, page.proposals, stored[1]) if stored else []
    # Rendered straight from the POST (no redirect): the code never sits in a URL or in history.
    return render_template("voting/receipt.html", page=page, circle=page.circle, round=page.round,
                           receipt=receipt, cast=cast), 200


def _closed_message(page: BallotPage) -> str:
    if page.is_tallied or page.phase is Phase.CLOSED:
        return f"Voting closed on {page.round.voting_close_at:%-d %b %Y at %H:%M} UTC; your ballot was not recorded."
    return f"Voting opens on {page.round.voting_open_at:%-d %b %Y at %H:%M} UTC; your ballot was not recorded."


def _mail_receipt(page: BallotPage, receipt: ops.Receipt) -> None:
    round_url = url_for("rounds.round_page", slug=page.circle.slug, round_id=page.round.id, _external=True)
    verb = "changed" if receipt.is_change else "recorded"
    body = (
        f"Hello {page.user.display_name or page.user.email},\n\n"
        f"your ballot in “{page.round.title}” ({page.circle.name}) was {verb} on "
        f"{receipt.updated_at:%-d %b %Y at %H:%M} UTC.\n\n"
        f"Your receipt code: {receipt.code}\n\n"
        f"Keep it. When the result is published, the list of ballots shows the receipt id "
        f"{receipt.receipt_id} next to your ballot, so you can check it was counted as you cast it; "
        f"nobody else can link that ballot to you.\n\n"
        f"You can change your ballot until voting closes on {page.round.voting_close_at:%-d %b %Y at %H:%M} UTC. "
        f"Each change gives a new receipt code; only your last ballot counts.\n\n{round_url}\n")
    queue_mail(db.session, to_address=page.user.email, subject=f"Your ballot receipt: {page.round.title}",
               body_text=body)


def close_round(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    """Facilitator: close voting and tally now (after the voting close time). Idempotent."""
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    user = require_user()
    round_ = round_queries.round_or_404(db.session, circle, round_id, user)
    require(round_permissions.can_manage_round(user, round_), "Only facilitators can close a round.")
    require_second_factor()
    if not EmptyForm().validate_on_submit():
        raise RuleViolation("Your form expired. Reload the round page and try again.")
    now = utcnow()
    # only for the message: close_and_tally itself decides under the round's exclusive lock
    already = ops.has_result(db.session, round_.id)
    result = ops.close_and_tally(db.session, round_, now, actor=user)
    if not already and result.tallied_by_id == user.id:
        audit(db.session, actor=user, action="round_closed", circle_id=circle.id, obj=round_,
              details={"ballots": result.ballot_count, "ballot_digest": result.ballot_digest})
        flash(f"Voting is closed and the ballots are tallied: {result.ballot_count} ballots, "
              f"{len(result.awards)} proposals funded.", "success")
    else:
        flash("This round was already closed and tallied; nothing changed.", "success")
    return redirect(_results_url(circle.slug, round_.id) or url_for("rounds.round_page", slug=slug,
                                                                     round_id=round_id))


def earmark_again(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    """Treasurer or facilitator: earmark a tallied round's awards that the pot could not cover at
    close (after the pot was funded). Idempotent: earmarked awards are skipped."""
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    user = require_user()
    round_ = round_queries.round_or_404(db.session, circle, round_id, user)
    require(circle_permissions.is_treasurer(user, circle) or round_permissions.can_manage_round(user, round_),
            "Only treasurers and facilitators can earmark awards.")
    require_second_factor()
    if not EmptyForm().validate_on_submit():
        raise RuleViolation("Your form expired. Reload the round page and try again.")
    if ops.stored_result(db.session, round_.id) is None:
        raise RuleViolation("This round has not been tallied yet; there are no awards to earmark.")
    still_missing = ops.earmark_awards(db.session, round_, now=utcnow(), actor=user)
    if still_missing:
        flash(f"Nothing was earmarked: {still_missing[0].earmark_problem}", "error")
    else:
        audit(db.session, actor=user, action="awards_earmarked", circle_id=circle.id, obj=round_)
        flash("The round's awards are earmarked in the ledger.", "success")
    return redirect(url_for("rounds.round_page", slug=slug, round_id=round_id))


# -- the round page's voting panel -------------------------------------------------------------------

def _results_url(slug: str, round_id: int) -> str | None:
    """The results page, when the app has one (another package renders it)."""
    for rule in current_app.url_map.iter_rules():
        if rule.rule in ("/c/<slug>/r/<int:round_id>/results", "/c/<slug>/r/<int:round_id>/result"):
            return url_for(rule.endpoint, slug=slug, round_id=round_id)
    return None


def voting_panel(round_: Round) -> dict[str, Any]:
    """What the round page's voting panel shows to the current visitor (a template global)."""
    user = current_user()
    now = utcnow()
    phase = round_.phase_at(now)
    circle = round_.circle
    result = ops.stored_result(db.session, round_.id)
    is_member = circle_permissions.is_member(user, circle)
    rule = get_rule(round_.rule_id)
    panel: dict[str, Any] = {
        "phase": phase.value, "now": now, "result": result, "is_member": is_member,
        "takes_ballots": BallotKind(rule.ballot_kind) is not BallotKind.NONE,
        "can_manage": round_permissions.can_manage_round(user, round_),
        "ballot_url": url_for("voting.ballot", slug=circle.slug, round_id=round_.id),
        "close_url": url_for("voting.close_round", slug=circle.slug, round_id=round_.id),
        "results_url": _results_url(circle.slug, round_.id),
        "earmark_url": url_for("voting.earmark_again", slug=circle.slug, round_id=round_.id),
        "close_form": None, "my_ballot": None, "turnout": None, "running": None, "unearmarked": [],
    }
    if result is not None:
        panel["unearmarked"] = [a for a in result.awards if a.earmarked_at is None]
        panel["can_earmark"] = bool(panel["unearmarked"]) and (
            panel["can_manage"] or circle_permissions.is_treasurer(user, circle))
    panel["can_close"] = panel["can_manage"] and phase is Phase.CLOSED and result is None and \
        round_.published_at is not None
    if panel["can_close"] or panel.get("can_earmark"):
        # only then: building a form for a visitor would set a CSRF cookie on a cacheable page
        panel["close_form"] = EmptyForm()
    if user is not None and is_member:
        mine = db.session.scalar(sa.select(StoredBallot).where(StoredBallot.round_id == round_.id,
                                                               StoredBallot.voter_id == user.id))
        panel["my_ballot"] = mine
    if phase in (Phase.VOTING, Phase.CLOSED) and result is None:
        b, m = StoredBallot.__table__, Membership.__table__
        panel["turnout"] = (
            db.session.scalar(sa.select(sa.func.count()).select_from(b).where(b.c.round_id == round_.id)) or 0,
            db.session.scalar(sa.select(sa.func.count()).select_from(m).where(m.c.circle_id == circle.id)) or 0)
        if round_.show_running_results and phase is Phase.VOTING:
            panel["running"] = _running_results(round_)
    return panel


def _running_results(round_: Round) -> list[tuple[str, str]] | None:
    """Current standings (only for rounds that show running results): proposal title and score."""
    try:
        data = ops.tally_input(db.session, round_)
        outcome = ops.run_tally(round_.id, data)
    except FundcircleError:
        return None
    titles = {p.id: p.title for p in data.proposals}
    rows = sorted(outcome.scores.items(), key=lambda kv: (-kv[1], titles.get(kv[0], "")))
    return [(titles.get(pid, pid), _score_text(score)) for pid, score in rows]


def _score_text(score: Any) -> str:
    from fractions import Fraction

    from fundcircle.transparency.queries import format_score

    # exact rounding (no float), the same wording as the results page
    return format_score(score if isinstance(score, Fraction) and score.denominator != 1 else int(score))
