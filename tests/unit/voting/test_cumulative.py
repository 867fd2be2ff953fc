"""cumulative (dot voting): limits on dots, fund by Σ points skipping misfits (§2.1, §2.2)."""

from __future__ import annotations

import pytest

from fundcircle.errors import ValidationError
from fundcircle.voting import Ballot, Budget, Proposal, get_rule

PROPOSALS = [Proposal("a", 500), Proposal("b", 400), Proposal("c", 200), Proposal("d", 5000), Proposal("z", 0)]


def validate(value, **params):
    rule = get_rule("cumulative")
    rule.validate_ballot(Ballot("v", value), PROPOSALS, Budget(1000), rule.resolve_params(params))


def tally(ballots, **params):
    rule = get_rule("cumulative")
    return rule.tally(PROPOSALS, [Ballot(f"v{i}", b) for i, b in enumerate(ballots)], Budget(1000),
                      rule.resolve_params(params), "seed-dots")


def test_dot_limits():
    validate({"a": 10})
    with pytest.raises(ValidationError, match="11 dots"):
        validate({"a": 6, "b": 5})
    with pytest.raises(ValidationError) as err:  # Toulouse: 7 dots, at most 3 on one project
        validate({"a": 4, "b": 3}, total_points=7, max_per_proposal=3)
    assert list(err.value.field_errors) == ["a"]
    with pytest.raises(ValidationError):
        validate({"a": -1, "b": 2})
    with pytest.raises(ValidationError, match="Place all 10"):
        validate({"a": 9}, must_spend_all=True)
    with pytest.raises(ValidationError, match="at least 1"):
        validate({})
    validate({}, min_total=0)
    with pytest.raises(ValidationError):
        get_rule("cumulative").resolve_params({"min_total": 11})


def test_hand_worked_tally():
    # a 4+1 = 5, b 3+3 = 6, c 3+3 = 6, d 3 (screened out), z 0
    outcome = tally([{"a": 4, "b": 3, "c": 3}, {"a": 1, "b": 3, "c": 3, "d": 3}])
    assert outcome.scores == {"a": 5, "b": 6, "c": 6, "d": 3, "z": 0}
    # b and c tie on 6 dots and 2 supporters: c is cheaper. Then b (400), a (500) does not fit 400 left.
    assert list(outcome.funded) == ["c", "b"]
    assert any("more than the whole budget" in m for m in outcome.why("d"))
    assert any("nobody put a dot" in m for m in outcome.why("z"))


def test_zero_cost_funded_when_supported_and_no_ballots_empty():
    assert tally([{"z": 1}]).funded == {"z": 0}
    assert tally([]).funded == {}
