"""equal-allocation (Cobudget-style, §5.5): shares, goals, scaling with largest remainder, §2.2 edges."""

from __future__ import annotations

import pytest

from fundcircle.errors import ValidationError
from fundcircle.voting import Ballot, Budget, Proposal, get_rule
from fundcircle.voting.tiebreak import lottery_key

SEED = "seed-cobudget"
PROPOSALS = [
    Proposal("garden", 700, min_goal_minor=300, max_goal_minor=500),
    Proposal("zine", 400),  # goals = cost: needs exactly 400
    Proposal("nothing", 0),  # max goal 0: screened out
    Proposal("castle", 9000, min_goal_minor=5000, max_goal_minor=9000),  # min goal > pot
]


def tally(ballots, budget=Budget(1500), proposals=PROPOSALS, **params):
    rule = get_rule("equal-allocation")
    return rule.tally(proposals, [Ballot(v, b) for v, b in ballots], budget, rule.resolve_params(params), SEED)


def test_hand_worked_tally_with_scaling_and_refunds():
    # 3 ballots cast, pot 1500 -> share 500. garden raises 700 > max 500: scaled by 5/7.
    outcome = tally([("v1", {"garden": 300, "zine": 200}), ("v2", {"garden": 400, "nothing": 50}), ("v3", {})])
    assert outcome.summary["share_minor"] == 500
    assert outcome.funded == {"garden": 500}  # zine raised 200 < 400
    # 300·5/7 = 214.28…, 400·5/7 = 285.71… -> floors 214 + 285 = 499; the cent goes to v2 (.71 > .28)
    assert outcome.summary["kept_minor"] == {"garden": {"v1": 214, "v2": 286}}
    assert outcome.summary["refund_minor"] == {"v1": 86 + 200, "v2": 114 + 50}
    assert any("short of its minimum goal" in m for m in outcome.why("zine"))
    assert any("maximum goal 0" in m for m in outcome.why("nothing"))
    assert any("more than the whole pot" in m for m in outcome.why("castle"))


def test_leftover_cent_ties_go_by_the_voters_lottery_key():
    # three equal contributions of 100 to a max goal of 200: 66.66… each, one leftover cent... two.
    proposals = [Proposal("p", 200, min_goal_minor=0, max_goal_minor=200)]
    outcome = tally([("a", {"p": 100}), ("b", {"p": 100}), ("c", {"p": 100})], budget=Budget(300),
                    proposals=proposals)
    kept = outcome.summary["kept_minor"]["p"]
    assert sum(kept.values()) == 200
    winners = sorted("abc", key=lambda voter: lottery_key(SEED, voter))[:2]
    assert {voter for voter, amount in kept.items() if amount == 67} == set(winners)


def test_stretch_false_pays_exactly_the_minimum_goal():
    outcome = tally([("v1", {"garden": 250}), ("v2", {"garden": 150})], stretch=False)
    assert outcome.funded == {"garden": 300}
    assert sum(outcome.summary["kept_minor"]["garden"].values()) == 300
    assert tally([("v1", {"garden": 250}), ("v2", {"garden": 150})]).funded == {"garden": 400}


def test_share_from_members_and_ballots_over_the_share():
    rule = get_rule("equal-allocation")
    params = rule.resolve_params({"members": 5})  # 1500 // 5 = 300
    rule.validate_ballot(Ballot("v", {"garden": 300}), PROPOSALS, Budget(1500), params)
    with pytest.raises(ValidationError, match="your share is 3.00 EUR"):
        rule.validate_ballot(Ballot("v", {"garden": 200, "zine": 101}), PROPOSALS, Budget(1500), params)
    with pytest.raises(ValidationError) as err:
        rule.validate_ballot(Ballot("v", {"garden": -1}), PROPOSALS, Budget(1500), params)
    assert "garden" in err.value.field_errors
    with pytest.raises(ValidationError, match="v1"):  # default share ⌊1500/2⌋ = 750, checked at tally
        tally([("v1", {"garden": 800}), ("v2", {})])
    with pytest.raises(ValidationError, match="more than the pot"):
        tally([("v1", {"garden": 100}), ("v2", {})], share=1000)
    with pytest.raises(ValidationError, match="only 1 members"):
        tally([("v1", {}), ("v2", {})], members=1)


def test_per_member_per_proposal_cap():
    rule = get_rule("equal-allocation")
    with pytest.raises(ValidationError) as err:
        rule.validate_ballot(Ballot("v", {"zine": 101}), PROPOSALS, Budget(1500),
                             rule.resolve_params({"max_per_member_per_proposal": 100}))
    assert list(err.value.field_errors) == ["zine"]


def test_single_voter_share_is_the_pot_and_no_ballots():
    outcome = tally([("solo", {"garden": 500, "zine": 400})], budget=Budget(1000))
    assert outcome.summary["share_minor"] == 1000
    assert outcome.funded == {"garden": 500, "zine": 400}
    assert tally([]).funded == {}
    assert tally([("v1", {}), ("v2", {})]).funded == {}  # abstentions
