"""Voting over HTTP: recusals (form and operation), the voting window's edges, running results
hidden, the facilitator's close action, and the automatic close on the first request after close."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from fundcircle.circles import operations as circle_ops
from fundcircle.extensions import db
from fundcircle.proposals.models import Proposal
from fundcircle.voting import operations as ops
from fundcircle.voting.models import Award, RoundResult, StoredBallot
from tests.support import factories as f
from tests.support.web import WebClient, csrf_from

DURING = f.VOTING_OPENS + f.DAY
SECOND = dt.timedelta(seconds=1)


def _world(app, **kwargs):  # type: ignore[no-untyped-def]
    with app.app_context():
        world = f.create_voting_round(db.session, **kwargs)
        db.session.commit()
    world["path"] = f"/c/{world['slug']}/r/{world['round_id']}"
    return world


def _count(app, model, round_id: int) -> int:  # type: ignore[no-untyped-def]
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(model.round_id == round_id))


def _token(client: WebClient, path: str) -> str:
    return csrf_from(client.text(path))


# -- recusal: left out of the form, refused when posted by hand --------------------------------------

def test_recused_proposal_is_left_out_of_the_form_and_refused_when_posted(app, client: WebClient) -> None:
    world = _world(app, rule_id="quadratic", rule_params={"credits": "100"})
    p = world["proposal_ids"]
    member = world["members"][0]
    with app.app_context():
        # the member applied for a proposal (automatic recusal) and declares a family conflict with another
        user = f.create_user(db.session, member)
        round_ = db.session.get(ops.Round, world["round_id"])
        own = f.create_proposal(db.session, round_, user, title="My own project", amount_requested_minor=500_00,
                                budget_lines=[("All", 500_00)])
        ops.declare_conflict(db.session, member=user, proposal=db.session.get(Proposal, p[1]), level="recuse",
                             category="family", reason="My sister runs it", now=f.T0 + 2 * f.DAY)
        db.session.commit()
        own_id = own.id
    path = world["path"] + "/ballot"
    with freeze_time(DURING):
        client.sign_in(member)
        html = client.text(path)
        assert f'name="p{p[0]}"' in html and f'name="p{p[2]}"' in html
        assert f'name="p{p[1]}"' not in html and f'name="p{own_id}"' not in html
        assert "Proposals you do not vote on" in html
        assert "“My own project”: you are recused because you applied for it." in html
        assert "“Project B”: you are recused because you declared a close personal relationship" in html

        # the same ballot plus a vote on the recused proposal, typed by hand: the operation refuses
        for recused_id in (p[1], own_id):
            refused = client.post(path, {f"p{p[0]}": "5", f"p{recused_id}": "3"})
            text = refused.get_data(as_text=True)
            assert refused.status_code == 409, text[:300]
            assert "You are recused from a proposal on this ballot" in text
            assert 'value="5"' in text  # what the member entered is kept
        assert _count(app, StoredBallot, world["round_id"]) == 0
        # without it the ballot goes through
        assert client.post(path, {f"p{p[0]}": "5"}).status_code == 200
    assert _count(app, StoredBallot, world["round_id"]) == 1


def test_a_proposal_that_is_not_on_the_ballot_is_refused(app, client: WebClient) -> None:
    world = _world(app, rule_id="approval-greedy")
    with freeze_time(DURING):
        client.sign_in(world["members"][0])
        response = client.post(world["path"] + "/ballot", {"p999999": "y", f"p{world['proposal_ids'][0]}": "y"})
    assert response.status_code == 422
    assert "not on this round" in response.get_data(as_text=True)
    assert _count(app, StoredBallot, world["round_id"]) == 0


# -- the voting window, to the second --------------------------------------------------------------

@pytest.mark.parametrize(("when", "accepted"), [
    (f.VOTING_OPENS - SECOND, False),
    (f.VOTING_OPENS, True),
    (f.VOTING_CLOSES - SECOND, True),
    (f.VOTING_CLOSES, False),
    (f.VOTING_CLOSES + SECOND, False),
], ids=["second-before-open", "at-open", "second-before-close", "at-close", "second-after-close"])
def test_voting_window_edges(app, client: WebClient, when: dt.datetime, accepted: bool) -> None:
    world = _world(app, rule_id="approval-greedy")
    path = world["path"] + "/ballot"
    member = world["members"][0]
    with freeze_time(when - 60 * SECOND):
        client.sign_in(member)
        token = _token(client, world["path"])  # a page loaded a minute earlier
    with freeze_time(when):
        page = client.get(path).get_data(as_text=True)
        response = client.post_raw(path, {"csrf_token": token, f"p{world['proposal_ids'][0]}": "y"})
        text = response.get_data(as_text=True)
    if accepted:
        assert 'name="p' in page and response.status_code == 200, text[:500]
        assert _count(app, StoredBallot, world["round_id"]) == 1
    else:
        assert 'type="checkbox"' not in page  # no form outside the window
        assert response.status_code == 409
        assert "your ballot was not recorded" in text
        assert _count(app, StoredBallot, world["round_id"]) == 0
        assert ("Voting opens on" if when < f.VOTING_OPENS else "Voting closed on") in page


# -- running results stay hidden -------------------------------------------------------------------

def _cast_some(client: WebClient, world: dict, how_many: int) -> None:
    for email in world["members"][:how_many]:
        client.sign_in(email)
        assert client.post(world["path"] + "/ballot", {f"p{world['proposal_ids'][2]}": "7"}).status_code == 200
        client.sign_out()


def test_running_results_are_hidden_while_voting_is_open(app, client: WebClient) -> None:
    world = _world(app, rule_id="quadratic")
    with freeze_time(DURING):
        _cast_some(client, world, 2)
        client.sign_in(world["members"][2])
        for page in (client.text(world["path"]), client.text(world["path"] + "/ballot")):
            assert "Results stay hidden until voting closes" in page or "Nobody sees any results" in page
            assert "Score so far" not in page and "Running results" not in page
        assert "2 of 4 members have voted so far" in client.text(world["path"])
        results = client.get(world["path"] + "/results")
        # the public results page (another package) shows no standings before the tally either
        assert results.status_code == 200 and 'id="scores-chart"' not in results.get_data(as_text=True)


def test_a_round_may_show_running_results(app, client: WebClient) -> None:
    world = _world(app, rule_id="quadratic")
    with app.app_context():
        db.session.get(ops.Round, world["round_id"]).show_running_results = True
        db.session.commit()
    with freeze_time(DURING):
        _cast_some(client, world, 2)
        page = client.text(world["path"])
    assert "Running results" in page
    assert re.search(r"<td>Project C</td><td class=\"num\">14</td>", page)  # 7 + 7 votes


# -- closing: facilitator action, idempotent; automatic on the next request ----------------------

def test_facilitator_closes_and_tallies_only_after_the_close_time(app, client: WebClient) -> None:
    world = _world(app, rule_id="approval-greedy")
    close_path = world["path"] + "/close"
    with freeze_time(DURING):
        _cast_some_approvals(client, world)
        client.sign_in(world["facilitator"])
        client.pass_second_factor()
        assert "Close and tally now" not in client.text(world["path"])
        early = client.post(close_path, {}, form_page=world["path"])
        assert early.status_code == 409 and "cannot be tallied before" in early.get_data(as_text=True)
        assert _count(app, RoundResult, world["round_id"]) == 0
    with app.app_context():
        # keep the automatic close out of this test: the facilitator's button is what is tested
        app.extensions["fundcircle.autoclose"].last_check_at = f.VOTING_CLOSES + 10 * SECOND
    with freeze_time(f.VOTING_CLOSES + 10 * SECOND):
        client.sign_in(world["facilitator"])  # days later: a fresh session
        client.pass_second_factor()
        page = client.text(world["path"])
        assert "Close and tally now" in page and "being tallied" in page
        token = csrf_from(page)
        first = client.post_raw(close_path, {"csrf_token": token})
        assert first.status_code == 302
        second = client.post_raw(close_path, {"csrf_token": token})
        assert second.status_code == 302
        shown = client.text(world["path"])
        assert "already closed and tallied; nothing changed" in shown
        assert "Close and tally now" not in shown
    with app.app_context():
        results = db.session.scalars(sa.select(RoundResult).where(RoundResult.round_id == world["round_id"])).all()
        assert len(results) == 1 and results[0].ballot_count == 3
        assert results[0].tallied_by_id is not None
        awards = db.session.scalars(sa.select(Award).where(Award.round_id == world["round_id"])).all()
        assert [a.proposal_id for a in awards] == [world["proposal_ids"][0], world["proposal_ids"][1]]
        # no money in the pot in this world: the awards record why they are not earmarked yet
        assert all(a.earmarked_at is None and "Fund the pot" in a.earmark_problem for a in awards)


def test_only_facilitators_can_close(app, client: WebClient) -> None:
    world = _world(app, rule_id="approval-greedy")
    with app.app_context():
        app.extensions["fundcircle.autoclose"].last_check_at = f.VOTING_CLOSES + SECOND
    with freeze_time(f.VOTING_CLOSES + SECOND):
        client.sign_in(world["members"][0])
        refused = client.post(world["path"] + "/close", {}, form_page=world["path"])
    assert refused.status_code == 403
    assert _count(app, RoundResult, world["round_id"]) == 0


def _cast_some_approvals(client: WebClient, world: dict) -> None:
    p = world["proposal_ids"]
    for n, email in enumerate(world["members"]):
        client.sign_in(email)
        data = {f"p{p[0]}": "y", f"p{p[1]}": "y"} if n < 2 else {f"p{p[0]}": "y"}
        assert client.post(world["path"] + "/ballot", data).status_code == 200
        client.sign_out()


def test_first_request_after_close_tallies_the_round_and_earmarks_the_awards(app, client: WebClient) -> None:
    from fundcircle.ledger import circle_balances, record_contribution

    world = _world(app, rule_id="approval-greedy")
    with app.app_context():
        circle = db.session.get(ops.Round, world["round_id"]).circle
        record_contribution(db.session, circle, gross_minor=3_000_00, manual_reference="bank-1", now=f.T0)
        db.session.commit()
    with freeze_time(DURING):
        _cast_some_approvals(client, world)
        assert _count(app, RoundResult, world["round_id"]) == 0
    with freeze_time(f.VOTING_CLOSES - SECOND):
        client.get("/")  # a second before the close: nothing happens
        assert _count(app, RoundResult, world["round_id"]) == 0
    with freeze_time(f.VOTING_CLOSES + 40 * SECOND):
        page = client.text(world["path"])  # any page will do
    assert _count(app, RoundResult, world["round_id"]) == 1
    assert "ballots were tallied" in page and "2 proposals funded" in page
    with app.app_context():
        result = db.session.scalar(sa.select(RoundResult).where(RoundResult.round_id == world["round_id"]))
        assert result.tallied_by_id is None and result.tallied_at == f.VOTING_CLOSES + 40 * SECOND
        awards = db.session.scalars(ops.select_awards(world["round_id"])).all()
        assert all(a.earmarked_at is not None for a in awards) and len(awards) == 2
        assert circle_balances(db.session, world["circle_id"], "EUR").earmarked_minor == 800_00 + 810_00
    # the CLI's tally is idempotent with it
    with app.app_context():
        again = ops.close_and_tally(db.session, db.session.get(ops.Round, world["round_id"]),
                                    f.VOTING_CLOSES + 50 * SECOND)
        assert again.tallied_at == f.VOTING_CLOSES + 40 * SECOND


def test_automatic_close_is_throttled_per_process(app, client: WebClient) -> None:
    world = _world(app, rule_id="approval-greedy")
    closer = app.extensions["fundcircle.autoclose"]
    with freeze_time(f.VOTING_CLOSES - 5 * SECOND):
        client.get("/")
        assert closer.last_check_at == f.VOTING_CLOSES - 5 * SECOND
    with freeze_time(f.VOTING_CLOSES + 5 * SECOND):
        client.get("/")  # 10 s after the last check: not yet
    assert _count(app, RoundResult, world["round_id"]) == 0
    with freeze_time(f.VOTING_CLOSES + 25 * SECOND):
        client.get("/")  # 30 s after the last check
    assert _count(app, RoundResult, world["round_id"]) == 1


def test_a_failing_automatic_close_never_breaks_the_request(app, client: WebClient, caplog) -> None:
    world = _world(app, rule_id="approval-greedy")
    with app.app_context():
        # a round whose stored parameters no longer resolve: its tally fails
        db.session.execute(sa.update(ops.Round.__table__).where(ops.Round.__table__.c.id == world["round_id"])
                           .values(rule_params={"no_such_parameter": 1}))
        db.session.commit()
    with freeze_time(f.VOTING_CLOSES + SECOND):
        response = client.get("/")
    assert response.status_code == 200
    assert _count(app, RoundResult, world["round_id"]) == 0
    assert "automatic close of round" in caplog.text


def test_a_member_who_joins_later_sees_the_panel(app, client: WebClient) -> None:
    world = _world(app, rule_id="consent")
    with app.app_context():
        circle = db.session.get(ops.Round, world["round_id"]).circle
        circle_ops.add_member(db.session, circle=circle, user=f.create_user(db.session, "late@example.org"),
                              now=DURING)
        db.session.commit()
    with freeze_time(DURING):
        client.sign_in("late@example.org")
        page = client.text(world["path"])
    assert "Vote now" in page and "/ballot" in page


def test_awards_the_pot_could_not_cover_are_earmarked_once_it_is_funded(app, client: WebClient) -> None:
    from fundcircle.ledger import circle_balances, record_contribution

    world = _world(app, rule_id="approval-greedy")
    with freeze_time(DURING):
        _cast_some_approvals(client, world)
    with freeze_time(f.VOTING_CLOSES + SECOND):
        client.sign_in(world["facilitator"])
        page = client.text(world["path"])  # this request closed the round: the pot is empty
        assert "2 awards not earmarked in the ledger yet" in page and "Fund the pot" in page
        client.sign_out()
        client.sign_in(world["members"][0])  # an ordinary member sees neither the note nor the button
        assert "Earmark the awards now" not in client.text(world["path"])
        refused = client.post(world["path"] + "/earmark", {}, form_page=world["path"])
        assert refused.status_code == 403
        client.sign_out()
        with app.app_context():
            circle = db.session.get(ops.Round, world["round_id"]).circle
            record_contribution(db.session, circle, gross_minor=2_000_00, manual_reference="bank-2",
                                now=f.VOTING_CLOSES)
            db.session.commit()
        client.sign_in(world["facilitator"])
        client.pass_second_factor()
        done = client.post(world["path"] + "/earmark", {}, form_page=world["path"], follow_redirects=True)
        assert done.status_code == 200 and "awards are earmarked in the ledger" in done.get_data(as_text=True)
        again = client.post(world["path"] + "/earmark", {}, form_page=world["path"], follow_redirects=True)
        assert again.status_code == 200 and "Earmark the awards now" not in again.get_data(as_text=True)
    with app.app_context():
        assert circle_balances(db.session, world["circle_id"], "EUR").earmarked_minor == 800_00 + 810_00


def test_the_panel_sets_no_cookie_for_visitors(app) -> None:  # type: ignore[no-untyped-def]
    world = _world(app, rule_id="approval-greedy")
    visitor = app.test_client()
    for when in (DURING, f.VOTING_CLOSES + SECOND):
        with freeze_time(when):
            response = visitor.get(world["path"])
        assert response.status_code == 200 and "Set-Cookie" not in response.headers
        assert "Close and tally now" not in response.get_data(as_text=True)
