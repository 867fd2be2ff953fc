"""Hypothesis strategies for small random approval elections, shared by the property tests of
the voting rules."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from fundcircle.voting.base import Ballot, Proposal


@st.composite
def approval_elections(draw: Any, max_projects: int, max_cost_minor: int,
                       max_voters: int) -> tuple[list[Proposal], list[Ballot], int]:
    """(proposals, ballots, budget in minor units): 1..max_projects projects costing
    1..max_cost_minor each, 1..max_voters voters approving at least one, a budget from 1 to the
    total cost."""
    ids = [f"p{i}" for i in range(draw(st.integers(1, max_projects)))]
    proposals = [Proposal(pid, draw(st.integers(1, max_cost_minor))) for pid in ids]
    ballots = [Ballot(str(v), frozenset(draw(st.lists(st.sampled_from(ids), min_size=1, unique=True))))
               for v in range(draw(st.integers(1, max_voters)))]
    return proposals, ballots, draw(st.integers(1, sum(p.cost_minor for p in proposals)))
