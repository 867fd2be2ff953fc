"""mes's float shadows only pre-filter comparisons: a run that compares everything exactly (the
path for amounts past float range) must decide exactly the same, and a step small enough to scale
money past 2**1000 must still tally."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundcircle.voting.base import Ballot, Budget, Proposal
from fundcircle.voting.registry import get_rule
from fundcircle.voting.rules import mes
from tests.support.elections import approval_elections
from tests.support.mes import floats_disabled

SETTINGS = settings(max_examples=100, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
ELECTIONS = approval_elections(max_projects=6, max_cost_minor=60, max_voters=12)


def tally(proposals, ballots, budget_minor, **params):
    rule = get_rule("mes")
    outcome = rule.tally(proposals, ballots, Budget(budget_minor, "PLN", 1), rule.resolve_params(params), "seed")
    return outcome.funded, [(t.action, t.message, t.proposal_id, dict(t.data)) for t in outcome.trace], outcome.summary


@SETTINGS
@given(ELECTIONS, st.sampled_from(["none", "add1", "add1-exhaustive"]), st.sampled_from(["cost", "cardinality"]))
def test_exact_only_runs_decide_as_runs_with_shadows(case, completion, utility) -> None:
    with floats_disabled():  # shadows are part of the exact path
        with_shadows = tally(*case, completion=completion, utility=utility)
        limit, mes._FLOAT_SAFE = mes._FLOAT_SAFE, 0  # every run now counts as past float range
        try:
            assert tally(*case, completion=completion, utility=utility) == with_shadows
        finally:
            mes._FLOAT_SAFE = limit


def test_a_step_that_scales_money_past_float_range_still_tallies() -> None:
    proposals = [Proposal("a", 30), Proposal("b", 20), Proposal("c", 25)]
    ballots = [Ballot("1", frozenset({"a", "b"})), Ballot("2", frozenset({"b"})), Ballot("3", frozenset({"c", "a"}))]
    tiny = tally(proposals, ballots, 60, completion="none", step=Fraction(1, 10**400))
    plain = tally(proposals, ballots, 60, completion="none")
    assert tiny[0] == plain[0] == {"a": 30, "b": 20}
