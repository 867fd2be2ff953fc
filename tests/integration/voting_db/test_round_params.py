"""A personal-share round's share is fixed up front (budget ÷ circle members), the same at cast
and at tally, so no ballot accepted while voting can break the tally afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fundcircle.errors import ValidationError
from fundcircle.rounds.models import Round
from fundcircle.voting import operations as ops
from tests.integration.voting_db.helpers import cast, close, make_voting_world


def test_equal_allocation_share_is_the_budget_divided_by_the_members(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        # 5 members, budget 2,000 EUR: each member's share is 400 EUR
        w = make_voting_world(s, members=5, rule_id="equal-allocation")
        s.commit()
        assert ops.round_params(s, s.get(Round, w.round_id))["members"] == 5
    p = w.proposal_ids
    # only two members vote; without the fixed share the tally would allow 1,000 EUR each, and a
    # 900 EUR ballot accepted while voting would be over that share
    with pytest.raises(ValidationError, match="your share is 400.00 EUR"):
        cast(sessions, w.round_id, w.member_ids[0], {p[0]: 900_00})
    cast(sessions, w.round_id, w.member_ids[0], {p[0]: 400_00})
    cast(sessions, w.round_id, w.member_ids[1], {p[0]: 300_00, p[1]: 100_00})
    result = close(sessions, w.round_id)
    assert result.params["members"] == 5 and result.outcome["summary"]["share_minor"] == 400_00
    assert result.outcome["excluded_ballots"] == {}


def test_a_declared_share_or_member_count_is_left_alone(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        w = make_voting_world(s, members=5, rule_id="equal-allocation", rule_params={"share": "25000"})
        s.commit()
        params = ops.round_params(s, s.get(Round, w.round_id))
        assert params["share"] == 250_00 and params["members"] is None
        other = make_voting_world(s, members=3, rule_id="quadratic", slug="qv")
        s.commit()
        assert "members" not in ops.round_params(s, s.get(Round, other.round_id))
