"""Borda count (``borda``; voting-rules.md §2.1, §5.4).

Position j (0-based) on a ballot ranking L proposals earns L − j points (``truncated``),
K − j with K = ``max_ranked`` (``fixed``, Loomio's ranked choice) or L − 1 − j (``zero_based``,
pabutools' Additive_Borda_Sat). Proposals are funded by (−points, TIE), skipping misfits.

Support = being ranked on at least one ballot: a ranked proposal enters the greedy even when
``zero_based`` gives it 0 points, and an unranked one never does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule
from fundcircle.voting.registry import register
from fundcircle.voting.rules._common import check_ballots, greedy_outcome, no_ballots_outcome, plural, raise_if_errors


def check_ranking(ballot: Ballot, proposals: Sequence[Proposal], min_ranked: int,
                  max_ranked: int | None) -> tuple[str, ...]:
    """A ranking is a list of distinct known proposal ids, best first, of an allowed length."""
    if isinstance(ballot.value, (str, bytes, Mapping)) or not isinstance(ballot.value, Sequence):
        raise ValidationError("A ballot for this rule is a list of proposals, best first.",
                              field_errors={"ballot": ["must be an ordered list of proposal ids"]})
    ranking = tuple(ballot.value)
    known = {p.id for p in proposals}
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for proposal_id in ranking:
        if proposal_id not in known:
            errors.setdefault(str(proposal_id), []).append("there is no such proposal in this round")
        elif proposal_id in seen:
            errors.setdefault(proposal_id, []).append("ranked more than once")
        seen.add(proposal_id)
    raise_if_errors(errors)
    if len(ranking) < min_ranked:
        raise ValidationError(f"Rank at least {plural(min_ranked, 'proposal')} (you ranked {len(ranking)}).",
                              field_errors={"ballot": [f"at least {min_ranked} ranked"]})
    if max_ranked is not None and len(ranking) > max_ranked:
        raise ValidationError(f"Rank at most {plural(max_ranked, 'proposal')} (you ranked {len(ranking)}).",
                              field_errors={"ballot": [f"at most {max_ranked} ranked"]})
    return ranking


def check_ranked_bounds(params: Mapping[str, Any]) -> None:
    if params["max_ranked"] is not None and params["min_ranked"] > params["max_ranked"]:
        raise ValidationError("min_ranked cannot be more than max_ranked",
                              field_errors={"min_ranked": ["more than max_ranked"]})


def borda_points(position: int, length: int, scheme: str, max_ranked: int | None) -> int:
    """Points for the proposal at 0-based ``position`` on a ballot ranking ``length`` proposals."""
    if scheme == "truncated":
        return length - position
    if scheme == "fixed":
        assert max_ranked is not None  # check_params guarantees it
        return max_ranked - position
    return length - 1 - position


@register
class BordaRule(Rule):
    id = "borda"
    name = "Ranked points (Borda count)"
    description = (
        "Put the proposals you support in order, favourite first. Higher places earn more points; "
        "proposals with the most points are funded until the money runs out."
    )
    ballot_kind = BallotKind.RANKING
    params = (
        Param("min_ranked", int, 1, help="fewest proposals a ballot ranks", min_value=1),
        Param("max_ranked", int, None, help="most proposals a ballot ranks", min_value=1, optional=True),
        Param("scheme", str, "truncated", help="points for place j on a ballot of length L: L−j, K−j or L−1−j",
              choices=("truncated", "fixed", "zero_based")),
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        check_ranked_bounds(params)
        if params["scheme"] == "fixed" and params["max_ranked"] is None:
            raise ValidationError("scheme=fixed needs max_ranked (first place earns max_ranked points)",
                                  field_errors={"max_ranked": ["required with scheme=fixed"]})

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        params = self.resolve_params(params)
        check_ranking(ballot, proposals, params["min_ranked"], params["max_ranked"])

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = self.resolve_params(params)
        check_ballots(self, ballots, proposals, budget, params)
        if not ballots:
            return no_ballots_outcome(self, params, budget, seed)
        points = {p.id: 0 for p in proposals}
        rankers = {p.id: 0 for p in proposals}
        for ballot in ballots:
            ranking = tuple(ballot.value)
            for position, proposal_id in enumerate(ranking):
                points[proposal_id] += borda_points(position, len(ranking), params["scheme"], params["max_ranked"])
                rankers[proposal_id] += 1

        def describe(pid: str) -> str:
            return f"{plural(points[pid], 'point')} from {plural(rankers[pid], 'ballot')} ranking it"

        return greedy_outcome(self, proposals, points, rankers, lambda pid: rankers[pid] > 0, budget, params,
                              seed, describe, lambda pid: "nobody ranked it", len(ballots))
