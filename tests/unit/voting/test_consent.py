"""consent: objections block until resolved, quorum over eligible members, concerns logged (§5.3)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from fundcircle.errors import ValidationError
from fundcircle.voting import Ballot, Budget, ConsentKind, ConsentResponse, Proposal, get_rule

OK = ConsentResponse(ConsentKind.CONSENT)


def concern(reason="watch the timeline"):
    return ConsentResponse(ConsentKind.CONCERN, reason)


def objection(reason="unsafe to try", resolved=False):
    return ConsentResponse(ConsentKind.OBJECTION, reason, resolved)


def tally(ballots, proposals, budget=Budget(1000), **params):
    rule = get_rule("consent")
    return rule.tally(proposals, [Ballot(f"m{i}", b) for i, b in enumerate(ballots)], budget,
                      rule.resolve_params(params), "seed-consent")


def test_an_open_objection_blocks_and_a_resolved_one_does_not():
    proposals = [Proposal("a", 300, eligible_voters=4)]
    blocked = tally([{"a": OK}, {"a": OK}, {"a": objection()}, {"a": objection("too costly")}], proposals)
    assert blocked.funded == {}
    assert "Not funded: 2 members objected and the objections were not resolved." in blocked.why("a")
    resolved = tally([{"a": OK}, {"a": OK}, {"a": objection(resolved=True)}], proposals)
    assert resolved.funded == {"a": 300}
    assert any("resolved and no longer blocks" in m for m in resolved.why("a"))


def test_quorum_counts_eligible_members():
    # 10 eligible, quorum 1/2 -> 5 responses needed.
    proposals = [Proposal("a", 100, eligible_voters=10)]
    assert tally([{"a": OK}] * 4 + [{}], proposals).funded == {}
    assert tally([{"a": OK}] * 4 + [{"a": concern()}], proposals).funded == {"a": 100}
    # a single voter does not make quorum when 10 are eligible
    single = tally([{"a": OK}], proposals)
    assert single.funded == {}
    assert "Not funded: only 1 of 10 eligible members responded, and the quorum needs 5." in single.why("a")
    # quorum 0.7 of 3 -> ⌈2.1⌉ = 3
    three = [Proposal("a", 100, eligible_voters=3)]
    assert tally([{"a": OK}, {"a": OK}], three, quorum="0.7").funded == {}


def test_without_eligible_voters_the_ballots_cast_are_the_membership():
    proposals = [Proposal("a", 100), Proposal("b", 100)]
    # 4 ballots cast -> 2 responses needed; a has 2, b has 1.
    outcome = tally([{"a": OK, "b": OK}, {"a": OK}, {}, {}], proposals)
    assert outcome.funded == {"a": 100}
    assert outcome.trace[[s.proposal_id for s in outcome.trace].index("b")].data["eligible"] == 4


def test_no_ballots_nothing_passes_unless_quorum_is_zero():
    proposals = [Proposal("a", 100), Proposal("b", 100, eligible_voters=5)]
    assert tally([], proposals).funded == {}
    assert tally([], proposals, quorum=0).funded == {"a": 100, "b": 100}


def test_nobody_eligible_never_passes_a_positive_quorum():
    assert tally([{}], [Proposal("a", 100, eligible_voters=0)]).funded == {}


def test_more_responses_than_eligible_members_is_an_error():
    with pytest.raises(ValidationError, match="eligible"):
        tally([{"a": OK}, {"a": OK}], [Proposal("a", 100, eligible_voters=1)])


def test_concerns_are_recorded_and_never_block():
    outcome = tally([{"a": concern("budget is thin")}, {"a": OK}], [Proposal("a", 100, eligible_voters=2)])
    assert outcome.funded == {"a": 100}
    assert "Concern recorded (it does not block): budget is thin" in outcome.why("a")
    assert outcome.summary["concerns"] == {"a": ["budget is thin"]}


def test_reasons_are_required_for_concerns_and_objections():
    rule = get_rule("consent")
    proposals = [Proposal("a", 100), Proposal("b", 100)]
    with pytest.raises(ValidationError) as err:
        rule.validate_ballot(Ballot("m", {"a": ConsentResponse(ConsentKind.OBJECTION, "  "),
                                         "b": ConsentResponse(ConsentKind.CONCERN)}),
                             proposals, Budget(100), rule.resolve_params({}))
    assert set(err.value.field_errors) == {"a", "b"}
    rule.validate_ballot(Ballot("m", {"a": ConsentResponse(ConsentKind.OBJECTION)}), proposals, Budget(100),
                         rule.resolve_params({"require_reason": False}))
    with pytest.raises(ValidationError):
        rule.validate_ballot(Ballot("m", {"a": "yes"}), proposals, Budget(100), rule.resolve_params({}))
    rule.validate_ballot(Ballot("m", {}), proposals, Budget(100), rule.resolve_params({}))  # no response


def test_overflow_greedy_funds_by_consents_and_none_asks_the_facilitator():
    proposals = [Proposal("a", 600, eligible_voters=3), Proposal("b", 500, eligible_voters=3),
                 Proposal("c", 300, eligible_voters=3), Proposal("big", 5000, eligible_voters=3)]
    ballots = [{"a": OK, "b": OK, "c": OK}, {"a": OK, "b": OK, "c": concern()}, {"a": concern(), "b": OK, "c": OK}]
    # consents: a 2, b 3, c 2. Passed cost 1400 > 1000.
    greedy = tally(ballots, proposals)
    assert list(greedy.funded) == ["b", "c"]  # b 500; c (2, cheaper than a) 300; a no longer fits
    assert greedy.summary["over_budget"] is True
    assert any("more than the whole budget" in m for m in greedy.why("big"))
    none = tally(ballots, proposals, overflow="none")
    assert none.funded == {}
    assert none.trace[-1].message.startswith("Over budget")
    fits = tally(ballots, proposals, budget=Budget(1400), overflow="none")
    assert set(fits.funded) == {"a", "b", "c"}


def test_zero_cost_still_needs_consent():
    proposals = [Proposal("z", 0, eligible_voters=2)]
    assert tally([{"z": objection()}, {"z": OK}], proposals).funded == {}
    assert tally([{"z": OK}, {"z": OK}], proposals).funded == {"z": 0}


def test_quorum_is_exact():
    rule = get_rule("consent")
    assert rule.resolve_params({"quorum": "2/3"})["quorum"] == Fraction(2, 3)
    with pytest.raises(ValidationError):
        rule.resolve_params({"quorum": "1.5"})
