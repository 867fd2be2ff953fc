"""Every public page in headless Chromium: axe-core finds no accessibility violation, the page works
by keyboard and without JavaScript, it reads on a 375px-wide phone, and a screenshot of each page
is saved under test-artifacts/ (desktop and phone)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1100, "height": 900}


def _axe_source() -> str:
    axe = pytest.importorskip("axe_playwright_python")
    return (Path(axe.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


@pytest.fixture
def public_site(app):  # type: ignore[no-untyped-def]
    """The demo circle (its autumn round tallied and partly paid) plus a circle whose round was
    tallied a day ago with a recusal, its awards earmarked."""
    from fundcircle import ledger
    from fundcircle.auth.models import User
    from fundcircle.circles.models import Circle
    from fundcircle.db import utcnow
    from fundcircle.demo import seed_demo
    from fundcircle.extensions import db
    from fundcircle.proposals.models import Proposal
    from fundcircle.rounds.models import Round
    from fundcircle.voting import operations as vote_ops
    from tests.support.factories import create_voting_round

    now = utcnow()
    day = dt.timedelta(days=1)
    with app.app_context():
        session = db.session
        demo = seed_demo(session, now)
        info = create_voting_round(
            session, slug="greens", members=4, proposals=3, budget_minor=2_000_00, max_request_minor=1_000_00,
            submissions_open_at=now - 30 * day, submissions_close_at=now - 20 * day,
            deliberation_open_at=now - 18 * day, voting_open_at=now - 10 * day, voting_close_at=now - 2 * day,
            proposals_at=now - 25 * day, now=now - 40 * day)
        circle = session.get(Circle, info["circle_id"])
        ledger.record_contribution(session, circle, gross_minor=3_000_00, manual_reference="greens-seed",
                                   now=now - 30 * day)
        a, b, c = info["proposal_ids"]
        members = [session.query(User).filter_by(email=e).one() for e in info["members"]]
        vote_ops.declare_conflict(session, member=members[3], proposal=session.get(Proposal, c), level="recuse",
                                  category="organisation", reason="I chair the group", now=now - 9 * day)
        round_ = session.get(Round, info["round_id"])
        for member, choice in zip(members, ([a, b], [b, c], [b], [a])):
            vote_ops.cast_ballot(session, round_, member, choice, now - 5 * day)
        vote_ops.close_and_tally(session, round_, now - 1 * day)
        # a consent round with a concern (a long link, unbroken) and an objection, tallied a day ago
        consent = create_voting_round(
            session, slug="consent-circle", members=3, proposals=2, rule_id="consent", budget_minor=2_000_00,
            max_request_minor=1_000_00, submissions_open_at=now - 30 * day, submissions_close_at=now - 20 * day,
            deliberation_open_at=now - 18 * day, voting_open_at=now - 10 * day, voting_close_at=now - 2 * day,
            proposals_at=now - 25 * day, now=now - 40 * day)
        c1, c2 = consent["proposal_ids"]
        consent_round = session.get(Round, consent["round_id"])
        link = "https://example.org/" + "averylongpathsegment" * 12
        for email, ballot in zip(consent["members"], (
                {c1: ("concern", f"See {link}"), c2: ("objection", "Nobody is insured for this.")},
                {c1: "consent", c2: "consent"}, {c1: "consent", c2: ("concern", "The dates may slip.")})):
            vote_ops.cast_ballot(session, consent_round, session.query(User).filter_by(email=email).one(), ballot,
                                 now - 5 * day)
        vote_ops.close_and_tally(session, consent_round, now - 1 * day)
        session.commit()
        spring = session.query(Round).filter(Round.circle_id == demo.id, Round.title.like("Spring%")).one()
        autumn = session.query(Round).filter(Round.circle_id == demo.id, Round.title.like("Autumn%")).one()
        proposal = next(p for p in spring.proposals if p.status == "submitted")
        pages = {
            "home": "/",
            "circle": f"/c/{demo.slug}",
            "round-call-open": f"/c/{demo.slug}/r/{spring.id}",
            "proposal": f"/c/{demo.slug}/r/{spring.id}/p/{proposal.id}",
            "results-pending": f"/c/{demo.slug}/r/{spring.id}/results",
            "results-demo": f"/c/{demo.slug}/r/{autumn.id}/results",
            "ledger": f"/c/{demo.slug}/ledger",
            "ledger-bad-filter": f"/c/{demo.slug}/ledger?kind=nope&from=2026-02-31",
            "circle-tallied": "/c/greens",
            "round-tallied": f"/c/greens/r/{round_.id}",
            "results": f"/c/greens/r/{round_.id}/results",
            "results-consent": f"/c/consent-circle/r/{consent_round.id}/results",
            "ledger-paid": "/c/greens/ledger?per_page=5",
            "sign-in": "/signin",
            "open-data-circle": f"/c/{demo.slug}/data",
            "open-data-round": f"/c/{demo.slug}/r/{autumn.id}/data",
            "open-data-schema": "/data/schema",
            "receipt-check": f"/c/{demo.slug}/r/{autumn.id}/receipt",
        }
        for r in session.query(Round).filter(Round.circle_id == demo.id):
            pages[f"round-{r.id}"] = f"/c/{demo.slug}/r/{r.id}"
        return pages


def _axe_violations(page) -> list[dict]:  # type: ignore[no-untyped-def]
    page.evaluate(_axe_source())
    return page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})); }")


def _check_axe(page, name: str) -> None:  # type: ignore[no-untyped-def]
    result = _axe_violations(page)
    assert result == [], f"{name}: axe-core violations:\n{json.dumps(result, indent=1)}"


def test_the_axe_check_finds_violations(browser_page) -> None:  # type: ignore[no-untyped-def]
    # the harness itself: a page with known problems must not pass
    browser_page.set_content("<html><body><img src='x.png'><a href='#'></a></body></html>")
    found = {v["id"] for v in _axe_violations(browser_page)}
    assert {"image-alt", "link-name", "html-has-lang"} <= found


def test_every_public_page_passes_axe_on_desktop_and_phone(live_server: str, browser_page, public_site) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    for name, path in public_site.items():
        for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(viewport)
            response = page.goto(live_server + path)
            assert response is not None and response.status < 500, (name, response and response.status)
            assert response.status == (400 if name == "ledger-bad-filter" else 200), (name, response.status)
            _check_axe(page, f"{name} ({label})")
            if label == "phone":
                # readable on a phone: nothing forces the page itself to scroll sideways
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"], f"{name}: page is {width}px wide on a 375px phone"
                # the ledger's rows stack into labelled cards there instead of scrolling sideways
                for table in page.locator("table.stack-on-phone").all():
                    inner, outer = table.evaluate("t => [t.scrollWidth, t.parentElement.clientWidth]")
                    assert inner <= outer, f"{name}: the ledger table is {inner}px wide in a {outer}px column"
            screenshot(page, f"public-{name}-{label}")


def test_results_page_shows_the_tally_and_works_by_keyboard(live_server: str, browser_page, public_site) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    page.goto(live_server + public_site["results"])
    assert page.get_by_role("heading", name="Funded (2)").is_visible()
    assert page.get_by_role("img", name="Approvals per proposal").is_visible()
    assert page.get_by_text("Awarded", exact=True).first.is_visible()
    assert page.get_by_text("works for or governs the applicant organisation (1)").is_visible()
    # the skip link is the first stop, and it moves focus past the navigation
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    # the step-by-step explanations open from the keyboard
    details = page.locator("details.why").first
    details.locator("summary").focus()
    page.keyboard.press("Enter")
    assert details.evaluate("d => d.open") is True
    assert details.locator("li").first.is_visible()


def test_ledger_filters_work_by_keyboard_and_without_javascript(live_server: str, app, public_site) -> None:  # type: ignore[no-untyped-def]
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport=PHONE, java_script_enabled=False)
        page = context.new_page()
        try:
            page.goto(live_server + public_site["ledger"])
            page.get_by_label("Kind").focus()
            page.keyboard.press("ArrowDown")  # "All kinds" -> "Contribution"
            page.keyboard.press("Tab")  # on to the "From" date field
            assert page.evaluate("document.activeElement.id") == "f-from"
            page.keyboard.press("Enter")  # implicit submission of the GET form
            page.wait_for_url("**kind=contribution**")
            kinds = page.locator("table.ledger tbody td strong").all_inner_texts()
            assert kinds and set(kinds) == {"Contribution"}
            screenshot(page, "public-ledger-filtered-phone-nojs")
            page.get_by_role("link", name="Clear filters").click()
            assert "kind=" not in page.url
        finally:
            context.close()
            browser.close()
