"""Issue 6, done when: in the demo, a visitor contributes through the (fake) Stripe Checkout and sees
the pot grow; a treasurer pays an award through the (fake) Open Collective and sees it reconciled; a
planted mismatch shows up with a proposed correction.

One journey in headless Chromium against the demo served as ``fundcircle up`` serves it (the app and
both fakes on loopback, webhooks over HTTP). The only setup beyond the demo is time passing: the
quick round's voting ends, so the circle has awards that nobody has paid yet."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from tests.browser.conftest import follow_sign_in_mail, screenshot
from tests.browser.live_demo import LiveDemo, live_demo  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

TREASURER = "jonas@riverside.example"
QUICK_ROUND = "Play & Culture Quick Round"


def _close_quick_round(demo: LiveDemo) -> str:
    """Voting in the quick round ends (as five days later) and it is tallied as the automatic close
    does; returns the title of its first award, which has no payout yet."""
    from fundcircle.db import begin_write, utcnow
    from fundcircle.extensions import db
    from fundcircle.rounds.models import Round
    from fundcircle.voting import operations as voting_ops

    with demo.app.app_context():
        begin_write(db.session)
        round_ = db.session.scalar(sa.select(Round).where(Round.title == QUICK_ROUND))
        now = utcnow()
        round_.voting_close_at = now - dt.timedelta(minutes=1)
        result = voting_ops.close_and_tally(db.session, round_, now)
        assert result.awards and all(a.earmarked_at is not None for a in result.awards)
        title = result.awards[0].proposal.title
        db.session.commit()
    return title


def _ledger_figure(demo: LiveDemo, account_suffix: str) -> str:
    """The ledger's balance of one of the demo circle's accounts, formatted as the pages show it."""
    from fundcircle import ledger
    from fundcircle.circles.models import Circle
    from fundcircle.demo import DEMO_SLUG
    from fundcircle.extensions import db
    from fundcircle.ledger.money import format_amount

    with demo.app.app_context():
        circle = db.session.scalar(sa.select(Circle).where(Circle.slug == DEMO_SLUG))
        balance = ledger.balance(db.session, f"{circle.id}:{account_suffix}")
        return f"{format_amount(balance.amount_minor, balance.currency)} {balance.currency}"


def _minor(figure: str) -> int:
    """'2,440.00 EUR' -> 244000 (the demo's currency has two decimals)."""
    number = figure.split()[0].replace(",", "")
    major, _, minor = number.partition(".")
    return int(major) * 100 + int(minor or 0)


def _pot_on_circle_page(page) -> str:  # type: ignore[no-untyped-def]
    figure = page.locator("section[aria-labelledby='money-h'] dl div").filter(
        has=page.locator("dt", has_text="In the pot, not yet awarded")).locator("dd")
    expect(figure).to_have_count(1)
    return figure.inner_text().strip()


def test_contribute_then_pay_an_award_and_see_it_reconciled(live_demo: LiveDemo, browser_page) -> None:  # type: ignore[no-untyped-def]
    demo, page = live_demo, browser_page
    from fundcircle.auth.second_factor import totp
    from fundcircle.contributions.demo import demo_totp_secret
    from fundcircle.integrations.fakes.stripe import card_fee_minor

    unpaid_title = _close_quick_round(demo)

    # -- a visitor contributes and sees the pot grow ----------------------------------------------
    page.goto(demo.url + "/c/riverside-commons")
    pot_before = _pot_on_circle_page(page)
    assert pot_before == _ledger_figure(demo, "pot:available")
    screenshot(page, "journey-treasury-01-circle-before")
    page.get_by_role("link", name="Contribute to the pot").click()
    page.get_by_label("Amount").fill("12.50")
    page.get_by_label("Your name (optional)").fill("Journey Visitor")
    page.get_by_role("button", name="Continue to secure payment").click()
    page.wait_for_url(f"{demo.fake_stripe.url}/checkout/*")
    expect(page.get_by_text("12.50 EUR").first).to_be_visible()
    screenshot(page, "journey-treasury-02-fake-checkout")
    page.get_by_role("button", name=re.compile(r"^Pay by card")).click()
    page.wait_for_url(re.compile(r"/c/riverside-commons/contribute/[^/]+/thanks"))
    # the thank-you page reloads itself until the signed webhook has arrived over HTTP
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible(timeout=20_000)
    screenshot(page, "journey-treasury-03-thanks")
    page.get_by_role("link", name="Back to Riverside Commons Fund").click()
    pot_after = _pot_on_circle_page(page)
    assert pot_after == _ledger_figure(demo, "pot:available")
    # card fees are the circle's cost, booked to the fees account: the pot grows by the full amount
    assert _minor(pot_after) - _minor(pot_before) == 12_50, (pot_before, pot_after)
    screenshot(page, "journey-treasury-04-circle-after")
    # the public ledger shows it, newest first, with Stripe's card fee as the circle's cost
    page.get_by_role("link", name="The public ledger: every transaction, with running balances").click()
    newest = page.locator("table.ledger tbody tr").first
    expect(newest).to_contain_text("Contribution by card (Stripe)")
    expect(newest).to_contain_text("Pot (not yet awarded): +12.50")
    fee_minor = card_fee_minor(12_50, "EUR")
    expect(newest).to_contain_text(f"Card fees (Stripe): +{fee_minor // 100}.{fee_minor % 100:02d}")
    expect(newest.locator("td.num").nth(2)).to_have_text(pot_after.removesuffix(" EUR"))  # pot after
    screenshot(page, "journey-treasury-04b-ledger")

    # -- the treasurer signs in (mail link from the dev outbox) and passes the second factor --------
    page.get_by_role("link", name="Sign in").click()
    follow_sign_in_mail(page, TREASURER)
    expect(page.get_by_text("You are signed in.")).to_be_visible()
    # back on the page where "Sign in" was clicked (the ledger), as a member now
    expect(page.get_by_role("heading", name="Ledger: Riverside Commons Fund")).to_be_visible()
    page.get_by_role("link", name="Riverside Commons Fund", exact=True).click()
    page.get_by_role("link", name="Treasury", exact=True).click()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    code = totp(demo_totp_secret(TREASURER), dt.datetime.now(dt.timezone.utc))
    page.get_by_label("6-digit code from your authenticator app").fill(code)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Treasury", exact=True)).to_be_visible()
    screenshot(page, "journey-treasury-05-dashboard")

    # -- the planted mismatch is there, with its proposed correction ------------------------------
    bike = page.locator("tr", has_text="Bike repair stand by the station")
    expect(bike.locator("[data-state='amount_differs']")).to_have_text("Amount or currency differs")
    expect(bike).to_contain_text("Open Collective paid 1,200.00 EUR")
    proposed = page.locator("section[aria-labelledby='proposals-h'] li.card")
    correction = proposed.filter(has_text="Reverse payout: 1,250.00 EUR")
    expect(correction).to_be_visible()
    expect(correction).to_contain_text("does not match what Open Collective paid (1,200.00 EUR)")
    expect(correction.get_by_role("button", name="Confirm and post")).to_be_visible()

    # -- the treasurer pays an award that has no payout yet ----------------------------------------
    row = page.locator("tr", has_text=unpaid_title)
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "awarded")
    row.get_by_role("button", name="Create payout").click()
    row = page.locator("tr", has_text=unpaid_title)
    expect(row.locator("[data-state]")).not_to_have_attribute("data-state", "awarded")
    screenshot(page, "journey-treasury-06-payout-created")
    expense_link = row.get_by_role("link", name=re.compile(r"ex_"))
    expense_ref = expense_link.inner_text().strip()
    expense = demo.fake_oc.find_expense(expense_ref)
    assert expense["status"] == "PENDING" and expense["account"] == "riverside-commons"
    # in Open Collective, the collective's admin approves the expense and pays it (with a fee)
    expense_link.click()
    expect(page.get_by_role("heading", name=unpaid_title, exact=False)).to_be_visible()
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("[data-status]")).to_have_text("APPROVED")
    page.get_by_label("Fee").fill("0.80")
    page.get_by_role("button", name="Pay").click()
    expect(page.locator("[data-status]")).to_have_text("PAID")
    screenshot(page, "journey-treasury-07-open-collective-paid")
    page.goto(demo.url + "/c/riverside-commons/treasury")  # back to the treasurer's bookmark

    # back in fundcircle: re-check the award, confirm the proposed ledger entry, see it reconciled
    row = page.locator("tr", has_text=unpaid_title)
    row.get_by_role("button", name="Re-check").click()
    row = page.locator("tr", has_text=unpaid_title)
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "paid_not_in_ledger")
    proposal = proposed.filter(has_text="Record payout").filter(has_text=unpaid_title)
    expect(proposal).to_contain_text("plus fee 0.80 EUR")
    proposal.get_by_role("button", name="Confirm and post").click()
    row = page.locator("tr", has_text=unpaid_title)
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "paid")
    expect(row.locator("[data-state]")).to_have_text("Paid (matched)")
    screenshot(page, "journey-treasury-08-reconciled")

    # the treasurer accepts the proposed correction of the planted mismatch: reverse the ledger's
    # payout, record what Open Collective paid, return the rest of the earmark to the pot
    pot_before_correction = _minor(_ledger_figure(demo, "pot:available"))
    for kind in ("Reverse payout", "Record payout", "Release remainder"):
        entry = proposed.filter(has_text=kind).filter(has_text="ex_").filter(
            has_text=re.compile("Bike repair stand|does not match|1,250.00 EUR awarded"))
        entry.get_by_label("Note (optional)").fill("journey: as Open Collective paid it")
        entry.get_by_role("button", name="Confirm and post").click()
        expect(proposed.filter(has_text=kind).filter(has_text="1,2")).to_have_count(0)
    bike = page.locator("tr", has_text="Bike repair stand by the station")
    expect(bike.locator("[data-state]")).to_have_attribute("data-state", "paid")
    expect(page.get_by_text("Nothing to confirm.")).to_be_visible()
    screenshot(page, "journey-treasury-09-mismatch-corrected")
    # the 50.00 EUR that Open Collective did not pay went back to the pot
    assert _minor(_ledger_figure(demo, "pot:available")) - pot_before_correction == 50_00

    from fundcircle.extensions import db
    from fundcircle.treasury import queries
    from fundcircle.treasury.models import AwardState

    with demo.app.app_context():
        status = next(s for s in queries.award_statuses(db.session, _circle_id(demo))
                      if s.proposal_title == unpaid_title)
    assert status.state is AwardState.PAID and status.oc_status == "PAID"
    assert status.oc_paid_minor == status.ledger_paid_minor == status.amount_minor
    assert demo.fake_oc.find_expense(expense_ref)["status"] == "PAID"


def _circle_id(demo: LiveDemo) -> int:
    from fundcircle.circles.models import Circle
    from fundcircle.demo import DEMO_SLUG
    from fundcircle.extensions import db

    with demo.app.app_context():
        return int(db.session.scalar(sa.select(Circle.id).where(Circle.slug == DEMO_SLUG)))
