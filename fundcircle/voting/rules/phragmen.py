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
from collections.abc import Mapping, Sequence
from typing import Any

from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule, TraceStep
from fundcircle.voting.registry import register
from fundcircle.voting.rules.approval_greedy import (
    check_approval_bounds,
    MAX_APPROVALS_PARAM, MIN_APPROVALS_PARAM, format_money, no_ballots_outcome, plural, screen,
    validate_approval_ballot, validate_approval_ballots,
)
from fundcircle.voting.rules.mes import number_type, to_fraction
from fundcircle.voting.tiebreak import tie_key_function


class PhragmenEngine:
    """Grouped ballots and the lazy sequential-Phragmén loop."""

    def __init__(self, candidates: Sequence[Proposal], ballots: Sequence[Ballot]) -> None:
        self.candidates = list(candidates)
        self.num = number_type()
        index = {p.id: i for i, p in enumerate(self.candidates)}
        groups: dict[frozenset[int], int] = {}
        for ballot in ballots:
            key = frozenset(index[pid] for pid in ballot.value if pid in index)
            if key:
                groups[key] = groups.get(key, 0) + 1
        self.group_approvals = [sorted(g) for g in groups]
        self.group_weight = list(groups.values())
        m = len(self.candidates)
        self.supporters: list[list[int]] = [[] for _ in range(m)]
        for g, approvals in enumerate(self.group_approvals):
            for p in approvals:
                self.supporters[p].append(g)
        self.weight = [sum(self.group_weight[g] for g in self.supporters[p]) for p in range(m)]
        neighbours: list[set[int]] = [set() for _ in range(m)]
        for approvals in self.group_approvals:
            for p in approvals:
                neighbours[p].update(approvals)
        self.neighbours = [sorted(s - {p}) for p, s in enumerate(neighbours)]
        #: load_class[g]: index into load_value of the group's current load (0 = no load yet)
        self.load_class = [0] * len(self.group_weight)
        self.load_value: list[Any] = [self.num(0)]

    def moment(self, p: int) -> Any:
        """t_p = (c_p + Σ_{i∈S_p} ℓ_i) / |S_p|."""
        weight_by_class: dict[int, int] = {}
        for g in self.supporters[p]:
            c = self.load_class[g]
            if c:
                weight_by_class[c] = weight_by_class.get(c, 0) + self.group_weight[g]
        loads = sum((self.load_value[c] * w for c, w in weight_by_class.items()), self.num(0))
        return (loads + self.candidates[p].cost_minor) / self.weight[p]

    def buy(self, p: int, moment: Any) -> None:
        self.load_value.append(moment)
        new_class = len(self.load_value) - 1
        for g in self.supporters[p]:
            self.load_class[g] = new_class


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
        valid = validate_approval_ballots(self, ballots, proposals, budget, params)
        if not valid:
            return no_ballots_outcome(self.id, params, budget, seed)
        screening = screen(proposals, valid, budget, seed, params["tie_order"])
        votes, unit, trace = screening.votes, budget.unit_minor, list(screening.trace)
        tie_key = tie_key_function(params["tie_order"], seed, votes)
        engine = PhragmenEngine(screening.candidates, valid)
        funded = {p.id: 0 for p in screening.free}
        summary: dict[str, Any] = {"n": screening.n, "tied_misfit": False}
        left = budget.amount_minor
        m = len(engine.candidates)
        ties = [tie_key(p) for p in engine.candidates]
        heap = [(engine.moment(p), ties[p], p, 0) for p in range(m)]
        heapq.heapify(heap)
        fresh, version, done = [True] * m, [0] * m, [False] * m
        stopped_at: int | None = None
        while heap:
            moment, tie, p, ver = heapq.heappop(heap)
            if done[p] or ver != version[p]:
                continue
            if not fresh[p]:
                version[p] += 1
                fresh[p] = True
                heapq.heappush(heap, (engine.moment(p), tie, p, version[p]))
                continue
            proposal = engine.candidates[p]
            data = {"votes": votes[proposal.id], "moment": to_fraction(moment), "cost_minor": proposal.cost_minor,
                    "left_minor": left}
            tied = self._tied(engine, heap, moment, version, done, p)
            if tied and any(engine.candidates[q].cost_minor > left for q in [p, *tied]):
                # pabutools stops when ANY proposal tied at the earliest moment misfits; we follow
                # the declared tie order (§2.1). Recorded so oracle tests can tell the two apart.
                summary["tied_misfit"] = True
            if proposal.cost_minor > left:
                done[p] = True
                if params["overflow"] == "stop":
                    stopped_at = p
                    trace.append(TraceStep("stop", f"Not funded: its {plural(votes[proposal.id], 'supporter')} "
                                           f"could pay for it next, but it needed "
                                           f"{format_money(proposal.cost_minor, unit)} and only "
                                           f"{format_money(left, unit)} was left, so the rule stops here.",
                                           proposal.id, data))
                    break
                trace.append(TraceStep("skip", f"Not funded: it needed {format_money(proposal.cost_minor, unit)} "
                                       f"and only {format_money(left, unit)} was left.", proposal.id, data))
                continue
            engine.buy(p, moment)
            done[p] = True
            left -= proposal.cost_minor
            funded[proposal.id] = proposal.cost_minor
            for q in engine.neighbours[p]:
                fresh[q] = False
            trace.append(TraceStep("fund", f"Funded: its {plural(votes[proposal.id], 'supporter')} had earned "
                                   f"enough together at moment {float(to_fraction(moment)):.6g} (earliest of the "
                                   f"remaining proposals); it costs {format_money(proposal.cost_minor, unit)}.",
                                   proposal.id, data))
        for p in range(m):
            pid = engine.candidates[p].id
            if pid not in funded and p != stopped_at and stopped_at is not None:
                trace.append(TraceStep("skip", "Not funded: the rule stopped before reaching it.", pid,
                                       {"votes": votes[pid]}))
        return Outcome(self.id, params, funded, dict(votes), trace, seed=seed, budget_minor=budget.amount_minor,
                       summary=summary)

    @staticmethod
    def _tied(engine: PhragmenEngine, heap: list[tuple], moment: Any, version: list[int], done: list[bool],
              chosen: int) -> list[int]:
        """Other proposals whose moment is exactly the chosen one's. Heap bounds never exceed the true
        moment and none is below the chosen moment, so only entries whose bound equals it can tie."""
        tied = []
        for bound, _, q, ver in heap:
            if q != chosen and not done[q] and ver == version[q] and bound == moment and engine.moment(q) == moment:
                tied.append(q)
        return tied
