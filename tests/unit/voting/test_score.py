"""score: integer scores in range, total or average ranking, min_raters, abstention (§2.1, §2.2)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from fundcircle.errors import ValidationError
from fundcircle.voting import Ballot, Budget, Proposal, get_rule

SEED = "seed-score"
PROPOSALS = [Proposal("a", 600), Proposal("b", 300), Proposal("c", 300), Proposal("z", 0)]


def tally(ballots, budget=Budget(1000), **params):
    rule = get_rule("score")
    return rule.tally(PROPOSALS, [Ballot(f"v{i}", b) for i, b in enumerate(ballots)], budget,
                      rule.resolve_params(params), SEED)


def test_range_and_unknown_ids_are_checked():
    rule = get_rule("score")
    params = rule.resolve_params({})
    rule.validate_ballot(Ballot("v", {"a": 0, "b": 5}), PROPOSALS, Budget(1000), params)
    with pytest.raises(ValidationError) as err:
        rule.validate_ballot(Ballot("v", {"a": 6, "b": -1}), PROPOSALS, Budget(1000), params)
    assert set(err.value.field_errors) == {"a", "b"}
    with pytest.raises(ValidationError):
        rule.resolve_params({"min_score": 5, "max_score": 5})


def test_total_ranking_skips_misfits():
    # totals: a 9 (2 raters), b 8, c 2; budget 1000: a (600), b (300), c (300) does not fit.
    outcome = tally([{"a": 5, "b": 4, "c": 2}, {"a": 4, "b": 4}])
    assert outcome.scores == {"a": 9, "b": 8, "c": 2, "z": 0}
    assert list(outcome.funded) == ["a", "b"]
    assert "z" not in outcome.funded  # zero-cost but nobody rated it


def test_average_ranking_needs_min_raters():
    ballots = [{"a": 3, "b": 5, "c": 4}, {"a": 3, "c": 4}]
    outcome = tally(ballots, rank_by="average")
    assert outcome.scores["b"] == 5 and outcome.scores["c"] == 4 and outcome.scores["a"] == 3
    assert list(outcome.funded) == ["b", "c"]  # a (600) does not fit after 600 spent
    outcome = tally(ballots, rank_by="average", min_raters=2)
    assert list(outcome.funded) == ["c", "a"]
    assert any("needs at least 2" in m for m in outcome.why("b"))


def test_exact_average_is_a_fraction():
    outcome = tally([{"a": 1}, {"a": 2}, {"a": 2}], rank_by="average")
    assert outcome.scores["a"] == Fraction(5, 3)


def test_all_zero_is_no_support_and_empty_ballot_is_an_abstention():
    outcome = tally([{"a": 0, "b": 0}, {}])
    assert outcome.funded == {}
    assert outcome.summary["ballots"] == 1
    assert tally([{}, {}]).trace[-1].data["reason"] == "no ballots"


def test_supported_zero_cost_is_funded_at_zero_first():
    outcome = tally([{"z": 1, "a": 5}])
    assert list(outcome.funded.items()) == [("z", 0), ("a", 600)]
