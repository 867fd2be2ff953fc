"""Quadratic voting (``quadratic``; voting-rules.md §2.1 and §5.2).

Each voter has ``credits`` voice credits. Putting v votes on a proposal costs v² credits (the
k-th vote costs 2k − 1), and the cost is **recomputed from the whole final ballot every time**:
the Allo v2 strategy re-added accumulated credits on each allocation and inflated votes (2023-09
Gitcoin audit, finding M-2). The tally is T_p = Σ_i v_{i,p}; proposals with T_p > 0 are funded by
(−T_p, TIE), skipping misfits. Negative votes (opt-in) cost the same and count negative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule
from fundcircle.voting.registry import register
from fundcircle.voting.rules._common import (
    check_ballots, check_int_mapping, count_supporters, greedy_outcome, no_ballots_outcome, plural, raise_if_errors,
)
from fundcircle.errors import ValidationError


def credits_used(votes: Mapping[str, int]) -> int:
    """Σ v² over the whole ballot: the only cost that counts (never an accumulated running total)."""
    return sum(v * v for v in votes.values())


@register
class QuadraticRule(Rule):
    id = "quadratic"
    name = "Quadratic voting"
    description = (
        "You have a budget of voice credits to spread over the proposals. One vote on a proposal costs 1 "
        "credit, two votes cost 4, three cost 9: each extra vote costs more, so piling everything on one "
        "favourite is expensive. Proposals with the most votes are funded until the money runs out."
    )
    ballot_kind = BallotKind.POINTS
    params = (
        Param("credits", int, 100, help="voice credits per voter; v votes on one proposal cost v²", min_value=1),
        Param("allow_negative", bool, False, help="allow votes against a proposal (they cost the same)"),
        Param("max_votes_per_proposal", int, None, help="most votes one voter may put on one proposal",
              min_value=1, optional=True),
    )

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        params = self.resolve_params(params)
        votes = check_int_mapping(ballot, proposals, "votes")
        errors: dict[str, list[str]] = {}
        cap = params["max_votes_per_proposal"]
        for proposal_id, count in votes.items():
            if count < 0 and not params["allow_negative"]:
                errors.setdefault(proposal_id, []).append("votes against a proposal are not allowed in this round")
            if cap is not None and abs(count) > cap:
                errors.setdefault(proposal_id, []).append(f"at most {cap} votes per proposal")
        raise_if_errors(errors)
        if not any(votes.values()):
            raise ValidationError("Your ballot is empty: put at least one vote on a proposal.",
                                  field_errors={"ballot": ["at least one vote"]})
        used = credits_used(votes)
        if used > params["credits"]:
            raise ValidationError(
                f"Your votes cost {used} credits but you have {params['credits']} "
                f"(v votes on one proposal cost v × v credits).",
                field_errors={"ballot": [f"{used} of {params['credits']} credits used"]})

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = self.resolve_params(params)
        check_ballots(self, ballots, proposals, budget, params)
        if not ballots:
            return no_ballots_outcome(self, params, budget, seed)
        values = [dict(b.value) for b in ballots]
        totals = {p.id: 0 for p in proposals}
        voters = {p.id: 0 for p in proposals}
        for value in values:
            for proposal_id, count in value.items():
                totals[proposal_id] += count
                voters[proposal_id] += 1 if count else 0
        supporters = count_supporters(values)

        def describe(pid: str) -> str:
            return f"{plural(totals[pid], 'vote')} from {plural(voters[pid], 'member')}"

        def not_eligible(pid: str) -> str:
            if voters[pid] == 0:
                return "nobody voted for it"
            return f"its votes add up to {totals[pid]} (not above zero)"

        return greedy_outcome(self, proposals, totals, supporters, lambda pid: totals[pid] > 0, budget, params,
                              seed, describe, not_eligible, len(values))
