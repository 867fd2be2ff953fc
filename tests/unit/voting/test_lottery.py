"""lottery (§5.6): the draw order is re-derived here from the public seed with hashlib alone."""

from __future__ import annotations

import hashlib

import pytest

from fundcircle.errors import ValidationError
from fundcircle.voting import Ballot, Budget, Proposal, get_rule

SEED = "fundcircle/v1|round=42|ballots=" + "ab" * 32
PROPOSALS = [Proposal(pid, 300) for pid in ("p1", "p2", "p3", "p4", "p5", "p6")] + [Proposal("free", 0),
                                                                                  Proposal("huge", 5000)]


def key(pid: str) -> int:
    """L(p) = SHA-256(seed ‖ 0x00 ‖ UTF-8(id)), written out independently of the code under test."""
    return int(hashlib.sha256(SEED.encode() + b"\x00" + pid.encode()).hexdigest(), 16)


def tally(ballots, budget=Budget(1000), **params):
    rule = get_rule("lottery")
    return rule.tally(PROPOSALS, [Ballot(f"v{i}", frozenset(b)) for i, b in enumerate(ballots)], budget,
                      rule.resolve_params(params), SEED)


def test_uniform_order_is_the_ascending_lottery_key():
    outcome = tally([])  # the lottery runs without ballots
    expected = sorted(("p1", "p2", "p3", "p4", "p5", "p6"), key=key)
    assert outcome.summary["draw_order"] == expected
    assert list(outcome.funded) == ["free"] + expected[:3]  # free first; 3 × 300 fit in 1000
    assert outcome.summary["keys"]["p1"] == f"{key('p1'):064x}"
    assert any("more than the whole budget" in m for m in outcome.why("huge"))


def test_overflow_stop_and_entry_threshold():
    outcome = tally([{"p1", "p2", "p3", "p4"}, {"p1"}], budget=Budget(700), min_approvals_to_enter=1,
                    overflow="stop")
    expected = sorted(("p1", "p2", "p3", "p4"), key=key)
    assert outcome.summary["draw_order"] == expected
    assert list(outcome.funded) == expected[:2]
    assert any("needed 1 to enter" in m for m in outcome.why("p5"))
    assert "free" not in outcome.funded  # zero cost, but it did not enter


def test_votes_weighted_draw_is_re_derived_from_the_seed():
    ballots = [{"p1", "p2", "p3"}, {"p1", "p2"}, {"p1"}, {"p4"}]
    weights = {"p1": 3, "p2": 2, "p3": 1, "p4": 1}
    outcome = tally(ballots, budget=Budget(10_000), weighting="votes")
    # re-derivation: remaining in tie order (cost_asc: all 300; votes_desc; lottery), r = H(seed‖1‖k) mod W
    remaining = sorted(weights, key=lambda pid: (-weights[pid], key(pid)))
    order = []
    draw = 1
    while remaining:
        total = sum(weights[pid] for pid in remaining)
        r = int(hashlib.sha256(SEED.encode() + b"\x01" + str(draw).encode()).hexdigest(), 16) % total
        cumulative = 0
        for pid in remaining:
            cumulative += weights[pid]
            if r < cumulative:
                order.append(pid)
                remaining.remove(pid)
                break
        draw += 1
    assert outcome.summary["draw_order"] == order
    assert [pid for pid in outcome.funded if pid != "free"] == order
    assert "p5" not in outcome.funded  # no approvals: weight 0


def test_ballots_are_approval_sets_of_known_proposals():
    rule = get_rule("lottery")
    params = rule.resolve_params({})
    rule.validate_ballot(Ballot("v", frozenset()), PROPOSALS, Budget(100), params)
    with pytest.raises(ValidationError) as err:
        rule.validate_ballot(Ballot("v", frozenset({"nope"})), PROPOSALS, Budget(100), params)
    assert "nope" in err.value.field_errors
    with pytest.raises(ValidationError):
        rule.validate_ballot(Ballot("v", ["p1"]), PROPOSALS, Budget(100), params)
