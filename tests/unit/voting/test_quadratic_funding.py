"""quadratic-funding (§5.1): the worked example, cap loop, α, pairwise damping, §2.2 edges."""

from __future__ import annotations

from fractions import Fraction

import pytest

from fundcircle.errors import ValidationError
from fundcircle.voting import Ballot, Budget, Proposal, get_rule

EUR = 100  # minor units per euro
PROPOSALS = [Proposal("A", 0), Proposal("B", 0), Proposal("C", 0)]


def worked_example_ballots():
    """A = {1, 4, 1, 9}, B = {1×6, 4}, C = {1, 9, 1, 9, 1, 9, 4} euros, one member per gift."""
    gifts = {"A": [1, 4, 1, 9], "B": [1] * 6 + [4], "C": [1, 9, 1, 9, 1, 9, 4]}
    return [Ballot(f"{pid}{i}", {pid: euros * EUR}) for pid, amounts in gifts.items()
            for i, euros in enumerate(amounts)]


def tally(ballots, pool_minor=100 * EUR, proposals=PROPOSALS, **params):
    rule = get_rule("quadratic-funding")
    return rule.tally(proposals, ballots, Budget(pool_minor), rule.resolve_params(params), "seed-qf")


def test_worked_example_linear():
    outcome = tally(worked_example_ballots())
    # S = 34 / 54 / 162 euros (Σ 250); K = 10^6 makes every root exact here
    assert outcome.scores == {"A": 34 * EUR, "B": 54 * EUR, "C": 162 * EUR}
    assert outcome.funded == {"C": 6480, "B": 2160, "A": 1360}  # 64.80 / 21.60 / 13.60
    assert outcome.summary["contributions_minor"] == {"A": 1500, "B": 1000, "C": 3400}
    assert any("K = 1000000" in s.message for s in outcome.trace)


def test_worked_example_with_a_fifty_percent_cap():
    outcome = tally(worked_example_ballots(), cap_share="1/2")
    assert outcome.funded == {"C": 5000, "B": 3068, "A": 1932}  # 50 / 30.68 / 19.32
    assert outcome.cost_minor == 100 * EUR
    assert [s.proposal_id for s in outcome.trace if s.action == "cap"] == ["C"]


def test_cap_loops_until_nothing_exceeds_it():
    # 35 % cap: C 64.80 -> 35, its 29.80 spread pushes B to 39.89 (> 35, where a single pass would
    # stop); the second pass clips B and A ends at 13.60 + 11.51 + 4.89 = 30.
    outcome = tally(worked_example_ballots(), cap_share="7/20")
    assert outcome.funded == {"B": 3500, "C": 3500, "A": 3000}
    assert list(outcome.funded)[-1] == "A"  # selection order: largest match first
    assert [s.proposal_id for s in outcome.trace if s.action == "cap"] == ["C", "B"]
    # cap everyone at 30: 90 spent, the rest stays in the pool
    capped = tally(worked_example_ballots(), cap_amount_minor=3000)
    assert capped.funded == {"A": 3000, "B": 3000, "C": 3000}


def test_clr_alpha_is_capped_at_one_and_spend_pool_spends_it():
    outcome = tally(worked_example_ballots(), pool_minor=1000 * EUR, mode="clr")
    assert outcome.funded == {"C": 162 * EUR, "B": 54 * EUR, "A": 34 * EUR}  # α = 1: the full subsidy
    spent = tally(worked_example_ballots(), pool_minor=1000 * EUR, mode="clr", saturation="spend_pool")
    assert spent.funded == {"C": 64800, "B": 21600, "A": 13600}
    assert tally(worked_example_ballots(), mode="clr").funded == tally(worked_example_ballots()).funded


def test_single_donor_gets_no_match_and_no_ballots_leave_the_pool():
    outcome = tally([Ballot("solo", {"A": 5000})])
    assert outcome.funded == {}
    assert outcome.scores["A"] == 0
    assert any("single member" in m for m in outcome.why("A"))
    assert tally([]).funded == {}


def test_min_contribution_applies_to_the_aggregate():
    ballots = [Ballot("x", {"A": 100}), Ballot("y", {"A": 400}), Ballot("z", {"A": 50, "B": 900})]
    outcome = tally(ballots, min_contribution=100)
    # z's 50 to A is not matched: S_A = (10 + 20)² − (100 + 400) = 400
    assert outcome.scores["A"] == 400
    assert outcome.funded == {"A": 100 * EUR}


def test_pairwise_damps_pairs_that_co_fund():
    ballots = [Ballot("i", {"A": 100}), Ballot("j", {"A": 100})]
    plain = tally(ballots, pool_minor=1000, mode="clr")
    assert plain.scores["A"] == 200  # 2·√100·√100
    damped = tally(ballots, pool_minor=1000, mode="pairwise", pairwise_m=100)
    # k = M / (M + √(100·100)) = 1/2
    assert damped.scores["A"] == 100
    assert damped.funded == {"A": 100}
    with pytest.raises(ValidationError):
        get_rule("quadratic-funding").resolve_params({"mode": "pairwise"})


def test_inexact_roots_are_replayable_at_the_declared_scale():
    ballots = [Ballot("i", {"A": 2}), Ballot("j", {"A": 3})]
    outcome = tally(ballots, pool_minor=1000, sqrt_scale=1000, mode="clr")
    r_i, r_j = 1414, 1732  # isqrt(2·10^6), isqrt(3·10^6)
    assert outcome.scores["A"] == Fraction(2 * r_i * r_j, 1000 ** 2)


def test_ballot_validation():
    rule = get_rule("quadratic-funding")
    params = rule.resolve_params({})
    with pytest.raises(ValidationError) as err:
        rule.validate_ballot(Ballot("v", {"A": -1}), PROPOSALS, Budget(100), params)
    assert "A" in err.value.field_errors
    rule.validate_ballot(Ballot("v", {}), PROPOSALS, Budget(100), params)  # no contribution
    with pytest.raises(ValidationError, match="more than one ballot"):
        tally([Ballot("v", {"A": 1}), Ballot("v", {"A": 1})])
