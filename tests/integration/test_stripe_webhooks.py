"""Stripe webhooks end to end over loopback: the fake Stripe signs and POSTs events to the app
served by a real threaded HTTP server; the app verifies them, asks the fake's API about the
payment through stripe-python, and posts to the ledger. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from fundcircle import ledger
from fundcircle.contributions import operations
from fundcircle.contributions.models import ContributionIntent, StripeEvent, StripePayment
from fundcircle.db import utcnow
from fundcircle.extensions import db
from fundcircle.integrations.fakes.stripe import DISPUTE_FEE_MINOR, card_fee_minor
from fundcircle.integrations.stripe import StripeGateway
from fundcircle.ledger.models import LedgerTransaction
from tests.support import factories as f
from tests.support.stripe_fake import stripe_world

LIMITS = operations.Limits(100, 1_000_000)


@pytest.fixture
def world(app):  # type: ignore[no-untyped-def]
    with app.app_context():
        circle = f.create_circle(db.session, slug="pot-circle")
        ledger.ensure_circle_accounts(db.session, circle, now=utcnow())
        db.session.commit()
        circle_id = circle.id
    with stripe_world(app) as (fake, base_url):
        yield {"app": app, "fake": fake, "base_url": base_url, "circle_id": circle_id}


def start(world, amount_minor: int, name: str = "Ada") -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Create a contribution through the operation (real client → fake); returns (session id, intent id)."""
    app, fake = world["app"], world["fake"]
    with app.app_context():
        from fundcircle.circles.models import Circle

        circle = db.session.get(Circle, world["circle_id"])
        public_id = operations.new_intent_public_id()
        intent = operations.start_checkout(
            db.session, circle=circle, intent_public_id=public_id,
            request=operations.ContributionRequest(amount_minor=amount_minor, donor_name=name),
            limits=LIMITS, gateway=StripeGateway(fake.api_key, api_base=fake.url),
            success_url=f"{world['base_url']}/thanks", cancel_url=f"{world['base_url']}/cancel", now=utcnow())
        db.session.commit()
        return intent.checkout_session_id, public_id


def pay(world, amount_minor: int, method: str = "card"):  # type: ignore[no-untyped-def]
    fake = world["fake"]
    sid, public_id = start(world, amount_minor)
    event = fake.pay(sid, method=method)[0]
    fake.held.clear()
    return event, fake.objects[sid]["payment_intent"], public_id


def books(world) -> dict[str, int]:  # type: ignore[no-untyped-def]
    cid = world["circle_id"]
    with world["app"].app_context():
        get = lambda key: ledger.balance(db.session, key).amount_minor  # noqa: E731
        kinds = Counter(db.session.scalars(sa.select(LedgerTransaction.kind).where(LedgerTransaction.circle_id == cid)))
        return {"pot": get(f"{cid}:pot:available"), "clearing": get(f"{cid}:stripe:clearing"),
                "fees": get(f"{cid}:fees:stripe"), "suspense": get(f"{cid}:suspense"),
                "contributions": kinds["contribution"], "refunds": kinds["refund"], "adjustments": kinds["adjustment"],
                "events": db.session.scalar(sa.select(sa.func.count()).select_from(StripeEvent))}


def outcome_of(world, event_id: str) -> str:  # type: ignore[no-untyped-def]
    with world["app"].app_context():
        return db.session.scalar(sa.select(StripeEvent.outcome).where(StripeEvent.event_id == event_id))


def test_card_payment_is_credited_once_with_its_fee(world) -> None:  # type: ignore[no-untyped-def]
    fake = world["fake"]
    event, pi, public_id = pay(world, 2_500)
    assert fake.deliver(event, copies=3) == [200, 200, 200]
    fee = card_fee_minor(2_500, "eur")
    assert books(world) | {"events": 1} == {"pot": 2_500, "clearing": 2_500 - fee, "fees": fee, "suspense": 0,
                                            "contributions": 1, "refunds": 0, "adjustments": 0, "events": 1}
    assert outcome_of(world, event["id"]) == "credited"
    with world["app"].app_context():
        intent = db.session.scalar(sa.select(ContributionIntent).where(ContributionIntent.public_id == public_id))
        assert intent.status == "paid" and intent.payment_intent_id == pi
        payment = db.session.scalar(sa.select(StripePayment).where(StripePayment.payment_intent_id == pi))
        assert (payment.status, payment.gross_minor, payment.fee_minor) == ("succeeded", 2_500, fee)
        assert ledger.verify(db.session).ok


@pytest.mark.parametrize("attack", ["tampered", "wrong_secret", "stale", "future", "missing", "garbage"])
def test_bad_signatures_are_refused_without_any_write(world, attack: str) -> None:  # type: ignore[no-untyped-def]
    import requests

    fake = world["fake"]
    event, _pi, _ = pay(world, 4_000)
    now = int(time.time())
    if attack == "tampered":
        statuses = fake.deliver(event, tamper=True)
    elif attack == "wrong_secret":
        statuses = fake.deliver(event, secret="whsec_not_the_right_one")
    elif attack == "stale":
        statuses = fake.deliver(event, timestamp=now - 301)
    elif attack == "future":  # stripe-python alone accepts this one
        statuses = fake.deliver(event, timestamp=now + 301)
    else:
        headers = {} if attack == "missing" else {"Stripe-Signature": "t=abc,v1=zz"}
        statuses = [requests.post(fake.webhook_url, data=b'{"id": "evt_x"}', headers=headers, timeout=10).status_code]
    assert statuses == [400]
    assert books(world) == {"pot": 0, "clearing": 0, "fees": 0, "suspense": 0, "contributions": 0, "refunds": 0,
                            "adjustments": 0, "events": 0}
    # just inside the tolerance, in both directions, the same event is accepted (once)
    assert fake.deliver(event, timestamp=now + 290) + fake.deliver(event, timestamp=now - 290) == [200, 200]
    assert books(world)["contributions"] == 1


def test_partial_then_full_refund_posts_the_cumulative_difference_in_any_order(world) -> None:  # type: ignore[no-untyped-def]
    fake = world["fake"]
    event, pi, _ = pay(world, 10_000)
    charge = fake.charge_of(pi)
    partial = fake.refund(charge, 3_000)[0]
    full = fake.refund(charge)[0]          # amount_refunded 10_000 (cumulative)
    fake.held.clear()
    # the full refund arrives first, then the partial one, then the payment itself, each twice
    assert fake.deliver(full, copies=2) + fake.deliver(partial, copies=2) + fake.deliver(event, copies=2) == [200] * 6
    fee = card_fee_minor(10_000, "eur")
    b = books(world)
    assert (b["pot"], b["clearing"], b["fees"], b["contributions"], b["refunds"]) == (0, -fee, fee, 1, 1)
    assert outcome_of(world, full["id"]) == "refunded"
    assert outcome_of(world, partial["id"]) == "already_recorded"
    assert outcome_of(world, event["id"]) == "already_credited"


def test_partial_refunds_in_order_post_each_difference(world) -> None:  # type: ignore[no-untyped-def]
    fake = world["fake"]
    event, pi, _ = pay(world, 10_000)
    charge = fake.charge_of(pi)
    events = [event, *fake.refund(charge, 2_500), *fake.refund(charge, 2_500), *fake.refund(charge)]
    fake.held.clear()
    for e in events:
        assert fake.deliver(e, copies=2) == [200, 200]
    b = books(world)
    assert (b["pot"], b["refunds"]) == (0, 3)
    with world["app"].app_context():
        keys = db.session.scalars(sa.select(LedgerTransaction.idempotency_key).where(LedgerTransaction.kind == "refund")
                                  .order_by(LedgerTransaction.id)).all()
        assert keys == [f"stripe:charge:{charge}:refunded:{n}" for n in (2_500, 5_000, 10_000)]


def test_delayed_payment_waits_for_async_success(world) -> None:  # type: ignore[no-untyped-def]
    fake = world["fake"]
    completed, pi, public_id = pay(world, 5_000, method="sepa_debit")
    assert fake.deliver(completed) == [200]
    assert outcome_of(world, completed["id"]) == "pending"
    assert books(world)["contributions"] == 0
    succeeded = fake.settle(pi)[0]
    assert fake.deliver(succeeded, copies=3, concurrency=3) == [200] * 3
    assert books(world)["pot"] == 5_000 and books(world)["contributions"] == 1
    with world["app"].app_context():
        assert db.session.scalar(sa.select(ContributionIntent.status)
                                 .where(ContributionIntent.public_id == public_id)) == "paid"


def test_async_success_before_completed_credits_once(world) -> None:  # type: ignore[no-untyped-def]
    fake = world["fake"]
    completed, pi, _ = pay(world, 5_000, method="sepa_debit")
    succeeded = fake.settle(pi)[0]
    fake.held.clear()
    assert fake.deliver(succeeded) + fake.deliver(completed) == [200, 200]
    assert outcome_of(world, completed["id"]) == "ignored"  # the unpaid snapshot is stale: already succeeded
    assert books(world)["contributions"] == 1 and books(world)["pot"] == 5_000


def test_delayed_payment_failure_posts_nothing(world) -> None:  # type: ignore[no-untyped-def]
    fake = world["fake"]
    completed, pi, public_id = pay(world, 5_000, method="sepa_debit")
    failed = fake.settle(pi, succeed=False)[0]
    fake.held.clear()
    assert fake.deliver(completed) + fake.deliver(failed, copies=2) == [200, 200, 200]
    assert outcome_of(world, failed["id"]) == "failed"
    assert books(world)["contributions"] == 0
    with world["app"].app_context():
        assert db.session.scalar(sa.select(ContributionIntent.status)
                                 .where(ContributionIntent.public_id == public_id)) == "failed"
        assert db.session.scalar(sa.select(StripePayment.status).where(StripePayment.payment_intent_id == pi)) == "failed"


def test_dispute_withdraws_then_reinstates_once(world) -> None:  # type: ignore[no-untyped-def]
    fake = world["fake"]
    event, pi, _ = pay(world, 8_000)
    dispute_created = fake.dispute(fake.charge_of(pi))[0]
    dispute_id = dispute_created["data"]["object"]["id"]
    closed, reinstated = fake.close_dispute(dispute_id, won=True)
    fake.held.clear()
    fee = card_fee_minor(8_000, "eur")
    assert fake.deliver(event) + fake.deliver(dispute_created, copies=2) == [200] * 3
    b = books(world)
    assert (b["pot"], b["fees"], b["clearing"]) == (0, fee + DISPUTE_FEE_MINOR, 8_000 - fee - 8_000 - DISPUTE_FEE_MINOR)
    assert fake.deliver(reinstated) + fake.deliver(closed) == [200, 200]
    b = books(world)
    assert (b["pot"], b["fees"], b["adjustments"]) == (8_000, fee + DISPUTE_FEE_MINOR, 2)
    assert outcome_of(world, closed["id"]) == "already_recorded"


def test_dispute_closed_before_created_and_lost(world) -> None:  # type: ignore[no-untyped-def]
    fake = world["fake"]
    event, pi, _ = pay(world, 8_000)
    created = fake.dispute(fake.charge_of(pi))[0]
    (closed,) = fake.close_dispute(created["data"]["object"]["id"], won=False)
    fake.held.clear()
    assert fake.deliver(closed) + fake.deliver(created) + fake.deliver(event) == [200] * 3
    b = books(world)
    assert (b["pot"], b["adjustments"], b["contributions"]) == (0, 1, 1)
    assert outcome_of(world, created["id"]) == "already_recorded"


def test_refund_when_the_pot_was_spent_goes_to_suspense(world) -> None:  # type: ignore[no-untyped-def]
    fake, app, cid = world["fake"], world["app"], world["circle_id"]
    event, pi, _ = pay(world, 12_000)
    assert fake.deliver(event) == [200]
    with app.app_context():  # the treasurer moved most of the pot to an award already
        from fundcircle.circles.models import Circle

        circle = db.session.get(Circle, cid)
        round_ = f.create_round(db.session, circle)
        proposal = f.create_proposal(db.session, round_, f.create_user(db.session, "a@example.org"),
                                     amount_requested_minor=10_000, budget_lines=[("All", 10_000)])
        ledger.award(db.session, round_, proposal, 10_000, now=utcnow())
        db.session.commit()
    refund = fake.refund(fake.charge_of(pi))[0]
    assert fake.deliver(refund) == [200]
    assert outcome_of(world, refund["id"]) == "needs_attention"
    b = books(world)
    assert (b["pot"], b["suspense"]) == (0, -10_000)  # suspense is a liability: what the pot owes shows as negative
    with app.app_context():
        assert ledger.verify(db.session).ok


def test_api_failure_answers_5xx_and_the_redelivery_is_processed(world) -> None:  # type: ignore[no-untyped-def]
    fake = world["fake"]
    event, _pi, _ = pay(world, 3_000)
    fake.fail_next(3, status=500)  # the first try and both client retries
    assert fake.deliver(event) == [502]
    assert books(world)["events"] == 0
    assert fake.deliver(event) == [200]
    assert books(world)["contributions"] == 1


def test_expired_checkout_closes_the_intent(world) -> None:  # type: ignore[no-untyped-def]
    fake = world["fake"]
    sid, public_id = start(world, 2_000)
    expired = fake.expire(sid)[0]
    assert fake.deliver(expired, copies=2) == [200, 200]
    assert outcome_of(world, expired["id"]) == "expired"
    with world["app"].app_context():
        assert db.session.scalar(sa.select(ContributionIntent.status)
                                 .where(ContributionIntent.public_id == public_id)) == "expired"
    assert books(world)["contributions"] == 0


def test_events_of_other_integrations_are_acknowledged_and_ignored(world) -> None:  # type: ignore[no-untyped-def]
    fake = world["fake"]
    foreign = fake.make_event("checkout.session.completed", {
        "id": "cs_other", "object": "checkout.session", "mode": "payment", "payment_status": "paid",
        "metadata": {}, "payment_intent": "pi_other"})
    unknown_type = fake.make_event("customer.created", {"id": "cus_1", "object": "customer"})
    assert fake.deliver(foreign) + fake.deliver(unknown_type) == [200, 200]
    assert outcome_of(world, foreign["id"]) == "ignored" and outcome_of(world, unknown_type["id"]) == "ignored"
    assert books(world)["contributions"] == 0


def test_webhook_storm_credits_each_payment_exactly_once(world) -> None:  # type: ignore[no-untyped-def]
    """300 events (200 card payments' completions and 100 partial refunds of the first 100 of
    them) in random order, each delivered 5 times at the same moment (the 5 copies race each
    other; 16 deliveries are in flight at any time), to the app served over loopback."""
    import random

    fake = world["fake"]
    payments = []
    for i in range(200):
        event, pi, _ = pay(world, 1_000 + i)
        payments.append((event, pi, 1_000 + i))
    refunds = []
    for _event, pi, amount in payments[:100]:
        refunds.append(fake.refund(fake.charge_of(pi), amount // 2)[0])
    fake.held.clear()
    events = [e for e, _pi, _a in payments] + refunds
    random.Random(20261121).shuffle(events)  # refunds often arrive before their payment
    deliveries = [e for e in events for _ in range(5)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda e: fake.deliver(e)[0], deliveries))
    elapsed = time.monotonic() - started
    print(f"\nstorm: {len(deliveries)} deliveries of {len(events)} events in {elapsed:.1f} s")
    assert Counter(statuses) == {200: 1_500}
    gross = sum(a for _e, _p, a in payments)
    fees = sum(card_fee_minor(a, "eur") for _e, _p, a in payments)
    refunded = sum(a // 2 for _e, _p, a in payments[:100])
    b = books(world)
    assert b["contributions"] == 200 and b["refunds"] == 100 and b["events"] == 300
    assert (b["pot"], b["fees"], b["clearing"]) == (gross - refunded, fees, gross - fees - refunded)
    with world["app"].app_context():
        assert ledger.verify(db.session).ok
        outcomes = Counter(db.session.scalars(sa.select(StripeEvent.outcome)))
        assert outcomes["credited"] + outcomes["already_credited"] == 200
        assert outcomes["refunded"] == 100
        per_payment = Counter(db.session.scalars(sa.select(LedgerTransaction.external_id)
                                                 .where(LedgerTransaction.kind == "contribution")))
        assert len(per_payment) == 200 and set(per_payment.values()) == {1}
