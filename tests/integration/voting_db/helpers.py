"""A voting world built with bulk inserts (fast enough for 1,800 members), and a cast that runs
as its own unit of work the way a request does (own session, write lock first, commit)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, lazyload, sessionmaker

import fundcircle.models  # noqa: F401  (all mappers configured)
from fundcircle.auth.models import User
from fundcircle.circles.models import Circle, Membership
from fundcircle.db import begin_write, make_engine, make_sessionmaker
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Round
from fundcircle.voting import operations as ops

VOTING_OPEN_AT = dt.datetime(2027, 3, 21, 12, 0, tzinfo=dt.timezone.utc)
VOTING_CLOSE_AT = VOTING_OPEN_AT + dt.timedelta(days=7)
DURING = VOTING_OPEN_AT + dt.timedelta(days=1)


@dataclass
class VotingWorld:
    circle_id: int
    round_id: int
    member_ids: list[int]
    proposal_ids: list[int]
    applicant_id: int


@contextmanager
def sessions_for(url: str, *, pool_size: int | None = None) -> Iterator[sessionmaker[Session]]:
    if pool_size and sa.make_url(url).get_backend_name() == "postgresql":
        # make_engine's pool (10 + 20) is sized for app servers; storms want one connection per thread
        engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"), pool_size=pool_size,
                                  max_overflow=0, pool_timeout=60)
    else:
        engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def make_voting_world(session: Session, *, members: int = 5, proposals: int = 4, rule_id: str = "approval-greedy",
                      rule_params: dict[str, Any] | None = None, budget_minor: int = 2_000_00,
                      cost_minor: int = 800_00, slug: str = "vote-circle") -> VotingWorld:
    """A circle with ``members`` members, a published round in its voting window
    [VOTING_OPEN_AT, VOTING_CLOSE_AT) and ``proposals`` submitted proposals by a non-member. Flushed."""
    start = VOTING_OPEN_AT - dt.timedelta(days=30)
    circle = Circle(slug=slug, name="Vote Circle", purpose="", currency="EUR", created_at=start)
    applicant = User(email=f"applicant@{slug}.example", display_name="Applicant", created_at=start)
    session.add_all([circle, applicant])
    session.flush()
    session.execute(sa.insert(User.__table__), [
        {"email": f"m{n}@{slug}.example", "display_name": f"Member {n}", "created_at": start}
        for n in range(members)])
    member_ids = list(session.scalars(sa.select(User.id).where(User.email.like(f"m%@{slug}.example"))
                                      .order_by(User.id)))
    session.execute(sa.insert(Membership.__table__), [
        {"circle_id": circle.id, "user_id": uid, "is_facilitator": n == 0, "is_treasurer": n == 0,
         "joined_at": start} for n, uid in enumerate(member_ids)])
    round_ = Round(circle_id=circle.id, title="Voting round", call_text="", budget_minor=budget_minor, currency="EUR",
                   rule_id=rule_id, rule_params=rule_params or {}, published_at=start, submissions_open_at=start,
                   submissions_close_at=start + dt.timedelta(days=10), deliberation_open_at=start + dt.timedelta(days=12),
                   voting_open_at=VOTING_OPEN_AT, voting_close_at=VOTING_CLOSE_AT, required_fields=[],
                   show_running_results=False, created_at=start)
    session.add(round_)
    session.flush()
    props = [Proposal(round_id=round_.id, applicant_id=applicant.id, title=f"Project {n + 1}", summary="",
                      description="", amount_requested_minor=cost_minor + n * 10_00, currency="EUR",
                      status="submitted", screening="eligible", updated_at=start, submitted_at=start)
             for n in range(proposals)]
    session.add_all(props)
    session.flush()
    return VotingWorld(circle.id, round_.id, member_ids, [p.id for p in props], applicant.id)


def cast(sessions: sessionmaker[Session], round_id: int, voter_id: int, choices: Any,
         now: dt.datetime = DURING) -> ops.Receipt:
    """One cast as one unit of work (what a POST request does): write lock at BEGIN, commit."""
    session = sessions()
    try:
        begin_write(session)
        # lazyload: the round's eager circle -> memberships chain would load every member per cast
        round_ = session.get(Round, round_id, options=[lazyload("*")])
        voter = session.get(User, voter_id, options=[lazyload("*")])
        receipt = ops.cast_ballot(session, round_, voter, choices, now)
        session.commit()
        return receipt
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def close(sessions: sessionmaker[Session], round_id: int, now: dt.datetime = VOTING_CLOSE_AT):
    session = sessions()
    try:
        begin_write(session)
        result = ops.close_and_tally(session, session.get(Round, round_id, options=[lazyload("*")]), now)
        session.commit()
        return result
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
