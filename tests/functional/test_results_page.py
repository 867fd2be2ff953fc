"""The public results page of a round: hidden until the tally, then funded/not funded with amounts,
scores, a why per proposal, the chart, turnout, budget, the anonymised recusal log and how to re-run."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from freezegun import freeze_time
from sqlalchemy.orm import lazyload

from fundcircle.auth.models import User
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Round
from fundcircle.voting import operations as vote_ops
from tests.support.factories import DAY, VOTING_CLOSES, VOTING_OPENS, create_voting_round


def _user(session, email: str) -> User:  # type: ignore[no-untyped-def]
    return session.query(User).filter_by(email=email).one()


def _round(session, round_id: int) -> Round:  # type: ignore[no-untyped-def]
    return session.get(Round, round_id, options=[lazyload("*")])


@pytest.fixture
def approval_round(app, session):  # type: ignore[no-untyped-def]
    """4 members; proposals A 800, B 810, C 820 EUR; budget 2,000 EUR. m4 recuses from C (family)."""
    info = create_voting_round(session, slug="greens", members=4, proposals=3, budget_minor=2_000_00,
                               max_request_minor=1_000_00)
    a, b, c = info["proposal_ids"]
    m1, m2, m3, m4 = (_user(session, e) for e in info["members"])
    vote_ops.declare_conflict(session, member=m4, proposal=session.get(Proposal, c), level="recuse",
                              category="family", reason="My sister runs Project C — PRIVATE-REASON",
                              now=VOTING_OPENS)
    when = VOTING_OPENS + DAY
    round_ = _round(session, info["round_id"])
    vote_ops.cast_ballot(session, round_, m1, [a, b], when)
    vote_ops.cast_ballot(session, round_, m2, [b, c], when)
    vote_ops.cast_ballot(session, round_, m3, [b], when)
    session.commit()
    return info


def _close(session, round_id: int) -> None:  # type: ignore[no-untyped-def]
    vote_ops.close_and_tally(session, _round(session, round_id), VOTING_CLOSES + dt.timedelta(minutes=1))
    session.commit()


def _plain(html: str) -> str:
    html = re.sub(r"<svg.*?</svg>", "", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&amp;", "&").replace("&#39;", "'")


def test_before_the_tally_the_page_says_when_voting_closes_and_shows_no_running_result(
        client, session, approval_round) -> None:  # type: ignore[no-untyped-def]
    url = f"/c/greens/r/{approval_round['round_id']}/results"
    with freeze_time(VOTING_OPENS - DAY):
        text = _plain(client.text(url))
        assert "Voting opens" in text and "The result is published here after voting closes" in text
    with freeze_time(VOTING_OPENS + 2 * DAY):
        response = client.get(url)
        assert response.status_code == 200
        text = _plain(response.get_data(as_text=True))
        assert "Voting is open until 28 Mar 2027, 12:00 UTC" in text
        # nothing that leaks the running count: no scores, no funded list, no chart
        assert "Approvals" not in text and "Funded (" not in text and "<svg" not in response.get_data(as_text=True)
        assert "Project B" not in text


def test_tallied_round_shows_funded_scores_why_chart_turnout_budget_recusals_and_rerun(
        client, session, approval_round) -> None:  # type: ignore[no-untyped-def]
    round_id = approval_round["round_id"]
    _close(session, round_id)
    a, b, c = approval_round["proposal_ids"]
    with freeze_time(VOTING_CLOSES + DAY):
        response = client.get(f"/c/greens/r/{round_id}/results")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    text = _plain(html)
    # B (3 approvals) first, then A (1 approval, ties C on votes but costs less), C no longer fits
    funded = text[text.index("Funded (2)"):text.index("Not funded (1)")]
    assert funded.index("Project B") < funded.index("Project A")
    assert "810.00 EUR" in funded and "800.00 EUR" in funded
    assert "Funded: 3 voters approved it; it costs 810.00, leaving 1,190.00." in funded
    not_funded = text[text.index("Not funded (1)"):text.index("Approvals per proposal")]
    assert "Project C" in not_funded and "820.00 EUR" in not_funded
    assert "Not funded: 1 voter approved it, but it needed 820.00 and only 390.00 was left." in not_funded
    # budget and turnout
    assert "Budget 2,000.00 EUR" in text and "Awarded 1,610.00 EUR" in text and "Left in the pot 390.00 EUR" in text
    assert "Turnout 60% (3 ballots from 5 members)" in text  # the facilitator is a member too
    # chart: accessible SVG, with the same data in a table
    svg = re.search(r"<svg[^>]*>.*?</svg>", html, flags=re.S).group(0)  # type: ignore[union-attr]
    assert 'role="img"' in svg and 'aria-labelledby="scores-chart-title scores-chart-desc"' in svg
    assert "<title id=\"scores-chart-title\">Approvals per proposal</title>" in svg
    assert svg.count("<rect x=") == 3
    assert "Approvals per proposal (the chart's data)" in text
    # the anonymised recusal log: count and category, never the member or the reason text
    assert "Project C 1 close personal relationship (1)" in text
    assert "PRIVATE-REASON" not in html and "m4@greens.example" not in html and "M4" not in text
    # re-run facts
    assert "approval-greedy" in text
    assert re.search(r"Ballot digest \(SHA-256 of the counted ballots\) [0-9a-f]{64}", text)
    assert f"fundcircle/v1|round={round_id}|ballots=" in text
    assert f"fundcircle simulate round-{round_id}.pb --rule approval-greedy" in text
    # the why, step by step, for each proposal
    assert html.count('<details class="why">') == 3


def test_results_are_linked_from_the_round_and_circle_pages(client, session, approval_round) -> None:  # type: ignore[no-untyped-def]
    round_id = approval_round["round_id"]
    link = f'href="/c/greens/r/{round_id}/results"'
    _close(session, round_id)
    with freeze_time(VOTING_CLOSES + DAY):
        round_html = client.text(f"/c/greens/r/{round_id}")
        circle_html = client.text("/c/greens")
    assert link in round_html and "See the results and why" in round_html
    assert "2 proposals funded for 1,610.00 EUR; 3 of 5 members voted (60%)." in _plain(round_html)
    assert link in circle_html
    assert "2 funded, 1,610.00 EUR; turnout 60% (3 of 5)" in _plain(circle_html)


def test_results_of_a_quadratic_round(client, session) -> None:  # type: ignore[no-untyped-def]
    info = create_voting_round(session, slug="quad", members=3, proposals=3, rule_id="quadratic",
                               rule_params={"credits": 25}, budget_minor=1_700_00,
                               max_request_minor=1_000_00)
    a, b, c = info["proposal_ids"]
    m1, m2, m3 = (_user(session, e) for e in info["members"])
    round_ = _round(session, info["round_id"])
    vote_ops.cast_ballot(session, round_, m1, {a: 4, b: 3}, VOTING_OPENS + DAY)
    vote_ops.cast_ballot(session, round_, m2, {c: 5}, VOTING_OPENS + DAY)
    vote_ops.cast_ballot(session, round_, m3, {b: 2}, VOTING_OPENS + DAY)
    session.commit()
    _close(session, info["round_id"])
    with freeze_time(VOTING_CLOSES + DAY):
        text = _plain(client.text(f"/c/quad/r/{info['round_id']}/results"))
    # votes: B 5 (two members), C 5 (one member), A 4: B and C tie on votes; B is cheaper
    assert "Votes per proposal" in text
    funded = text[text.index("Funded (2)"):text.index("Not funded (1)")]
    assert funded.index("Project B") < funded.index("Project C")
    assert "Funded: ranked #1 with 5 votes from 2 members" in funded
    assert "Not funded: ranked #3 with 4 votes from 1 member" in text
    assert "credits=25" in text


def test_consent_round_lists_each_concern_and_objection_reason_under_its_proposal(client, session) -> None:  # type: ignore[no-untyped-def]
    info = create_voting_round(session, slug="consent", members=4, proposals=3, rule_id="consent",
                               budget_minor=3_000_00, max_request_minor=1_000_00)
    a, b, c = info["proposal_ids"]
    m1, m2, m3, m4 = (_user(session, e) for e in info["members"])
    round_ = _round(session, info["round_id"])
    high = "Budget looks <b>high</b> & vague"
    for member, ballot in (
            (m1, {a: ("concern", high), b: ("objection", "No insurance for the volunteers"), c: "consent"}),
            (m2, {a: ("concern", high), b: "consent", c: "consent"}),  # the same words, given twice
            (m3, {a: "consent", b: "consent", c: ("concern", "Opening hours unclear")}),
            (m4, {a: "consent", b: "consent", c: "consent"})):
        vote_ops.cast_ballot(session, round_, member, ballot, VOTING_OPENS + DAY)
    session.commit()
    _close(session, info["round_id"])
    with freeze_time(VOTING_CLOSES + DAY):
        html = client.text(f"/c/consent/r/{info['round_id']}/results")

    def under(proposal_id: int, title: str) -> list[str]:
        found = re.search(rf'<h3 id="reasons-{proposal_id}">{title}</h3>\s*<ul class="stated-reasons">(.*?)</ul>',
                          html, flags=re.S)
        assert found, f"no reasons listed under {title}"
        return [unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", item))).strip()
                for item in re.findall(r"<li>(.*?)</li>", found.group(1), flags=re.S)]

    assert "Concerns and objections" in _plain(html)
    assert under(a, "Project A") == ["Concern: " + high] * 2
    assert under(b, "Project B") == ["Objection (not resolved): No insurance for the volunteers"]
    assert under(c, "Project C") == ["Concern: Opening hours unclear"]
    # the reason is text, never markup; and no one is named
    assert "<b>high</b>" not in html and "Budget looks &lt;b&gt;high&lt;/b&gt; &amp; vague" in html
    for email in info["members"]:
        assert email not in html and email.split("@")[0].title() not in html


def test_unknown_round_and_unpublished_round_are_404(client, session, approval_round) -> None:  # type: ignore[no-untyped-def]
    from tests.support.factories import create_round

    from fundcircle.circles.models import Circle

    circle = session.query(Circle).filter_by(slug="greens").one()
    draft = create_round(session, circle, publish=False, title="Secret draft")
    session.commit()
    assert client.get("/c/greens/r/99999/results").status_code == 404
    assert client.get(f"/c/greens/r/{draft.id}/results").status_code == 404
    assert client.get(f"/c/nowhere/r/{approval_round['round_id']}/results").status_code == 404


def test_a_new_ballot_changes_the_round_pages_validators(client, session) -> None:  # type: ignore[no-untyped-def]
    # the round page shows turnout while voting is open, so a cast must not be answered with a 304
    info = create_voting_round(session, slug="turnout", members=2, proposals=2)
    session.commit()
    m1 = _user(session, info["members"][0])
    session.commit()
    with freeze_time(VOTING_OPENS + DAY):
        before = client.get(f"/c/turnout/r/{info['round_id']}")
        vote_ops.cast_ballot(session, _round(session, info["round_id"]), m1, [info["proposal_ids"][0]],
                             VOTING_OPENS + DAY)
        session.commit()
        after = client.get(f"/c/turnout/r/{info['round_id']}", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
