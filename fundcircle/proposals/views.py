"""The applicant's pages: new, edit, submit, withdraw; the proposal page; screening."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from fundcircle.auth.forms import EmptyForm
from fundcircle.auth.permissions import current_user, require, require_user
from fundcircle.auth.second_factor import require_second_factor
from fundcircle.circles import queries as circle_queries
from fundcircle.db import utcnow
from fundcircle.errors import FundcircleError, ValidationError
from fundcircle.extensions import db
from fundcircle.ledger.money import format_amount, parse_amount
from fundcircle.proposals import operations, permissions, queries
from fundcircle.proposals.forms import BUDGET_LINE_ROWS, ProposalForm, ScreeningForm
from fundcircle.proposals.models import Proposal
from fundcircle.rounds import queries as round_queries
from fundcircle.rounds.models import Round


def _load(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    round_ = round_queries.round_or_404(db.session, circle, round_id, current_user())
    return circle, round_


def _form_to_data(form: ProposalForm, round_: Round) -> operations.ProposalData:
    """Parse amounts with the round's currency; collect every parse error before raising."""
    errors: dict[str, list[str]] = {}
    amount = 0
    try:
        amount = parse_amount(form.amount_requested.data, round_.currency, field="amount_requested")
    except ValidationError as err:
        errors.update(err.field_errors)
    lines: list[tuple[str, int]] = []
    for index, entry in enumerate(form.budget_lines.entries):
        text, amount_text = (entry.item.data or "").strip(), (entry.amount.data or "").strip()
        if not text and not amount_text:
            continue
        name = f"budget_lines-{index}"
        if not text:
            errors.setdefault(name, []).append(f"Row {index + 1}: describe the item.")
            continue
        try:
            lines.append((text, parse_amount(amount_text, round_.currency, field=f"{name}-amount")))
        except ValidationError as err:
            errors.setdefault(name, []).append(f"Row {index + 1}: {next(iter(err.field_errors.values()))[0]}")
    if errors:
        raise ValidationError("Please check the amounts.", field_errors=errors)
    return operations.ProposalData(
        title=form.title.data or "", summary=form.summary.data or "", description=form.description.data or "",
        amount_requested_minor=amount, payee_kind=form.payee_kind.data or "none",
        payee_oc_slug=form.payee_oc_slug.data or "", payee_email=form.payee_email.data or "",
        budget_lines=lines)


def _attach(form: ProposalForm, err: FundcircleError) -> None:
    for name, messages in err.field_errors.items():
        if name.startswith("budget_lines"):
            form.budget_lines.errors = list(form.budget_lines.errors or []) + messages  # type: ignore[operator]
            continue
        field = getattr(form, name, None)
        if field is not None:
            field.errors = list(field.errors) + messages
        else:
            form.form_errors.append(" ".join(messages))
    if not err.field_errors:
        form.form_errors.append(err.user_message)


def _render(circle, round_, form, proposal=None, status=200):  # type: ignore[no-untyped-def]
    return render_template("proposals/form.html", circle=circle, round=round_, form=form, proposal=proposal,
                           phase=round_.phase_at(utcnow())), status


def new_proposal(slug: str, round_id: int):  # type: ignore[no-untyped-def]
    circle, round_ = _load(slug, round_id)
    user = require_user()
    form = ProposalForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return _render(circle, round_, form, status=422)
        try:
            proposal = operations.create_proposal(db.session, round_=round_, applicant=user,
                                                  data=_form_to_data(form, round_), now=utcnow(),
                                                  submit=request.form.get("action") == "submit")
        except FundcircleError as err:
            _attach(form, err)
            return _render(circle, round_, form, status=err.http_status)
        flash("Your proposal is submitted." if proposal.is_submitted else "Draft saved.", "success")
        return redirect(url_for("proposals.proposal_page", slug=slug, round_id=round_id, proposal_id=proposal.id))
    return _render(circle, round_, form)


def _form_from(proposal: Proposal) -> ProposalForm:
    form = ProposalForm(obj=proposal, amount_requested=format_amount(
        proposal.amount_requested_minor, proposal.currency, grouping=False))
    for index, line in enumerate(proposal.budget_lines[:BUDGET_LINE_ROWS]):
        form.budget_lines.entries[index].item.data = line.description
        form.budget_lines.entries[index].amount.data = format_amount(line.amount_minor, proposal.currency,
                                                                     grouping=False)
    return form


def edit_proposal(slug: str, round_id: int, proposal_id: int):  # type: ignore[no-untyped-def]
    circle, round_ = _load(slug, round_id)
    user = require_user()
    proposal = queries.proposal_or_404(db.session, round_, proposal_id, user)
    require(permissions.is_applicant(user, proposal), "Only the applicant can edit this proposal.")
    if request.method == "POST":
        form = ProposalForm()
        if not form.validate_on_submit():
            return _render(circle, round_, form, proposal, 422)
        try:
            operations.update_proposal(db.session, proposal=proposal, actor=user, data=_form_to_data(form, round_),
                                       now=utcnow(), submit=request.form.get("action") == "submit")
        except FundcircleError as err:
            _attach(form, err)
            return _render(circle, round_, form, proposal, err.http_status)
        flash("Your proposal is submitted." if proposal.is_submitted and request.form.get("action") == "submit"
              else "Saved.", "success")
        return redirect(url_for("proposals.proposal_page", slug=slug, round_id=round_id, proposal_id=proposal.id))
    return _render(circle, round_, _form_from(proposal), proposal)


def proposal_page(slug: str, round_id: int, proposal_id: int):  # type: ignore[no-untyped-def]
    circle, round_ = _load(slug, round_id)
    user = current_user()
    proposal = queries.proposal_or_404(db.session, round_, proposal_id, user)
    now = utcnow()
    problems = (operations.eligibility_problems(db.session, round_, proposal)
                if permissions.is_applicant(user, proposal) and not proposal.is_submitted else [])
    from fundcircle.voting.operations import stored_result

    # after the tally the page says how the vote went, and links to why and to the money
    result = stored_result(db.session, round_.id)
    award = next((a for a in result.awards if a.proposal_id == proposal.id), None) if result else None
    return render_template(
        "proposals/proposal.html", circle=circle, round=round_, proposal=proposal, phase=round_.phase_at(now),
        tallied=result is not None, award=award,
        is_applicant=permissions.is_applicant(user, proposal),
        private=permissions.can_see_private_fields(user, proposal),
        can_screen=permissions.can_screen(user, proposal), problems=problems,
        action_form=EmptyForm(), screening_form=ScreeningForm(),
        revision_count=len(proposal.revisions),
    )


def submit(slug: str, round_id: int, proposal_id: int):  # type: ignore[no-untyped-def]
    circle, round_ = _load(slug, round_id)
    user = require_user()
    proposal = queries.proposal_or_404(db.session, round_, proposal_id, user)
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("proposals.proposal_page", slug=slug, round_id=round_id, proposal_id=proposal_id))
    operations.submit_proposal(db.session, proposal=proposal, actor=user, now=utcnow())
    flash("Your proposal is submitted.", "success")
    return redirect(url_for("proposals.proposal_page", slug=slug, round_id=round_id, proposal_id=proposal_id))


def withdraw(slug: str, round_id: int, proposal_id: int):  # type: ignore[no-untyped-def]
    circle, round_ = _load(slug, round_id)
    user = require_user()
    proposal = queries.proposal_or_404(db.session, round_, proposal_id, user)
    if EmptyForm().validate_on_submit():
        operations.withdraw_proposal(db.session, proposal=proposal, actor=user, now=utcnow())
        flash("Your proposal is withdrawn.", "success")
    return redirect(url_for("proposals.proposal_page", slug=slug, round_id=round_id, proposal_id=proposal_id))


def screen(slug: str, round_id: int, proposal_id: int):  # type: ignore[no-untyped-def]
    circle, round_ = _load(slug, round_id)
    user = require_user()
    proposal = queries.proposal_or_404(db.session, round_, proposal_id, user)
    require(permissions.can_screen(user, proposal), "Only facilitators can screen proposals.")
    require_second_factor()
    form = ScreeningForm()
    if not form.validate_on_submit():
        flash("Choose eligible or not eligible.", "error")
        return redirect(url_for("proposals.proposal_page", slug=slug, round_id=round_id, proposal_id=proposal_id))
    operations.screen_proposal(db.session, proposal=proposal, actor=user, eligible=form.decision.data == "eligible",
                               reason=form.reason.data or "", now=utcnow())
    flash("Screening saved.", "success")
    return redirect(url_for("proposals.proposal_page", slug=slug, round_id=round_id, proposal_id=proposal_id))


def my_proposals():  # type: ignore[no-untyped-def]
    user = require_user()
    return render_template("proposals/mine.html", proposals=queries.all_proposals_of(db.session, user),
                           now=utcnow())
