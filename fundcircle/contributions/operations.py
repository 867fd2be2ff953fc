"""Contributions: starting a Stripe Checkout, and turning Stripe's webhook events into ledger posts.

Idempotency, outside in:

1. A Checkout Session is created with the key ``checkout:<intent public id>``; the intent row is
   keyed by that random id (generated with the form), so a double submit finds the same row and
   Stripe answers the same session.
2. A webhook delivery is inserted into the inbox (``stripe_events``) with insert-or-ignore on the
   event id; a redelivery inserts nothing and is answered "duplicate" without processing.
3. Processing locks the payment's row (``stripe_payments``, unique per PaymentIntent; FOR UPDATE on
   PostgreSQL, the database write lock on SQLite) and decides from its state whether to post: a
   payment is credited once, a refund posts only the growth of the cumulative amount refunded, a
   dispute withdraws once and reinstates at most once.
4. The ledger posts carry keys derived from the Stripe objects (``stripe:payment_intent:<id>``…),
   so even a unit of work retried after a lost race replays instead of posting twice.

Amounts are never taken from the event alone: the PaymentIntent is retrieved from the API (with its
charge's balance transaction, for the fee), so the order in which events arrive does not matter —
a refund that arrives before its ``checkout.session.completed`` credits the payment first.

Operations take ``now`` and the gateway explicitly, flush and never commit.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fundcircle.circles.models import Circle
from fundcircle.contributions.models import (
    ContributionIntent,
    DisputeStatus,
    IntentStatus,
    PaymentStatus,
    StripeDispute,
    StripeEvent,
    StripePayment,
)
from fundcircle.errors import IdempotencyConflict, IntegrationError, NotFound, RuleViolation, ValidationError
from fundcircle.integrations.stripe import CheckoutSession, PaymentGateway
from fundcircle.ledger import money
from fundcircle.ledger.reconcile import stripe as stripe_ledger

#: the intent id travels in a hidden form field; anything else is refused before touching the database
INTENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
METADATA_CIRCLE = "fundcircle_circle_id"
METADATA_INTENT = "fundcircle_intent"

HANDLED_EVENTS = (
    "checkout.session.completed", "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed", "checkout.session.expired", "charge.refunded",
    "charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.closed",
    "charge.dispute.funds_reinstated",
)


def new_intent_public_id() -> str:
    """A fresh contribution intent id (192 random bits), generated when the form is shown."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class ContributionRequest:
    amount_minor: int
    donor_name: str = ""
    message: str = ""
    is_anonymous: bool = False


@dataclass(frozen=True)
class Limits:
    min_minor: int
    max_minor: int
    #: new contributions one address may start per hour (each one is a call to Stripe); None = no limit
    per_requester_per_hour: int | None = None


#: Stripe takes three-decimal currencies in thousandths whose last digit must be 0
STRIPE_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
#: ISO says ISK has no decimals, Stripe wants it sent ×100: refused rather than guessed
STRIPE_REFUSED = frozenset({"ISK"})


def check_amount(amount_minor: int, currency: str, limits: Limits) -> None:
    """Raises ValidationError (on the ``amount`` field) unless the amount is within the limits
    and Stripe can charge it exactly in ``currency``."""
    def refuse(message: str) -> None:
        raise ValidationError(message, field_errors={"amount": [message]})

    if currency in STRIPE_REFUSED:
        refuse(f"Card contributions in {currency} are not supported. Please contact the treasurer.")
    if not limits.min_minor <= amount_minor <= limits.max_minor:
        low, high = money.format_amount(limits.min_minor, currency), money.format_amount(limits.max_minor, currency)
        refuse(f"Enter an amount between {low} and {high} {currency}.")
    if currency in STRIPE_THREE_DECIMAL and amount_minor % 10:
        refuse(f"Card payments in {currency} go to two decimals at most (for example "
               f"{money.format_amount(amount_minor - amount_minor % 10, currency)}).")


# -- small database helpers -------------------------------------------------------------------------

def _insert_ignore(session: Session, table: sa.Table, values: Mapping[str, Any], key: list[str]) -> bool:
    """INSERT … ON CONFLICT (key) DO NOTHING; True when this call inserted the row.

    Under concurrency the unique key is what keeps "one row per event/payment": on PostgreSQL a
    concurrent twin waits for the first transaction and then inserts nothing.
    """
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=key).returning(table.c.id)
    return session.execute(stmt).first() is not None


def _locked(session: Session, model: type, **where: Any) -> Any:
    """The row matching ``where``, locked for this transaction and freshly read."""
    stmt = sa.select(model).filter_by(**where).with_for_update(of=model).execution_options(populate_existing=True)
    return session.scalar(stmt)


def _epoch_date(value: Any, fallback: dt.datetime) -> dt.date:
    if isinstance(value, int) and value > 0:
        return dt.datetime.fromtimestamp(value, dt.timezone.utc).date()
    return fallback.date()


# -- starting a contribution ----------------------------------------------------------------------

def start_checkout(session: Session, *, circle: Circle, intent_public_id: str, request: ContributionRequest,
                   limits: Limits, gateway: PaymentGateway, success_url: str, cancel_url: str,
                   now: dt.datetime, requester_hash: str = "") -> ContributionIntent:
    """Record the contribution intent, then create (or find again) its Stripe Checkout Session:
    :func:`record_intent`, :func:`create_checkout` and :func:`record_checkout` in one transaction.

    For callers that own their transaction (the demo, tests). The web view runs the three steps
    itself and commits after the first, so no database lock is held while Stripe answers.
    ``success_url`` may contain ``{CHECKOUT_SESSION_ID}``. Raises what the three steps raise.
    Flushes, never commits.
    """
    intent = record_intent(session, circle=circle, intent_public_id=intent_public_id, request=request,
                           limits=limits, now=now, requester_hash=requester_hash)
    if intent.checkout_session_id and intent.checkout_url:
        return intent  # a double submit: the same session again
    checkout = create_checkout(gateway, circle=circle, intent=intent, success_url=success_url, cancel_url=cancel_url)
    return record_checkout(session, intent_public_id=intent.public_id, checkout=checkout, now=now)


def record_intent(session: Session, *, circle: Circle, intent_public_id: str, request: ContributionRequest,
                  limits: Limits, now: dt.datetime, requester_hash: str = "") -> ContributionIntent:
    """Step 1, local row first: insert the ``contribution_intents`` row (status ``created``), or find
    the one a double submit already wrote.

    Raises ValidationError (amount outside the limits, malformed intent id), IdempotencyConflict
    (the intent id was already used with other details or for another circle), RuleViolation (this
    address started too many contributions in the last hour). Flushes, never commits.
    """
    if not INTENT_ID_RE.match(intent_public_id or ""):
        raise ValidationError("This form is damaged. Please reload the page.")
    check_amount(request.amount_minor, circle.currency, limits)
    known = session.scalar(sa.select(ContributionIntent.id).where(ContributionIntent.public_id == intent_public_id))
    if known is None and limits.per_requester_per_hour is not None and requester_hash:
        recent = session.scalar(sa.select(sa.func.count()).select_from(ContributionIntent).where(
            ContributionIntent.requester_hash == requester_hash,
            ContributionIntent.created_at >= now - dt.timedelta(hours=1)))
        if recent >= limits.per_requester_per_hour:
            raise RuleViolation("Too many contributions were started from your connection in the last hour. "
                                "Please wait a while and try again.")
    _insert_ignore(session, ContributionIntent.__table__, dict(
        requester_hash=requester_hash,
        public_id=intent_public_id, circle_id=circle.id, amount_minor=request.amount_minor, currency=circle.currency,
        donor_name=request.donor_name.strip(), message=request.message.strip(), is_anonymous=request.is_anonymous,
        status=IntentStatus.CREATED.value, created_at=now, updated_at=now), ["public_id"])
    intent: ContributionIntent = _locked(session, ContributionIntent, public_id=intent_public_id)
    same = (intent.circle_id == circle.id and intent.amount_minor == request.amount_minor
            and intent.donor_name == request.donor_name.strip() and intent.message == request.message.strip()
            and intent.is_anonymous == request.is_anonymous)
    if not same:
        raise IdempotencyConflict("This form was already sent with other details. "
                                  "The form has been reset: please check it and send it again.")
    session.flush()
    return intent


def create_checkout(gateway: PaymentGateway, *, circle: Circle, intent: ContributionIntent, success_url: str,
                    cancel_url: str) -> CheckoutSession:
    """Step 2, no database: create the Checkout Session under the idempotency key
    ``checkout:<intent id>`` (a double submit gets the same session from Stripe) and check that
    Stripe's answer is for this amount. Raises IntegrationError."""
    metadata = {METADATA_CIRCLE: str(circle.id), METADATA_INTENT: intent.public_id}
    checkout = gateway.create_checkout_session(
        idempotency_key=f"checkout:{intent.public_id}", amount_minor=intent.amount_minor, currency=circle.currency,
        product_name=f"Contribution to {circle.name}", client_reference_id=intent.public_id, metadata=metadata,
        success_url=success_url, cancel_url=cancel_url, description=f"Contribution to the pot of {circle.name}")
    if checkout.amount_total != intent.amount_minor or checkout.currency != circle.currency or not checkout.url:
        raise IntegrationError("Stripe answered with a checkout for another amount. Nothing was charged.")
    return checkout


def record_checkout(session: Session, *, intent_public_id: str, checkout: CheckoutSession,
                    now: dt.datetime) -> ContributionIntent:
    """Step 3: store the session on the intent and open it. A webhook may already have moved the
    intent on (paid, expired): then only the session is filled in. Flushes, never commits."""
    intent: ContributionIntent = _locked(session, ContributionIntent, public_id=intent_public_id)
    if intent.checkout_session_id and intent.checkout_session_id != checkout.id:
        raise IntegrationError("Stripe answered with another checkout for this contribution. Nothing was charged.")
    intent.checkout_session_id = checkout.id
    intent.checkout_url = checkout.url
    if intent.status == IntentStatus.CREATED.value:
        intent.status = IntentStatus.OPEN.value
    intent.updated_at = now
    session.flush()
    return intent


def intent_for_circle(session: Session, circle: Circle, public_id: str) -> ContributionIntent:
    if not INTENT_ID_RE.match(public_id or ""):  # never a query: PostgreSQL refuses a NUL in a string (a 500)
        raise NotFound("There is no such contribution.")
    intent = session.scalar(sa.select(ContributionIntent).where(ContributionIntent.public_id == public_id,
                                                                ContributionIntent.circle_id == circle.id))
    if intent is None:
        raise NotFound("There is no such contribution.")
    return intent


# -- webhooks ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventReceipt:
    event_id: str
    duplicate: bool
    outcome: str
    detail: str = ""


def receive_event(session: Session, event: Mapping[str, Any], *, gateway: PaymentGateway,
                  now: dt.datetime) -> EventReceipt:
    """Store a *verified* Stripe event in the inbox and process it, once.

    A redelivered event (same id) inserts nothing and returns ``duplicate=True`` without any other
    effect. Raises IntegrationError when Stripe could not be asked about the payment (the caller
    answers 5xx and the whole unit of work, inbox row included, is rolled back, so Stripe's
    redelivery is processed). Flushes, never commits.
    """
    event_id = str(event["id"])
    created = event.get("created")
    inserted = _insert_ignore(session, StripeEvent.__table__, dict(
        event_id=event_id, event_type=str(event.get("type", ""))[:100], livemode=bool(event.get("livemode")),
        stripe_created_at=dt.datetime.fromtimestamp(created, dt.timezone.utc) if isinstance(created, int) else now,
        payload=dict(event), received_at=now, processed_at=None, outcome="", detail=""), ["event_id"])
    if not inserted:
        return EventReceipt(event_id, True, "duplicate")
    row: StripeEvent = session.scalar(sa.select(StripeEvent).where(StripeEvent.event_id == event_id))
    outcome, detail = process_event(session, event, gateway=gateway, now=now)
    row.outcome, row.detail, row.processed_at = outcome, detail[:2000], now
    session.flush()
    return EventReceipt(event_id, False, outcome, detail)


def process_event(session: Session, event: Mapping[str, Any], *, gateway: PaymentGateway,
                  now: dt.datetime) -> tuple[str, str]:
    """Apply one event to the payment state and the ledger; returns (outcome, detail).

    Safe to call again for the same event (every effect is guarded by the payment's state and by
    ledger keys), though ``receive_event`` already calls it once per event id.
    """
    kind = event.get("type")
    obj = (event.get("data") or {}).get("object") or {}
    if kind not in HANDLED_EVENTS or not isinstance(obj, Mapping):
        return "ignored", f"{kind} is not used by fundcircle"
    if kind.startswith("checkout.session."):
        return _on_checkout_session(session, kind, obj, gateway=gateway, now=now)
    if kind == "charge.refunded":
        return _on_charge_refunded(session, obj, gateway=gateway, now=now)
    return _on_dispute(session, kind, obj, event, gateway=gateway, now=now)


def _circle_from_metadata(session: Session, metadata: Any) -> Circle | None:
    if not isinstance(metadata, Mapping):
        return None
    raw = metadata.get(METADATA_CIRCLE)
    if not isinstance(raw, str) or not raw.isdigit():
        return None
    return session.get(Circle, int(raw))


def _intent_by_public_id(session: Session, public_id: Any) -> ContributionIntent | None:
    if not isinstance(public_id, str) or not INTENT_ID_RE.match(public_id):
        return None
    return session.scalar(sa.select(ContributionIntent).where(ContributionIntent.public_id == public_id))


def _payment_row(session: Session, *, payment_intent_id: str, circle: Circle, currency: str,
                 intent: ContributionIntent | None, checkout_session_id: str | None, now: dt.datetime) -> StripePayment:
    _insert_ignore(session, StripePayment.__table__, dict(
        circle_id=circle.id, payment_intent_id=payment_intent_id, checkout_session_id=checkout_session_id,
        contribution_intent_id=intent.id if intent else None, currency=currency, status=PaymentStatus.PENDING.value,
        gross_minor=0, fee_minor=0, refunded_minor=0, created_at=now, updated_at=now), ["payment_intent_id"])
    return _locked(session, StripePayment, payment_intent_id=payment_intent_id)


def _set_intent_status(intent: ContributionIntent | None, status: IntentStatus, now: dt.datetime,
                       payment_intent_id: str | None = None) -> None:
    if intent is None or intent.status == IntentStatus.PAID.value:
        return  # a paid contribution never goes back
    intent.status = status.value
    intent.updated_at = now
    if payment_intent_id:
        intent.payment_intent_id = payment_intent_id


def _settle(session: Session, payment_intent_id: str, *, gateway: PaymentGateway,
            now: dt.datetime) -> tuple[StripePayment | None, str, str]:
    """Credit the payment once, from what the Stripe API says about it; returns (payment, outcome, detail).

    The payment row is locked before anything is decided, so two events about the same payment
    are applied one after the other.
    """
    payment: StripePayment | None = _locked(session, StripePayment, payment_intent_id=payment_intent_id)
    if payment is not None and payment.status == PaymentStatus.SUCCEEDED.value:
        return payment, "already_credited", ""
    pi = gateway.retrieve_payment_intent(payment_intent_id)
    circle = _circle_from_metadata(session, pi.get("metadata"))
    if circle is None:
        return None, "ignored", f"payment {payment_intent_id} is not a fundcircle contribution"
    intent = _intent_by_public_id(session, (pi.get("metadata") or {}).get(METADATA_INTENT))
    currency = str(pi.get("currency") or "").upper()
    if payment is None:
        payment = _payment_row(session, payment_intent_id=payment_intent_id, circle=circle, currency=currency,
                               intent=intent, checkout_session_id=intent.checkout_session_id if intent else None, now=now)
        if payment.status == PaymentStatus.SUCCEEDED.value:  # a concurrent twin credited it meanwhile
            return payment, "already_credited", ""
    status = pi.get("status")
    if status != "succeeded":
        if status in ("requires_payment_method", "canceled") and payment.status == PaymentStatus.PENDING.value:
            payment.status, payment.updated_at = PaymentStatus.FAILED.value, now
            _set_intent_status(intent, IntentStatus.FAILED, now, payment_intent_id)
            return payment, "failed", f"payment intent is {status}"
        _set_intent_status(intent, IntentStatus.PENDING, now, payment_intent_id)
        return payment, "pending", f"payment intent is {status}"
    if currency != circle.currency:
        return payment, "needs_attention", f"paid in {currency}, the pot is in {circle.currency}"
    gross = int(pi.get("amount_received") or 0)
    charge = pi.get("latest_charge")
    balance_tx = charge.get("balance_transaction") if isinstance(charge, Mapping) else None
    if not isinstance(charge, Mapping) or not isinstance(balance_tx, Mapping):
        raise IntegrationError(f"Stripe did not return the charge and fee of {payment_intent_id}")
    if str(balance_tx.get("currency") or "").upper() != currency:
        return payment, "needs_attention", (f"settled in {str(balance_tx.get('currency')).upper()}, not {currency}: "
                                            "record the fee by hand")
    fee = int(balance_tx.get("fee") or 0)
    if gross <= 0 or not 0 <= fee <= gross:
        return payment, "needs_attention", f"unexpected amounts: received {gross}, fee {fee}"
    label = f"contribution #{intent.id}" if intent else f"payment {payment_intent_id}"
    posted = stripe_ledger.post_payment(session, circle, payment_intent_id=payment_intent_id, gross_minor=gross,
                                        fee_minor=fee, paid_on=_epoch_date(charge.get("created"), now), now=now,
                                        memo=f"Stripe {label}")
    payment.status = PaymentStatus.SUCCEEDED.value
    payment.gross_minor, payment.fee_minor = gross, fee
    payment.charge_id = str(charge.get("id") or "") or None
    payment.credited_transaction_id = posted.transaction_id
    payment.updated_at = now
    _set_intent_status(intent, IntentStatus.PAID, now, payment_intent_id)
    session.flush()
    return payment, "credited", f"{money.format_money(gross, currency)} gross, fee {money.format_money(fee, currency)}"


def _on_checkout_session(session: Session, kind: str, obj: Mapping[str, Any], *, gateway: PaymentGateway,
                         now: dt.datetime) -> tuple[str, str]:
    if obj.get("mode") != "payment":
        return "ignored", "not a one-off payment session"
    circle = _circle_from_metadata(session, obj.get("metadata"))
    if circle is None:
        return "ignored", "not a fundcircle checkout session"
    intent = _intent_by_public_id(session, obj.get("client_reference_id"))
    pi_id = obj.get("payment_intent")
    if kind == "checkout.session.expired":
        if intent is not None and intent.status in (IntentStatus.CREATED.value, IntentStatus.OPEN.value):
            _set_intent_status(intent, IntentStatus.EXPIRED, now)
            return "expired", ""
        return "ignored", "nothing to expire"
    if not isinstance(pi_id, str) or not pi_id:
        return "ignored", "the session has no payment intent"
    if kind == "checkout.session.async_payment_failed":
        payment = _payment_row(session, payment_intent_id=pi_id, circle=circle,
                               currency=str(obj.get("currency") or circle.currency).upper(), intent=intent,
                               checkout_session_id=str(obj.get("id") or "") or None, now=now)
        if payment.status == PaymentStatus.SUCCEEDED.value:
            return "ignored", "the payment already succeeded"
        payment.status, payment.updated_at = PaymentStatus.FAILED.value, now
        _set_intent_status(intent, IntentStatus.FAILED, now, pi_id)
        return "failed", "the delayed payment failed"
    if kind == "checkout.session.completed" and obj.get("payment_status") != "paid":
        if obj.get("payment_status") != "unpaid":
            return "ignored", f"payment status {obj.get('payment_status')}"
        payment = _payment_row(session, payment_intent_id=pi_id, circle=circle,
                               currency=str(obj.get("currency") or circle.currency).upper(), intent=intent,
                               checkout_session_id=str(obj.get("id") or "") or None, now=now)
        if payment.status != PaymentStatus.PENDING.value:
            return "ignored", f"the payment is already {payment.status}"
        _set_intent_status(intent, IntentStatus.PENDING, now, pi_id)
        return "pending", "paid with a delayed method; waiting for Stripe to confirm"
    # completed and paid, or async_payment_succeeded: credit (once) from the API's view of the payment
    _payment, outcome, detail = _settle(session, pi_id, gateway=gateway, now=now)
    return outcome, detail


def _on_charge_refunded(session: Session, charge: Mapping[str, Any], *, gateway: PaymentGateway,
                        now: dt.datetime) -> tuple[str, str]:
    pi_id, charge_id = charge.get("payment_intent"), charge.get("id")
    if not isinstance(pi_id, str) or not isinstance(charge_id, str):
        return "ignored", "refund without a payment intent"
    payment, outcome, detail = _settle(session, pi_id, gateway=gateway, now=now)
    if payment is None or payment.status != PaymentStatus.SUCCEEDED.value:
        return ("ignored" if payment is None else "needs_attention"), f"refund of an unsettled payment ({outcome}: {detail})"
    circle = session.get(Circle, payment.circle_id)
    assert circle is not None
    refunded_total = int(charge.get("amount_refunded") or 0)
    if refunded_total > payment.gross_minor:
        return "needs_attention", f"Stripe reports {refunded_total} refunded of {payment.gross_minor}"
    if refunded_total <= payment.refunded_minor:
        return "already_recorded", f"refunds up to {refunded_total} were already recorded"
    outflow = stripe_ledger.post_refund(session, circle, charge_id=charge_id,
                                        refunded_before_minor=payment.refunded_minor,
                                        refunded_after_minor=refunded_total, now=now,
                                        refunded_on=now.date())
    delta = refunded_total - payment.refunded_minor
    payment.refunded_minor, payment.updated_at = refunded_total, now
    session.flush()
    cur = payment.currency
    if outflow.shortfall_minor:
        return "needs_attention", (f"refunded {money.format_money(delta, cur)}; the pot was short by "
                                   f"{money.format_money(outflow.shortfall_minor, cur)} (booked to suspense)")
    return "refunded", f"refunded {money.format_money(delta, cur)} ({money.format_money(refunded_total, cur)} in total)"


def _dispute_fee(dispute: Mapping[str, Any], currency: str) -> int:
    """Stripe's dispute fee: the fees of the withdrawal balance transactions in the pot currency."""
    fee = 0
    for tx in dispute.get("balance_transactions") or []:
        if isinstance(tx, Mapping) and int(tx.get("amount") or 0) < 0 and str(tx.get("currency") or "").upper() == currency:
            fee += int(tx.get("fee") or 0)
    return fee


def _on_dispute(session: Session, kind: str, dispute: Mapping[str, Any], event: Mapping[str, Any], *,
                gateway: PaymentGateway, now: dt.datetime) -> tuple[str, str]:
    pi_id, dispute_id = dispute.get("payment_intent"), dispute.get("id")
    if not isinstance(pi_id, str) or not isinstance(dispute_id, str):
        return "ignored", "dispute without a payment intent"
    payment, outcome, detail = _settle(session, pi_id, gateway=gateway, now=now)
    if payment is None or payment.status != PaymentStatus.SUCCEEDED.value:
        return ("ignored" if payment is None else "needs_attention"), f"dispute on an unsettled payment ({outcome}: {detail})"
    circle = session.get(Circle, payment.circle_id)
    assert circle is not None
    amount = int(dispute.get("amount") or 0)
    if str(dispute.get("currency") or "").upper() != circle.currency or not 0 < amount <= payment.gross_minor:
        return "needs_attention", f"dispute {dispute_id} of {amount} {dispute.get('currency')} does not fit the payment"
    _insert_ignore(session, StripeDispute.__table__, dict(
        dispute_id=dispute_id, payment_id=payment.id, amount_minor=amount, fee_minor=_dispute_fee(dispute, circle.currency),
        status=DisputeStatus.OPEN.value, created_at=now, updated_at=now), ["dispute_id"])
    row: StripeDispute = _locked(session, StripeDispute, dispute_id=dispute_id)
    results: list[str] = []
    needs_attention = False
    if row.withdrawn_transaction_id is None:
        # also when "closed" arrives first: the withdrawal happened before any outcome
        outflow = stripe_ledger.post_dispute_withdrawal(
            session, circle, dispute_id=dispute_id, amount_minor=row.amount_minor, fee_minor=row.fee_minor, now=now,
            opened_on=_epoch_date(dispute.get("created"), now))
        row.withdrawn_transaction_id = outflow.posted.transaction_id
        results.append(f"withdrew {money.format_money(row.amount_minor, circle.currency)}"
                       f" + fee {money.format_money(row.fee_minor, circle.currency)}")
        needs_attention = outflow.shortfall_minor > 0
    won = kind == "charge.dispute.funds_reinstated" or (kind == "charge.dispute.closed" and dispute.get("status") == "won")
    lost = kind == "charge.dispute.closed" and dispute.get("status") == "lost"
    if won and row.reinstated_transaction_id is None:
        posted = stripe_ledger.post_dispute_reinstatement(session, circle, dispute_id=dispute_id,
                                                          amount_minor=row.amount_minor, now=now,
                                                          closed_on=_epoch_date(event.get("created"), now))
        row.reinstated_transaction_id = posted.transaction_id
        row.status = DisputeStatus.WON.value
        results.append(f"reinstated {money.format_money(row.amount_minor, circle.currency)}")
    elif lost and row.status == DisputeStatus.OPEN.value:
        row.status = DisputeStatus.LOST.value
        results.append("lost: the funds stay withdrawn")
    row.updated_at = now
    session.flush()
    if not results:
        return "already_recorded", f"dispute {dispute_id} is {row.status}"
    return ("needs_attention" if needs_attention else "dispute"), "; ".join(results)


# -- reading ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ContributionLine:
    name: str
    message: str
    gross_minor: int
    fee_minor: int
    refunded_minor: int
    currency: str
    paid_at: dt.datetime


def recent_contributions(session: Session, circle: Circle, *, limit: int = 20) -> list[ContributionLine]:
    """Settled Stripe contributions of ``circle``, newest first (names only when not anonymous)."""
    rows = session.execute(
        sa.select(StripePayment, ContributionIntent)
        .outerjoin(ContributionIntent, ContributionIntent.id == StripePayment.contribution_intent_id)
        .where(StripePayment.circle_id == circle.id, StripePayment.status == PaymentStatus.SUCCEEDED.value)
        .order_by(StripePayment.updated_at.desc(), StripePayment.id.desc()).limit(limit))
    lines = []
    for payment, intent in rows:
        lines.append(ContributionLine(
            name=intent.public_name if intent else "Anonymous",
            message="" if intent is None or intent.is_anonymous else intent.message,
            gross_minor=payment.gross_minor, fee_minor=payment.fee_minor, refunded_minor=payment.refunded_minor,
            currency=payment.currency, paid_at=payment.updated_at))
    return lines
