"""``phragmen``: sequential Phragmén (voting-rules.md §2.1).

Voters earn money at rate 1 per unit of time. A proposal can be bought at the moment t_p when its
supporters, pooling what they have earned since their last purchase, can pay for it:
t_p = (c_p + Σ loads of its supporters) / |supporters|. The proposal with the earliest moment is
bought first, and its supporters' loads become that moment.

Exact: loads are rationals (Fraction, or gmpy2 ``mpq`` when available, as in ``mes``). A voter's
load is always the moment of the last proposal it helped buy, so voters are grouped by that
proposal and rational arithmetic happens once per group. Moments only rise, so the last computed
moment is a lower bound and proposals are re-evaluated lazily.
"""

from __future__ import annotations

import heapq
from collections import deque
from itertools import repeat
from math import gcd
from collections.abc import Mapping, Sequence
from typing import Any

from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule, TraceStep
from fundcircle.voting.registry import register
from fundcircle.voting.rules._common import (
    MAX_APPROVALS_PARAM, MIN_APPROVALS_PARAM, ApprovalGroups, approval_ballots, check_approval_bounds,
    format_units, no_approval_ballots_outcome, number_type, plural_thousands, screen, to_fraction,
    validate_approval_ballot,
)
from fundcircle.voting.tiebreak import tie_key_function


class PhragmenEngine(ApprovalGroups):
    """Grouped ballots and the lazy sequential-Phragmén loop's state."""

    def __init__(self, candidates: Sequence[Proposal], groups: Mapping[frozenset[str], int] | Sequence[Ballot]) -> None:
        super().__init__(candidates, groups)
        self.num = number_type()
        #: load_class[g]: index into load_value of the group's current load (0 = no load yet)
        self.load_class = [0] * len(self.group_weight)
        self.load_value: list[Any] = [self.num(0)]
        # every load is the moment of one purchase: kept also as integers over one common
        # denominator, so that a moment is an integer dot product and one reduced fraction
        self.load_scaled: list[int] = [0]
        self.load_denominator = 1

    def moment(self, p: int) -> Any:
        """t_p = (c_p + Σ_{i∈S_p} ℓ_i) / |S_p|."""
        scaled, load_class = self.load_scaled, self.load_class
        loads = sum(map(scaled.__getitem__, map(load_class.__getitem__, self.single_supporters[p])))
        heavy = self.heavy_supporters[p]
        if heavy:
            loads += sum([weight * scaled[load_class[g]] for g, weight in heavy])
        den = self.load_denominator
        return self.num(loads + self.candidates[p].cost_minor * den, den * self.weight[p])

    def buy(self, p: int, moment: Any) -> None:
        self.load_value.append(moment)
        den, d = self.load_denominator, moment.denominator
        if den % d:
            grown = den // gcd(den, d) * d
            factor = grown // den
            self.load_scaled = [x * factor for x in self.load_scaled]
            self.load_denominator = den = grown
        self.load_scaled.append(moment.numerator * (den // d))
        # every supporter's load becomes this moment: one C loop over the supporting groups
        deque(map(self.load_class.__setitem__, self.supporters[p], repeat(len(self.load_value) - 1)), 0)


@register
class SequentialPhragmen(Rule):
    id = "phragmen"
    name = "Sequential Phragmén"
    description = ("Approve every proposal you like. Think of every voter earning money at the same steady "
                   "rate: a proposal is funded as soon as the people who approved it have earned enough together "
                   "to pay for it, and they then spend what they had. Proposals whose supporters can pay "
                   "soonest are funded first, so support is spread fairly among voters.")
    ballot_kind = BallotKind.APPROVAL
    params = (
        MIN_APPROVALS_PARAM,
        MAX_APPROVALS_PARAM,
        Param("overflow", str, "stop", choices=("stop", "skip"),
              help="when the next proposal does not fit the money left: stop (classical) or skip it and go on"),
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        check_approval_bounds(params)

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        validate_approval_ballot(ballot, proposals, params)

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = dict(params)
        valid, groups = approval_ballots(self, ballots, proposals, budget, params)
        if not valid:
            return no_approval_ballots_outcome(self.id, params, budget, seed)
        screening = screen(proposals, valid, budget, seed, params["tie_order"], groups)
        votes, unit, trace = screening.votes, budget.unit_minor, list(screening.trace)
        tie_key = tie_key_function(params["tie_order"], seed, votes)
        engine = PhragmenEngine(screening.candidates, screening.groups)
        funded = {p.id: 0 for p in screening.free}
        summary: dict[str, Any] = {"n": screening.n, "tied_misfit": False}
        left = budget.amount_minor
        m = len(engine.candidates)
        cost = [p.cost_minor for p in engine.candidates]
        # before any purchase every load is 0: t_p = c_p / |S_p|, no supporters to add up
        heap = [(engine.num(cost[p], engine.weight[p]), tie_key(q), p, 0) for p, q in enumerate(engine.candidates)]
        heapq.heapify(heap)
        # each live candidate has exactly one heap entry, stamped with the number of purchases when its
        # moment was computed: an entry from before the last purchase is a lower bound (moments only
        # rise) and is recomputed when it comes to the top, so no neighbour lists are needed
        bought = 0
        overflow_stop = params["overflow"] == "stop"
        stopped_at: int | None = None
        while heap:
            moment, tie, p, stamp = heap[0]
            if stamp != bought:
                fresh = engine.moment(p)
                if fresh != moment:
                    heapq.heapreplace(heap, (fresh, tie, p, bought))
                    continue
            heapq.heappop(heap)
            proposal = engine.candidates[p]
            cost_p = cost[p]
            exact_moment = to_fraction(moment)
            data = {"votes": votes[proposal.id], "moment": exact_moment, "cost_minor": cost_p, "left_minor": left}
            if not summary["tied_misfit"] and heap and heap[0][0] == moment:
                tied = self._tied(engine, heap, moment)
                if tied and any(cost[q] > left for q in [p, *tied]):
                    # pabutools stops when ANY proposal tied at the earliest moment misfits; we follow
                    # the declared tie order (§2.1). Recorded so oracle tests can tell the two apart.
                    summary["tied_misfit"] = True
            if cost_p > left:
                if overflow_stop:
                    stopped_at = p
                    supporters = plural_thousands(votes[proposal.id], "supporter")
                    trace.append(TraceStep("stop", f"Not funded: its {supporters} "
                                           f"could pay for it next, but it needed "
                                           f"{format_units(cost_p, unit)} and only "
                                           f"{format_units(left, unit)} was left, so the rule stops here.",
                                           proposal.id, data))
                    break
                trace.append(TraceStep("skip", f"Not funded: it needed {format_units(cost_p, unit)} "
                                       f"and only {format_units(left, unit)} was left.", proposal.id, data))
                continue
            engine.buy(p, moment)
            bought += 1
            left -= cost_p
            funded[proposal.id] = cost_p
            supporters = plural_thousands(votes[proposal.id], "supporter")
            trace.append(TraceStep("fund", f"Funded: its {supporters} had earned "
                                   f"enough together at moment {float(exact_moment):.6g} (earliest of the "
                                   f"remaining proposals); it costs {format_units(cost_p, unit)}.",
                                   proposal.id, data))
        for p in range(m):
            pid = engine.candidates[p].id
            if pid not in funded and p != stopped_at and stopped_at is not None:
                trace.append(TraceStep("skip", "Not funded: the rule stopped before reaching it.", pid,
                                       {"votes": votes[pid]}))
        return Outcome(self.id, params, funded, dict(votes), trace, seed=seed, budget_minor=budget.amount_minor,
                       summary=summary)

    @staticmethod
    def _tied(engine: PhragmenEngine, heap: list[tuple], moment: Any) -> list[int]:
        """Other proposals whose moment is exactly the chosen one's. Heap bounds never exceed the true
        moment and none is below the chosen moment, so only entries whose bound equals it can tie."""
        return [q for bound, _, q, _ in heap if bound == moment and engine.moment(q) == moment]
