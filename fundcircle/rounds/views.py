"""Round pages: the public call, and the facilitator's create/edit/publish/screening pages."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from fundcircle.auth.forms import EmptyForm
from fundcircle.auth.permissions import current_user, require, require_user
from fundcircle.auth.second_factor import require_second_factor
from fundcircle.circles import permissions as circle_permissions
from fundcircle.circles import queries as circle_queries
from fundcircle.db import utcnow
from fundcircle.errors import FundcircleError
from fundcircle.extensions import db
from fundcircle.ledger.money import format_amount, parse_amount
from fundcircle.proposals import queries as proposal_queries
from fundcircle.rounds import operations, permissions, queries
from fundcircle.rounds.forms import RoundForm, format_params, parse_params
from fundcircle.rounds.models import Round
from fundcircle.voting.registry import all_rules, get_rule


def _rule_choices() -> list[tuple[str, str]]:
    return [(r.id, f"{r.name} ({r.id})") for r in all_rules()]


def _form_to_data(form: RoundForm) -> operations.RoundData:
    """Parse the amounts (clear per-field errors) and build the operation's input."""
    currency = form.currency.data

    def optional_amount(field_name: str, text: str) -> int | None:
        return parse_amount(text, currency, field=field_name) if (text or "").strip() else None

    return operations.RoundData(
        title=form.title.data.strip(), call_text=form.call_text.data or "",
        budget_minor=parse_amount(form.budget.data, currency, field="budget"), currency=currency,
        rule_id=form.rule_id.data, rule_params=parse_params(form.rule_params.data or ""),
        submissions_open_at=form.utc("submissions_open_at"), submissions_close_at=form.utc("submissions_close_at"),
        deliberation_open_at=form.utc("deliberation_open_at"), voting_open_at=form.utc("voting_open_at"),
        voting_close_at=form.utc("voting_close_at"),
        min_request_minor=optional_amount("min_request", form.min_request.data),
        max_request_minor=optional_amount("max_request", form.max_request.data),
        required_fields=list(form.required_fields.data or []),
        max_proposals_per_applicant=form.max_proposals_per_applicant.data,
        show_running_results=bool(form.show_running_results.data),
    )


def _attach_errors(form: RoundForm, err: FundcircleError) -> None:
    aliases = {"budget_minor": "budget", "min_request_minor": "min_request", "max_request_minor": "max_request"}
    placed = False
    for name, messages in err.field_errors.items():
        field = getattr(form, aliases.get(name, name), None)
        if field is not None:
            field.errors = list(field.errors) + messages
            placed = True
    if not placed:
        form.form_errors.append(err.user_message)


def _render_form(circle: Any, form: RoundForm, round_: Round | None, status: int = 200):  # type: ignore[no-untyped-def]
    rules = {r.id: r.describe() for r in all_rules()}
    return render_template("rounds/form.html", circle=circle, form=form, round=round_, rules=rules), status


def new_round(slug: str):  # type: ignore[no-untyped-def]
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    user = require_user()
    require(circle_permissions.is_facilitator(user, circle), "Only facilitators can create rounds.")
    require_second_factor()
    form = RoundForm(rule_choices=_rule_choices(), currency=circle.currency)
    if request.method == "POST":
        if not form.validate_on_submit():
            return _render_form(circle, form, None, 422)
        try:
            round_ = operations.create_round(db.session, circle=circle, actor=user, data=_form_to_data(form),
                                             now=utcnow())
        except FundcircleError as err:
            _attach_errors(form, err)
            return _render_form(circle, form, None, err.http_status)
        flash("Round created as a draft. Publish it when the call is ready.", "success")
        return redirect(url_for("rounds.round_page", slug=slug, round_id=round_.id))
    return _render_form(circle, form, None)


def edit_round(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    user = require_user()
    round_ = queries.round_or_404(db.session, circle, round_id, user)
    require(permissions.can_manage_round(user, round_), "Only facilitators can edit rounds.")
    require_second_factor()
    if request.method == "POST":
        form = RoundForm(rule_choices=_rule_choices())
        if not form.validate_on_submit():
            return _render_form(circle, form, round_, 422)
        try:
            operations.update_round(db.session, round_=round_, actor=user, data=_form_to_data(form), now=utcnow())
        except FundcircleError as err:
            _attach_errors(form, err)
            return _render_form(circle, form, round_, err.http_status)
        flash("Round saved.", "success")
        return redirect(url_for("rounds.round_page", slug=slug, round_id=round_.id))
    form = RoundForm(rule_choices=_rule_choices(), obj=round_,
                     budget=format_amount(round_.budget_minor, round_.currency, grouping=False),
                     min_request=format_amount(round_.min_request_minor, round_.currency, grouping=False)
                     if round_.min_request_minor is not None else "",
                     max_request=format_amount(round_.max_request_minor, round_.currency, grouping=False)
                     if round_.max_request_minor is not None else "",
                     rule_params=format_params(round_.rule_params or {}))
    for name in ("submissions_open_at", "submissions_close_at", "deliberation_open_at", "voting_open_at",
                 "voting_close_at"):
        getattr(form, name).data = getattr(round_, name).replace(tzinfo=None)
    return _render_form(circle, form, round_)


def publish_round(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    user = require_user()
    round_ = queries.round_or_404(db.session, circle, round_id, user)
    require(permissions.can_manage_round(user, round_), "Only facilitators can publish rounds.")
    require_second_factor()
    if EmptyForm().validate_on_submit():
        operations.publish_round(db.session, round_=round_, actor=user, now=utcnow())
        flash("The round is published.", "success")
    return redirect(url_for("rounds.round_page", slug=slug, round_id=round_id))


def round_page(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    # public page: validators, 304 and shared anonymous renders from transparency.caching
    from fundcircle.transparency.views import public_page

    return public_page("round", slug, round_id, [round_id], lambda: _render_round_page(slug, round_id))


def _render_round_page(slug: str, round_id: int) -> tuple[str, int]:
    from fundcircle.transparency import queries as public_queries

    # without the circle's member list, which the page does not show
    circle = public_queries.circle_or_404(db.session, slug)
    user = current_user()
    round_ = public_queries.round_or_404(db.session, circle, round_id, user)
    now = utcnow()
    rule = get_rule(round_.rule_id)
    round_summary = public_queries.round_summaries(db.session, [round_], now)[0]
    return render_template(
        "rounds/round.html", circle=circle, round=round_, phase=round_.phase_at(now), now=now, rule=rule,
        round_summary=round_summary, awarded=_awarded(round_.id) if round_summary.is_tallied else None,
        proposals=proposal_queries.public_proposals(db.session, round_),
        my_proposals=proposal_queries.proposals_of(db.session, round_, user) if user else [],
        can_manage=permissions.can_manage_round(user, round_),
        # only facilitators see the form; building one for a visitor would set a CSRF cookie
        publish_form=EmptyForm() if permissions.can_manage_round(user, round_) else None,
        is_member=circle_permissions.is_member(user, circle),
    ), 200


def _awarded(round_id: int) -> dict[int, int]:
    """proposal id -> amount_minor of a tallied round's awards (the proposal list marks them)."""
    import sqlalchemy as sa

    from fundcircle.voting.models import Award

    return {pid: amount for pid, amount in db.session.execute(
        sa.select(Award.proposal_id, Award.amount_minor).where(Award.round_id == round_id))}


def screening(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    user = require_user()
    round_ = queries.round_or_404(db.session, circle, round_id, user)
    require(permissions.can_manage_round(user, round_), "Only facilitators can screen proposals.")
    require_second_factor()
    return render_template("rounds/screening.html", circle=circle, round=round_, now=utcnow(),
                           proposals=proposal_queries.public_proposals(db.session, round_))

