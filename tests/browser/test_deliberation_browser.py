"""Deliberation in a real browser, on the demo circle: the public reads a thread (hidden comment
replaced by its reason); a member signs in, asks the applicant a question, replies, and declares
a conflict of interest, all without JavaScript."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture
def demo_pages(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from fundcircle.db import utcnow
    from fundcircle.demo import seed_demo
    from fundcircle.extensions import db
    from fundcircle.proposals.models import Proposal

    with app.app_context():
        seed_demo(db.session, utcnow())
        db.session.commit()
        pages = {}
        for key, title in (("warm", "Warm Wednesdays at the community hall"), ("laptops", "Homework club laptops")):
            p = db.session.scalar(sa.select(Proposal).where(Proposal.title == title))
            pages[key] = f"/c/{p.round.circle.slug}/r/{p.round_id}/p/{p.id}"
        return pages


def test_member_questions_replies_and_declares(live_server: str, browser_page, demo_pages: dict) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    page.goto(live_server + demo_pages["laptops"])
    assert page.get_by_text("Hidden by a facilitator: It gave a private home address.").is_visible()
    assert page.get_by_text("Mühlenstraße 14").count() == 0
    assert page.get_by_text("awaiting answer").first.is_visible()

    page.goto(live_server + "/signin?next=" + demo_pages["warm"])
    page.get_by_label("E-mail address").fill("mei@riverside.example")
    page.get_by_role("button", name="E-mail me a sign-in link").click()
    page.get_by_role("link", name="dev outbox", exact=True).click()
    page.get_by_role("link", name="Your fundcircle sign-in link").first.click()
    page.locator("a[href*='/signin/link/']").first.click()
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Questions and discussion")).to_be_visible()

    page.get_by_label("Your comment").fill("Could children come after school too?")
    page.get_by_label("a question to the applicant").check()
    page.get_by_role("button", name="Post").click()
    expect(page.get_by_text("Your question is posted; the applicant is notified.")).to_be_visible()
    question = page.locator("li.comment", has_text="Could children come after school too?")
    expect(question.get_by_text("awaiting answer")).to_be_visible()

    page.get_by_role("link", name="Reply to Oliver Brandt").first.click()
    page.get_by_label("Your comment").fill("That sounds workable, thank you.")
    page.get_by_role("button", name="Post").click()
    expect(page.get_by_text("Your comment is posted.")).to_be_visible()
    expect(page.locator("li.comment", has_text="That sounds workable, thank you.").last).to_be_visible()
    screenshot(page, "deliberation-thread")

    page.get_by_label("A close personal relationship with the applicant").check()
    page.get_by_label("Disclose only", exact=False).check()
    page.get_by_role("button", name="Declare conflict").click()
    expect(page.get_by_text("Your conflict of interest is recorded and published without your name.")).to_be_visible()
    expect(page.get_by_text("2 members have declared a conflict of interest with this proposal.")).to_be_visible()
    screenshot(page, "deliberation-conflicts")
