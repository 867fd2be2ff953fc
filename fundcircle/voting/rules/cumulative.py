"""Cumulative voting / dot voting (``cumulative``; voting-rules.md §2.1).

Each voter spreads up to ``total_points`` dots (positive whole numbers, at most
``max_per_proposal`` on one proposal, at least ``min_total`` in all, exactly ``total_points``
with ``must_spend_all``). Proposals are funded by (−Σ points, TIE), skipping misfits. A zero entry
means "no dots" and is ignored. With ``min_total=0`` an empty ballot is an abstention.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule
from fundcircle.voting.registry import register
from fundcircle.voting.rules._common import (
    check_ballots, check_int_mapping, count_supporters, greedy_outcome, no_ballots_outcome, plural, raise_if_errors,
)


@register
class CumulativeRule(Rule):
    id = "cumulative"
    name = "Dot voting"
    description = (
        "You get a number of dots (10 by default) to place on the proposals you want funded; you may put "
        "several dots on one proposal. Proposals with the most dots are funded until the money runs out."
    )
    ballot_kind = BallotKind.POINTS
    params = (
        Param("total_points", int, 10, help="dots each voter may place", min_value=1),
        Param("max_per_proposal", int, None, help="most dots on one proposal", min_value=1, optional=True),
        Param("min_total", int, 1, help="fewest dots a ballot must place (0 allows abstaining)", min_value=0),
        Param("must_spend_all", bool, False, help="every ballot must place all its dots"),
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if params["min_total"] > params["total_points"]:
            raise ValidationError("min_total cannot be more than total_points",
                                  field_errors={"min_total": ["more than total_points"]})

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        params = self.resolve_params(params)
        points = check_int_mapping(ballot, proposals, "dots")
        cap = params["max_per_proposal"]
        errors: dict[str, list[str]] = {}
        for proposal_id, count in points.items():
            if count < 0:
                errors.setdefault(proposal_id, []).append("dots cannot be negative")
            elif cap is not None and count > cap:
                errors.setdefault(proposal_id, []).append(f"at most {cap} dots on one proposal")
        raise_if_errors(errors)
        placed = sum(points.values())
        total = params["total_points"]
        if placed > total:
            raise ValidationError(f"You placed {placed} dots but have only {total}.",
                                  field_errors={"ballot": [f"{placed} of {total} dots"]})
        if placed < params["min_total"]:
            raise ValidationError(f"Place at least {params['min_total']} dots (you placed {placed}).",
                                  field_errors={"ballot": [f"at least {params['min_total']} dots"]})
        if params["must_spend_all"] and placed != total:
            raise ValidationError(f"Place all {total} dots (you placed {placed}).",
                                  field_errors={"ballot": [f"exactly {total} dots"]})

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = self.resolve_params(params)
        check_ballots(self, ballots, proposals, budget, params)
        counted = [dict(b.value) for b in ballots if any(dict(b.value).values())]
        if not counted:
            return no_ballots_outcome(self, params, budget, seed)
        totals = {p.id: 0 for p in proposals}
        for value in counted:
            for proposal_id, count in value.items():
                totals[proposal_id] += count
        supporters = count_supporters(counted)

        def describe(pid: str) -> str:
            return f"{plural(totals[pid], 'dot')} from {plural(supporters.get(pid, 0), 'member')}"

        return greedy_outcome(self, proposals, totals, supporters, lambda pid: totals[pid] > 0, budget, params,
                              seed, describe, lambda pid: "nobody put a dot on it", len(counted))
