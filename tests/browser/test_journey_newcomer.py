"""Issue 7, done when: a newcomer, not signed in, can follow one award from the call through the vote
and the ledger to its Open Collective payout, download the round's data, and re-run the result.

In headless Chromium against the demo served as ``fundcircle up`` serves it (the app and the fake
Open Collective on loopback). Only the first address is typed; everything after is a click on a
link (and one step back in the browser's history from Open Collective). The downloaded ballots are
then re-tallied with ``fundcircle simulate``, run exactly as the results page says."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.browser.conftest import screenshot
from tests.browser.live_demo import LiveDemo, live_demo  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

ROUND = "Autumn 2026: Green Streets"
AWARD = "Street tree watering rota"


def _published(demo: LiveDemo) -> tuple[list[str], dict[str, int], str]:
    """The stored result of the autumn round: proposal ids in selection order, each award's amount
    (minor units) by title, and the tie-break seed."""
    import sqlalchemy as sa

    from fundcircle.extensions import db
    from fundcircle.rounds.models import Round
    from fundcircle.voting import operations as voting_ops

    with demo.app.app_context():
        round_ = db.session.scalar(sa.select(Round).where(Round.title == ROUND))
        result = voting_ops.stored_result(db.session, round_.id)
        assert result is not None
        awards = sorted(result.awards, key=lambda a: a.position)
        assert [str(a.proposal_id) for a in awards] == [str(p) for p in result.outcome["selected"]]
        return ([str(a.proposal_id) for a in awards], {a.proposal.title: a.amount_minor for a in awards},
                result.seed)


def _major(amount_minor: int) -> str:
    """As the pages show EUR amounts: 42000 -> '420.00'."""
    from fundcircle.ledger.money import format_amount

    return format_amount(amount_minor, "EUR")


def test_newcomer_follows_one_award_from_call_to_payout_and_reruns_the_result(  # type: ignore[no-untyped-def]
        live_demo: LiveDemo, browser_page, tmp_path: Path) -> None:
    demo, page = live_demo, browser_page
    selected_ids, amounts, seed = _published(demo)

    # the circle page: the only typed address
    page.goto(demo.url + "/c/riverside-commons")
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()  # not signed in
    screenshot(page, "journey-newcomer-01-circle")

    # the closed round's call
    page.get_by_role("link", name=ROUND, exact=True).click()
    expect(page.get_by_role("heading", name=ROUND, level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="The call")).to_be_visible()
    expect(page.get_by_text("Small projects that make our streets greener")).to_be_visible()
    screenshot(page, "journey-newcomer-02-call")

    # its proposals: one of them, which says how the vote went
    expect(page.get_by_role("heading", name=re.compile(r"^Proposals \(\d+\)$"))).to_be_visible()
    proposals = page.locator("section[aria-labelledby='props-h'] tbody tr")
    expect(proposals.filter(has_text=AWARD)).to_contain_text(f"Funded: {_major(amounts[AWARD])} EUR")
    expect(proposals.filter(has_text="Not funded")).to_have_count(proposals.count() - len(amounts))
    page.get_by_role("link", name=AWARD, exact=True).click()
    expect(page.get_by_role("heading", name=AWARD, level=1)).to_be_visible()
    expect(page.get_by_text("Requests 420.00 EUR", exact=False)).to_be_visible()
    expect(page.locator("#outcome")).to_contain_text(f"Funded The vote awarded it {_major(amounts[AWARD])} EUR.")
    screenshot(page, "journey-newcomer-03-proposal")

    # the result, and why it was funded
    page.locator("#outcome").get_by_role("link", name="See the result and why").click()
    expect(page.get_by_role("heading", name=f"Results: {ROUND}")).to_be_visible()
    funded = page.locator("section[aria-labelledby='funded-h'] tbody tr")
    shown_ids = [re.search(r"/p/(\d+)$", href).group(1)  # type: ignore[union-attr]
                 for href in funded.locator("th a").evaluate_all("links => links.map(a => a.getAttribute('href'))")]
    assert shown_ids == selected_ids  # in the order the rule selected them
    row = funded.filter(has_text=AWARD)
    expect(row).to_contain_text(f"{_major(amounts[AWARD])} EUR")
    expect(row).to_contain_text(re.compile(r"Funded: \d+ voters approved it; it costs 420\.00"))
    expect(page.get_by_text(seed, exact=True)).to_be_visible()
    screenshot(page, "journey-newcomer-04-results")

    # the award's entries on the public ledger
    page.get_by_role("link", name="this round on the public ledger").click()
    expect(page.get_by_role("heading", name="Ledger: Riverside Commons Fund")).to_be_visible()
    expect(page.locator("table.ledger caption")).to_contain_text("transactions")
    entries = page.locator("table.ledger tbody tr").filter(has=page.get_by_role("link", name=AWARD, exact=True))
    award_entry = entries.filter(has=page.locator("strong", has_text=re.compile(r"^Award$")))
    payout_entry = entries.filter(has=page.locator("strong", has_text=re.compile(r"^Payout$")))
    expect(award_entry).to_have_count(1)
    expect(award_entry).to_contain_text("Awarded to proposal")
    expect(award_entry.locator("td.num").nth(1)).to_have_text(_major(amounts[AWARD]))  # No., Amount, …
    expect(payout_entry).to_have_count(1)
    expect(payout_entry).to_contain_text("Open Collective expense ex_")
    # the payout empties the award's earmark in full (the host's fee is booked on top)
    expect(payout_entry).to_contain_text(re.compile(rf"not yet paid: -{re.escape(_major(amounts[AWARD]))}"))
    expense_id = re.search(r"Open Collective expense (ex_\w+)", payout_entry.inner_text()).group(1)  # type: ignore[union-attr]
    screenshot(page, "journey-newcomer-05-ledger")

    # its payout in Open Collective
    status = page.locator("section[aria-labelledby='awards-h'] tr").filter(
        has=page.get_by_role("link", name=AWARD, exact=True))
    expect(status).to_contain_text("Paid (matched)")
    status.get_by_role("link", name=f"Open Collective expense {expense_id}").click()
    expect(page.get_by_role("heading", name=re.compile(AWARD))).to_be_visible()
    expect(page.locator("[data-status]")).to_have_text("PAID")
    assert page.url.startswith(demo.fake_oc.url)
    screenshot(page, "journey-newcomer-06-open-collective")
    page.go_back()

    # the round's data, downloaded from its results page
    status = page.locator("section[aria-labelledby='awards-h'] tr").filter(
        has=page.get_by_role("link", name=AWARD, exact=True))
    status.get_by_role("link", name=ROUND).click()
    command = page.locator("code", has_text="fundcircle simulate").inner_text()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="ballots.pb download").click()
    download = download_info.value
    pb_file = tmp_path / download.suggested_filename
    download.save_as(pb_file)
    assert pb_file.suffix == ".pb"

    # re-run the result as the page says, on the downloaded file
    from fundcircle.cli import main

    args = shlex.split(command)
    assert args[:2] == ["fundcircle", "simulate"]
    args[2] = str(pb_file)  # the page names it round-<id>.pb
    outcome = CliRunner().invoke(main, [*args[1:], "--json"])
    assert outcome.exit_code == 0, outcome.output
    rerun = json.loads(outcome.output)
    assert rerun["selected"] == selected_ids
    assert rerun["seed"] == seed
    assert rerun["ballots"] == 8
    # and with the rule the file itself names, as the open-data page suggests
    own_rule = CliRunner().invoke(main, ["simulate", str(pb_file), "--json"])
    assert own_rule.exit_code == 0, own_rule.output
    assert json.loads(own_rule.output)["selected"] == selected_ids
