"""Every ballot kind through the HTTP flow: sign in, GET the form, POST an invalid ballot (field
errors, values kept, nothing stored), POST a valid one (receipt shown once and mailed), change it
(form pre-filled, one ballot, new receipt)."""

from __future__ import annotations

from html import unescape
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from fundcircle.extensions import db
from fundcircle.voting import operations as ops
from fundcircle.voting.base import ConsentKind, ConsentResponse
from fundcircle.voting.models import StoredBallot
from tests.support import factories as f
from tests.support.web import WebClient

DURING = f.VOTING_OPENS + f.DAY
RECEIPT_RE = re.compile(r"<code>([A-Z2-7]{4}(?:-[A-Z2-7]{4}){4})</code>")


@dataclass
class Case:
    rule_id: str
    params: dict[str, Any]
    #: sentence from the rule's plain-language explanation that the form must show
    explains: str
    #: (proposal ids) -> POST data of an invalid ballot
    invalid: Callable[[list[int]], dict[str, str]]
    #: texts the re-rendered form must show (field messages)
    invalid_messages: list[str]
    #: (proposal ids) -> substrings that prove the entered values were kept
    kept: Callable[[list[int]], list[str]]
    valid: Callable[[list[int]], dict[str, str]]
    #: (proposal ids) -> the stored rule-side value
    stored: Callable[[list[int]], Any]
    #: a different valid ballot, for the change
    changed: Callable[[list[int]], dict[str, str]]
    #: rows of "your ballot as recorded" on the receipt of the valid ballot
    receipt_rows: list[tuple[str, str]]


CASES = [
    Case("approval-greedy", {"max_ballot_cost": "165000", "max_approvals": "2"},
         "may cost at most 1,650.00 EUR together",
         invalid=lambda p: {f"p{p[0]}": "y", f"p{p[1]}": "y", f"p{p[2]}": "y"},
         invalid_messages=["Please approve at most 2 proposals"],
         kept=lambda p: [f'checked data-cost-minor="80000" id="p{p[0]}"', f'checked data-cost-minor="82000" id="p{p[2]}"'],
         valid=lambda p: {f"p{p[0]}": "y", f"p{p[1]}": "y"},
         stored=lambda p: frozenset({str(p[0]), str(p[1])}),
         changed=lambda p: {f"p{p[2]}": "y"},
         receipt_rows=[("Project A", "approved"), ("Project B", "approved")]),
    Case("quadratic", {"credits": "100"}, "You have 100 voice credits",
         invalid=lambda p: {f"p{p[0]}": "8", f"p{p[1]}": "7", f"p{p[2]}": "eleven"},
         invalid_messages=["Not a valid integer value"],
         kept=lambda p: [f'id="p{p[0]}" inputmode="numeric" max="10" min="0" name="p{p[0]}" step="1" type="number" '
                         f'value="8"', 'value="eleven"'],
         valid=lambda p: {f"p{p[0]}": "6", f"p{p[1]}": "8"},
         stored=lambda p: {str(p[0]): 6, str(p[1]): 8},
         changed=lambda p: {f"p{p[2]}": "10"},
         receipt_rows=[("Project A", "6 votes (36 credits)"), ("Project B", "8 votes (64 credits)")]),
    Case("cumulative", {"total_points": "10"}, "You have 10 dots to place",
         invalid=lambda p: {f"p{p[0]}": "8", f"p{p[1]}": "5"},
         invalid_messages=["You placed 13 dots but have only 10"],
         kept=lambda p: ['value="8"', 'value="5"'],
         valid=lambda p: {f"p{p[0]}": "6", f"p{p[2]}": "4"},
         stored=lambda p: {str(p[0]): 6, str(p[2]): 4},
         changed=lambda p: {f"p{p[1]}": "10"},
         receipt_rows=[("Project A", "6 dots"), ("Project C", "4 dots")]),
    Case("score", {"max_score": "5"}, "score from 0 (lowest) to 5 (highest)",
         invalid=lambda p: {f"p{p[0]}": "7", f"p{p[1]}": "3"},
         invalid_messages=["Not a valid choice"],
         kept=lambda p: ['<option selected value="3">3</option>'],
         valid=lambda p: {f"p{p[0]}": "5", f"p{p[1]}": "0", f"p{p[2]}": ""},
         stored=lambda p: {str(p[0]): 5, str(p[1]): 0},
         changed=lambda p: {f"p{p[2]}": "4"},
         receipt_rows=[("Project A", "score 5"), ("Project B", "score 0")]),
    Case("borda", {}, "1 for your favourite",
         invalid=lambda p: {f"p{p[0]}": "1", f"p{p[1]}": "1", f"p{p[2]}": "2"},
         invalid_messages=["Place 1 is also given to “Project B”", "Place 1 is also given to “Project A”"],
         kept=lambda p: ['<option selected value="2">2</option>'],
         valid=lambda p: {f"p{p[2]}": "1", f"p{p[0]}": "2"},
         stored=lambda p: (str(p[2]), str(p[0])),
         changed=lambda p: {f"p{p[1]}": "1", f"p{p[0]}": "3", f"p{p[2]}": "2"},
         receipt_rows=[("Project C", "place 1"), ("Project A", "place 2")]),
    Case("consent", {"quorum": "1/2"}, "A concern or an objection needs a reason",
         invalid=lambda p: {f"p{p[0]}": "objection", f"r{p[0]}": "  ", f"p{p[1]}": "consent",
                            f"p{p[2]}": "", f"r{p[2]}": "I am unsure"},
         invalid_messages=["An objection needs a reason", "You wrote a reason: choose consent, concern or objection"],
         kept=lambda p: [f'checked id="p{p[1]}-0"', "I am unsure"],
         valid=lambda p: {f"p{p[0]}": "consent", f"p{p[1]}": "concern", f"r{p[1]}": "Too big for one season",
                          f"p{p[2]}": ""},
         stored=lambda p: {str(p[0]): ConsentResponse(ConsentKind.CONSENT),
                           str(p[1]): ConsentResponse(ConsentKind.CONCERN, "Too big for one season")},
         changed=lambda p: {f"p{p[0]}": "objection", f"r{p[0]}": "Unsafe on the canal path"},
         receipt_rows=[("Project A", "consent"), ("Project B", "concern: “Too big for one season”")]),
    Case("equal-allocation", {}, "Your share to spend is 1,250.00 EUR",
         invalid=lambda p: {f"p{p[0]}": "1200", f"p{p[1]}": "12.3456"},
         invalid_messages=["EUR amounts have at most 2 decimal places"],
         kept=lambda p: ['value="1200"', 'value="12.3456"'],
         valid=lambda p: {f"p{p[0]}": "1000", f"p{p[1]}": "200.50"},
         stored=lambda p: {str(p[0]): 100_000, str(p[1]): 20_050},
         changed=lambda p: {f"p{p[2]}": "1,250"},
         receipt_rows=[("Project A", "1,000.00 EUR"), ("Project B", "200.50 EUR")]),
]


def _world(app, rule_id: str, params: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with app.app_context():
        world = f.create_voting_round(db.session, rule_id=rule_id, rule_params=params)
        db.session.commit()
    return world


def _ballots(app, round_id: int) -> dict[int, Any]:  # type: ignore[no-untyped-def]
    with app.app_context():
        rows = db.session.scalars(sa.select(StoredBallot).where(StoredBallot.round_id == round_id)).all()
        return {b.voter_id: ops.ballot_of(db.session, round_id, b.voter_id)[1] for b in rows}


def _errors(html: str) -> list[str]:
    """The error messages a page shows (for assertion messages)."""
    return re.findall(r'<ul class="errors"[^>]*>(.*?)</ul>', html, re.S)


@pytest.mark.parametrize("case", CASES, ids=[c.rule_id for c in CASES])
def test_every_ballot_kind_through_http(app, client: WebClient, case: Case) -> None:
    world = _world(app, case.rule_id, case.params)
    p = world["proposal_ids"]
    path = f"/c/{world['slug']}/r/{world['round_id']}/ballot"
    voter = world["members"][0]
    with freeze_time(DURING):
        client.sign_in(voter)
        page = client.get(path)
        html = page.get_data(as_text=True)
        assert page.status_code == 200, html[:500]
        assert "How this round decides" in html and case.explains in html
        assert all(f'name="p{pid}"' in html for pid in p)
        assert page.headers["Cache-Control"] == "no-store"

        bad = client.post(path, case.invalid(p))
        text = bad.get_data(as_text=True)
        assert bad.status_code == 422, text[:2000]
        for message in case.invalid_messages:
            assert message in text, (message, _errors(text))
        for kept in case.kept(p):
            assert kept in text, (kept, re.findall(r"<(?:input|option|textarea)[^>]*>", text))
        assert 'aria-invalid="true"' in text or "flash error" in text
        assert _ballots(app, world["round_id"]) == {}

        good = client.post(path, case.valid(p))
        text = good.get_data(as_text=True)
        assert good.status_code == 200, (good.status_code, _errors(text))
        assert good.headers["Cache-Control"] == "no-store" and "Location" not in good.headers
        code = RECEIPT_RE.search(text).group(1)  # type: ignore[union-attr]
        assert "only once" in text
        recorded = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", text)
        assert [(t, unescape(v)) for t, v in recorded] == case.receipt_rows
        assert code in client.last_mail(voter)
        stored = _ballots(app, world["round_id"])
        assert list(stored.values()) == [case.stored(p)]

        # the receipt is not shown again: the form pre-fills the ballot and offers a change
        again = client.get(path).get_data(as_text=True)
        assert code not in again and "Change my ballot" in again
        changed = client.post(path, case.changed(p))
        assert changed.status_code == 200, _errors(changed.get_data(as_text=True))
        new_code = RECEIPT_RE.search(changed.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        assert new_code != code and "Your ballot is changed" in changed.get_data(as_text=True)
        assert new_code in client.last_mail(voter)
        assert len(_ballots(app, world["round_id"])) == 1


def test_form_prefills_the_current_ballot(app, client: WebClient) -> None:
    world = _world(app, "quadratic", {"credits": "100"})
    p = world["proposal_ids"]
    path = f"/c/{world['slug']}/r/{world['round_id']}/ballot"
    with freeze_time(DURING):
        client.sign_in(world["members"][1])
        assert client.post(path, {f"p{p[0]}": "3", f"p{p[2]}": "9"}).status_code == 200
        html = client.get(path).get_data(as_text=True)
    assert f'name="p{p[0]}" step="1" type="number" value="3"' in html
    assert f'name="p{p[2]}" step="1" type="number" value="9"' in html
    # the server-rendered counter starts from the stored ballot: 9 + 81 credits
    assert '<span data-out="used">90</span> of 100' in html


def test_non_members_and_anonymous_visitors_cannot_vote(app, client: WebClient) -> None:
    world = _world(app, "approval-greedy", {})
    path = f"/c/{world['slug']}/r/{world['round_id']}/ballot"
    with freeze_time(DURING):
        anonymous = client.get(path)
        assert anonymous.status_code == 302 and "/signin" in anonymous.headers["Location"]
        client.sign_in(world["applicant"])
        assert client.get(path).status_code == 403
        token_page = client.get(f"/c/{world['slug']}/r/{world['round_id']}")
        from tests.support.web import csrf_from

        refused = client.post_raw(path, {"csrf_token": csrf_from(token_page.get_data(as_text=True)),
                                         f"p{world['proposal_ids'][0]}": "y"})
        assert refused.status_code == 403
    assert _ballots(app, world["round_id"]) == {}


def test_a_post_without_csrf_token_is_refused(app, client: WebClient) -> None:
    world = _world(app, "approval-greedy", {})
    path = f"/c/{world['slug']}/r/{world['round_id']}/ballot"
    with freeze_time(DURING):
        client.sign_in(world["members"][0])
        response = client.post_raw(path, {f"p{world['proposal_ids'][0]}": "y"})
    assert response.status_code == 400
    assert _ballots(app, world["round_id"]) == {}


def test_ballot_page_loads_the_counter_script_from_self(app, client: WebClient) -> None:
    world = _world(app, "quadratic", {})
    with freeze_time(DURING):
        client.sign_in(world["members"][0])
        html = client.text(f"/c/{world['slug']}/r/{world['round_id']}/ballot")
        with client.get("/static/ballot.js") as script:
            assert script.status_code == 200 and b"data-ballot-kind" in script.data
    assert '<script src="/static/ballot.js" defer></script>' in html
    assert " on" + "input=" not in html and " on" + "change=" not in html  # no inline handlers (CSP)
