"""Score voting (``score``): rate proposals, rank by total (or average), fund greedily.

The machinery it shares with the other ranked rules (ranking, greedy funding, ballot checks, trace
wording) is in :mod:`fundcircle.voting.rules._common`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule
from fundcircle.voting.registry import register
from fundcircle.voting.rules._common import (
    RankValue, check_ballots, check_int_mapping, count_supporters, format_fraction, greedy_outcome, no_ballots_outcome,
    plural, raise_if_errors,
)

# --- the score rule ----------------------------------------------------------------------------


@register
class ScoreRule(Rule):
    """Score voting (voting-rules.md §2.1 ``score``; Loomio's score poll).

    Each voter rates any proposals they like with a whole number in [min_score, max_score]; an
    unrated proposal adds nothing and has no rater. Proposals are ranked by total (or, with
    ``rank_by=average``, by the exact mean over their raters, needing ``min_raters``) and funded
    greedily, skipping misfits. A proposal is only funded with a total (or average) above zero:
    a zero score is no support. An empty ballot is an abstention.
    """

    id = "score"
    name = "Score voting"
    description = (
        "Give each proposal you have an opinion on a score (by default from 0 to 5). "
        "Proposals are ranked by their total score and funded from the top until the money runs out; "
        "a proposal too expensive for what is left is skipped."
    )
    ballot_kind = BallotKind.SCORES
    params = (
        Param("min_score", int, 0, help="lowest score a voter can give"),
        Param("max_score", int, 5, help="highest score a voter can give"),
        Param("rank_by", str, "total", help="rank by total score or by average over raters",
              choices=("total", "average")),
        Param("min_raters", int, 1, help="with rank_by=average, raters a proposal needs", min_value=1),
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if params["min_score"] >= params["max_score"]:
            raise ValidationError("min_score must be lower than max_score",
                                  field_errors={"min_score": ["must be lower than max_score"]})

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        params = self.resolve_params(params)
        scores = check_int_mapping(ballot, proposals, "score")
        low, high = params["min_score"], params["max_score"]
        errors = {pid: [f"score {score} is outside {low}..{high}"] for pid, score in scores.items()
                  if not low <= score <= high}
        raise_if_errors(errors)

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = self.resolve_params(params)
        check_ballots(self, ballots, proposals, budget, params)
        counted = [dict(b.value) for b in ballots if b.value]  # empty ballot = abstention
        if not counted:
            return no_ballots_outcome(self, params, budget, seed)
        totals: dict[str, int] = {p.id: 0 for p in proposals}
        raters: dict[str, int] = {p.id: 0 for p in proposals}
        for value in counted:
            for proposal_id, score in value.items():
                totals[proposal_id] += score
                raters[proposal_id] += 1
        by_average = params["rank_by"] == "average"
        rank_values: dict[str, RankValue] = {
            pid: (Fraction(totals[pid], raters[pid]) if raters[pid] else Fraction(0)) if by_average else totals[pid]
            for pid in totals
        }
        supporters = count_supporters(counted)

        def eligible(pid: str) -> bool:
            enough_raters = raters[pid] >= params["min_raters"] if by_average else raters[pid] > 0
            return enough_raters and rank_values[pid] > 0

        def describe(pid: str) -> str:
            if by_average:
                return (f"an average score of {format_fraction(rank_values[pid])} from "
                        f"{plural(raters[pid], 'rater')}")
            return f"a total score of {totals[pid]} from {plural(raters[pid], 'rater')}"

        def not_eligible(pid: str) -> str:
            if raters[pid] == 0:
                return "nobody rated it"
            if by_average and raters[pid] < params["min_raters"]:
                return (f"only {plural(raters[pid], 'member')} rated it and it needs at least "
                        f"{params['min_raters']}")
            return f"its score ({describe(pid)}) is not above zero"

        return greedy_outcome(self, proposals, rank_values, supporters, eligible, budget, params, seed,
                              describe, not_eligible, len(counted))
