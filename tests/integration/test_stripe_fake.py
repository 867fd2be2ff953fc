"""The fake Stripe itself: wire format, idempotency, auth, expansion, signatures, `fundcircle up` wiring."""

from __future__ import annotations

import json

import pytest
import requests
import stripe

from fundcircle.errors import ConfigurationError, IdempotencyConflict, IntegrationError
from fundcircle.integrations import stripe as gateway_mod
from fundcircle.integrations.fakes.stripe import FakeStripe, nest_form, sign, start_for_app
from fundcircle.integrations.stripe import StripeGateway, WebhookSignatureError, verify_webhook


def test_nest_form_parses_stripe_python_encoding() -> None:
    items = [("mode", "payment"), ("line_items[0][quantity]", "1"),
             ("line_items[0][price_data][currency]", "eur"), ("metadata[a]", "1"),
             ("expand[1]", "y"), ("expand[0]", "x")]
    assert nest_form(items) == {"mode": "payment", "line_items": [{"quantity": "1", "price_data": {"currency": "eur"}}],
                                "metadata": {"a": "1"}, "expand": ["x", "y"]}


def test_signature_is_stripes_scheme() -> None:
    payload = json.dumps({"id": "evt_1", "object": "event"})
    assert sign(payload, "whsec_x", 1_795_251_515) == stripe.WebhookSignature.generate_signature_header(
        payload, "whsec_x", timestamp=1_795_251_515)


def test_verify_webhook_checks_both_directions_and_rolls_secrets() -> None:
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "x", "data": {"object": {}}})
    now = 2_000_000_000
    assert verify_webhook(payload.encode(), sign(payload, "whsec_new", now), ["whsec_old", "whsec_new"],
                          now_s=now)["id"] == "evt_1"
    for header, reason in [(sign(payload, "whsec_new", now + 301), "from now"),
                           (sign(payload, "whsec_new", now - 301), "from now|tolerance zone"),
                           (sign(payload, "whsec_other", now), "No signatures found"),
                           ("", "No Stripe-Signature header"), ("t=1", "No signatures found with expected scheme")]:
        with pytest.raises(WebhookSignatureError, match=reason):
            verify_webhook(payload.encode(), header, ["whsec_new"], now_s=now)
    with pytest.raises(WebhookSignatureError, match="no webhook secret"):
        verify_webhook(payload.encode(), sign(payload, "whsec_new", now), [], now_s=now)
    not_event = json.dumps({"hello": 1})
    with pytest.raises(WebhookSignatureError, match="not a Stripe event"):
        verify_webhook(not_event.encode(), sign(not_event, "k", now), ["k"], now_s=now)


def _create(gw: StripeGateway, key: str = "checkout:k1", amount: int = 2_500):  # type: ignore[no-untyped-def]
    return gw.create_checkout_session(idempotency_key=key, amount_minor=amount, currency="EUR", product_name="Pot",
                                      client_reference_id="ref", metadata={"m": "1"},
                                      success_url="http://x/s/{CHECKOUT_SESSION_ID}", cancel_url="http://x/c")


def test_api_through_the_real_client() -> None:
    with FakeStripe() as fake:
        gw = StripeGateway(fake.api_key, api_base=fake.url)
        session = _create(gw)
        assert _create(gw).id == session.id  # same key, same params: replayed
        with pytest.raises(IdempotencyConflict):
            _create(gw, amount=2_600)
        assert _create(gw, key="checkout:k2").id != session.id
        assert [k for _m, _p, k in fake.requests_log] == ["checkout:k1"] * 3 + ["checkout:k2"]
        fake.pay(session.id)
        pi = gw.retrieve_payment_intent(fake.objects[session.id]["payment_intent"])
        assert pi["status"] == "succeeded" and pi["metadata"] == {"m": "1"}
        assert pi["latest_charge"]["balance_transaction"]["fee"] == 63  # 1.5 % of 25.00 + 0.25
        assert gw.retrieve_checkout_session(session.id)["payment_status"] == "paid"
        with pytest.raises(IntegrationError):
            gw.retrieve_payment_intent("pi_missing")
        with pytest.raises(ConfigurationError):
            StripeGateway("sk_test_wrong", api_base=fake.url).retrieve_checkout_session(session.id)
        page = requests.get(session.url, timeout=10)
        assert page.status_code == 200 and "25.00 EUR" in page.text
        assert requests.post(session.url, data={"action": "card"}, allow_redirects=False, timeout=10).status_code == 409


def test_gateway_configuration() -> None:
    with pytest.raises(ConfigurationError, match="STRIPE_SECRET_KEY"):
        gateway_mod.gateway_from_config({"ENVIRONMENT": "production"})
    with pytest.raises(ConfigurationError, match="fundcircle up"):
        gateway_mod.gateway_from_config({"ENVIRONMENT": "development"})
    assert gateway_mod.webhook_secrets({"STRIPE_WEBHOOK_SECRET": "whsec_a, whsec_b"}) == ["whsec_a", "whsec_b"]


def test_production_refuses_a_key_without_a_webhook_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.config import load_config

    base = {"ENVIRONMENT": "production", "SECRET_KEY": "s" * 40, "INSTANCE_PATH": tmp_path,
            "STRIPE_SECRET_KEY": "sk_live_x"}
    with pytest.raises(ConfigurationError, match="STRIPE_WEBHOOK_SECRET"):
        load_config({**base, "STRIPE_WEBHOOK_SECRET": ""})
    assert load_config({**base, "STRIPE_WEBHOOK_SECRET": "whsec_x"})["STRIPE_SECRET_KEY"] == "sk_live_x"


class _App:
    def __init__(self, **config: str) -> None:
        self.config = dict(config)


def test_up_starts_the_fake_only_without_a_key() -> None:
    assert start_for_app(_App(STRIPE_SECRET_KEY="sk_live_x"), app_host="127.0.0.1", app_port=5000) is None
    assert start_for_app(_App(ENVIRONMENT="production"), app_host="127.0.0.1", app_port=5000) is None
    app = _App(ENVIRONMENT="development")
    fake = start_for_app(app, app_host="0.0.0.0", app_port=5123)
    assert fake is not None
    try:
        assert fake.webhook_url == "http://127.0.0.1:5123/webhooks/stripe" and fake.auto_deliver
        assert app.config["STRIPE_API_BASE"] == fake.url and app.config["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
        session = _create(StripeGateway(app.config["STRIPE_SECRET_KEY"], api_base=app.config["STRIPE_API_BASE"]))
        assert session.url.startswith("http://127.0.0.1:")
    finally:
        fake.stop()
