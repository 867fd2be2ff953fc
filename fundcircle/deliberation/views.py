"""Deliberation pages: post, reply, answer, hide; declare a conflict; the member's conflicts.

The discussion itself is shown on the proposal page through ``deliberation_panel`` (a template
global registered by the blueprint), so the proposal views need not know about it. A form with
errors is shown again on its own small page, with what the person typed.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for

from fundcircle.auth.permissions import current_user, require, require_user
from fundcircle.auth.second_factor import require_second_factor
from fundcircle.circles import permissions as circle_permissions
from fundcircle.circles import queries as circle_queries
from fundcircle.db import utcnow
from fundcircle.deliberation import operations, permissions, queries
from fundcircle.deliberation.forms import AnswerForm, CommentForm, ConflictForm, HideForm
from fundcircle.deliberation.models import Comment
from fundcircle.errors import FundcircleError
from fundcircle.extensions import db
from fundcircle.proposals import queries as proposal_queries
from fundcircle.proposals.models import Proposal
from fundcircle.rounds import queries as round_queries
from fundcircle.voting import operations as voting_ops
from fundcircle.voting.models import AUTOMATIC_CATEGORIES, ConflictLevel


def _load(slug: str, round_id: int, proposal_id: int) -> Proposal:
    user = current_user()
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    round_ = round_queries.round_or_404(db.session, circle, round_id, user)
    return proposal_queries.proposal_or_404(db.session, round_, proposal_id, user)


def _base_url() -> str:
    return current_app.config.get("BASE_URL") or request.host_url


def _page(proposal: Proposal, anchor: str | None = None) -> str:
    return url_for("proposals.proposal_page", slug=proposal.round.circle.slug, round_id=proposal.round_id,
                   proposal_id=proposal.id, _anchor=anchor)


def _attach(form: Any, err: FundcircleError) -> None:
    """The message above the form; field messages onto their (visible) fields."""
    form.form_errors.append(err.user_message)
    for name, messages in err.field_errors.items():
        field = getattr(form, name, None)
        if field is not None and field.type not in ("HiddenField", "CSRFTokenField"):
            field.errors = list(field.errors) + messages


def _render_form(proposal: Proposal, form: Any, *, mode: str, action: str, status: int = 200,
                 parent: Comment | None = None) -> tuple[str, int]:
    parent_author = (queries.author_labels(db.session, proposal, current_user()).get(parent.author_id, "")
                     if parent is not None else "")
    return render_template("deliberation/form.html", proposal=proposal, round=proposal.round,
                           circle=proposal.round.circle, form=form, mode=mode, action=action, parent=parent,
                           parent_author=parent_author,
                           closed_reason=permissions.closed_reason(proposal, utcnow()),
                           can_ask=permissions.can_ask(current_user(), proposal)), status


def _post_url(proposal: Proposal) -> str:
    return url_for("deliberation.post_comment", slug=proposal.round.circle.slug, round_id=proposal.round_id,
                   proposal_id=proposal.id)


# -- the panel on the proposal page -------------------------------------------------------------------

def panel_context(proposal: Proposal) -> dict[str, Any]:
    """Everything ``deliberation/_proposal_panel.html`` shows for the current visitor."""
    session, user, now = db.session, current_user(), utcnow()
    closed_reason = permissions.closed_reason(proposal, now)
    takes_part = permissions.can_take_part(user, proposal)
    is_member = permissions.is_member(user, proposal)
    recused = voting_ops.recused_proposal_ids(session, proposal.round_id, user.id) if user and is_member else set()
    mine = queries.conflict_of(session, user, proposal) if is_member else None
    conflict_form = None
    if is_member and closed_reason is None and not (mine and mine.is_automatic):
        conflict_form = ConflictForm(formdata=None, obj=None)
        if mine is not None:
            conflict_form.level.data, conflict_form.category.data = mine.level, mine.reason_category
            conflict_form.reason.data = mine.reason
    return {
        "thread": queries.thread(session, proposal),
        "names": queries.author_labels(session, proposal, user),
        "closed_reason": closed_reason,
        "signed_in": user is not None,
        "can_post": takes_part and closed_reason is None,
        "can_ask": permissions.can_ask(user, proposal),
        "can_answer": permissions.can_answer(user, proposal) and closed_reason is None,
        "can_moderate": permissions.can_moderate(user, proposal, recused),
        "comment_form": CommentForm(formdata=None).with_fresh_key() if takes_part else None,
        "declared_ids": queries.declared_interest_user_ids(session, proposal),
        "is_member": is_member,
        "is_facilitator": circle_permissions.is_facilitator(user, proposal.round.circle),
        "my_conflict": mine,
        "conflict_form": conflict_form,
        "conflict_summary": queries.conflict_summary(session, proposal),
        "post_url": _post_url(proposal),
        "automatic_categories": AUTOMATIC_CATEGORIES,
    }


# -- posting ---------------------------------------------------------------------------------------

def post_comment(slug: str, round_id: int, proposal_id: int):  # type: ignore[no-untyped-def]
    proposal = _load(slug, round_id, proposal_id)
    user = require_user()
    require(permissions.can_take_part(user, proposal),
            "Only members of this circle and the applicant can take part in this discussion.")
    form = CommentForm()
    parent = None
    # isdigit() alone accepts "²", which int() refuses
    if form.parent_id.data and form.parent_id.data.isascii() and form.parent_id.data.isdigit():
        parent = queries.comment_of_proposal(db.session, proposal, int(form.parent_id.data))
    mode = "reply" if form.parent_id.data else "comment"
    if not form.validate_on_submit():
        return _render_form(proposal, form, mode=mode, action=_post_url(proposal), status=422, parent=parent)
    try:
        posted = operations.post_comment(
            db.session, proposal=proposal, author=user, body=form.body.data or "", kind=form.kind.data or "",
            parent_id=form.parent_id_value, submission_key=form.submission_key.data, now=utcnow(),
            base_url=_base_url())
    except FundcircleError as err:
        _attach(form, err)
        return _render_form(proposal, form, mode=mode, action=_post_url(proposal), status=err.http_status,
                            parent=parent)
    if not posted.is_replay:
        flash("Your question is posted; the applicant is notified." if posted.comment.is_question
              else "Your comment is posted.", "success")
    return redirect(_page(proposal, f"comment-{posted.comment.id}"))


def reply(slug: str, round_id: int, proposal_id: int, comment_id: int):  # type: ignore[no-untyped-def]
    proposal = _load(slug, round_id, proposal_id)
    user = require_user()
    parent = queries.comment_or_404(db.session, proposal, comment_id)
    require(permissions.can_take_part(user, proposal),
            "Only members of this circle and the applicant can take part in this discussion.")
    if parent.is_hidden:
        flash("That comment was hidden by a facilitator; it cannot be replied to.", "error")
        return redirect(_page(proposal, f"comment-{parent.id}"))
    form = CommentForm(formdata=None, parent_id=str(parent.id)).with_fresh_key()
    return _render_form(proposal, form, mode="reply", action=_post_url(proposal), parent=parent)


def answer(slug: str, round_id: int, proposal_id: int, comment_id: int):  # type: ignore[no-untyped-def]
    proposal = _load(slug, round_id, proposal_id)
    user = require_user()
    question = queries.comment_or_404(db.session, proposal, comment_id)
    require(permissions.can_answer(user, proposal), "Only the applicant can answer questions about this proposal.")
    action = url_for("deliberation.answer", slug=slug, round_id=round_id, proposal_id=proposal_id,
                     comment_id=comment_id)
    if request.method == "GET":
        if queries.answer_to(db.session, question) is not None:
            flash("This question has already been answered. Reply to the answer to add something.", "error")
            return redirect(_page(proposal, f"comment-{question.id}"))
        return _render_form(proposal, AnswerForm(formdata=None).with_fresh_key(), mode="answer", action=action,
                            parent=question)
    form = AnswerForm()
    if not form.validate_on_submit():
        return _render_form(proposal, form, mode="answer", action=action, status=422, parent=question)
    try:
        posted = operations.answer_question(db.session, question=question, author=user, body=form.body.data or "",
                                            submission_key=form.submission_key.data, now=utcnow(),
                                            base_url=_base_url())
    except FundcircleError as err:
        _attach(form, err)
        return _render_form(proposal, form, mode="answer", action=action, status=err.http_status, parent=question)
    if not posted.is_replay:
        flash("Your answer is posted; the member who asked is notified.", "success")
    return redirect(_page(proposal, f"comment-{question.id}"))


def hide(slug: str, round_id: int, proposal_id: int, comment_id: int):  # type: ignore[no-untyped-def]
    proposal = _load(slug, round_id, proposal_id)
    user = require_user()
    comment = queries.comment_or_404(db.session, proposal, comment_id)
    recused = voting_ops.recused_proposal_ids(db.session, proposal.round_id, user.id)
    require(permissions.can_moderate(user, proposal, recused),
            "Only facilitators can hide comments, and not on a proposal they applied for or are recused from.")
    require_second_factor()
    action = url_for("deliberation.hide", slug=slug, round_id=round_id, proposal_id=proposal_id,
                     comment_id=comment_id)
    if request.method == "GET":
        return _render_form(proposal, HideForm(formdata=None), mode="hide", action=action, parent=comment)
    form = HideForm()
    if not form.validate_on_submit():
        return _render_form(proposal, form, mode="hide", action=action, status=422, parent=comment)
    try:
        operations.hide_comment(db.session, comment=comment, actor=user, reason=form.reason.data or "",
                                now=utcnow(), base_url=_base_url())
    except FundcircleError as err:
        _attach(form, err)
        return _render_form(proposal, form, mode="hide", action=action, status=err.http_status, parent=comment)
    flash("The comment is hidden; its author is told why.", "success")
    return redirect(_page(proposal, f"comment-{comment.id}"))


# -- conflicts of interest ------------------------------------------------------------------------------

def declare_conflict(slug: str, round_id: int, proposal_id: int):  # type: ignore[no-untyped-def]
    proposal = _load(slug, round_id, proposal_id)
    user = require_user()
    require(permissions.can_declare_conflict(user, proposal),
            "Only members of this circle can declare a conflict of interest here.")
    action = url_for("deliberation.declare_conflict", slug=slug, round_id=round_id, proposal_id=proposal_id)
    if request.method == "GET":
        return _render_form(proposal, ConflictForm(formdata=None), mode="conflict", action=action)
    form = ConflictForm()
    if not form.validate_on_submit():
        return _render_form(proposal, form, mode="conflict", action=action, status=422)
    try:
        conflict = operations.declare_conflict(db.session, member=user, proposal=proposal, level=form.level.data or "",
                                               category=form.category.data or "", reason=form.reason.data or "",
                                               now=utcnow())
    except FundcircleError as err:
        _attach(form, err)
        return _render_form(proposal, form, mode="conflict", action=action, status=err.http_status)
    flash("Your conflict of interest is recorded. You will not vote on this proposal."
          if conflict.level == ConflictLevel.RECUSE.value else
          "Your conflict of interest is recorded and published without your name.", "success")
    return redirect(_page(proposal, "conflicts"))


def my_conflicts(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    user = require_user()
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    round_ = round_queries.round_or_404(db.session, circle, round_id, user)
    require(circle_permissions.is_member(user, circle), "Only members of this circle have conflicts here.")
    return render_template("deliberation/my_conflicts.html", circle=circle, round=round_,
                           conflicts=queries.conflicts_in_round(db.session, user, round_),
                           automatic_categories=AUTOMATIC_CATEGORIES)


def round_conflicts(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    """Facilitators: every conflict in the round, with names and the members' own words, so
    they can check declarations before the vote (never published)."""
    user = require_user()
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    round_ = round_queries.round_or_404(db.session, circle, round_id, user)
    require(circle_permissions.is_facilitator(user, circle), "Only facilitators see who declared which conflict.")
    require_second_factor()
    conflicts = queries.all_conflicts_in_round(db.session, round_)
    return render_template("deliberation/round_conflicts.html", circle=circle, round=round_, conflicts=conflicts,
                           users=queries.users_by_id(db.session, {c.user_id for c in conflicts}))
