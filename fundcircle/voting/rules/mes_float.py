"""Certified float runs of MES: what one fixed-budget run buys, fast, or None when unsure.

Add1 runs MES once per budget step (267 runs on a synthetic 300 × 20,000 election) but keeps only
the last run's amounts; every earlier run only has to say *what it buys*. :class:`FloatRuns`
decides that in float64 with numpy, one budget per group of identical ballots, and carries a
proven bound on every error, so that it takes a decision only when the bound makes it certain:

- which supporters of a project are short (their budget below the price α, so they pay all they
  have) and which pay α: every budget is within its error bound of the exact one, and α, computed
  from that split, within ``δα`` of the exact α of the same split. When every supporter clears α
  by more than both bounds, the split is the exact run's and so is α, within ``δα``;
- whether the supporters can afford the project: their money against its cost, with the error of
  the sum;
- which project goes next: its price against every other price or lower bound, by more than twice
  the largest price error. A price with nobody short is the exact rational cost/supporters (per
  unit of utility), so the many exact ties between such prices are broken by the tie order, as
  the exact engine breaks them.

When a bound cannot settle a decision, :meth:`FloatRuns.run` returns None and the caller runs the
exact engine (:class:`fundcircle.voting.rules.mes.MesEngine`) for that budget. The run Add1 keeps
is always computed exactly (its amounts go into the trace), and :func:`complete_with_float`
checks that it bought what the float run said.

The same run is compiled in the optional extension ``_mes_float_c`` (same algorithm, operations
and bounds; its masked sums are numpy's pairwise sum where numpy's dot products ``xw @ short``
take BLAS's order, which depends on the machine: the bounds hold for any order, so the two can
differ only in which razor-edge runs return None): :meth:`FloatRuns.run` calls it when it is
built, the numpy code otherwise. Numpy spends most of a run on per-call overhead for arrays of a
few hundred supporters; the compiled run costs 5-20 times less.

Error model (u = 2**-53, the unit roundoff; b = the starting budget, which bounds every budget
and every affordable α). Budgets start exact (integers below 2**53). A supporter who is short
pays all and keeps exactly 0.0; one who pays α keeps fl(x − α_f), within e + δα + u·b of the
exact budget (e its bound before), so e grows by δα + 4u·b (the spare covers the rounding of e
itself). For a split with short weight Ws and paying weight Wr, α_f = fl((C − fl(Σ w·x)) / Wr);
the sum of k terms errs by at most k·u·Σ (a loose bound for numpy's pairwise sum) plus Σ w·e
from the budgets, and the subtraction and the division by u each: δα doubles every u of that.
Each comparison of a budget with α also allows ``slack`` = 16u·b for the roundings of x ± e and
α ± δα themselves.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

try:  # optional (setup.py): the compiled run; None = the numpy code below
    from fundcircle.voting.rules import _mes_float_c
except ImportError:  # pragma: no cover - depends on the build
    _mes_float_c = None

log = logging.getLogger(__name__)

#: 2u: twice the unit roundoff of float64
_U2 = 2.0**-52
#: integers from here on are not all exact in float64
_EXACT_LIMIT = 2**53


class FloatRuns:
    """The float side of a :class:`MesEngine` (candidates, grouped ballots, costs, tie order),
    with each candidate's supporting groups as an index array, built once per tally."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        m = len(engine.candidates)
        group_weight = np.asarray(engine.group_weight, dtype=np.float64)
        self.groups = len(engine.group_weight)
        self.supporters = [np.asarray(engine.supporters[p], dtype=np.intp) for p in range(m)]
        self.weights = [group_weight[s] for s in self.supporters]
        self.weight: list[int] = list(engine.weight)
        self.cost: list[int] = list(engine.cost_scaled)
        self.cost_f = [float(c) for c in self.cost]
        self.tie: Sequence[Any] = engine.tie
        self.by_cost = engine.utility == "cost"
        self._masks: list[int | None] = [None] * m
        self.opening_price = [self._opening_price(p) for p in range(m)]
        self.opening_alpha = [self.cost_f[p] / self.weight[p] for p in range(m)]
        self.opening_heap = sorted((float(self.opening_price[p]), self.tie[p], p, 0) for p in range(m))
        #: every integer a run converts must be exact in float64
        self.usable = max(self.cost, default=0) < _EXACT_LIMIT and sum(engine.group_weight) < _EXACT_LIMIT
        #: the compiled run over the same election, or None (the numpy code runs)
        self.native = self._native_runs() if _mes_float_c is not None and self.usable else None

    def _native_runs(self) -> Any:
        """The election as flat arrays for ``_mes_float_c.Runs``, or None when it cannot take them
        (a cost below 1, tie keys that do not sort): each candidate's supporting groups in the
        order numpy sums them, and its place in the tie order (tie, index), which is how the
        heap tuples (price, tie, p, version) order equal prices."""
        m = len(self.cost)
        if m and min(self.cost) < 1:
            return None
        try:
            order = sorted(range(m), key=lambda p: (self.tie[p], p))
        except TypeError:
            return None
        rank = np.empty(m, dtype=np.int64)
        rank[order] = np.arange(m, dtype=np.int64)
        sup_ptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum([len(s) for s in self.supporters], out=sup_ptr[1:])
        sup_idx = np.concatenate(self.supporters).astype(np.int64) if m else np.zeros(0, dtype=np.int64)
        sup_w = np.concatenate(self.weights) if m else np.zeros(0)
        return _mes_float_c.Runs(sup_ptr, sup_idx, np.ascontiguousarray(sup_w, dtype=np.float64),
                                 np.asarray(self.weight, dtype=np.int64), np.asarray(self.cost, dtype=np.int64),
                                 rank, self.groups, self.by_cost)

    def _neighbour_mask(self, p: int) -> int:
        """The candidates sharing a supporter with p, one bit each (their prices change when p is bought)."""
        mask = self._masks[p]
        if mask is None:
            mask = self._masks[p] = sum(1 << q for q in self.engine.neighbours(p))
        return mask

    def _opening_price(self, p: int) -> Fraction:
        """p's exact price when nobody is short: α = cost/weight, per unit of utility."""
        return Fraction(1, self.weight[p]) if self.by_cost else Fraction(self.cost[p], self.weight[p])

    def run(self, per_voter_scaled: int) -> tuple[list[int], int] | None:
        """(bought, cost_minor) of the run at b = ``per_voter_scaled``, or None when a decision is too
        close for the error bounds (the caller then runs the exact engine)."""
        if not self.usable or per_voter_scaled >= _EXACT_LIMIT:
            return None
        if self.native is not None and per_voter_scaled >= 0:
            bought = self.native.run(per_voter_scaled)
            if bought is None:
                return None
            cost_minor = self.engine.cost_minor
            return bought, sum([cost_minor[p] for p in bought])
        engine, by_cost = self.engine, self.by_cost
        supporters, cost, cost_f, tie, weight = self.supporters, self.cost, self.cost_f, self.tie, self.weight
        m = len(cost)
        b = float(per_voter_scaled)
        budgets = np.full(self.groups, b)  # each group's budget
        budget_err = np.zeros(self.groups)  # a bound on its error
        slack = 8 * _U2 * b
        grow_by = 2 * _U2 * b
        key_err = 0.0  # the largest error of any price in play (exact prices: 0)
        stale = 0  # bit q: q's price may have changed since its last evaluation
        version = [0] * m
        # opening state (nobody has paid anything): exact prices, α = cost/weight
        done = [weight[p] * per_voter_scaled < cost[p] for p in range(m)]  # exact: unaffordable from the start
        exact: list[Fraction | None] = list(self.opening_price)  # p's exact price while nobody is short
        alpha_of = list(self.opening_alpha)
        alpha_err = [_U2 * a for a in alpha_of]
        short_of: list[Any] = [None] * m
        heap = [entry for entry in self.opening_heap if not done[entry[2]]]  # sorted, so a heap
        bought: list[int] = []
        cost_minor = 0
        pop, push = heapq.heappop, heapq.heappush

        def refresh(q: int) -> bool:
            """Evaluate stale q at the current budgets; False if a bound cannot settle it."""
            nonlocal key_err, stale
            # its last α, less its error, is below its price now (prices only rise within a run)
            evaluated = self._evaluate(q, budgets, budget_err, slack, alpha_of[q] - alpha_err[q])
            if evaluated is None:
                return False
            version[q] += 1
            stale &= ~(1 << q)
            if evaluated is False:  # budgets only fall: unaffordable for the rest of the run
                done[q] = True
                return True
            alpha_of[q], alpha_err[q], short_of[q], exact[q] = evaluated
            if exact[q] is not None:
                key = float(exact[q])  # correctly rounded: equal prices get equal keys
            else:
                key = alpha_of[q] / cost_f[q] if by_cost else alpha_of[q]
                err = (alpha_err[q] / cost_f[q] if by_cost else alpha_err[q]) + 2 * _U2 * key
                if err > key_err:
                    key_err = err
            push(heap, (key, tie[q], q, version[q]))
            return True

        while heap:
            entry = pop(heap)
            key_p, tie_p, p, ver = entry
            if done[p] or ver != version[p]:
                continue
            if stale >> p & 1:
                if not refresh(p):
                    return None
                continue
            # p leads the heap; it must lead every project still in play for certain. Rivals within
            # twice the largest price error are evaluated first if stale, then compared exactly.
            while heap and (done[heap[0][2]] or heap[0][3] != version[heap[0][2]]):
                pop(heap)
            margin = 2 * key_err
            if heap and heap[0][0] - key_p <= margin:
                close = [e[2] for e in heap if e[0] - key_p <= margin and not done[e[2]] and e[3] == version[e[2]]]
                rivals = [q for q in close if stale >> q & 1]
                if rivals:
                    for q in rivals:
                        if not refresh(q):
                            return None
                    push(heap, entry)
                    continue
                exact_p = exact[p]
                for q in close:
                    if exact_p is None or exact[q] is None or (exact[q], tie[q], q) < (exact_p, tie_p, p):
                        return None
            # buy p: the short supporters pay all they have (exactly 0 left), the others α
            s = supporters[p]
            short = short_of[p]
            if short is not None:
                emptied = s[short]
                budgets[emptied] = 0.0
                budget_err[emptied] = 0.0
                s = s[~short]
            budgets[s] = budgets.take(s) - alpha_of[p]
            budget_err[s] = budget_err.take(s) + (alpha_err[p] + grow_by)
            done[p] = True
            bought.append(p)
            cost_minor += engine.cost_minor[p]
            stale |= self._neighbour_mask(p)
        return bought, cost_minor

    def _evaluate(self, p: int, budgets: np.ndarray, budget_err: np.ndarray, slack: float,
                  alpha_below: float) -> tuple[float, float, Any, Fraction | None] | bool | None:
        """(α_f, δα, mask of the short supporters or None, exact price or None) for p; False if p is
        certainly unaffordable; None if a bound cannot settle it. ``alpha_below``: a value at most
        p's price, where the search for α starts (any start is safe: the split found is certified
        at the end; one at most the price only saves steps)."""
        s = self.supporters[p]
        x = budgets.take(s)  # take: several times faster than fancy indexing here
        e = budget_err.take(s)
        cost = self.cost_f[p]
        total_w = self.weight[p]
        alpha = cost / total_w
        low = x - e  # each supporter has at least this (up to one rounding, inside slack)
        if float(low.min()) >= alpha + _U2 * alpha + slack:  # nobody short: α = cost/weight exactly
            return alpha, _U2 * alpha, None, self.opening_price[p]
        k = len(s)
        w = self.weights[p]
        xw = x * w
        ew = e * w
        money = float(xw.sum())
        money_err = float(ew.sum()) + k * _U2 * (money + cost) + slack
        if money + money_err < cost:
            return False
        if money - money_err < cost:
            return None  # the supporters' money is too close to the cost to tell
        # from any start at most the price, each step (α from the supporters short at the last α)
        # raises α without passing the price, and the short supporters only grow: the split is
        # final when their count stops
        if alpha_below > alpha:
            alpha = alpha_below
        short = x < alpha
        count = np.count_nonzero(short)
        while True:
            paid = float(xw @ short)
            paying_w = total_w - float(w @ short)
            if paying_w <= 0:  # cannot be, they can afford it: the split is off, the exact engine decides
                return None
            alpha = (cost - paid) / paying_w
            short = x < alpha
            now = np.count_nonzero(short)
            if now == count:
                break
            if now < count:  # α fell by a rounding, so a budget is within roundings of α, which no
                return None  # bound settles (and the loop could alternate between two splits forever)
            count = now
        # the split must hold for the exact budgets and the exact α of that split: every short
        # supporter certainly below α, every other one certainly at or above it
        err = (float(ew @ short) + k * _U2 * (paid + cost)) / paying_w + _U2 * alpha + slack
        if np.count_nonzero(low < alpha + err) != count or np.count_nonzero(x + e <= alpha - err) != count:
            return None
        return alpha, err, short, None


def complete_with_float(engine: Any, budget_minor: int, start_scaled: int, step_scaled: int, mode: str) -> Any:
    """The Add1 loop of :func:`fundcircle.voting.rules.mes.complete` (same stopping rules, same run
    count) with every step but the kept one decided by :class:`FloatRuns` (by the exact engine when
    a float run cannot decide), and the kept run computed exactly. None if floats cannot be used
    for this election (amounts beyond 2**53), or if the kept run did not buy what its float run
    said (which the error bounds rule out; the caller then completes exactly)."""
    from fundcircle.voting.rules.mes import Completion

    runs_f = FloatRuns(engine)
    if not runs_f.usable:
        return None

    def decide(per_voter: int) -> tuple[list[int], int]:
        decided = runs_f.run(per_voter)
        if decided is None:
            exact = engine.run(per_voter)
            decided = exact.bought, exact.cost_minor
        return decided

    everything = len(engine.candidates)
    per_voter = start_scaled
    bought, cost_minor = decide(per_voter)
    runs, overspend = 1, None
    while len(bought) < everything:
        if mode == "add1-exhaustive":
            left = budget_minor - cost_minor
            chosen = set(bought)
            if all(engine.cost_minor[p] > left for p in range(everything) if p not in chosen):
                break
        following = decide(per_voter + step_scaled)
        runs += 1
        if following[1] > budget_minor:
            overspend = following[1]
            break
        (bought, cost_minor), per_voter = following, per_voter + step_scaled
    kept = engine.run(per_voter)
    if kept.bought != bought:  # pragma: no cover - the error bounds above rule it out
        # never publish an outcome the exact engine would not give: say so, and let the caller
        # run the whole loop exactly
        log.error("mes: the float run at %s bought %s, the exact run %s; completing exactly",
                  per_voter, bought, kept.bought)
        return None
    return Completion(kept, per_voter, runs, overspend)

