"""A demo facilitator in a real browser: the first facilitator page asks for the authenticator code
(the demo publishes the secret, as for the treasurer), then brings them back to that page; the
rest of the sign-in needs no second code. Members' pages never ask."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.browser.conftest import pass_second_factor, screenshot, sign_in

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

FACILITATOR = "amara@riverside.example"
MEMBER = "lucia@riverside.example"
ROUND = "Spring 2027: Small Neighbourhood Projects"


@pytest.fixture
def demo_round(app) -> str:  # type: ignore[no-untyped-def]
    from fundcircle.db import utcnow
    from fundcircle.demo import seed_demo
    from fundcircle.extensions import db
    from fundcircle.rounds.models import Round

    with app.app_context():
        seed_demo(db.session, utcnow())
        db.session.commit()
        round_ = db.session.scalar(sa.select(Round).where(Round.title == ROUND))
        return f"/c/{round_.circle.slug}/r/{round_.id}"


def test_facilitator_passes_the_second_factor_once(live_server: str, browser_page, demo_round: str) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    sign_in(page, live_server, FACILITATOR)
    page.goto(live_server + demo_round)  # reading the round page asks nothing
    expect(page.get_by_role("heading", name=ROUND)).to_be_visible()
    page.get_by_role("link", name="Screening").click()
    screenshot(page, "facilitator-01-second-factor")
    pass_second_factor(page, FACILITATOR)
    expect(page.get_by_role("heading", name="Screening", exact=True)).to_be_visible()  # back where they were going
    assert page.url == live_server + demo_round + "/screening"
    page.goto(live_server + demo_round)
    page.get_by_role("link", name="Edit round").click()  # once per sign-in
    expect(page.get_by_role("heading", name="Edit round")).to_be_visible()


def test_members_are_not_asked(live_server: str, browser_page, demo_round: str) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    sign_in(page, live_server, MEMBER)
    for path in (demo_round, demo_round.split("/r/")[0], demo_round.split("/r/")[0] + "/members"):
        page.goto(live_server + path)
        expect(page.get_by_role("heading", name="Confirm it is you")).to_have_count(0)
        assert "/account/second-factor" not in page.url
