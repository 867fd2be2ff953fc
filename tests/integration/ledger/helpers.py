"""Shared helpers for ledger tests: an engine/session on a migrated test database, and a small
circle with a closed round and proposals to award."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from fundcircle.auth.models import User
from fundcircle.circles.models import Circle
from fundcircle.db import make_engine, make_sessionmaker
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Round

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)


@contextmanager
def engine_and_sessions(url: str) -> Iterator[tuple[sa.Engine, sessionmaker[Session]]]:
    engine = make_engine(url)
    try:
        yield engine, make_sessionmaker(engine)
    finally:
        engine.dispose()


@dataclass
class World:
    circle: Circle
    user: User
    round: Round
    proposals: list[Proposal]


def make_world(session: Session, *, slug: str = "riverside", currency: str = "EUR", proposals: int = 3,
               now: dt.datetime = NOW) -> World:
    """A circle, one member, one closed round and ``proposals`` submitted proposals (flushed)."""
    user = User(email=f"treasurer@{slug}.example", display_name="Tess Treasurer")
    circle = Circle(slug=slug, name=f"{slug.title()} Fund Circle", purpose="", currency=currency)
    session.add_all([user, circle])
    session.flush()
    start = now - dt.timedelta(days=40)
    rnd = Round(circle_id=circle.id, title="Spring round", budget_minor=500_000, currency=currency,
                rule_id="approval-greedy", rule_params={}, published_at=start, submissions_open_at=start,
                submissions_close_at=start + dt.timedelta(days=10), deliberation_open_at=start + dt.timedelta(days=10),
                voting_open_at=start + dt.timedelta(days=20), voting_close_at=start + dt.timedelta(days=30),
                required_fields=[], show_running_results=False)
    session.add(rnd)
    session.flush()
    props = [Proposal(round_id=rnd.id, applicant_id=user.id, title=f"Project {i + 1}", summary="", description="",
                      amount_requested_minor=100_000, currency=currency, status="submitted", updated_at=start)
             for i in range(proposals)]
    session.add_all(props)
    session.flush()
    return World(circle, user, rnd, props)
