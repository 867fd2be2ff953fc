"""Smoke test in a real browser: a visitor reads the call; an applicant signs in through the
dev outbox, drafts, submits and edits a proposal."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def open_round(app):  # type: ignore[no-untyped-def]
    from fundcircle.db import utcnow
    from fundcircle.extensions import db
    from tests.support import factories as f

    now = utcnow()
    day = dt.timedelta(days=1)
    with app.app_context():
        circle = f.create_circle(db.session, slug="riverside")
        round_ = f.create_round(db.session, circle, title="Spring micro-grants", submissions_open_at=now - day,
                                submissions_close_at=now + 10 * day, deliberation_open_at=now + 10 * day,
                                voting_open_at=now + 15 * day, voting_close_at=now + 20 * day,
                                required_fields=["budget_lines"])
        db.session.commit()
        return f"/c/riverside/r/{round_.id}"


def test_applicant_signs_in_drafts_submits_and_edits(live_server: str, browser_page, open_round: str) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    page.goto(live_server + "/")
    page.get_by_role("link", name="Spring micro-grants").click()
    assert page.get_by_role("heading", name="Spring micro-grants").is_visible()
    screenshot(page, "round-call")

    page.get_by_role("link", name="Propose a project").click()  # anonymous: sent to sign in
    page.get_by_label("E-mail address").fill("applicant@example.org")
    page.get_by_role("button", name="E-mail me a sign-in link").click()
    assert page.get_by_role("heading", name="Check your e-mail").is_visible()
    page.get_by_role("link", name="dev outbox", exact=True).click()
    page.get_by_role("link", name="Your fundcircle sign-in link").first.click()
    page.locator("a[href*='/signin/link/']").first.click()
    page.get_by_role("button", name="Sign in").click()
    # Back at the proposal form after signing in.
    assert page.get_by_role("heading", name="Propose a project").is_visible()

    page.get_by_label("Title").fill("Community fridge")
    page.get_by_label("Summary").fill("A shared fridge at the corner shop for surplus food.")
    page.get_by_label("Description").fill("We will install a fridge and keep it clean. " * 5)
    page.get_by_label("Amount requested").fill("800")
    page.get_by_label("Item 1", exact=True).fill("Fridge")
    page.get_by_label("Amount for item 1", exact=True).fill("650")
    page.get_by_role("button", name="Save draft").click()
    assert page.get_by_text("Draft saved.").is_visible()
    # The unmet criterion is explained on the draft page.
    assert page.get_by_text("add up to 650.00 EUR, not the 800.00 EUR requested").is_visible()
    screenshot(page, "draft")

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Item 2", exact=True).fill("Cleaning kit and signs")
    page.get_by_label("Amount for item 2", exact=True).fill("150")
    page.get_by_role("button", name="Submit proposal").click()
    assert page.get_by_text("Your proposal is submitted.").is_visible()

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Title").fill("Community fridge on Mill Street")
    page.get_by_role("button", name="Save changes").click()
    assert page.get_by_role("heading", name="Community fridge on Mill Street").is_visible()
    assert page.get_by_text("2 versions").is_visible()
    screenshot(page, "submitted")

    page.goto(live_server + open_round)
    assert page.get_by_role("table").get_by_role("link", name="Community fridge on Mill Street").is_visible()
