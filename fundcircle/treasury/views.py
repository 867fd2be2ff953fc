"""The treasurer's dashboard and the Open Collective webhook. Handlers are thin: load, check
permission (treasurer + second factor), validate the form, call one operation, respond."""

from __future__ import annotations

import hmac
from typing import Any

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for

from fundcircle.auth.permissions import require, require_user
from fundcircle.circles import queries as circle_queries
from fundcircle.circles.models import Circle
from fundcircle.db import begin_write, utcnow
from fundcircle.errors import FundcircleError, NotFound, ValidationError
from fundcircle.extensions import db
from fundcircle.integrations.opencollective import OpenCollectiveError
from fundcircle.ledger import circle_balances
from fundcircle.treasury import operations, permissions, queries
from fundcircle.treasury.forms import (
    AccountForm,
    ActionForm,
    ConfirmForm,
    CorrectionForm,
    CsvImportForm,
    DismissForm,
)

#: largest CSV export read from the form; the app's MAX_CONTENT_LENGTH (2 MB) refuses bigger
#: uploads first (413), and the CLI has no such limit
MAX_CSV_BYTES = 20 * 1024 * 1024


def _treasury(slug: str) -> tuple[Circle, Any]:
    """Load the circle, check the person is its treasurer (403 otherwise) and passed the second factor."""
    from fundcircle.auth.second_factor import require_second_factor

    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    user = require_user()
    require(permissions.can_manage_treasury(user, circle), "Only the circle's treasurers can use the treasury.")
    require_second_factor()
    return circle, user


def _client() -> operations.OpenCollectiveClient:
    return operations.make_client(current_app.config)


def _page(circle: Circle, *, status: int = 200, error: str = "", **forms: Any):  # type: ignore[no-untyped-def]
    now = utcnow()
    account = queries.treasury_account(db.session, circle.id)
    report = queries.current_report(db.session, circle.id)  # once: the award states come from it too
    statuses = queries.award_statuses(db.session, circle.id, report=report)
    ages = {s.award_id: (now - s.decided_at).days if s.decided_at else None for s in statuses}
    payouts = queries.payouts_of_circle(db.session, circle.id)
    account_form = forms.get("account_form") or AccountForm(
        data={"oc_account_slug": account.oc_account_slug if account else ""})
    return render_template(
        "treasury/dashboard.html", circle=circle, account=account, statuses=statuses, ages=ages, payouts=payouts,
        balances=circle_balances(db.session, circle.id, circle.currency), report=report, proposals=queries.open_proposals(db.session, circle.id),
        imports=queries.recent_imports(db.session, circle.id),
        ledger_payouts=queries.ledger_payout_transactions(db.session, circle.id), error=error,
        account_form=account_form, action_form=ActionForm(), csv_form=forms.get("csv_form") or CsvImportForm(),
        confirm_form=ConfirmForm(), dismiss_form=forms.get("dismiss_form") or DismissForm(),
        correction_form=forms.get("correction_form") or CorrectionForm(),
    ), status


def _back(circle: Circle, message: str, category: str = "success"):  # type: ignore[no-untyped-def]
    flash(message, category)
    return redirect(url_for("treasury.dashboard", slug=circle.slug), code=303)


def dashboard(slug: str):  # type: ignore[no-untyped-def]
    circle, _user = _treasury(slug)
    return _page(circle)


def set_account(slug: str):  # type: ignore[no-untyped-def]
    circle, user = _treasury(slug)
    form = AccountForm()
    if not form.validate_on_submit():
        return _page(circle, status=422, account_form=form)
    try:
        operations.set_oc_account(db.session, circle, actor=user, slug=form.oc_account_slug.data or "", now=utcnow())
    except ValidationError as err:
        return _page(circle, status=422, error=err.user_message, account_form=form)
    return _back(circle, f"The circle's money is held by opencollective.com/{form.oc_account_slug.data}.")


def _award(circle: Circle, award_id: int) -> Any:
    award = queries.award_in_circle(db.session, circle.id, award_id)
    if award is None:
        raise NotFound("There is no such award in this circle.")
    return award


def create_payout(slug: str, award_id: int):  # type: ignore[no-untyped-def]
    circle, user = _treasury(slug)
    award = _award(circle, award_id)
    if not ActionForm().validate_on_submit():
        return _page(circle, status=400, error="The form expired; please try again.")
    client = _client()
    try:
        claim = operations.claim_payout(db.session, circle, award, actor=user, now=utcnow())
    except FundcircleError as err:
        return _page(circle, status=err.http_status, error=err.user_message)
    # The claimed row first, committed, then OC with no transaction open: on SQLite a write
    # transaction holds the database's only write lock (every vote, comment and webhook waits) while
    # OC answers, which takes many seconds when the client retries. The claim keeps a second
    # treasurer out meanwhile (OC has no idempotency keys).
    db.session.commit()
    try:
        outcome = operations.send_payout(client, claim)
    except OpenCollectiveError as err:
        begin_write(db.session)
        operations.record_payout_failure(db.session, claim, err, actor=user, now=utcnow())
        # the recorded failure is committed with the redirect; nothing was created twice
        return _back(circle, f"Open Collective: {err.user_message}", "error")
    begin_write(db.session)
    try:
        payout = operations.record_payout(db.session, claim, outcome, actor=user, client=client, now=utcnow())
    except OpenCollectiveError as err:
        return _back(circle, f"Open Collective: {err.user_message}", "error")
    verb = "invited the payee on" if payout.invited_email else "created the expense in"
    return _back(circle, f"Payout for “{award.proposal.title}”: {verb} Open Collective ({payout.oc_public_id}).")


def recheck(slug: str, award_id: int):  # type: ignore[no-untyped-def]
    circle, user = _treasury(slug)
    award = _award(circle, award_id)
    if not ActionForm().validate_on_submit():
        return _page(circle, status=400, error="The form expired; please try again.")
    try:
        result = operations.recheck_award(db.session, circle, award, actor=user, client=_client(), now=utcnow())
    except OpenCollectiveError as err:
        return _back(circle, f"Open Collective: {err.user_message}", "error")
    except FundcircleError as err:
        return _page(circle, status=err.http_status, error=err.user_message)
    return _back(circle, f"Re-checked “{award.proposal.title}”: {result.rows_new} new Open Collective "
                         f"transactions, {result.proposals_new} new proposals.")


def import_api(slug: str):  # type: ignore[no-untyped-def]
    circle, user = _treasury(slug)
    if not ActionForm().validate_on_submit():
        return _page(circle, status=400, error="The form expired; please try again.")
    try:
        result = operations.import_from_api(db.session, circle, actor=user, client=_client(), now=utcnow())
    except FundcircleError as err:
        return _page(circle, status=err.http_status, error=err.user_message)
    return _back(circle, f"Imported from Open Collective: {result.run.rows_seen} transactions, {result.rows_new} new; "
                         f"{result.proposals_new} new proposals.")


def import_csv(slug: str):  # type: ignore[no-untyped-def]
    circle, user = _treasury(slug)
    form = CsvImportForm()
    if not form.validate_on_submit():
        return _page(circle, status=422, csv_form=form)
    data = form.file.data.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        form.file.errors = ["The file is larger than 20 MB; export a shorter period."]
        return _page(circle, status=422, csv_form=form)
    try:
        result = operations.import_from_csv(db.session, circle, actor=user, data=data,
                                            filename=form.file.data.filename or "export.csv", now=utcnow())
    except FundcircleError as err:
        form.file.errors = [err.user_message]
        return _page(circle, status=err.http_status, csv_form=form)
    return _back(circle, f"Imported {result.run.filename}: {result.run.rows_seen} rows ({result.run.header_style} "
                         f"headers), {result.rows_new} new; {result.proposals_new} new proposals.")


def _proposal(circle: Circle, proposal_id: int) -> Any:
    entry = queries.proposal_in_circle(db.session, circle.id, proposal_id)
    if entry is None:
        raise NotFound("There is no such proposal in this circle.")
    return entry


def confirm(slug: str, proposal_id: int):  # type: ignore[no-untyped-def]
    circle, user = _treasury(slug)
    entry = _proposal(circle, proposal_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        return _page(circle, status=422, error="Check the note.")
    try:
        posted = operations.confirm_proposal(db.session, circle, entry, actor=user, now=utcnow(),
                                             note=form.note.data or "")
    except FundcircleError as err:
        return _page(circle, status=err.http_status, error=err.user_message)
    return _back(circle, f"Posted to the ledger (entry #{posted.seq}).")


def dismiss(slug: str, proposal_id: int):  # type: ignore[no-untyped-def]
    circle, user = _treasury(slug)
    entry = _proposal(circle, proposal_id)
    form = DismissForm()
    if not form.validate_on_submit():
        return _page(circle, status=422, error="Say why the proposal is dismissed.", dismiss_form=form)
    try:
        operations.dismiss_proposal(db.session, circle, entry, actor=user, now=utcnow(), note=form.note.data or "")
    except FundcircleError as err:
        return _page(circle, status=err.http_status, error=err.user_message)
    return _back(circle, "Dismissed; it will not be proposed again.")


def correction(slug: str):  # type: ignore[no-untyped-def]
    circle, user = _treasury(slug)
    form = CorrectionForm()
    if not form.validate_on_submit():
        return _page(circle, status=422, correction_form=form)
    try:
        posted = operations.post_correction(db.session, circle, actor=user, transaction_id=form.transaction_id.data,
                                            reason=form.reason.data or "", now=utcnow())
    except FundcircleError as err:
        form.reason.errors = [err.user_message]
        return _page(circle, status=err.http_status, correction_form=form)
    return _back(circle, f"Correction posted as a reversal (ledger entry #{posted.seq}).")


def oc_webhook(secret: str):  # type: ignore[no-untyped-def]
    """An Open Collective webhook: a hint only. The payload's amounts and status are never used;
    the named expense is re-fetched through the API and reconciled like any re-check."""
    configured = current_app.config.get("OPENCOLLECTIVE_WEBHOOK_SECRET") or ""
    if not configured or not hmac.compare_digest(secret.encode(), configured.encode()):
        raise NotFound("Not found.")
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return jsonify({"error": "expected an Open Collective activity (JSON object with a type)"}), 400
    if not payload["type"].startswith("collective.expense."):
        return jsonify({"status": "ignored", "type": payload["type"]}), 200
    try:
        payout = operations.webhook_hint(db.session, payload=payload, client=_client(), now=utcnow())
    except OpenCollectiveError as err:
        # OC never redelivers; the periodic import catches up. The failure stays on the payout row.
        return jsonify({"status": "recheck failed", "error": err.user_message}), 200
    if payout is None:
        return jsonify({"status": "ignored", "reason": "not an expense fundcircle created"}), 200
    return jsonify({"status": "rechecked", "expense": payout.oc_public_id, "oc_status": payout.oc_status}), 200
