"""Fixtures for the database side of voting: plain sessions on the per-test migrated database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.voting_db.helpers import VotingWorld, make_voting_world, sessions_for


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    with sessions_for(database_url) as factory:
        yield factory


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> VotingWorld:
    """Five members, four proposals (800, 810, 820, 830 EUR), approval-greedy, budget 2,000 EUR."""
    with sessions() as s:
        w = make_voting_world(s)
        s.commit()
    return w
