"""A visitor contributes in a real browser (Debian's Chromium): the form's redirect to the
(fake) Stripe Checkout passes the page's CSP, the visitor pays there, the signed webhook reaches
the app, and the thank-you page notices by itself; the pot shows the contribution."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fundcircle import ledger
from fundcircle.db import utcnow
from fundcircle.extensions import db
from tests.support import factories as f
from tests.support.stripe_fake import stripe_world

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("FUNDCIRCLE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def test_visitor_contributes_through_the_fake_checkout(app) -> None:  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with app.app_context():
        circle = f.create_circle(db.session, slug="pot-circle")
        ledger.ensure_circle_accounts(db.session, circle, now=utcnow())
        db.session.commit()
        circle_id = circle.id
    with stripe_world(app) as (fake, base_url), sync_api.sync_playwright() as pw:
        fake.auto_deliver = True  # as under `fundcircle up`: the event follows the payment on its own
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        csp_violations: list[str] = []
        page.on("console", lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
        try:
            page.goto(f"{base_url}/c/pot-circle")
            page.get_by_role("link", name="Contribute to the pot").click()
            page.get_by_label("Amount").fill("12.50")
            page.get_by_label("Your name (optional)").fill("Bea")
            page.get_by_role("button", name="Continue to secure payment").click()
            page.wait_for_url(f"{fake.url}/checkout/*")
            assert "12.50 EUR" in page.content()
            page.get_by_role("button", name="Pay by card (test card 4242…, settles at once)").click()
            page.wait_for_url(f"{base_url}/c/pot-circle/contribute/*/thanks*")
            page.get_by_role("heading", name="Thank you!").wait_for()
            page.goto(f"{base_url}/c/pot-circle/contribute")
            assert page.get_by_role("cell", name="Bea").count() == 1
        finally:
            browser.close()
    assert csp_violations == []
    with app.app_context():
        assert ledger.balance(db.session, f"{circle_id}:pot:available").amount_minor == 1_250
