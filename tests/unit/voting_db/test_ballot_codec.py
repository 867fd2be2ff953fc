"""ballots.py without a database: choices -> rule value -> rows -> rule value, and receipts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fundcircle.errors import ValidationError
from fundcircle.voting import ballots as codec
from fundcircle.voting.base import BallotKind, ConsentKind, ConsentResponse
from fundcircle.voting.tiebreak import canonical_ballot_line

CASES = [
    (BallotKind.APPROVAL, [3, "1", 2], frozenset({"1", "2", "3"})),
    (BallotKind.POINTS, {1: 3, "2": -2, 5: 0}, {"1": 3, "2": -2, "5": 0}),
    (BallotKind.SCORES, {"10": "4", 2: 0}, {"10": 4, "2": 0}),
    (BallotKind.RANKING, [7, 3, "5"], ("7", "3", "5")),
    (BallotKind.ALLOCATION, {4: 12_50}, {"4": 12_50}),
    (BallotKind.CONSENT, {1: "consent", 2: ("concern", " costly "), 3: {"response": "objection", "reason": "unsafe"},
                          4: ConsentResponse(ConsentKind.CONSENT)},
     {"1": ConsentResponse(ConsentKind.CONSENT), "2": ConsentResponse(ConsentKind.CONCERN, "costly"),
      "3": ConsentResponse(ConsentKind.OBJECTION, "unsafe"), "4": ConsentResponse(ConsentKind.CONSENT)}),
]


@pytest.mark.parametrize(("kind", "choices", "value"), CASES, ids=[c[0].value for c in CASES])
def test_round_trip(kind: BallotKind, choices, value) -> None:  # type: ignore[no-untyped-def]
    normalised = codec.normalise_choices(kind, choices)
    assert normalised == value
    rows = [SimpleNamespace(**vars(item)) for item in codec.items_from_value(kind, normalised)]
    assert all(isinstance(r.proposal_id, int) for r in rows)
    back = codec.value_from_items(kind, reversed(rows))  # storage order must not matter
    assert back == value
    assert canonical_ballot_line(back) == canonical_ballot_line(value)


@pytest.mark.parametrize(("kind", "choices"), [
    (BallotKind.APPROVAL, "12"),
    (BallotKind.APPROVAL, [0]),
    (BallotKind.APPROVAL, ["x"]),
    (BallotKind.RANKING, [1, 1]),
    (BallotKind.RANKING, {1, 2}),
    (BallotKind.POINTS, [1, 2]),
    (BallotKind.POINTS, {1: 1.5}),
    (BallotKind.POINTS, {1: True}),
    (BallotKind.SCORES, {1: "high"}),
    (BallotKind.CONSENT, {1: "maybe"}),
    (BallotKind.POINTS, {1: 2, "1": 3}),
    (BallotKind.NONE, []),
])
def test_malformed_choices_are_refused(kind: BallotKind, choices) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError):
        codec.normalise_choices(kind, choices)


def test_without_proposals_keeps_ranking_order() -> None:
    assert codec.without_proposals(("3", "1", "2"), {"1"}) == ("3", "2")
    assert codec.without_proposals(frozenset({"1", "2"}), {"2"}) == frozenset({"1"})
    assert codec.without_proposals({"1": 2, "2": 3}, {"1"}) == {"2": 3}


def test_receipt_codes_are_fresh_and_only_their_hash_is_kept() -> None:
    codes = {codec.new_receipt_code() for _ in range(200)}
    assert len(codes) == 200
    code = next(iter(codes))
    assert len(code) == 24 and code.count("-") == 4
    digest = codec.receipt_hash(code)
    assert len(digest) == 64 and codec.receipt_hash(code.lower().replace("-", "")) == digest
    assert codec.public_receipt_id(digest) == digest[:16]
