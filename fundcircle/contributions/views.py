"""Contribution pages and the Stripe webhook. Thin: load, check, validate, one operation, respond."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, jsonify, redirect, render_template, request, url_for

from fundcircle.auth.operations import sha256_hex
from fundcircle.circles import queries as circle_queries
from fundcircle.contributions import operations
from fundcircle.contributions.forms import ContributeForm
from fundcircle.contributions.models import IntentStatus
from fundcircle.db import begin_write, utcnow
from fundcircle.errors import ConfigurationError, IdempotencyConflict, IntegrationError, RuleViolation, ValidationError
from fundcircle.extensions import db
from fundcircle.integrations.stripe import (
    PaymentGateway,
    WebhookSignatureError,
    gateway_from_config,
    verify_webhook,
    webhook_secrets,
)
from fundcircle.ledger import money
from fundcircle.security import csp_policy

STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"


def gateway() -> PaymentGateway:
    """The app's Stripe gateway, built once per configuration (the client keeps its connections)."""
    config = current_app.config
    key = (config.get("STRIPE_SECRET_KEY"), config.get("STRIPE_API_BASE"))
    cached = current_app.extensions.get("fundcircle.stripe")
    if cached is None or cached[0] != key:
        cached = (key, gateway_from_config(config))
        current_app.extensions["fundcircle.stripe"] = cached
    return cached[1]


def _limits() -> operations.Limits:
    config = current_app.config
    return operations.Limits(config["CONTRIBUTION_MIN_MINOR"], config["CONTRIBUTION_MAX_MINOR"],
                             config["CONTRIBUTIONS_PER_ADDRESS_PER_HOUR"])


def _checkout_origin() -> str:
    base = current_app.config.get("STRIPE_API_BASE")
    if base:  # the local fake hosts its Checkout page on its own address
        parts = urlsplit(base)
        return f"{parts.scheme}://{parts.netloc}"
    return STRIPE_CHECKOUT_ORIGIN


def _form_page(circle, form, status: int = 200):  # type: ignore[no-untyped-def]
    configured = bool(current_app.config.get("STRIPE_SECRET_KEY"))
    response = current_app.make_response((render_template(
        "contributions/contribute.html", circle=circle, form=form, limits=_limits(), configured=configured,
        recent=operations.recent_contributions(db.session, circle, limit=10)), status))
    # The form's POST answers with a redirect to Stripe's Checkout; browsers apply form-action to
    # that redirect too, so this page allows the Checkout origin (nothing else changes).
    response.headers["Content-Security-Policy"] = csp_policy(form_action_extra=_checkout_origin())
    return response


def contribute(slug: str):  # type: ignore[no-untyped-def]
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    form = ContributeForm()
    if request.method == "GET":
        form.intent.data = operations.new_intent_public_id()
        return _form_page(circle, form)
    if not form.validate_on_submit():
        if form.intent.errors:
            form.intent.data = operations.new_intent_public_id()
        return _form_page(circle, form, 422)
    try:
        amount_minor = money.parse_amount(form.amount.data or "", circle.currency, field="amount")
        payments = gateway()  # not configured: say so before anything is written
        intent = operations.record_intent(
            db.session, circle=circle, intent_public_id=form.intent.data,
            request=operations.ContributionRequest(
                amount_minor=amount_minor, donor_name=form.donor_name.data or "", message=form.message.data or "",
                is_anonymous=bool(form.is_anonymous.data)),
            limits=_limits(), now=utcnow(), requester_hash=sha256_hex(request.remote_addr or "unknown"))
        if not (intent.checkout_session_id and intent.checkout_url):  # else a double submit: the same session
            # Local row first, committed, then Stripe with no transaction open: on SQLite a write
            # transaction would hold the database's only write lock (every vote waits) while Stripe answers.
            db.session.commit()
            checkout = operations.create_checkout(
                payments, circle=circle, intent=intent,
                success_url=url_for("contributions.thanks", slug=slug, public_id=intent.public_id, _external=True),
                cancel_url=url_for("contributions.cancelled", slug=slug, public_id=intent.public_id, _external=True))
            begin_write(db.session)
            intent = operations.record_checkout(db.session, intent_public_id=intent.public_id, checkout=checkout,
                                                now=utcnow())
    except ValidationError as err:
        form.amount.errors = list(form.amount.errors) + err.field_errors.get("amount", [err.user_message])
        return _form_page(circle, form, 422)
    except IdempotencyConflict as err:
        form.form_errors.append(err.user_message)
        form.intent.data = operations.new_intent_public_id()
        return _form_page(circle, form, 409)
    except RuleViolation as err:
        form.form_errors.append(err.user_message)
        return _form_page(circle, form, 429)
    except ConfigurationError as err:
        form.form_errors.append(err.user_message)
        return _form_page(circle, form, 503)
    except IntegrationError:
        # Stripe keeps the first answer to an idempotency key, failures included: a retry needs a new key.
        form.form_errors.append("The payment service did not answer. Nothing was charged; please send the form again.")
        form.intent.data = operations.new_intent_public_id()
        return _form_page(circle, form, 502)
    return redirect(intent.checkout_url or "", code=303)


def thanks(slug: str, public_id: str):  # type: ignore[no-untyped-def]
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    intent = operations.intent_for_circle(db.session, circle, public_id)
    waiting = intent.status in (IntentStatus.CREATED.value, IntentStatus.OPEN.value)
    checks = request.args.get("check", "0")
    # isascii: "²".isdigit() is true but int("²") raises
    checks_done = int(checks) if checks.isascii() and checks.isdigit() and len(checks) < 3 else 0
    # While Stripe's webhook is on its way the page re-checks itself a few times (script only; the
    # reload link works without it).
    next_check = (url_for("contributions.thanks", slug=slug, public_id=public_id, check=checks_done + 1)
                  if waiting and checks_done < 15 else None)
    return render_template("contributions/thanks.html", circle=circle, intent=intent, next_check=next_check,
                           pending=intent.status == IntentStatus.PENDING.value)


def cancelled(slug: str, public_id: str):  # type: ignore[no-untyped-def]
    circle = circle_queries.circle_by_slug_or_404(db.session, slug)
    intent = operations.intent_for_circle(db.session, circle, public_id)
    return render_template("contributions/cancelled.html", circle=circle, intent=intent)


def stripe_webhook():  # type: ignore[no-untyped-def]
    # The signature covers the exact bytes Stripe sent: never a re-serialised request.json.
    payload = request.get_data(cache=False)
    try:
        event = verify_webhook(payload, request.headers.get("Stripe-Signature"), webhook_secrets(current_app.config))
    except WebhookSignatureError as err:
        # Nothing is stored: an unverified body is not trusted with anything, not even a log of its content.
        current_app.logger.warning("refused a Stripe webhook delivery from %s: %s", request.remote_addr, err)
        return jsonify(error="Bad signature", message=str(err), status=400), 400
    receipt = operations.receive_event(db.session, event, gateway=gateway(), now=utcnow())
    return jsonify(received=True, event=receipt.event_id, duplicate=receipt.duplicate, outcome=receipt.outcome), 200
