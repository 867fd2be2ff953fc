"""Properties every registered rule must have (voting-rules.md §0), whatever its ballot kind:

* never over budget, and no negative amount;
* deterministic: the same inputs give an identical ``Outcome.to_json()``;
* the order of the ballots changes nothing;
* a proposal nobody supports is never funded (except where the rule says otherwise: ``lottery``);
* ``validate_ballot`` rejects malformed ballots with a ValidationError that says something.

Ballots are generated per BallotKind, so rules added later (plugins or the approval family) are
covered as soon as they register. Generated ballots that a rule's default parameters reject are
dropped (per-rule limits such as 10 dots are not this file's business); equal-allocation-style
amounts are kept small enough to fit any share of the pot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundcircle.errors import ValidationError
from fundcircle.voting import Ballot, BallotKind, Budget, ConsentKind, ConsentResponse, Proposal, Rule, all_rules

# rules that may fund a proposal without support, by design
FUNDS_WITHOUT_SUPPORT = {"lottery"}

SETTINGS = settings(derandomize=True, max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

RULES = all_rules()


@st.composite
def round_inputs(draw: st.DrawFn) -> tuple[list[Proposal], Budget, int]:
    count = draw(st.integers(1, 6))
    budget_minor = draw(st.integers(1, 3000))
    costs = draw(st.lists(st.sampled_from([0, 100, 250, 400, 700, 1000, 2500, 5000]), min_size=count,
                          max_size=count))
    proposals = [Proposal(f"p{i}", cost) for i, cost in enumerate(costs)]
    voters = draw(st.integers(0, 6))
    return proposals, Budget(budget_minor), voters


def ballot_value(draw: st.DrawFn, kind: BallotKind, ids: list[str], budget: Budget, voters: int) -> Any:
    """One plausible ballot value of ``kind`` over ``ids``."""
    chosen = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=len(ids), unique=True))
    if kind is BallotKind.APPROVAL:
        return frozenset(chosen)
    if kind is BallotKind.RANKING:
        return tuple(chosen)
    if kind is BallotKind.POINTS:
        return {pid: draw(st.integers(0, 3)) for pid in chosen}
    if kind is BallotKind.SCORES:
        return {pid: draw(st.integers(0, 5)) for pid in chosen}
    if kind is BallotKind.ALLOCATION:
        # Σ fits ⌊B / voters⌋, the smallest share any share rule gives
        per_proposal = budget.amount_minor // max(voters, 1) // len(chosen)
        return {pid: draw(st.integers(0, per_proposal)) for pid in chosen}
    if kind is BallotKind.CONSENT:
        kinds = st.sampled_from(list(ConsentKind))
        return {pid: ConsentResponse(draw(kinds), "a reason", draw(st.booleans())) for pid in chosen}
    return None


def supported_ids(kind: BallotKind, values: list[Any]) -> set[str]:
    """Proposals some ballot supports: approved, ranked, given a positive amount, or responded to."""
    ids: set[str] = set()
    for value in values:
        if kind in (BallotKind.APPROVAL, BallotKind.RANKING):
            ids.update(value)
        elif kind is BallotKind.CONSENT:
            ids.update(value)
        elif isinstance(value, Mapping):
            ids.update(pid for pid, amount in value.items() if amount > 0)
    return ids


def is_valid(rule: Rule, value: Any, proposals: list[Proposal], budget: Budget, params: dict) -> bool:
    try:
        rule.validate_ballot(Ballot("probe", value), proposals, budget, params)
    except ValidationError:
        return False
    return True


@st.composite
def election(draw: st.DrawFn, rule_cls: type[Rule]) -> tuple[list[Proposal], Budget, list[Ballot], str]:
    proposals, budget, voters = draw(round_inputs())
    rule = rule_cls()
    params = rule.resolve_params({})
    ids = [p.id for p in proposals]
    ballots = []
    if rule.ballot_kind is not BallotKind.NONE:
        for index in range(voters):
            value = ballot_value(draw, rule.ballot_kind, ids, budget, voters)
            if is_valid(rule, value, proposals, budget, params):
                ballots.append(Ballot(f"voter{index}", value))
    seed = draw(st.sampled_from(["fundcircle/v1|round=1|ballots=00", "fundcircle/v1|round=2|ballots=ff"]))
    return proposals, budget, ballots, seed


@pytest.mark.parametrize("rule_cls", RULES, ids=[r.id for r in RULES])
@SETTINGS
@given(data=st.data())
def test_budget_determinism_permutation_and_support(rule_cls: type[Rule], data: st.DataObject) -> None:
    proposals, budget, ballots, seed = data.draw(election(rule_cls))
    rule = rule_cls()
    params = rule.resolve_params({})
    outcome = rule.tally(proposals, ballots, budget, params, seed)

    assert outcome.cost_minor <= budget.amount_minor
    assert all(amount >= 0 for amount in outcome.funded.values())
    assert set(outcome.funded) <= {p.id for p in proposals}
    assert outcome.rule_id == rule.id

    again = rule_cls().tally(proposals, list(ballots), budget, params, seed)
    assert again.to_json() == outcome.to_json()

    shuffled = data.draw(st.permutations(ballots))
    permuted = rule.tally(proposals, shuffled, budget, params, seed)
    assert permuted.to_json() == outcome.to_json()

    if rule.id not in FUNDS_WITHOUT_SUPPORT:
        supported = supported_ids(rule.ballot_kind, [b.value for b in ballots])
        assert set(outcome.funded) <= supported


def invalid_values(kind: BallotKind) -> list[Any]:
    """Ballot values every rule of this kind must refuse: an unknown proposal, and a wrong shape."""
    unknown = {
        BallotKind.APPROVAL: frozenset({"no-such-proposal"}),
        BallotKind.RANKING: ("no-such-proposal",),
        BallotKind.CONSENT: {"no-such-proposal": ConsentResponse(ConsentKind.CONSENT)},
    }.get(kind, {"no-such-proposal": 1})
    return [unknown, 42]


@pytest.mark.parametrize("rule_cls", [r for r in RULES if r.ballot_kind is not BallotKind.NONE],
                         ids=[r.id for r in RULES if r.ballot_kind is not BallotKind.NONE])
def test_invalid_ballots_are_rejected_with_a_message(rule_cls: type[Rule]) -> None:
    rule = rule_cls()
    proposals = [Proposal("p0", 100), Proposal("p1", 200)]
    params = rule.resolve_params({})
    for value in invalid_values(rule.ballot_kind):
        with pytest.raises(ValidationError) as err:
            rule.validate_ballot(Ballot("v", value), proposals, Budget(1000), params)
        assert err.value.user_message.strip()


@pytest.mark.parametrize("rule_cls", RULES, ids=[r.id for r in RULES])
def test_every_rule_describes_itself_for_voters(rule_cls: type[Rule]) -> None:
    described = rule_cls.describe()
    assert described["id"] and described["name"]
    assert 20 <= len(described["description"]) <= 600
    assert "tie_order" in {p["name"] for p in described["params"]}
