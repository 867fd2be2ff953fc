"""The ballot page in a real browser: the quadratic-credit counter updates live under the CSP (the
script comes from 'self', no inline handlers), and a ranking is made with the keyboard alone."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.browser.conftest import follow_sign_in_mail, screenshot

pytestmark = pytest.mark.browser


def _voting_round(app, rule_id: str, params: dict, slug: str = "vote-circle") -> dict:  # type: ignore[no-untyped-def,type-arg]
    from fundcircle.db import utcnow
    from fundcircle.extensions import db
    from tests.support import factories as f

    now = utcnow()
    day = dt.timedelta(days=1)
    with app.app_context():
        world = f.create_voting_round(
            db.session, slug=slug, rule_id=rule_id, rule_params=params, proposals_at=now - 15 * day,
            submissions_open_at=now - 20 * day, submissions_close_at=now - 10 * day,
            deliberation_open_at=now - 9 * day, voting_open_at=now - day, voting_close_at=now + 6 * day)
        db.session.commit()
    return world


def _sign_in(page, base: str, email: str, next_path: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + next_path)  # anonymous: sent to sign in, and back afterwards
    follow_sign_in_mail(page, email)


def test_quadratic_counter_updates_live(app, live_server: str, browser_page) -> None:  # type: ignore[no-untyped-def]
    world = _voting_round(app, "quadratic", {"credits": "100"})
    page = browser_page
    csp_errors: list[str] = []
    page.on("console", lambda msg: csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    path = f"/c/{world['slug']}/r/{world['round_id']}/ballot"
    _sign_in(page, live_server, world["members"][0], path)
    assert page.get_by_role("heading", name="Your ballot").is_visible()
    counter = page.locator("#ballot-counter")
    assert "0 of 100 credits used" in counter.inner_text()

    page.get_by_label("Votes for “Project A”").fill("6")
    page.get_by_label("Votes for “Project B”").fill("7")
    assert "85 of 100 credits used" in counter.inner_text()  # 36 + 49, before anything is sent
    assert "15 left" in counter.inner_text()
    page.get_by_label("Votes for “Project C”").fill("4")
    assert "101 of 100 credits used" in counter.inner_text() and "over your limit" in counter.inner_text()
    screenshot(page, "ballot-quadratic-over")

    # the server decides: the over-budget ballot comes back with the message and the values kept
    page.get_by_role("button", name="Cast my ballot").click()
    page.get_by_text("Your votes cost 101 credits but you have 100").first.wait_for()
    assert page.get_by_label("Votes for “Project C”").input_value() == "4"
    page.get_by_label("Votes for “Project C”").fill("3")
    assert "94 of 100 credits used" in counter.inner_text()
    page.get_by_role("button", name="Cast my ballot").click()
    page.get_by_role("heading", name="Your ballot is recorded").wait_for()
    assert csp_errors == []


def test_ranking_by_keyboard_alone(app, live_server: str, browser_page) -> None:  # type: ignore[no-untyped-def]
    world = _voting_round(app, "borda", {})
    page = browser_page
    path = f"/c/{world['slug']}/r/{world['round_id']}/ballot"
    _sign_in(page, live_server, world["members"][1], path)
    # no dragging: each proposal has a place select, reached with Tab and set with the arrow keys
    page.get_by_label("Place for “Project C”").focus()
    page.keyboard.press("ArrowDown")  # "Not ranked" -> 1
    page.get_by_label("Place for “Project A”").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # -> 2
    assert page.get_by_label("Place for “Project C”").input_value() == "1"
    assert page.get_by_label("Place for “Project A”").input_value() == "2"
    page.get_by_role("button", name="Cast my ballot").focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Your ballot is recorded").wait_for()
    screenshot(page, "ballot-ranking-receipt")


def test_consent_ballot_by_labels_and_the_round_panel(app, live_server: str, browser_page) -> None:  # type: ignore[no-untyped-def]
    world = _voting_round(app, "consent", {"quorum": "1/2"})
    page = browser_page
    round_path = f"/c/{world['slug']}/r/{world['round_id']}"
    _sign_in(page, live_server, world["members"][2], round_path + "/ballot")
    page.goto(live_server + round_path)
    page.get_by_role("link", name="Vote now").click()
    group = page.get_by_role("group", name="“Project A”")
    group.get_by_label("Concern: I can live with it, but want this noted").check()
    page.get_by_role("button", name="Cast my ballot").click()
    # the reason is required: the message sits next to the reason box, which keeps the choice made
    page.get_by_text("A concern needs a reason.").first.wait_for()
    assert group.get_by_label("Concern: I can live with it, but want this noted").is_checked()
    group.get_by_label("Reason for your concern or objection to “Project A”").fill("Please share the budget.")
    page.get_by_role("group", name="“Project B”").get_by_label("Consent: I can live with it").check()
    screenshot(page, "ballot-consent")
    page.get_by_role("button", name="Cast my ballot").click()
    page.get_by_role("heading", name="Your ballot is recorded").wait_for()
    page.get_by_role("link", name="Back to the round").click()
    panel = page.get_by_role("region", name="Voting")
    assert "You cast your ballot on" in panel.inner_text() and "Results stay hidden" in panel.inner_text()
    screenshot(page, "round-voting-panel")
