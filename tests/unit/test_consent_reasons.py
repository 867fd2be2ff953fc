"""The consent reasons the public results page lists, read from a stored tally trace."""

from __future__ import annotations

from fractions import Fraction

from fundcircle.transparency.consent_reasons import StatedReason, reasons_by_proposal
from fundcircle.voting.base import Ballot, Budget, ConsentKind, ConsentResponse, Proposal
from fundcircle.voting.registry import get_rule


def test_reasons_come_from_the_consent_rules_trace_objections_first() -> None:
    rule = get_rule("consent")
    proposals = [Proposal("1", 100, eligible_voters=3), Proposal("2", 100, eligible_voters=3)]
    ballots = [
        Ballot("a", {"1": ConsentResponse(ConsentKind.CONCERN, "Too vague"),
                     "2": ConsentResponse(ConsentKind.OBJECTION, "Unsafe")}),
        Ballot("b", {"1": ConsentResponse(ConsentKind.OBJECTION, "Was unclear", resolved=True),
                     "2": ConsentResponse(ConsentKind.CONCERN, "Late")}),
        Ballot("c", {"1": ConsentResponse(ConsentKind.CONSENT), "2": ConsentResponse(ConsentKind.CONSENT)}),
    ]
    outcome = rule.tally(proposals, ballots, Budget(1_000, "EUR", 100),
                         rule.resolve_params({"quorum": Fraction(1, 2)}), "seed")
    found = reasons_by_proposal(outcome.to_json()["trace"])
    assert found == {
        "1": (StatedReason("resolved objection", "Was unclear"), StatedReason("concern", "Too vague")),
        "2": (StatedReason("objection", "Unsafe"), StatedReason("concern", "Late")),
    }
    assert [r.label for r in found["2"]] == ["Objection (not resolved)", "Concern"]


def test_steps_that_are_not_reasons_or_are_malformed_are_skipped() -> None:
    trace = [{"action": "concern", "proposal_id": None, "data": {"reason": "round-level"}},
             {"action": "concern", "proposal_id": "1", "data": {"reason": 7}},
             {"action": "block", "proposal_id": "1", "data": {"objections": "not a list"}},
             {"action": "pass", "proposal_id": "1", "data": {"reason": "not a reason step"}},
             {"action": "concern", "proposal_id": 2, "data": None},
             "not a step",
             {"action": "block", "proposal_id": 3, "data": {"objections": ["Unsafe", None]}}]
    assert reasons_by_proposal(trace) == {"3": (StatedReason("objection", "Unsafe"),)}
