"""Malformed ballots never give a 500: random field dictionaries POSTed to the ballot page of a
round of every ballot kind (field names of the form, of other and unknown proposals, reasons)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundcircle.extensions import db
from fundcircle.voting.models import StoredBallot
from tests.support import factories as f
from tests.support.web import WebClient, csrf_from

DURING = f.VOTING_OPENS + f.DAY
NASTY = st.sampled_from(["", "NaN", "1e309", "-1", "0", "3", "10", "٣", "１２", "9" * 25, "\x00", "1,0,0", "12.345",
                         "<script>", "' OR 1=1 --", "true", " ", "€", "1.5e3", "∞", "consent", "concern",
                         "objection", "y", "on"])
VALUE = st.one_of(NASTY, st.text(max_size=30), st.integers(-10**20, 10**20).map(str))
RULES = [("approval-greedy", {"max_ballot_cost": "165000"}), ("quadratic", {"allow_negative": "true"}),
         ("cumulative", {}), ("score", {}), ("borda", {"max_ranked": "2"}), ("consent", {}),
         ("equal-allocation", {}), ("quadratic-funding", {}), ("mes", {}), ("irv", {})]


@pytest.fixture
def ballot_pages(app):  # type: ignore[no-untyped-def]
    pages = {}
    with app.app_context():
        for n, (rule_id, params) in enumerate(RULES):
            world = f.create_voting_round(db.session, slug=f"fuzz-{n}", members=1, rule_id=rule_id,
                                          rule_params=params)
            pages[rule_id] = (f"/c/{world['slug']}/r/{world['round_id']}/ballot", world["proposal_ids"],
                              world["members"][0])
        db.session.commit()
    clients = {}
    with freeze_time(DURING):
        for rule_id, (_path, _ids, member) in pages.items():
            clients[rule_id] = WebClient(app)
            clients[rule_id].sign_in(member)  # once: sign-in links are rate-limited per address
    return {rule_id: (*page, clients[rule_id]) for rule_id, page in pages.items()}


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_ballot_post_gives_a_500(app, ballot_pages, data) -> None:  # type: ignore[no-untyped-def]
    rule_id = data.draw(st.sampled_from([r for r, _ in RULES]))
    path, proposal_ids, _member, client = ballot_pages[rule_id]
    names = [f"p{pid}" for pid in proposal_ids] + [f"r{pid}" for pid in proposal_ids] + [
        "p999999", "r999999", "p0", "p-1", f"p{proposal_ids[0]}0", "p" + "9" * 30, "csrf_token", "unknown"]
    fields = data.draw(st.dictionaries(st.sampled_from(names), VALUE, max_size=8))
    with freeze_time(DURING):
        token = csrf_from(client.text(path))
        response = client.post_raw(path, {**fields, "csrf_token": token})
    assert response.status_code < 500, (rule_id, fields, response.get_data(as_text=True)[:400])
    assert response.status_code in (200, 409, 422), (rule_id, fields, response.status_code)


def test_every_fuzzed_round_still_tallies(app, ballot_pages) -> None:  # type: ignore[no-untyped-def]
    """Whatever the fuzzer stored, a valid ballot per round is stored and tallies (sanity check)."""
    from fundcircle.rounds.models import Round
    from fundcircle.voting import operations as ops

    valid = {"approval-greedy": lambda p: {f"p{p[0]}": "y"}, "quadratic": lambda p: {f"p{p[0]}": "-3"},
             "cumulative": lambda p: {f"p{p[1]}": "4"}, "score": lambda p: {f"p{p[0]}": "2"},
             "borda": lambda p: {f"p{p[2]}": "1"}, "consent": lambda p: {f"p{p[0]}": "consent"},
             "equal-allocation": lambda p: {f"p{p[0]}": "500"}, "quadratic-funding": lambda p: {f"p{p[0]}": "20"},
             "mes": lambda p: {f"p{p[0]}": "y"}, "irv": lambda p: {f"p{p[1]}": "1"}}
    with freeze_time(DURING):
        for rule_id, (path, proposal_ids, _member, client) in ballot_pages.items():
            response = client.post(path, valid[rule_id](proposal_ids))
            assert response.status_code == 200, (rule_id, response.get_data(as_text=True)[-1500:])
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(StoredBallot)) == len(RULES)
        for round_ in db.session.scalars(sa.select(Round)):
            result = ops.close_and_tally(db.session, round_, f.VOTING_CLOSES)
            assert result.ballot_count == 1
        db.session.commit()
