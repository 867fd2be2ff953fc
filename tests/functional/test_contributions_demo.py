"""The demo's contributions go through the webhook processing path; its role-holders get a
published authenticator secret."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

from fundcircle import ledger
from fundcircle.auth import second_factor
from fundcircle.auth.models import User
from fundcircle.contributions.demo import demo_totp_secret
from fundcircle.contributions.models import ContributionIntent, StripeEvent, StripePayment
from fundcircle.db import utcnow
from fundcircle.demo import seed_demo
from fundcircle.integrations.fakes.stripe import card_fee_minor
from fundcircle.ledger.models import LedgerTransaction
from fundcircle.notifications.models import OutgoingMail


def test_demo_contributions_and_second_factor(session, app) -> None:  # type: ignore[no-untyped-def]
    circle = seed_demo(session, utcnow())
    session.commit()
    outcomes = Counter(session.scalars(sa.select(StripeEvent.outcome)))
    assert outcomes == {"credited": 4, "pending": 2, "refunded": 1}
    statuses = Counter(session.scalars(sa.select(ContributionIntent.status)))
    assert statuses == {"paid": 4, "pending": 1}
    payments = session.scalars(sa.select(StripePayment).where(StripePayment.status == "succeeded")).all()
    assert sorted(p.gross_minor for p in payments) == [2_000, 3_000, 5_000, 15_000]
    assert all(p.fee_minor == card_fee_minor(p.gross_minor, "eur") for p in payments)
    keys = set(session.scalars(sa.select(LedgerTransaction.idempotency_key)))
    assert all(f"stripe:payment_intent:{p.payment_intent_id}" in keys for p in payments)
    assert sum(1 for k in keys if k.startswith("stripe:charge:")) == 1
    assert ledger.verify(session).ok

    roles = {m.user.email for m in circle.memberships if m.is_treasurer or m.is_facilitator}
    assert "jonas@riverside.example" in roles and "amara@riverside.example" in roles
    for email in roles:
        user = session.scalar(sa.select(User).where(User.email == email))
        cred = second_factor.credential_of(session, user)
        assert cred is not None and cred.confirmed_at is not None
        assert second_factor.decrypt_secret(cred.secret_encrypted, app.config["SECRET_KEY"]) == demo_totp_secret(email)
        mail = session.scalar(sa.select(OutgoingMail).where(OutgoingMail.to_address == email,
                                                             OutgoingMail.subject.like("%authenticator%")))
        assert mail is not None and demo_totp_secret(email) in mail.body_text
    lucia = session.scalar(sa.select(User).where(User.email == "lucia@riverside.example"))
    assert second_factor.credential_of(session, lucia) is None


def test_a_production_demo_gets_no_published_authenticator_secrets(session, app) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.auth.models import TotpCredential

    app.config["ENVIRONMENT"] = "production"
    seed_demo(session, utcnow())
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(TotpCredential)) == 0
