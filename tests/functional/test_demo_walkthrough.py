"""The demo, walked through as a member would: seed it, sign in, vote in the quadratic round and in
the consent round, change a ballot, let time pass the close, and see the round tallied on the next
request (its awards earmarked). Also: the closed autumn round's result comes from real ballots."""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa
from freezegun import freeze_time

from fundcircle.demo import DEMO_SLUG, seed_demo
from fundcircle.extensions import db
from fundcircle.ledger import verify
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Phase, Round
from fundcircle.voting import operations as ops
from fundcircle.voting.models import Award, RoundResult, StoredBallot
from tests.support.web import WebClient

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.timezone.utc)
MEMBER = "lucia@riverside.example"
RECEIPT_RE = re.compile(r"<code>([A-Z2-7]{4}(?:-[A-Z2-7]{4}){4})</code>")


def _seed(app) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with freeze_time(NOW), app.app_context():
        seed_demo(db.session, NOW)
        db.session.commit()
        rounds = {r.title.split(":")[0].split(" ")[0].lower(): r.id for r in db.session.scalars(sa.select(Round))}
    return rounds


def _proposal_ids(app, round_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with app.app_context():
        return {p.title: p.id for p in db.session.scalars(sa.select(Proposal).where(Proposal.round_id == round_id))}


def test_demo_walkthrough(app, client: WebClient) -> None:
    rounds = _seed(app)
    autumn, winter, play, spring = rounds["autumn"], rounds["winter"], rounds["play"], rounds["spring"]
    with app.app_context():
        phases = {k: db.session.get(Round, v).phase_at(NOW) for k, v in rounds.items()}
        # the closed round's result is a real tally of member ballots, and its awards are earmarked
        result = ops.stored_result(db.session, autumn)
        awards = db.session.scalars(ops.select_awards(autumn)).all()
        assert result is not None and result.ballot_count == 8 and result.member_count == 8
        assert [a.proposal.title for a in awards] == ["Street tree watering rota", "Seed library at the bakery",
                                                      "Bike repair stand by the station"]
        assert all(a.earmarked_at is not None for a in awards)
        assert ops.recount(db.session, db.session.get(Round, autumn)) == {
            k: v for k, v in result.outcome.items() if k != "excluded_ballots"}
        assert verify(db.session).ok
    assert phases == {"autumn": Phase.CLOSED, "winter": Phase.VOTING, "play": Phase.VOTING,
                      "spring": Phase.CALL_OPEN}

    play_ids = _proposal_ids(app, play)
    winter_ids = _proposal_ids(app, winter)
    base = f"/c/{DEMO_SLUG}/r"
    with freeze_time(NOW + dt.timedelta(hours=1)):
        client.sign_in(MEMBER)
        assert "Propose a project" in client.text(f"{base}/{spring}")  # the call is still open for applicants

        # the quadratic round: the rule explained, the live counter, a vote
        page = client.text(f"{base}/{play}")
        assert "Vote now" in page and "4 of 8 members have voted so far" in page
        form = client.text(f"{base}/{play}/ballot")
        assert "You have 100 voice credits" in form and 'data-quadratic="1"' in form
        assert all(f'name="p{pid}"' in form for pid in play_ids.values())
        voted = client.post(f"{base}/{play}/ballot", {f"p{play_ids['Board game library for the youth club']}": "6",
                                                     f"p{play_ids['Street piano under the railway bridge']}": "8"})
        assert voted.status_code == 200, voted.get_data(as_text=True)[:300]
        assert RECEIPT_RE.search(voted.get_data(as_text=True))

        # the consent round: a concern needs a reason; then a ballot, then a change of mind
        path = f"{base}/{winter}/ballot"
        murals = winter_ids["Stairwell murals with Grundschule Nord"]
        warm = winter_ids["Warm Wednesdays at the community hall"]
        refused = client.post(path, {f"p{warm}": "consent", f"p{murals}": "concern"})
        assert refused.status_code == 422 and "A concern needs a reason" in refused.get_data(as_text=True)
        first = client.post(path, {f"p{warm}": "consent", f"p{murals}": "concern",
                                   f"r{murals}": "Which paint? The stairwells are narrow and badly ventilated."})
        assert first.status_code == 200 and "Your ballot is recorded" in first.get_data(as_text=True)
        again = client.text(path)
        assert "Which paint?" in again and "Change my ballot" in again  # pre-filled
        changed = client.post(path, {f"p{warm}": "consent", f"p{murals}": "consent",
                                     f"p{winter_ids['Repair café, winter season']}": "consent"})
        assert changed.status_code == 200 and "Your ballot is changed" in changed.get_data(as_text=True)
        code = RECEIPT_RE.search(changed.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        assert code in client.last_mail(MEMBER)

    with app.app_context():
        lucia = db.session.scalar(sa.select(ops.User).where(ops.User.email == MEMBER))
        _stored, value = ops.ballot_of(db.session, winter, lucia.id)
        assert {k: v.response.value for k, v in value.items()} == {str(warm): "consent", str(murals): "consent",
                                                                   str(winter_ids["Repair café, winter season"]):
                                                                   "consent"}
        assert db.session.scalar(sa.select(sa.func.count()).select_from(StoredBallot)
                                 .where(StoredBallot.round_id == play)) == 5
        closes_at = db.session.get(Round, play).voting_close_at

    # time passes the quadratic round's close: the next request tallies it
    with freeze_time(closes_at + dt.timedelta(minutes=2)):
        client.sign_in(MEMBER)  # days later: a fresh session
        page = client.text(f"{base}/{play}")
        assert "ballots were tallied" in page and "5 ballots from 8 members" in page
        results = client.get(f"{base}/{play}/results")
        assert results.status_code == 200
    with app.app_context():
        result = db.session.scalar(sa.select(RoundResult).where(RoundResult.round_id == play))
        assert result is not None and result.tallied_by_id is None and result.ballot_count == 5
        play_awards = db.session.scalars(sa.select(Award).where(Award.round_id == play)).all()
        assert play_awards and all(a.earmarked_at is not None for a in play_awards)
        assert sum(a.amount_minor for a in play_awards) <= 1_500_00
        # the winter round is still voting: untouched
        assert ops.stored_result(db.session, winter) is None
        assert verify(db.session).ok
