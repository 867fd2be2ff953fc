"""Stripe behind a small interface: create a Checkout Session, retrieve objects, verify webhooks.

The real implementation is stripe-python 16's ``StripeClient`` (resources under ``client.v1``).
Which Stripe it talks to comes from the configuration:

- ``STRIPE_SECRET_KEY`` set: that account (``STRIPE_API_BASE`` may point the client elsewhere,
  which is how the local fake server is used: same client code, real HTTP over loopback);
- no key: outside production ``fundcircle up`` starts the fake Stripe server and sets these
  values for the app; in production contributions refuse with a ConfigurationError.

Objects come back as plain dicts (``StripeObject.to_dict()``): stripe-python objects are not dicts
and ``.get`` on them raises, so nothing outside this module sees them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import stripe

from fundcircle.errors import ConfigurationError, IdempotencyConflict, IntegrationError

#: seconds a signature timestamp may differ from our clock, in either direction
SIGNATURE_TOLERANCE_S = 300
#: stripe-python's StripeClient does not retry at all unless told to (reference §6.1)
MAX_NETWORK_RETRIES = 2


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    status: str
    payment_status: str
    amount_total: int
    currency: str


class PaymentGateway(Protocol):
    """What fundcircle needs from Stripe."""

    def create_checkout_session(self, *, idempotency_key: str, amount_minor: int, currency: str,
                                product_name: str, client_reference_id: str, metadata: Mapping[str, str],
                                success_url: str, cancel_url: str, description: str = "") -> CheckoutSession: ...

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]: ...

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]: ...


class WebhookSignatureError(Exception):
    """A webhook delivery whose signature or timestamp does not verify (answer 400)."""


class StripeGateway:
    """``PaymentGateway`` over stripe-python's ``StripeClient``."""

    def __init__(self, api_key: str, *, api_base: str | None = None, timeout_s: float = 20.0) -> None:
        base_addresses: dict[str, str] = {"api": api_base.rstrip("/")} if api_base else {}
        http_client = stripe.RequestsClient(timeout=timeout_s)
        self.client = stripe.StripeClient(api_key, base_addresses=base_addresses,  # type: ignore[arg-type]
                                          max_network_retries=MAX_NETWORK_RETRIES, http_client=http_client)

    def create_checkout_session(self, *, idempotency_key: str, amount_minor: int, currency: str,
                                product_name: str, client_reference_id: str, metadata: Mapping[str, str],
                                success_url: str, cancel_url: str, description: str = "") -> CheckoutSession:
        params: dict[str, Any] = {
            "mode": "payment",
            "submit_type": "donate",
            "client_reference_id": client_reference_id,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "line_items": [{"quantity": 1, "price_data": {
                "currency": currency.lower(), "unit_amount": amount_minor,
                "product_data": {"name": product_name}}}],
            "metadata": dict(metadata),
            "payment_intent_data": {"metadata": dict(metadata), **({"description": description} if description else {})},
        }
        session = self._call(lambda: self.client.v1.checkout.sessions.create(
            params=params, options={"idempotency_key": idempotency_key}))  # type: ignore[arg-type]
        return CheckoutSession(id=session.id, url=session.url or "", status=session.status or "",
                               payment_status=session.payment_status, amount_total=int(session.amount_total or 0),
                               currency=(session.currency or "").upper())

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        intent = self._call(lambda: self.client.v1.payment_intents.retrieve(
            payment_intent_id, params={"expand": ["latest_charge.balance_transaction"]}))
        return intent.to_dict()

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        return self._call(lambda: self.client.v1.checkout.sessions.retrieve(session_id)).to_dict()

    @staticmethod
    def _call(fn):  # type: ignore[no-untyped-def]
        try:
            return fn()
        except stripe.IdempotencyError as exc:
            raise IdempotencyConflict(
                "This contribution was already started with different details. Please reload the form.") from exc
        except stripe.AuthenticationError as exc:
            raise ConfigurationError("Stripe refused the API key (check STRIPE_SECRET_KEY).") from exc
        except stripe.StripeError as exc:
            raise IntegrationError(f"Stripe did not answer as expected: {exc.user_message or type(exc).__name__}") from exc


def verify_webhook(payload: bytes, signature_header: str | None, secrets: list[str], *,
                   now_s: float | None = None) -> dict[str, Any]:
    """Verify a Stripe webhook delivery and return the parsed event (a plain dict).

    ``payload`` must be the raw request body. Any of ``secrets`` may match (secret rolling).
    stripe-python checks the v1 HMAC-SHA256 and rejects timestamps older than the tolerance; it
    accepts timestamps in the future, so the other direction is checked here as well.
    Raises WebhookSignatureError with a reason safe to answer.
    """
    import json

    if not secrets:
        raise WebhookSignatureError("no webhook secret is configured")
    header = signature_header or ""
    reasons: list[str] = []
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=SIGNATURE_TOLERANCE_S)
            break
        except stripe.SignatureVerificationError as exc:
            reasons.append(str(exc).split(". ")[0])
        except UnicodeDecodeError:
            raise WebhookSignatureError("the body is not UTF-8") from None
    else:
        raise WebhookSignatureError(reasons[-1])
    timestamp_s = _header_timestamp(header)
    now_s = time.time() if now_s is None else now_s
    if abs(now_s - timestamp_s) > SIGNATURE_TOLERANCE_S:
        raise WebhookSignatureError(f"timestamp {timestamp_s} is more than {SIGNATURE_TOLERANCE_S} s from now")
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise WebhookSignatureError("the body is not JSON") from exc
    if not isinstance(event, dict) or event.get("object") != "event" or not isinstance(event.get("id"), str) \
            or not isinstance(event.get("type"), str) or not isinstance(event.get("data"), dict):
        raise WebhookSignatureError("the body is not a Stripe event")
    return event


def _header_timestamp(header: str) -> int:
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                break
    raise WebhookSignatureError("Unable to extract timestamp from header")


def gateway_from_config(config: Mapping[str, Any]) -> PaymentGateway:
    """The gateway the app is configured for; ConfigurationError when Stripe is not set up."""
    key = config.get("STRIPE_SECRET_KEY") or ""
    if not key:
        if config.get("ENVIRONMENT") == "production":
            raise ConfigurationError("Contributions need STRIPE_SECRET_KEY (and STRIPE_WEBHOOK_SECRET).")
        raise ConfigurationError("Stripe is not configured: set STRIPE_SECRET_KEY, or run `fundcircle up`, "
                                 "which starts a local fake Stripe when no key is set.")
    return StripeGateway(key, api_base=config.get("STRIPE_API_BASE") or None)


def webhook_secrets(config: Mapping[str, Any]) -> list[str]:
    """``STRIPE_WEBHOOK_SECRET`` may list several secrets separated by commas (while rolling)."""
    raw = config.get("STRIPE_WEBHOOK_SECRET") or ""
    return [s.strip() for s in raw.split(",") if s.strip()]
