"""Fixtures for ledger tests: a plain engine/session on the per-test migrated database (no app)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

import fundcircle.models  # noqa: F401  (all mappers configured)
from tests.integration.ledger.helpers import World, engine_and_sessions, make_world


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    with engine_and_sessions(database_url) as (_engine, factory):
        yield factory


@pytest.fixture
def db_session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    session = sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@pytest.fixture
def world(db_session: Session) -> World:
    """A committed circle (id 1), user, closed round and three proposals."""
    w = make_world(db_session)
    db_session.commit()
    return w
