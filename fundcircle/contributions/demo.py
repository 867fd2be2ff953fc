"""This package's part of the demo circle (called by fundcircle.demo.seed_demo).

Card and SEPA contributions from neighbours, one refunded in part, one still settling — made the
way real ones are: a contribution intent and a Checkout Session through ``start_checkout``, then
the fake Stripe's events through ``receive_event`` (the webhook's processing path), with the fake
answering the API in process (the seeder runs offline). So the pot shows Stripe contributions with
their fees exactly as live ones would appear.

Also gives the demo treasurer and facilitators an authenticator with a published secret (see
``DEMO_TOTP_NOTE``), so the treasury pages' second factor can be tried without a phone.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import TYPE_CHECKING

from fundcircle.contributions import operations
from fundcircle.integrations.fakes.stripe import FakeStripe

if TYPE_CHECKING:
    from fundcircle.demo import DemoContext

#: (days before now, amount_minor, name, message, anonymous, method, then)
#: ``then``: ("refund", amount, days before now) or ("settle", None, days before now) or None
_CONTRIBUTIONS: tuple[tuple[int, int, str, str, bool, str, tuple[str, int | None, int] | None], ...] = (
    (13, 5_000, "Mina Kowalski", "For the repair café — it fixed my lamp!", False, "card", None),
    (11, 2_000, "", "", True, "card", None),
    (8, 15_000, "Riverside Bakery", "Happy to help the neighbourhood.", False, "sepa_debit", ("settle", None, 5)),
    (6, 3_000, "Tom Becker", "", False, "card", ("refund", 1_000, 3)),
    (2, 1_500, "Lea", "Small but from the heart.", False, "sepa_debit", None),
)

DEMO_TOTP_NOTE = ("Demo only: this authenticator secret is published with the demo data. "
                  "Get the current code with: fundcircle second-factor code {email}")


def demo_totp_secret(email: str) -> str:
    """A fixed, published TOTP secret per demo address (base32 of a hash of it)."""
    digest = hashlib.sha256(f"fundcircle-demo-totp:{email}".encode()).digest()[:20]
    return base64.b32encode(digest).decode("ascii").rstrip("=")


def seed_demo(ctx: DemoContext) -> None:
    session, circle, now = ctx.session, ctx.circle, ctx.now
    fake = FakeStripe(webhook_secret="whsec_demo_seed")
    gateway = fake.in_process_gateway()
    limits = operations.Limits(1, 10**9)
    for days_ago, amount_minor, name, message, anonymous, method, then in _CONTRIBUTIONS:
        when = now - dt.timedelta(days=days_ago, hours=3)
        fake.clock = when.timestamp
        intent = operations.start_checkout(
            session, circle=circle, intent_public_id=operations.new_intent_public_id(),
            request=operations.ContributionRequest(amount_minor=amount_minor, donor_name=name, message=message,
                                                   is_anonymous=anonymous),
            limits=limits, gateway=gateway, success_url="http://demo.invalid/thanks",
            cancel_url="http://demo.invalid/cancelled", now=when)
        assert intent.checkout_session_id is not None
        events = fake.pay(intent.checkout_session_id, method=method)
        if then is not None:
            action, amount, later_days = then
            fake.clock = (now - dt.timedelta(days=later_days)).timestamp
            pi_id = fake.objects[intent.checkout_session_id]["payment_intent"]
            events += fake.settle(pi_id) if action == "settle" else fake.refund(fake.charge_of(pi_id), amount)
        for event in events:
            operations.receive_event(session, event, gateway=gateway,
                                     now=dt.datetime.fromtimestamp(event["created"], dt.timezone.utc))
    _seed_second_factor(ctx)


def _seed_second_factor(ctx: DemoContext) -> None:
    from flask import current_app, has_app_context

    from fundcircle.auth import second_factor
    from fundcircle.notifications.operations import queue_mail

    if not has_app_context():  # the secret is encrypted with the app's SECRET_KEY
        return
    if current_app.config.get("ENVIRONMENT") == "production":
        return  # published demo secrets would be a back door on a real server
    for membership in ctx.circle.memberships:
        if not (membership.is_treasurer or membership.is_facilitator):
            continue
        user = membership.user
        secret = demo_totp_secret(user.email)
        second_factor.seed_known_secret(ctx.session, user=user, secret_b32=secret,
                                        secret_key=current_app.config["SECRET_KEY"], now=ctx.now)
        queue_mail(ctx.session, to_address=user.email, subject="Your demo authenticator (second factor)", body_text=(
            f"Hello {user.name},\n\nTreasury and facilitator pages ask for a 6-digit code from an authenticator "
            f"app once per sign-in. For the demo your account already has one, with this secret:\n\n{secret}\n\n"
            f"Add it to any authenticator app, or open: {second_factor.otpauth_uri(secret, user.email)}\n\n"
            + DEMO_TOTP_NOTE.format(email=user.email) + "\n"))
