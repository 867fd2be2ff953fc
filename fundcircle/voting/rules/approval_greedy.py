"""``approval-greedy``: fund the most-approved proposals first, skipping what no longer fits
(voting-rules.md §2.1; pabulib ``greedy``).

The approval-ballot helpers it shares with ``mes`` and ``phragmen`` (ballot validation, the
screening of §0, money in sentences) are in :mod:`fundcircle.voting.rules._common`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule, TraceStep
from fundcircle.voting.registry import register
from fundcircle.voting.rules._common import (
    MAX_APPROVALS_PARAM, MIN_APPROVALS_PARAM, check_approval_bounds, format_units, greedy_order,
    no_approval_ballots_outcome, plural_thousands, screen, validate_approval_ballot, approval_ballots,
)
from fundcircle.voting.tiebreak import tie_key_function

#: fundcircle.cli imports the approval rules' money formatter under this name from here
format_money = format_units


@register
class ApprovalGreedy(Rule):
    id = "approval-greedy"
    name = "Approval voting, most votes first"
    description = ("Approve every proposal you like. Proposals are funded in order of how many people "
                   "approved them; a proposal that no longer fits the money left is skipped and the next "
                   "one is tried.")
    ballot_kind = BallotKind.APPROVAL
    params = (
        MIN_APPROVALS_PARAM,
        MAX_APPROVALS_PARAM,
        Param("max_ballot_cost", int, None, optional=True, min_value=0,
              help="most a ballot's approved proposals may cost together, in minor units (empty = no limit)"),
        Param("order", str, "votes", choices=("votes", "votes_per_cost"),
              help="rank by votes, or by votes per unit of cost"),
        Param("skip", bool, True, help="skip a proposal that does not fit and go on (false: stop there)"),
        Param("min_votes", int, 0, min_value=0, help="proposals with fewer votes are not eligible"),
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        check_approval_bounds(params)

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        validate_approval_ballot(ballot, proposals, params)
        limit = params.get("max_ballot_cost")
        if limit is not None:
            costs = {p.id: p.cost_minor for p in proposals}
            total = sum(costs[pid] for pid in ballot.value)
            if total > limit:
                raise ValidationError(
                    f"The proposals you approved cost {format_units(total, budget.unit_minor)} together; "
                    f"the limit is {format_units(limit, budget.unit_minor)}.",
                    field_errors={"ballot": ["over the cost limit"]})

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = dict(params)
        valid, groups = approval_ballots(self, ballots, proposals, budget, params)
        if not valid:
            return no_approval_ballots_outcome(self.id, params, budget, seed)
        screening = screen(proposals, valid, budget, seed, params["tie_order"], groups)
        votes, unit, trace = screening.votes, budget.unit_minor, list(screening.trace)
        funded = {p.id: 0 for p in screening.free}
        eligible = []
        for p in screening.candidates:
            if votes[p.id] < params["min_votes"]:
                trace.append(TraceStep("screen", f"Not funded: {plural_thousands(votes[p.id], 'vote')}, below the "
                                       f"minimum of {params['min_votes']:,}.", p.id, {"votes": votes[p.id]}))
            else:
                eligible.append(p)
        tie_key = tie_key_function(params["tie_order"], seed, votes)
        ordered = greedy_order(eligible, votes, params["order"], tie_key)
        spent, stopped = 0, False
        for p in ordered:
            left = budget.amount_minor - spent
            data = {"votes": votes[p.id], "cost_minor": p.cost_minor, "left_minor": left}
            if stopped:
                trace.append(TraceStep("skip", "Not funded: the rule stops at the first proposal that does not fit.",
                                       p.id, data))
            elif p.cost_minor <= left:
                spent += p.cost_minor
                funded[p.id] = p.cost_minor
                trace.append(TraceStep("fund", f"Funded: {plural_thousands(votes[p.id], 'voter')} approved it; it "
                                       f"costs {format_units(p.cost_minor, unit)}, leaving "
                                       f"{format_units(left - p.cost_minor, unit)}.", p.id, data))
            else:
                stopped = not params["skip"]
                trace.append(TraceStep("skip", f"Not funded: {plural_thousands(votes[p.id], 'voter')} approved it, "
                                       f"but it needed {format_units(p.cost_minor, unit)} and only "
                                       f"{format_units(left, unit)} was left.", p.id, data))
        scores: dict[str, int | Fraction] = dict(votes) if params["order"] == "votes" else {
            p.id: Fraction(votes[p.id], p.cost_minor) if p.cost_minor else Fraction(votes[p.id]) for p in proposals}
        return Outcome(self.id, params, funded, scores, trace, seed=seed, budget_minor=budget.amount_minor,
                       summary={"n": screening.n, "spent_minor": spent + 0})
