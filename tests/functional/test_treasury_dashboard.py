"""The treasurer's dashboard through the browser-like client: treasurer-only (403 otherwise),
second factor, every action audited, POST + CSRF; the Open Collective webhook as a hint."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from fundcircle import ledger
from fundcircle.audit.models import AuditEvent
from fundcircle.auth import second_factor as sf
from fundcircle.db import utcnow
from fundcircle.extensions import db
from fundcircle.integrations.fakes.opencollective import FAKE_TOKEN
from fundcircle.treasury import queries
from fundcircle.treasury.models import PayoutRecord, ProposedEntry
from tests.fixtures.opencollective.world import OC_SLUG, build_world
from tests.support.live_server import serve
from tests.support.opencollective import fake  # noqa: F401  (the fixture)
from tests.support.web import WebClient

SECRET_RE = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')
WEBHOOK_SECRET = "w" * 40


@pytest.fixture
def world(app: Any, fake: Any) -> dict[str, Any]:
    app.config.update(OPENCOLLECTIVE_API_URL=fake.graphql_url, OPENCOLLECTIVE_TOKEN=FAKE_TOKEN,
                      OPENCOLLECTIVE_WEBSITE_URL=fake.url, OPENCOLLECTIVE_TIMEOUT_S=5,
                      OPENCOLLECTIVE_BACKOFF_S=0.01, OPENCOLLECTIVE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    with app.app_context():
        w = build_world(db.session, [400_00, 600_00], slug="dash-circle")
        db.session.commit()
        return {"slug": w.circle.slug, "circle_id": w.circle.id, "awards": [a.id for a in w.awards],
                "treasurer": w.treasurer.email, "member": w.member.email}


def treasurer_client(app: Any, world: dict[str, Any]) -> WebClient:
    client = WebClient(app)
    client.sign_in(world["treasurer"])
    page = f"/c/{world['slug']}/treasury"
    first = client.get(page)
    assert first.status_code == 302 and "/account/second-factor" in first.location
    secret = SECRET_RE.search(client.text("/account/second-factor")).group(1).replace(" ", "")  # type: ignore[union-attr]
    passed = client.post("/account/second-factor", {"code": sf.totp(secret, utcnow()), "next": page})
    assert passed.status_code == 302
    return client


def audit_actions(app: Any, circle_id: int) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.circle_id == circle_id)
                                       .order_by(AuditEvent.id)))


def test_only_treasurers_get_in(app: Any, world: dict[str, Any]) -> None:
    page = f"/c/{world['slug']}/treasury"
    assert WebClient(app).get(page).status_code == 302  # anonymous: sign in first
    member = WebClient(app)
    member.sign_in(world["member"])
    assert member.get(page).status_code == 403
    circle_page = f"/c/{world['slug']}"
    for path in (f"{page}/awards/{world['awards'][0]}/payout", f"{page}/import/api", f"{page}/corrections"):
        response = member.post(path, {}, form_page=circle_page)
        assert response.status_code == 403, path
    outsider = WebClient(app)
    outsider.sign_in("outsider@example.org")
    assert outsider.get(page).status_code == 403


def test_without_csrf_token_nothing_happens(app: Any, world: dict[str, Any], fake: Any) -> None:
    client = treasurer_client(app, world)
    response = client.post_raw(f"/c/{world['slug']}/treasury/awards/{world['awards'][0]}/payout")
    assert response.status_code == 400
    assert fake.expense_count(OC_SLUG) == 0


def test_treasurer_pays_an_award_and_reconciles_it(app: Any, world: dict[str, Any], fake: Any) -> None:
    client = treasurer_client(app, world)
    page = f"/c/{world['slug']}/treasury"
    html = client.text(page)
    assert "Pot available" in html and html.count('data-state="awarded"') == 2
    award_a = world["awards"][0]
    created = client.post(f"{page}/awards/{award_a}/payout", {}, form_page=page)
    assert created.status_code == 303
    assert fake.expense_count(OC_SLUG) == 1
    # a second click: refused with a reason, still one expense
    again = client.post(f"{page}/awards/{award_a}/payout", {}, form_page=page)
    assert again.status_code == 409 and "already has an Open Collective expense" in again.get_data(as_text=True)
    assert fake.expense_count(OC_SLUG) == 1
    with app.app_context():
        pid = db.session.scalar(sa.select(PayoutRecord.oc_public_id))
    fake.process(pid, "APPROVE")
    assert client.post(f"{page}/awards/{award_a}/recheck", {}, form_page=page).status_code == 303
    assert 'data-state="approved"' in client.text(page)
    fake.process(pid, "PAY", {"paymentProcessorFeeInHostCurrency": 2_00})
    assert client.post(f"{page}/import/api", {}, form_page=page).status_code == 303
    html = client.text(page)
    assert 'data-state="paid_not_in_ledger"' in html and "Confirm and post" in html
    with app.app_context():
        proposals = {p.kind: p.id for p in queries.open_proposals(db.session, world["circle_id"])}
    assert set(proposals) == {"record_payout", "record_contribution", "hold_in_suspense"}
    confirmed = client.post(f"{page}/proposals/{proposals['record_payout']}/confirm", {"note": "checked the statement"},
                            form_page=page)
    assert confirmed.status_code == 303
    assert 'data-state="paid"' in client.text(page)
    # dismissing needs a reason; with one, the proposal is not made again
    no_reason = client.post(f"{page}/proposals/{proposals['hold_in_suspense']}/dismiss", {"note": ""}, form_page=page)
    assert no_reason.status_code == 422
    assert client.post(f"{page}/proposals/{proposals['hold_in_suspense']}/dismiss",
                       {"note": "that is the founders' transfer, recorded by hand"}, form_page=page).status_code == 303
    # a correction is a reversal with a reason
    with app.app_context():
        payout_tx = queries.ledger_payout_transactions(db.session, world["circle_id"])[0].transaction_id
        head = ledger.head(db.session)
    short = client.post(f"{page}/corrections", {"transaction_id": payout_tx, "reason": "x"}, form_page=page)
    assert short.status_code == 422
    fixed = client.post(f"{page}/corrections", {"transaction_id": payout_tx, "reason": "posted before OC settled"},
                        form_page=page)
    assert fixed.status_code == 303
    with app.app_context():
        assert ledger.head(db.session).seq == head.seq + 1
        assert ledger.verify(db.session).ok
    assert 'data-state="paid_not_in_ledger"' in client.text(page)  # OC paid it; the ledger no longer says so
    actions = audit_actions(app, world["circle_id"])
    expected = ["treasury.payout.create", "treasury.recheck", "treasury.import.api", "treasury.proposal.confirm",
                "treasury.proposal.dismiss", "treasury.correction"]
    assert [a for a in actions if a in expected] == expected


def test_csv_upload_reports_the_bad_line(app: Any, world: dict[str, Any], fake: Any) -> None:
    client = treasurer_client(app, world)
    page = f"/c/{world['slug']}/treasury"
    bad = "type,kind,group,currency,amount,legacyId\nDEBIT,EXPENSE,g1,EUR,-12.345,7\n"
    response = client.post(f"{page}/import/csv", {"file": (io.BytesIO(bad.encode()), "oc.csv")}, form_page=page,
                           content_type="multipart/form-data")
    assert response.status_code == 422
    assert "line 2" in response.get_data(as_text=True) and "more decimals" in response.get_data(as_text=True)
    good = fake.transactions_csv(OC_SLUG, use_field_names=True, fetch_all=True)
    ok = client.post(f"{page}/import/csv", {"file": (io.BytesIO(good.encode()), "oc.csv")}, form_page=page,
                     content_type="multipart/form-data")
    assert ok.status_code == 303
    assert "labels" in client.text(page)


def test_webhook_is_a_hint_that_triggers_a_refetch(app: Any, world: dict[str, Any], fake: Any) -> None:
    client = treasurer_client(app, world)
    page = f"/c/{world['slug']}/treasury"
    client.post(f"{page}/awards/{world['awards'][0]}/payout", {}, form_page=page)
    with app.app_context():
        payout = db.session.scalar(sa.select(PayoutRecord))
        expense_id, pid, legacy = payout.oc_expense_id, payout.oc_public_id, payout.oc_legacy_id
        head = ledger.head(db.session)
    http = app.test_client()
    lie = {"type": "collective.expense.paid", "data": {"expense": {"idV2": expense_id, "publicId": pid, "id": legacy,
                                                                   "amount": 99_999_00, "currency": "EUR"}}}
    assert http.post("/webhooks/opencollective/wrong-secret", json=lie).status_code == 404
    fetched = fake.requests_by_op.get("expense", 0)
    response = http.post(f"/webhooks/opencollective/{WEBHOOK_SECRET}", json=lie)
    assert response.status_code == 200 and response.get_json()["oc_status"] == "PENDING"  # OC's word, re-fetched
    assert fake.requests_by_op["expense"] == fetched + 1
    with app.app_context():
        assert ledger.head(db.session) == head  # nothing posted on the webhook's word
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ProposedEntry)) == 0
    assert http.post(f"/webhooks/opencollective/{WEBHOOK_SECRET}", data="not json",
                     content_type="application/json").status_code == 400
    other = http.post(f"/webhooks/opencollective/{WEBHOOK_SECRET}",
                      json={"type": "collective.expense.paid", "data": {"expense": {"publicId": "ex_someone_else"}}})
    assert other.status_code == 200 and other.get_json()["status"] == "ignored"
    assert "treasury.webhook" in audit_actions(app, world["circle_id"])


def test_webhook_disabled_without_a_secret(app: Any, world: dict[str, Any]) -> None:
    app.config["OPENCOLLECTIVE_WEBHOOK_SECRET"] = ""
    assert app.test_client().post("/webhooks/opencollective/anything", json={"type": "x"}).status_code == 404


def test_fake_oc_delivers_its_webhook_to_the_app(app: Any, world: dict[str, Any], fake: Any) -> None:
    """End to end over loopback: OC's createWebhook, then an expense activity POSTed (unsigned) to
    the app served by a real HTTP server; the app re-fetches the expense."""
    import time

    with serve(app) as base_url:
        client = treasurer_client(app, world)
        page = f"/c/{world['slug']}/treasury"
        client.post(f"{page}/awards/{world['awards'][0]}/payout", {}, form_page=page)
        from tests.fixtures.opencollective.world import client_for

        client_for(fake).create_webhook(OC_SLUG, f"{base_url}/webhooks/opencollective/{WEBHOOK_SECRET}")
        with app.app_context():
            pid = db.session.scalar(sa.select(PayoutRecord.oc_public_id))
        fake.process(pid, "APPROVE")
        for _ in range(100):
            if any(d.get("status") == 200 for d in fake.webhook_deliveries):
                break
            time.sleep(0.05)
        assert [d["status"] for d in fake.webhook_deliveries] == [200]
        with app.app_context():
            assert db.session.scalar(sa.select(PayoutRecord.oc_status)) == "APPROVED"


@pytest.mark.parametrize("expense", [{"idV2": "ab\x00c"}, {"publicId": "\x00"}])
def test_webhook_with_a_nul_in_an_id_is_ignored(app: Any, world: dict[str, Any], expense: dict[str, str]) -> None:
    response = app.test_client().post(f"/webhooks/opencollective/{WEBHOOK_SECRET}", json={
        "type": "collective.expense.paid", "data": {"expense": expense}})
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"


@pytest.mark.parametrize("legacy_id", [10**30, -(10**30), 2**63])
def test_webhook_with_an_id_beyond_the_database_range_is_ignored(app: Any, world: dict[str, Any],
                                                                  legacy_id: int) -> None:
    response = app.test_client().post(f"/webhooks/opencollective/{WEBHOOK_SECRET}", json={
        "type": "collective.expense.paid", "data": {"expense": {"id": legacy_id}}})
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"


def test_a_circle_cannot_name_another_circles_collective(app: Any, world: dict[str, Any]) -> None:
    # with one OC token for several collectives, circle B's treasurer would otherwise create
    # expenses in (and import the transactions of) circle A's collective
    from tests.fixtures.opencollective.world import OC_SLUG
    from tests.support import factories as f
    from fundcircle.treasury.models import TreasuryAccount

    with app.app_context():
        other = f.create_circle(db.session, "other-circle", facilitator_email="other-treasurer@example.org")
        db.session.commit()
    client = treasurer_client(app, {"slug": "other-circle", "treasurer": "other-treasurer@example.org"})
    page = "/c/other-circle/treasury"
    refused = client.post(f"{page}/account", {"oc_account_slug": OC_SLUG}, form_page=page)
    assert refused.status_code == 422 and "another circle" in refused.get_data(as_text=True)
    assert client.post(f"{page}/account", {"oc_account_slug": "other-collective"}, form_page=page).status_code == 303
    with app.app_context():
        assert db.session.get(TreasuryAccount, other.id).oc_account_slug == "other-collective"
        # the database refuses it too (migration 0010), for two treasurers saving at the same moment
        with pytest.raises(IntegrityError):
            db.session.execute(sa.text("UPDATE treasury_accounts SET oc_account_slug = :slug WHERE circle_id = :id"),
                               {"slug": OC_SLUG, "id": other.id})
        db.session.rollback()
