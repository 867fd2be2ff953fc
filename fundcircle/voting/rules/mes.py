"""``mes``: the Method of Equal Shares with Add1 completion (voting-rules.md §3).

Every voter gets an equal share b of the budget. A proposal is bought when its supporters can pay
for it together; the one whose supporters pay the least each (the lowest price ρ) goes first, and
they pay equal shares, except those who have less left and pay everything they have. With Add1,
b rises one currency unit at a time while the outcome still fits the real budget.

Exact: money is scaled so every per-voter budget starts as an integer, and the arithmetic is
``fractions.Fraction`` (or gmpy2's ``mpq`` when installed; both are exact and give identical results;
set ``FUNDCIRCLE_EXACT=fraction`` to force Fraction).

Speed (§4.3): identical ballots are grouped with a weight; voters whose budgets are equal share a
*budget class*, so per-voter work is integer dictionary work and rational arithmetic happens once
per class; prices are re-evaluated lazily (ρ only rises within a run, so the last ρ is a lower bound).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule, TraceStep
from fundcircle.voting.registry import register
from fundcircle.voting.rules.approval_greedy import (
    check_approval_bounds,
    MAX_APPROVALS_PARAM, MIN_APPROVALS_PARAM, format_money, greedy_order, greedy_select, no_ballots_outcome,
    plural, screen, validate_approval_ballot, validate_approval_ballots,
)
from fundcircle.voting.tiebreak import tie_key_function

try:  # optional exact accelerator (LGPL); Fraction is the fallback and gives identical results
    from gmpy2 import mpq as _mpq
except ImportError:  # pragma: no cover - depends on the environment
    _mpq = None


def number_type() -> Callable[..., Any]:
    """The exact rational type used for MES arithmetic: mpq when available, else Fraction."""
    if _mpq is not None and os.environ.get("FUNDCIRCLE_EXACT", "").lower() != "fraction":
        return _mpq
    return Fraction


def to_fraction(value: Any) -> Fraction:
    return Fraction(int(value.numerator), int(value.denominator))


# --- the engine ------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One fixed-budget MES run: bought candidates in order, what each supporter paid at most (α,
    scaled money), the price ρ, how many supporters paid everything they had, and the final state."""

    bought: list[int]
    alpha: list[Any]
    rho: list[Any]
    poor_weight: list[int]
    cost_minor: int
    class_of: list[int]
    class_value: list[Any]


class MesEngine:
    """Candidates and grouped ballots prepared once; :meth:`run` is one fixed-budget MES run.

    Money inside is scaled by ``scale`` (= n · denominator of the step) so that B/n + k·step is an
    integer for every k.
    """

    def __init__(self, candidates: Sequence[Proposal], ballots: Sequence[Ballot], utility: str,
                 tie_key: Callable[[Proposal], tuple], scale: int) -> None:
        self.candidates = list(candidates)
        self.utility = utility
        self.scale = scale
        self.num = number_type()
        index = {p.id: i for i, p in enumerate(self.candidates)}
        groups: dict[frozenset[int], int] = {}
        for ballot in ballots:
            key = frozenset(index[pid] for pid in ballot.value if pid in index)
            groups[key] = groups.get(key, 0) + 1
        self.group_approvals = [sorted(g) for g in groups]
        self.group_weight = list(groups.values())
        m = len(self.candidates)
        self.supporters: list[list[int]] = [[] for _ in range(m)]
        for g, approvals in enumerate(self.group_approvals):
            for p in approvals:
                self.supporters[p].append(g)
        self.weight = [sum(self.group_weight[g] for g in self.supporters[p]) for p in range(m)]
        self.cost_minor = [p.cost_minor for p in self.candidates]
        self.cost_scaled = [c * scale for c in self.cost_minor]
        self.tie = [tie_key(p) for p in self.candidates]
        neighbours: list[set[int]] = [set() for _ in range(m)]
        for approvals in self.group_approvals:
            for p in approvals:
                neighbours[p].update(approvals)
        self.neighbours = [sorted(s - {p}) for p, s in enumerate(neighbours)]

    def _price(self, p: int, alpha: Any) -> Any:
        return alpha / self.cost_scaled[p] if self.utility == "cost" else alpha

    def _evaluate(self, p: int, class_of: list[int], class_value: list[Any]) -> tuple[Any, int] | None:
        """(α, weight of supporters who pay all they have) for p, or None when they cannot afford it."""
        weight_by_class: dict[int, int] = {}
        group_weight = self.group_weight
        for g in self.supporters[p]:
            c = class_of[g]
            if c:
                weight_by_class[c] = weight_by_class.get(c, 0) + group_weight[g]
        items = sorted((class_value[c], w) for c, w in weight_by_class.items())
        cost = self.cost_scaled[p]
        if sum(v * w for v, w in items) < cost:
            return None
        paid, left, poor = 0, sum(w for _, w in items), 0
        alpha = self.num(cost, left)
        for value, w in items:
            alpha = self.num(cost - paid, 1) / left
            if value < alpha:  # these voters pay everything they have left
                paid += value * w
                left -= w
                poor += w
            else:
                break
        return alpha, poor

    def run(self, per_voter_scaled: int) -> RunResult:
        """One MES run where every voter starts with ``per_voter_scaled`` (scaled money)."""
        num, m = self.num, len(self.candidates)
        class_value: list[Any] = [num(0), num(per_voter_scaled)]  # class 0: nothing left
        class_of = [1] * len(self.group_weight)
        fresh = [True] * m
        version = [0] * m
        alpha_now: list[Any] = [None] * m
        poor_now = [0] * m
        heap: list[tuple] = []
        for p in range(m):
            if self.weight[p] * per_voter_scaled >= self.cost_scaled[p]:
                alpha_now[p] = num(self.cost_scaled[p], self.weight[p])
                heap.append((self._price(p, alpha_now[p]), self.tie[p], p, 0))
        heapq.heapify(heap)
        done = [False] * m
        result = RunResult([], [], [], [], 0, class_of, class_value)
        while heap:
            _, tie, p, ver = heapq.heappop(heap)
            if done[p] or ver != version[p]:
                continue
            if not fresh[p]:
                evaluated = self._evaluate(p, class_of, class_value)
                version[p] += 1
                if evaluated is None:  # budgets only fall: it stays unaffordable for this run
                    done[p] = True
                    continue
                alpha_now[p], poor_now[p] = evaluated
                fresh[p] = True
                heapq.heappush(heap, (self._price(p, alpha_now[p]), tie, p, version[p]))
                continue
            self._buy(p, alpha_now[p], class_of, class_value)
            done[p] = True
            result.bought.append(p)
            result.alpha.append(alpha_now[p])
            result.rho.append(self._price(p, alpha_now[p]))
            result.poor_weight.append(poor_now[p])
            result.cost_minor += self.cost_minor[p]
            for q in self.neighbours[p]:
                fresh[q] = False
        return result

    def _buy(self, p: int, alpha: Any, class_of: list[int], class_value: list[Any]) -> None:
        """Each supporter pays min(budget, α); voters in one class stay together in a new class."""
        moved: dict[int, int] = {}
        for g in self.supporters[p]:
            c = class_of[g]
            if not c:
                continue
            new = moved.get(c)
            if new is None:
                value = class_value[c]
                if value > alpha:
                    class_value.append(value - alpha)
                    new = len(class_value) - 1
                else:
                    new = 0
                moved[c] = new
            class_of[g] = new

    def supporters_money(self, p: int, result: RunResult) -> Any:
        """What p's supporters had left at the end of a run (scaled money)."""
        total = self.num(0)
        for g in self.supporters[p]:
            total += result.class_value[result.class_of[g]] * self.group_weight[g]
        return total


@dataclass
class Completion:
    """The run kept by the completion loop, its per-voter budget, and the loop's story."""

    result: RunResult
    per_voter_scaled: int
    runs: int
    overspend_minor: int | None


def complete(engine: MesEngine, budget_minor: int, start_scaled: int, step_scaled: int, mode: str) -> Completion:
    """§3.2: ``none`` = one run; ``add1`` = raise b by step until the NEXT run would overspend (the
    official elections); ``add1-exhaustive`` = pabutools' early stop at the first exhaustive outcome."""
    per_voter = start_scaled
    current = engine.run(per_voter)
    runs = 1
    everything = len(engine.candidates)
    while mode != "none" and len(current.bought) < everything:
        if mode == "add1-exhaustive" and _exhaustive(engine, current, budget_minor):
            break
        following = engine.run(per_voter + step_scaled)
        runs += 1
        if following.cost_minor > budget_minor:
            return Completion(current, per_voter, runs, following.cost_minor)
        current, per_voter = following, per_voter + step_scaled
    return Completion(current, per_voter, runs, None)


def _exhaustive(engine: MesEngine, result: RunResult, budget_minor: int) -> bool:
    left = budget_minor - result.cost_minor
    bought = set(result.bought)
    return all(engine.cost_minor[p] > left for p in range(len(engine.candidates)) if p not in bought)


# --- the rule --------------------------------------------------------------------------------


@register
class MethodOfEqualShares(Rule):
    id = "mes"
    name = "Method of Equal Shares"
    description = ("Approve every proposal you like. The budget is split into equal shares, one per voter. "
                   "A proposal is funded when the people who approved it can pay for it together from their "
                   "shares; the proposals that cost each supporter least are funded first. So every group of "
                   "voters gets a fair part of the budget, not only the largest group.")
    ballot_kind = BallotKind.APPROVAL
    params = (
        Param("utility", str, "cost", choices=("cost", "cardinality"),
              help="a voter's benefit from a proposal: its cost (official elections) or 1"),
        Param("completion", str, "add1", choices=("add1", "add1-exhaustive", "none"),
              help="add1: raise the per-voter budget step by step until the next step would overspend; "
                   "add1-exhaustive: stop at the first outcome where nothing else fits; none: one run"),
        Param("step", Fraction, Fraction(1), help="Add1 step per voter, in currency units"),
        Param("topup", str, "none", choices=("none", "greedy"),
              help="afterwards, fund remaining proposals by votes while they fit"),
        Param("comparison", str, "none", choices=("none", "satisfaction", "exclusion"),
              help="compare with approval-greedy; keep greedy only if more voters prefer it"),
        Param("support_factor", Fraction, None, optional=True,
              help="eligibility: drop p when votes/n < cost/(factor·budget) (Świecie: 3)"),
        MIN_APPROVALS_PARAM,
        MAX_APPROVALS_PARAM,
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if params["step"] <= 0:
            raise ValidationError("parameter 'step' must be more than 0", field_errors={"step": ["must be > 0"]})
        if params["support_factor"] is not None and params["support_factor"] <= 0:
            raise ValidationError("parameter 'support_factor' must be more than 0",
                                  field_errors={"support_factor": ["must be > 0"]})
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
        votes, n, unit = screening.votes, screening.n, budget.unit_minor
        trace = list(screening.trace)
        candidates = self._eligible(screening.candidates, votes, n, budget, params, trace)
        tie_key = tie_key_function(params["tie_order"], seed, votes)
        step_minor = params["step"] * unit
        scale = n * step_minor.denominator
        engine = MesEngine(candidates, valid, params["utility"], tie_key, scale)
        start_scaled = budget.amount_minor * step_minor.denominator  # (B/n) · scale
        step_scaled = step_minor.numerator * n  # step · scale
        done = complete(engine, budget.amount_minor, start_scaled, step_scaled, params["completion"])
        per_voter = Fraction(done.per_voter_scaled, scale)
        trace.append(self._budget_sentence(params, budget, n, per_voter, done))
        funded = {p.id: 0 for p in screening.free}
        mes_ids = self._mes_trace(engine, done.result, votes, per_voter, unit, scale, trace)
        funded.update({pid: engine.cost_minor[i] for pid, i in mes_ids})
        if params["topup"] == "greedy":
            self._topup(candidates, votes, tie_key, budget, funded, trace)
        summary: dict[str, Any] = {
            "n": n, "runs": done.runs, "per_voter_budget_minor": per_voter,
            "groups": len(engine.group_weight), "mes_cost_minor": sum(funded.values()),
        }
        if done.overspend_minor is not None:
            summary["next_step_cost_minor"] = done.overspend_minor
        if params["comparison"] != "none":
            funded = self._compare(candidates, screening, valid, tie_key, budget, params, funded, trace, summary)
        return Outcome(self.id, params, funded, dict(votes), trace, seed=seed, budget_minor=budget.amount_minor,
                       summary=summary)

    # -- steps -------------------------------------------------------------------------------

    def _eligible(self, candidates: list[Proposal], votes: Mapping[str, int], n: int, budget: Budget,
                  params: Mapping[str, Any], trace: list[TraceStep]) -> list[Proposal]:
        """§3.5: with support_factor k, drop p when votes_p/n < c_p/(k·B), i.e. k·B·votes_p < n·c_p."""
        factor = params["support_factor"]
        if factor is None:
            return candidates
        kept = []
        for p in candidates:
            if factor * budget.amount_minor * votes[p.id] < n * p.cost_minor:
                share = Fraction(votes[p.id] * 10000, n)
                needed = Fraction(p.cost_minor * 10000, 1) / (factor * budget.amount_minor)
                trace.append(TraceStep(
                    "screen", f"Not eligible: {format_money(share, 100)}% of voters approved it, below the "
                    f"{format_money(needed, 100)}% that its cost requires (cost ÷ ({factor} × budget)).", p.id,
                    {"votes": votes[p.id], "n": n, "support_factor": factor}))
            else:
                kept.append(p)
        return kept

    @staticmethod
    def _budget_sentence(params: Mapping[str, Any], budget: Budget, n: int, per_voter: Fraction,
                         done: Completion) -> TraceStep:
        unit = budget.unit_minor
        start = Fraction(budget.amount_minor, n)
        text = (f"Each of the {n:,} voters started with an equal share of {format_money(start, unit)} "
                f"({format_money(budget.amount_minor, unit)} ÷ {n:,}).")
        if params["completion"] != "none" and done.runs > 1:
            text += (f" Add1: the share was raised in steps of {format_money(params['step'] * unit, unit)} to "
                     f"{format_money(per_voter, unit)} ({done.runs:,} runs)")
            if done.overspend_minor is not None:
                text += (f"; one more step would have spent {format_money(done.overspend_minor, unit)}, more than "
                         f"the budget.")
            else:
                text += "."
        return TraceStep("info", text, None, {"n": n, "per_voter_budget_minor": per_voter, "runs": done.runs})

    @staticmethod
    def _mes_trace(engine: MesEngine, result: RunResult, votes: Mapping[str, int], per_voter: Fraction, unit: int,
                   scale: int, trace: list[TraceStep]) -> list[tuple[str, int]]:
        bought = []
        for p, alpha, rho, poor in zip(result.bought, result.alpha, result.rho, result.poor_weight):
            pid = engine.candidates[p].id
            alpha_minor = to_fraction(alpha) / scale
            text = (f"Funded: {plural(votes[pid], 'voter')} approved it; each paid at most "
                    f"{format_money(alpha_minor, unit)}")
            text += f" ({poor:,} of them paid all they had left)." if poor else "."
            trace.append(TraceStep("fund", text, pid, {"votes": votes[pid], "alpha_minor": alpha_minor,
                                                       "rho": to_fraction(rho), "cost_minor": engine.cost_minor[p]}))
            bought.append((pid, p))
        chosen = set(result.bought)
        for p in range(len(engine.candidates)):
            if p in chosen:
                continue
            pid = engine.candidates[p].id
            money = to_fraction(engine.supporters_money(p, result)) / scale
            trace.append(TraceStep(
                "skip", f"Not funded: its {plural(votes[pid], 'supporter')} had only {format_money(money, unit)} "
                f"left, it needed {format_money(engine.cost_minor[p], unit)}.", pid,
                {"votes": votes[pid], "supporters_money_minor": money, "cost_minor": engine.cost_minor[p]}))
        return bought

    @staticmethod
    def _topup(candidates: Sequence[Proposal], votes: Mapping[str, int], tie_key: Callable, budget: Budget,
               funded: dict[str, int], trace: list[TraceStep]) -> None:
        """§3.3: add remaining proposals by (−votes, TIE) while they fit the money left."""
        left = budget.amount_minor - sum(funded.values())
        for p in greedy_order([p for p in candidates if p.id not in funded], votes, "votes", tie_key):
            if p.cost_minor <= left:
                left -= p.cost_minor
                funded[p.id] = p.cost_minor
                trace.append(TraceStep("fund", f"Funded in the top-up: {plural(votes[p.id], 'voter')} approved it "
                                       f"and it fit the {format_money(left + p.cost_minor, budget.unit_minor)} "
                                       f"left.", p.id, {"votes": votes[p.id]}))

    @staticmethod
    def _compare(candidates: Sequence[Proposal], screening: Any, ballots: Sequence[Ballot], tie_key: Callable,
                 budget: Budget, params: Mapping[str, Any], funded: dict[str, int], trace: list[TraceStep],
                 summary: dict[str, Any]) -> dict[str, int]:
        """§3.4: greedy G on the same proposals; keep G only if strictly more ballots prefer it."""
        free = {p.id: 0 for p in screening.free}
        greedy = greedy_select(greedy_order(candidates, screening.votes, "votes", tie_key), budget.amount_minor)
        greedy_ids = set(free) | {p.id for p in greedy}
        mes_ids = set(funded)
        prefer_mes = prefer_greedy = 0
        for ballot in ballots:
            s_mes = len(ballot.value & mes_ids)
            s_greedy = len(ballot.value & greedy_ids)
            if params["comparison"] == "exclusion":
                s_mes, s_greedy = int(s_mes > 0), int(s_greedy > 0)
            prefer_mes += s_mes > s_greedy
            prefer_greedy += s_greedy > s_mes
        summary.update(prefer_mes=prefer_mes, prefer_greedy=prefer_greedy)
        if prefer_greedy > prefer_mes:
            trace.append(TraceStep("info", f"Comparison: {prefer_greedy:,} voters prefer the most-votes-first "
                                   f"outcome and {prefer_mes:,} prefer Equal Shares, so the most-votes-first "
                                   f"outcome is used.", None, {"prefer_mes": prefer_mes,
                                                               "prefer_greedy": prefer_greedy}))
            return {**free, **{p.id: p.cost_minor for p in greedy}}
        trace.append(TraceStep("info", f"Comparison: {prefer_mes:,} voters prefer the Equal Shares outcome and "
                               f"{prefer_greedy:,} prefer most-votes-first, so Equal Shares is kept.", None,
                               {"prefer_mes": prefer_mes, "prefer_greedy": prefer_greedy}))
        return funded
