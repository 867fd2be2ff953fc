"""The public contribution pages: validation, idempotent Checkout creation, and the whole journey
through the fake Stripe Checkout page and its signed webhook back to the pot."""

from __future__ import annotations

import re

import pytest
import requests
import sqlalchemy as sa

from fundcircle import ledger
from fundcircle.contributions.models import ContributionIntent
from fundcircle.db import utcnow
from fundcircle.extensions import db
from fundcircle.integrations.fakes.stripe import card_fee_minor
from tests.support import factories as f
from tests.support.locks import take_sqlite_write_lock_at_once
from tests.support.stripe_fake import stripe_world
from tests.support.web import WebClient, csrf_from

INTENT_RE = re.compile(r'id="intent" name="intent" type="hidden" value="([^"]+)"|name="intent" type="hidden" value="([^"]+)"')


@pytest.fixture
def world(app):  # type: ignore[no-untyped-def]
    with app.app_context():
        circle = f.create_circle(db.session, slug="pot-circle")
        ledger.ensure_circle_accounts(db.session, circle, now=utcnow())
        db.session.commit()
        circle_id = circle.id
    with stripe_world(app) as (fake, base_url):
        app.config["BASE_URL"] = base_url
        yield {"app": app, "fake": fake, "base_url": base_url, "circle_id": circle_id, "client": WebClient(app)}


def form_of(client: WebClient) -> dict[str, str]:
    page = client.text("/c/pot-circle/contribute")
    match = INTENT_RE.search(page)
    assert match, page[:2000]
    return {"csrf_token": csrf_from(page), "intent": match.group(1) or match.group(2)}


def submit(client: WebClient, base: dict[str, str], **fields: str):  # type: ignore[no-untyped-def]
    return client.http.post("/c/pot-circle/contribute", data={**base, **fields})


def intents(app) -> list[ContributionIntent]:  # type: ignore[no-untyped-def]
    with app.app_context():
        return list(db.session.scalars(sa.select(ContributionIntent)))


def test_form_allows_posting_on_to_the_checkout_origin(world) -> None:  # type: ignore[no-untyped-def]
    response = world["client"].get("/c/pot-circle/contribute")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert f"form-action 'self' {world['fake'].url}" in csp
    html = response.get_data(as_text=True)
    assert 'for="amount"' in html and "No card contributions yet" in html
    assert "Contribute to the pot" in world["client"].text("/c/pot-circle")


@pytest.mark.parametrize(("fields", "message"), [
    ({"amount": ""}, "Enter an amount"),
    ({"amount": "abc"}, "Enter a number"),
    ({"amount": "0"}, "between 1.00 and 10,000.00"),
    ({"amount": "0.50"}, "between 1.00 and 10,000.00"),
    ({"amount": "-5"}, "Must not be negative"),
    ({"amount": "10000.01"}, "between 1.00 and 10,000.00"),
    ({"amount": "12.3456"}, "at most 2 decimal places"),
    ({"amount": "12.345"}, "between 1.00 and 10,000.00"),  # 12,345 EUR: a lone group of three is thousands
    ({"amount": "99999999999999"}, "too large"),
    ({"amount": "1e5"}, "Enter a number"),
    ({"amount": "25", "donor_name": "x" * 121}, "longer than 120 characters"),
    ({"amount": "25", "message": "x" * 501}, "longer than 500 characters"),
    ({"amount": "25", "donor_name": "Ada\x00"}, "control characters"),
    ({"amount": "25", "intent": "short"}, "Please correct"),
])
def test_invalid_input_is_a_form_error_and_calls_nobody(world, fields, message) -> None:  # type: ignore[no-untyped-def]
    client, fake = world["client"], world["fake"]
    response = submit(client, form_of(client), **fields)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert fake.requests_log == [] and intents(world["app"]) == []


def test_double_submit_creates_one_checkout_session(world) -> None:  # type: ignore[no-untyped-def]
    client, fake = world["client"], world["fake"]
    base = form_of(client)
    first = submit(client, base, amount="25", donor_name="Ada", message="For the tool library")
    second = submit(client, base, amount="25", donor_name="Ada", message="For the tool library")
    assert first.status_code == second.status_code == 303
    assert first.location == second.location and first.location.startswith(f"{fake.url}/checkout/cs_test_")
    assert len(intents(world["app"])) == 1
    sessions = [o for o in fake.objects.values() if o["object"] == "checkout.session"]
    assert len(sessions) == 1 and sessions[0]["amount_total"] == 2_500 and sessions[0]["currency"] == "eur"
    assert sessions[0]["metadata"] == {"fundcircle_circle_id": str(world["circle_id"]),
                                       "fundcircle_intent": base["intent"]}
    # a different form (fresh intent id) is a second contribution
    assert submit(client, form_of(client), amount="25").location != first.location
    assert len(intents(world["app"])) == 2


def test_same_intent_with_other_details_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    client = world["client"]
    base = form_of(client)
    assert submit(client, base, amount="25").status_code == 303
    changed = submit(client, base, amount="30")
    assert changed.status_code == 409 and "already sent with other details" in changed.get_data(as_text=True)
    assert INTENT_RE.search(changed.get_data(as_text=True)).group(1) != base["intent"]  # type: ignore[union-attr]


def test_concurrent_double_submit_is_one_session(world) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    client, fake = world["client"], world["fake"]
    base = form_of(client)
    cookies = {c.key: c.value for c in client.http._cookies.values()}  # type: ignore[attr-defined]
    url = f"{world['base_url']}/c/pot-circle/contribute"

    def post(_: int) -> requests.Response:
        return requests.post(url, data={**base, "amount": "40"}, cookies=cookies, allow_redirects=False, timeout=30)

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(post, range(4)))
    assert {r.status_code for r in responses} == {303}
    assert len({r.headers["Location"] for r in responses}) == 1
    assert len([o for o in fake.objects.values() if o["object"] == "checkout.session"]) == 1
    assert len(intents(world["app"])) == 1


def test_contribution_journey_through_the_fake_checkout(world) -> None:  # type: ignore[no-untyped-def]
    client, fake, cid = world["client"], world["fake"], world["circle_id"]
    to_checkout = submit(client, form_of(client), amount="42.50", donor_name="Grace", message="Good luck!")
    assert to_checkout.status_code == 303
    page = requests.get(to_checkout.location, timeout=10)
    assert page.status_code == 200 and "42.50 EUR" in page.text
    paid = requests.post(to_checkout.location, data={"action": "card"}, allow_redirects=False, timeout=10)
    assert paid.status_code == 303
    thanks_path = paid.headers["Location"].removeprefix(world["base_url"])
    waiting = client.text(thanks_path)
    assert "confirming your payment" in waiting and "check=1" in waiting  # re-checks itself (script with the nonce)
    assert fake.deliver_held() == [200]
    done = client.text(thanks_path + "?check=3")
    assert "Thank you!" in done and "<script" not in done.split("</footer>")[-1]
    listing = client.text("/c/pot-circle/contribute")
    assert "Grace" in listing and "Good luck!" in listing and "42.50" in listing
    with world["app"].app_context():
        assert ledger.balance(db.session, f"{cid}:pot:available").amount_minor == 4_250
        assert ledger.balance(db.session, f"{cid}:fees:stripe").amount_minor == card_fee_minor(4_250, "eur")


def test_anonymous_contribution_hides_name_and_message(world) -> None:  # type: ignore[no-untyped-def]
    client, fake = world["client"], world["fake"]
    to_checkout = submit(client, form_of(client), amount="10", donor_name="Secret Sam", message="psst",
                         is_anonymous="y")
    requests.post(to_checkout.location, data={"action": "card"}, allow_redirects=False, timeout=10)
    assert fake.deliver_held() == [200]
    listing = client.text("/c/pot-circle/contribute")
    assert "Anonymous" in listing and "Secret Sam" not in listing and "psst" not in listing


def test_cancel_returns_to_a_cancel_page(world) -> None:  # type: ignore[no-untyped-def]
    client = world["client"]
    to_checkout = submit(client, form_of(client), amount="10")
    cancelled = requests.post(to_checkout.location, data={"action": "cancel"}, allow_redirects=False, timeout=10)
    assert cancelled.status_code == 303
    page = client.get(cancelled.headers["Location"].removeprefix(world["base_url"]))
    assert page.status_code == 200 and "Nothing was charged" in page.get_data(as_text=True)


def test_unknown_circle_or_contribution_is_404(world) -> None:  # type: ignore[no-untyped-def]
    client = world["client"]
    assert client.get("/c/nope/contribute").status_code == 404
    assert client.get("/c/pot-circle/contribute/" + "x" * 32 + "/thanks").status_code == 404
    for page in ("thanks", "cancelled"):  # a NUL reached PostgreSQL's driver: a 500
        assert client.get(f"/c/pot-circle/contribute/%00{'x' * 32}/{page}").status_code == 404


def test_stripe_failure_is_a_502_with_a_fresh_form(world) -> None:  # type: ignore[no-untyped-def]
    client, fake = world["client"], world["fake"]
    base = form_of(client)
    fake.fail_next(1, status=500)  # Stripe stores this 500 under the key; the client's retries get it again
    failed = submit(client, base, amount="25")
    assert failed.status_code == 502
    html = failed.get_data(as_text=True)
    assert "Nothing was charged" in html
    # local row first: the intent was committed before Stripe was called, and stays "created"
    # (no Checkout Session) when Stripe fails
    with world["app"].app_context():
        recorded = db.session.execute(sa.select(ContributionIntent.status, ContributionIntent.checkout_session_id))
        assert [tuple(row) for row in recorded] == [("created", None)]
    fresh = INTENT_RE.search(html)
    fresh_id = fresh.group(1) or fresh.group(2)  # type: ignore[union-attr]
    assert fresh_id != base["intent"]
    assert submit(client, base, amount="25").status_code == 502  # the old key keeps its stored failure
    retried = submit(client, {**base, "intent": fresh_id}, amount="25")
    assert retried.status_code == 303 and retried.location.startswith(f"{fake.url}/checkout/")


def test_new_contributions_per_address_are_limited(world) -> None:  # type: ignore[no-untyped-def]
    client = world["client"]
    world["app"].config["CONTRIBUTIONS_PER_ADDRESS_PER_HOUR"] = 2
    first = form_of(client)
    assert submit(client, first, amount="5").status_code == 303
    assert submit(client, form_of(client), amount="6").status_code == 303
    third = submit(client, form_of(client), amount="7")
    assert third.status_code == 429 and "Too many contributions" in third.get_data(as_text=True)
    assert submit(client, first, amount="5").status_code == 303  # a double submit of an earlier form still works
    assert len(intents(world["app"])) == 2


@pytest.mark.parametrize(("currency", "amount", "expected"), [
    ("KWD", "12.345", "two decimals at most"), ("KWD", "12.340", None), ("JPY", "500", None),
    ("JPY", "500.5", "whole units"), ("ISK", "500", "not supported"),
])
def test_currency_rules_of_stripe(world, currency, amount, expected) -> None:  # type: ignore[no-untyped-def]
    client, fake = world["client"], world["fake"]
    with world["app"].app_context():
        f.create_circle(db.session, slug="pot-circle-2", facilitator_email="f2@example.org", currency=currency)
        db.session.commit()
    page = client.text("/c/pot-circle-2/contribute")
    match = INTENT_RE.search(page)
    base = {"csrf_token": csrf_from(page), "intent": match.group(1) or match.group(2)}  # type: ignore[union-attr]
    response = client.http.post("/c/pot-circle-2/contribute", data={**base, "amount": amount})
    if expected is None:
        assert response.status_code == 303
        session = next(o for o in fake.objects.values() if o["object"] == "checkout.session")
        assert session["currency"] == currency.lower()
        assert session["amount_total"] == {"KWD": 12_340, "JPY": 500}[currency]
    else:
        assert response.status_code == 422 and expected in response.get_data(as_text=True)


def test_without_stripe_configured_the_form_says_so(app) -> None:  # type: ignore[no-untyped-def]
    with app.app_context():
        f.create_circle(db.session, slug="pot-circle")
        db.session.commit()
    client = WebClient(app)
    assert "not available right now" in client.text("/c/pot-circle/contribute")
    response = submit(client, form_of(client), amount="25")
    assert response.status_code == 503 and "STRIPE_SECRET_KEY" in response.get_data(as_text=True)


@pytest.mark.parametrize("check", ["%C2%B2", "%D9%A3", "abc", "999", ""])
def test_thanks_page_refresh_counter_takes_any_text(world, check: str) -> None:  # type: ignore[no-untyped-def]
    # "²".isdigit() is true but int("²") raises: the counter must not be a 500
    client = world["client"]
    submit(client, form_of(client), amount="10")
    with world["app"].app_context():
        public_id = db.session.scalar(sa.select(ContributionIntent.public_id))
    page = client.get(f"/c/pot-circle/contribute/{public_id}/thanks?check={check}")
    assert page.status_code == 200


def test_no_write_is_held_open_while_stripe_answers(world) -> None:  # type: ignore[no-untyped-def]
    """While Stripe creates the session, the intent row is already committed and another
    connection can write at once (on SQLite the request would otherwise hold the only write lock,
    and every vote would wait for Stripe)."""
    app, client = world["app"], world["client"]
    from fundcircle.contributions.views import gateway

    base = form_of(client)
    with app.app_context():
        real = gateway()
    key = app.extensions["fundcircle.stripe"][0]
    seen: dict[str, object] = {}

    class Probe:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def create_checkout_session(self, **kwargs: object) -> object:
            with db.engine.connect() as conn:  # another connection, as another request would have
                seen["intent_committed"] = conn.execute(sa.select(ContributionIntent.status).where(
                    ContributionIntent.public_id == kwargs["client_reference_id"])).scalar()
            take_sqlite_write_lock_at_once(db.engine)
            seen["other_writer_went_ahead"] = True
            return real.create_checkout_session(**kwargs)

    app.extensions["fundcircle.stripe"] = (key, Probe())
    response = submit(client, base, amount="25")
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert seen == {"intent_committed": "created", "other_writer_went_ahead": True}
    with app.app_context():
        assert db.session.execute(sa.select(ContributionIntent.status)).scalars().all() == ["open"]
