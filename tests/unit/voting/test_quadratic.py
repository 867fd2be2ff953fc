"""quadratic: cost Σv² from the whole ballot (§5.2), fund by (−T_p, TIE) skipping misfits, §2.2 edges."""

from __future__ import annotations

import pytest

from fundcircle.errors import ValidationError
from fundcircle.voting import Ballot, Budget, Proposal, get_rule

SEED = "fundcircle/v1|round=7|ballots=abc"
PROPOSALS = [Proposal("a", 400), Proposal("b", 300), Proposal("c", 500), Proposal("d", 0), Proposal("e", 2000)]
BUDGET = Budget(1000)


def validate(value, **params):
    rule = get_rule("quadratic")
    rule.validate_ballot(Ballot("v", value), PROPOSALS, BUDGET, rule.resolve_params(params))


def tally(ballots, budget=BUDGET, proposals=PROPOSALS, **params):
    rule = get_rule("quadratic")
    return rule.tally(proposals, [Ballot(f"v{i}", b) for i, b in enumerate(ballots)], budget,
                      rule.resolve_params(params), SEED)


def test_cost_is_the_sum_of_squares_of_the_whole_ballot():
    validate({"a": 7, "b": 7})  # 49 + 49 = 98
    validate({"a": 10})  # exactly 100
    with pytest.raises(ValidationError, match="102 credits"):
        validate({"a": 7, "b": 7, "c": 2})
    with pytest.raises(ValidationError, match="121 credits"):
        validate({"a": 11})
    validate({"a": 3}, credits=9)
    with pytest.raises(ValidationError):
        validate({"a": 2, "b": 2, "c": 1}, credits=8)  # 4+4+1: a running "+1 per vote" count would say 5


def test_negative_votes_are_opt_in_and_cost_the_same():
    with pytest.raises(ValidationError) as err:
        validate({"a": -2})
    assert "a" in err.value.field_errors
    validate({"a": -10}, allow_negative=True)
    with pytest.raises(ValidationError, match="101 credits"):
        validate({"a": -10, "b": 1}, allow_negative=True)


def test_per_proposal_cap_unknown_ids_and_types():
    with pytest.raises(ValidationError) as err:
        validate({"a": 4}, max_votes_per_proposal=3)
    assert list(err.value.field_errors) == ["a"]
    with pytest.raises(ValidationError) as err:
        validate({"zz": 1})
    assert "zz" in err.value.field_errors
    with pytest.raises(ValidationError):
        validate({"a": True})
    with pytest.raises(ValidationError):
        validate(frozenset({"a"}))


def test_empty_or_all_zero_ballot_is_invalid():
    with pytest.raises(ValidationError, match="empty"):
        validate({})
    with pytest.raises(ValidationError, match="empty"):
        validate({"a": 0})


def test_hand_worked_tally():
    # T: a = 5+2 = 7, b = 3+4 = 7, c = 6, d = 1; e costs more than the budget.
    outcome = tally([{"a": 5, "b": 3}, {"a": 2, "c": 6}, {"b": 4, "d": 1}])
    assert outcome.scores == {"a": 7, "b": 7, "c": 6, "d": 1, "e": 0}
    # d is free and supported: funded first at 0; b beats a on cost; c no longer fits.
    assert list(outcome.funded.items()) == [("d", 0), ("b", 300), ("a", 400)]
    assert outcome.cost_minor == 700
    tie = [s for s in outcome.trace if s.action == "tie"]
    assert tie and tie[0].proposal_id == "a" and tie[0].data["deciding_component"] == "cost_asc"
    assert any("only 3.00 EUR was left" in m for m in outcome.why("c"))
    assert any("more than the whole budget" in m for m in outcome.why("e"))


def test_net_negative_or_zero_is_not_funded():
    outcome = tally([{"a": 3}, {"a": -3, "b": 1}], allow_negative=True)
    assert outcome.scores["a"] == 0
    assert list(outcome.funded) == ["b"]
    assert any("not above zero" in m for m in outcome.why("a"))


def test_single_voter_gets_their_order():
    outcome = tally([{"c": 8, "a": 5, "b": 2}])
    assert list(outcome.funded) == ["c", "a"]  # b (300) no longer fits after 900 spent


def test_no_ballots_funds_nothing():
    outcome = tally([])
    assert outcome.funded == {}
    assert outcome.trace[-1].data["reason"] == "no ballots"


def test_tally_rejects_an_invalid_stored_ballot():
    with pytest.raises(ValidationError, match="v0"):
        tally([{"a": 11}])
