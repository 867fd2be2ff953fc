"""Exported ballots share one value object per distinct approval set (a tally then groups identical
ballots by identity); different sets stay different objects. Both databases."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from fundcircle.voting import ballots as codec
from fundcircle.voting.base import BallotKind
from tests.integration.voting_db.helpers import VotingWorld, cast


def test_identical_approval_ballots_share_one_value(sessions: sessionmaker[Session], world: VotingWorld) -> None:
    p1, p2, p3 = world.proposal_ids[:3]
    for voter, choices in zip(world.member_ids, ({p1, p2}, {p2, p1}, {p3}, {p1, p2}, {p3})):
        cast(sessions, world.round_id, voter, choices)
    with sessions() as s:
        exported = codec.export_ballots(s, world.round_id, kind=BallotKind.APPROVAL,
                                        allowed_proposal_ids={str(p) for p in world.proposal_ids})
    values = [e.ballot.value for e in exported]
    assert sorted(map(sorted, values)) == sorted(map(sorted, [{str(p1), str(p2)}] * 3 + [{str(p3)}] * 2))
    assert len({id(v) for v in values}) == 2
