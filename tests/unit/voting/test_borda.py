"""borda: truncated / fixed / zero_based points (§2.1), ranking validation, §2.2 edges."""

from __future__ import annotations

import pytest

from fundcircle.errors import ValidationError
from fundcircle.voting import Ballot, Budget, Proposal, get_rule

PROPOSALS = [Proposal("a", 500), Proposal("b", 400), Proposal("c", 300), Proposal("d", 100)]
BALLOTS = [("a", "b", "c"), ("b", "a"), ("c",)]


def tally(ballots=BALLOTS, budget=Budget(1000), **params):
    rule = get_rule("borda")
    return rule.tally(PROPOSALS, [Ballot(f"v{i}", b) for i, b in enumerate(ballots)], budget,
                      rule.resolve_params(params), "seed-borda")


def test_truncated_points():
    # (a,b,c): 3,2,1; (b,a): 2,1; (c): 1  ->  a 4, b 4, c 2
    outcome = tally()
    assert outcome.scores == {"a": 4, "b": 4, "c": 2, "d": 0}
    assert list(outcome.funded) == ["b", "a"]  # tie on 4 points: b is cheaper; c no longer fits


def test_zero_based_is_truncated_minus_rankers():
    outcome = tally(scheme="zero_based")
    assert outcome.scores == {"a": 4 - 2, "b": 4 - 2, "c": 2 - 2, "d": 0}
    assert "c" not in outcome.funded and "d" not in outcome.funded


def test_fixed_points_need_max_ranked():
    with pytest.raises(ValidationError):
        get_rule("borda").resolve_params({"scheme": "fixed"})
    # K = 3: (a,b,c): 3,2,1; (b,a): 3,2; (c): 3  ->  a 5, b 5, c 4
    assert tally(scheme="fixed", max_ranked=3).scores == {"a": 5, "b": 5, "c": 4, "d": 0}


def test_ranking_validation():
    rule = get_rule("borda")
    params = rule.resolve_params({"max_ranked": 2})
    with pytest.raises(ValidationError) as err:
        rule.validate_ballot(Ballot("v", ("a", "a")), PROPOSALS, Budget(1000), params)
    assert "a" in err.value.field_errors
    with pytest.raises(ValidationError, match="at most 2"):
        rule.validate_ballot(Ballot("v", ("a", "b", "c")), PROPOSALS, Budget(1000), params)
    with pytest.raises(ValidationError, match="at least 1"):
        rule.validate_ballot(Ballot("v", ()), PROPOSALS, Budget(1000), params)
    with pytest.raises(ValidationError):
        rule.validate_ballot(Ballot("v", ("x",)), PROPOSALS, Budget(1000), params)
    with pytest.raises(ValidationError):
        rule.validate_ballot(Ballot("v", "ab"), PROPOSALS, Budget(1000), params)


def test_single_voter_and_no_ballots():
    assert list(tally([("d", "c", "a")]).funded) == ["d", "c", "a"]
    assert tally([]).funded == {}
