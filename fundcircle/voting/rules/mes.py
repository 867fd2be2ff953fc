"""``mes``: the Method of Equal Shares with Add1 completion (voting-rules.md §3).

Every voter gets an equal share b of the budget. A proposal is bought when its supporters can pay
for it together; the one whose supporters pay the least each (the lowest price ρ) goes first, and
they pay equal shares, except those who have less left and pay everything they have. With Add1,
b rises one currency unit at a time while the outcome still fits the real budget.

Exact: money is scaled so every per-voter budget starts as an integer, and the arithmetic is
``fractions.Fraction`` (or gmpy2's ``mpq`` when installed; both are exact and give identical results;
set ``FUNDCIRCLE_EXACT=fraction`` to force Fraction).

Speed (§4.3): identical ballots are grouped with a weight; voters whose budgets are equal share a
*budget class*, so per-voter work is counting (Counter's C loop) and arithmetic happens once per
class: budgets are integers over the run's common denominator (:class:`Budgets`), so paying a price
or summing budgets needs no gcd, and a float *shadow* of each budget settles most comparisons with α
by a proven margin (the exact comparison decides the rest); prices are re-evaluated lazily (ρ only
rises within a run, so the last ρ is a lower bound). Add1 does not compute the steps that a run
proves cannot change anything (its *horizon*, :meth:`MesEngine.run`): they are counted, and the
kept run is moved to its budget exactly; a step it does compute starts from the last purchase the
previous run proves unchanged there (:class:`Snapshot`). Every decision stays exact.

Add1 with floats (the default, :func:`complete`): every step but the kept one only has to say what
it buys, and :mod:`fundcircle.voting.rules.mes_float` decides that in float64 (compiled when the
optional extension is built, numpy otherwise) with a proven error bound on every comparison; a
decision the bound cannot settle sends that step to the exact engine, and the kept run is always
computed exactly here. The exact horizon and resume machinery above is what runs without floats.
"""

from __future__ import annotations

import heapq
from collections import Counter, _count_elements  # type: ignore[attr-defined]  # Counter's C counting loop
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import reduce
from itertools import repeat
from operator import add, mul, or_
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule, TraceStep
from fundcircle.voting.registry import register
from fundcircle.voting.rules._common import (
    MAX_APPROVALS_PARAM, MIN_APPROVALS_PARAM, ApprovalGroups, ExactSum, approval_ballots, check_approval_bounds,
    format_units, greedy_order, greedy_select, no_approval_ballots_outcome, number_type, plural_thousands, screen,
    to_fraction, validate_approval_ballot,
)
from fundcircle.voting.tiebreak import tie_key_function

# --- the engine ------------------------------------------------------------------------------

#: 2**-51: twice the rounding error of one float operation, relative to its result
_ULP2 = 2.0**-51
_INF = float("inf")
#: amounts from here on could overflow a float: such a run has no shadows and compares exactly
_FLOAT_SAFE = 2**1000


def _bounds(alpha: Any, eps: float) -> tuple[float, float]:
    """(lo, hi) such that a class whose shadow (:class:`Budgets`) is below lo has less than
    ``alpha`` left, and one whose shadow is above hi has more; in between only the exact comparison
    decides. float(α) errs by at most one ulp (2**-52·α), a shadow by at most ``eps``."""
    if eps == _INF:  # no shadows
        return -_INF, _INF
    alpha_f = float(alpha)
    tol = eps + alpha_f * _ULP2
    return alpha_f - tol, alpha_f + tol


class Budgets:
    """The budget classes of one run, exact, with integer arithmetic only on the hot paths.

    Class c's budget is ``numer[c] · mult[level[c]] / den``: ``den`` is the lcm of every price α
    paid so far in the run (the denominators share most of their factors, so it stays about as
    long as one class's own denominator), and ``mult[j]`` brings a numerator written over an
    earlier denominator (level j) to ``den``. Paying α is then an integer subtraction and summing
    the poor classes' budgets an integer sum; a rational is reduced only once per price. (As
    rationals, each new class cost a subtraction with a gcd of numbers of a hundred digits.)

    ``shadow[c]`` is a float within ``eps`` of the budget: comparisons with α use it where it
    settles them with that margin (:func:`_bounds`) and the exact budget otherwise. Shadows are
    float(b) minus at most one rounded float(α) per purchase, α at most the budget <= b: each
    float(·) and each subtraction errs by at most 2**-52·b, so the error stays below
    (1.5m + 1)·2**-52·b, and ``eps`` is (4m + 4)·2**-52·b."""

    __slots__ = ("class_of", "numer", "level", "mult", "den", "shadow", "eps", "slope", "num", "classes")

    def __init__(self, class_of: list[int], values: Sequence[Any], num: Callable[..., Any], purchases: int,
                 slopes: list[Any], largest: Any) -> None:
        """``largest``: a bound on every budget and price of the run (floats need it below 2**1000)."""
        self.num = num
        self.class_of = class_of
        self.den = 1
        for d in {v.denominator for v in values}:
            self.den = self.den * num(d, self.den).numerator  # lcm
        self.numer = [v.numerator * (self.den // v.denominator) for v in values]
        self.level = [0] * len(values)
        self.mult = [1]
        if largest < _FLOAT_SAFE:
            self.shadow = [float(v) for v in values]
            self.eps = max(self.shadow, default=0.0) * (purchases + 1) * 2.0**-50
        else:
            self.shadow, self.eps = [0.0] * len(values), _INF
        self.slope = slopes
        #: the classes of each project's supporters at its last evaluation (class 0 aside)
        self.classes: dict[int, list[int]] = {}

    @classmethod
    def moved(cls, old: Budgets, classes: int, class_of: list[int], delta: int, purchases: int) -> Budgets:
        """``old``'s first ``classes`` classes, each budget v moved to v + slope·delta (a resumed run,
        :meth:`MesEngine.run`). Integers over one new common denominator, like every budget here (a
        rational per class would cost a gcd of long numbers each), and one C loop per list: the
        classes share a few dozen rates, so each rate's move is computed once.

        Shadows move too: old shadow + float(slope·delta), two more roundings of amounts at most the
        largest budget V. So ``eps`` is old ``eps`` (every error the old shadows can have) plus a
        fresh (4m + 4)·2**-52·V for those roundings and the purchases still to come (converting
        each exact budget anew costs more than the rest of the move)."""
        num, old_den = old.num, old.den
        slopes = old.slope[:classes]
        by_slope = {slope: slope * delta for slope in set(slopes) if slope}
        den = old_den
        for d in {shift.denominator for shift in by_slope.values()}:
            den = den * num(d, den).numerator  # lcm
        grow = den // old_den
        added = {slope: shift.numerator * (den // shift.denominator) for slope, shift in by_slope.items()}
        to_den = [m * grow for m in old.mult]  # a numerator at level l, times this, is over den
        numer = list(map(add, map(mul, old.numer[:classes], map(to_den.__getitem__, old.level[:classes])),
                         map(added.get, slopes, repeat(0))))
        self = cls.__new__(cls)
        self.num, self.class_of, self.den, self.numer, self.slope, self.classes = num, class_of, den, numer, slopes, {}
        self.level, self.mult = [0] * classes, [1]
        if old.eps != _INF:
            moves = {slope: float(shift) for slope, shift in by_slope.items()}
            self.shadow = list(map(add, old.shadow[:classes], map(moves.get, slopes, repeat(0.0))))
            self.eps = old.eps + max(self.shadow, default=0.0) * (purchases + 1) * 2.0**-50
        else:
            self.shadow, self.eps = [0.0] * classes, _INF
        return self

    def value(self, c: int) -> Any:
        return self.num(self.numer[c] * self.mult[self.level[c]], self.den)

    def admit(self, alpha: Any) -> Any:
        """Make ``den`` a multiple of α's denominator; returns α's numerator over ``den``."""
        d = alpha.denominator
        grow = self.num(d, self.den).numerator  # d / gcd(d, den)
        if grow != 1:
            self.den *= grow
            self.mult = [m * grow for m in self.mult]
            self.mult.append(1)
        return alpha.numerator * (self.den // d)


@dataclass
class RunResult:
    """One fixed-budget MES run: bought candidates in order, what each supporter paid at most (α,
    scaled money), the price ρ, how many supporters paid everything they had, and the final state
    (``budgets``; or, for a shifted run, ``class_value``).

    With ``step`` given to :meth:`MesEngine.run`, the run also proves how far the per-voter budget b
    can rise without changing anything it decided (see :meth:`MesEngine.run`): ``horizon`` (scaled
    money; None = no limit) and the rate at which each α and class budget grows with b."""

    bought: list[int]
    alpha: list[Any]
    rho: list[Any]
    poor_weight: list[int]
    cost_minor: int
    class_of: list[int]
    class_value: list[Any] | None
    alpha_slope: list[Any] = field(default_factory=list)
    class_slope: list[Any] = field(default_factory=list)
    #: 0 when not measured or not beyond one step
    horizon: Any = 0
    budgets: Budgets | None = None
    #: where a later run may resume (:class:`Snapshot`), earliest purchase first
    snapshots: list[Snapshot] = field(default_factory=list)

    def same_for_steps(self, step: int) -> int:
        """How many further budget steps certainly buy exactly the same sequence: k·step < horizon."""
        if self.horizon is None:
            return 0  # not bounded by any decision: step one at a time (cannot happen before all is bought)
        return max(0, int(-(-self.horizon // step)) - 1)  # ceil(horizon / step) - 1

    def value(self, c: int) -> Any:
        """Class c's budget at the end of the run."""
        return self.class_value[c] if self.budgets is None else self.budgets.value(c)  # type: ignore[index]


@dataclass
class Snapshot:
    """A tracked run just after its first ``purchases`` purchases: what its loop needs to go on from
    there, at its own b (``base``) with the rate of every amount, so that a run at any b' in
    [base, ``until``) can start from it moved exactly instead of from scratch (every decision up to
    here holds below ``until``; None = no limit). The prefix lists and ``budgets`` are the run's own,
    append-only lists (only their first entries count; a class's exact value never changes), so a
    snapshot copies only what the loop changes in place."""

    base: int
    until: Any
    purchases: int
    bought: list[int]
    alpha: list[Any]
    alpha_slope: list[Any]
    poor_weight: list[int]
    cost_minor: int
    budgets: Budgets
    classes: int
    class_of: list[int]
    evaluated: dict[int, list[int]]
    done: list[bool]
    fresh: list[bool]
    version: list[int]
    alpha_now: list[Any]
    alpha_rate: list[Any]
    poor_now: list[int]
    key_now: list[Any]
    key_rate: list[Any]


class MesEngine(ApprovalGroups):
    """Candidates and grouped ballots prepared once; :meth:`run` is one fixed-budget MES run.

    Money inside is scaled by ``scale`` (= n · denominator of the step) so that B/n + k·step is an
    integer for every k. Voters whose budgets are equal share a *budget class*, so per-voter work is
    counting and rational arithmetic happens once per class (:class:`Budgets`).
    """

    def __init__(self, candidates: Sequence[Proposal], groups: Mapping[frozenset[str], int] | Sequence[Ballot],
                 utility: str, tie_key: Callable[[Proposal], tuple], scale: int) -> None:
        super().__init__(candidates, groups)
        self.utility = utility
        self.scale = scale
        self.num = number_type()
        self.cost_minor = [p.cost_minor for p in self.candidates]
        self.cost_scaled = [c * scale for c in self.cost_minor]
        self.tie = [tie_key(p) for p in self.candidates]
        self._group_masks: list[int] | None = None
        #: each candidate's equal share cost/weight, and the opening heap (built on first use)
        self._opening: tuple[list[Any], list[tuple]] | None = None
        #: heavy_supporters split into groups and weights, built on first use
        self._heavy: list[tuple[list[int], list[int]]] | None = None

    def class_weights(self, p: int, class_of: list[int]) -> dict[int, int]:
        """Weight of p's supporters in each class of ``class_of`` other than class 0 (a plain dict:
        counting into it runs in C, and a missing key costs no ``Counter.__missing__`` call)."""
        counts: dict[int, int] = {}
        _count_elements(counts, map(class_of.__getitem__, self.single_supporters[p]))
        heavy = self._heavy
        if heavy is None:
            heavy = self._heavy = [([g for g, _ in gw], [w for _, w in gw]) for gw in self.heavy_supporters]
        groups, weights = heavy[p]
        if groups:
            get = counts.get
            for c, w in zip(map(class_of.__getitem__, groups), weights):
                counts[c] = get(c, 0) + w
        counts.pop(0, None)
        return counts

    def neighbours(self, p: int) -> list[int]:
        """Candidates sharing a supporter with p (their prices change when p is bought), ascending;
        built on first use. Each group's approvals are one integer with a bit per candidate, so this
        is an OR over p's supporting groups (a union of id sets cost several times more)."""
        found = self._neighbours.get(p)
        if found is None:
            masks = self._group_masks
            if masks is None:
                bit = {c.id: 1 << i for i, c in enumerate(self.candidates)}
                try:
                    masks = list(map(sum, map(map, repeat(bit.__getitem__), self.group_approvals)))
                except KeyError:  # a group approves a non-candidate: the id sets then
                    masks = []
                self._group_masks = masks
            if not masks:
                return super().neighbours(p)
            union = reduce(or_, map(masks.__getitem__, self.supporters[p]), 0) & ~(1 << p)
            found = self._neighbours[p] = [q for q in range(len(self.candidates)) if union >> q & 1]
        return found

    def _price(self, p: int, alpha: Any) -> Any:
        return alpha / self.cost_scaled[p] if self.utility == "cost" else alpha

    def _evaluate(self, p: int, class_of: list[int], class_value: list[Any]) -> tuple[Any, int] | None:
        """:meth:`_evaluate_budgets` for classes given as a list of exact budgets."""
        largest = max([self.cost_scaled[p], *class_value])
        return self._evaluate_budgets(p, Budgets(class_of, class_value, self.num, len(class_value), [], largest))

    def _evaluate_budgets(self, p: int, budgets: Budgets) -> tuple[Any, int] | None:
        """(α, weight of supporters who pay all they have) for p, or None when they cannot afford it.

        α is the fixed point of α = (cost − what the poor pay) / weight of the rest, the poor being
        the classes with less than α left. Starting from the equal share cost/weight, each pass moves
        the classes now below α to the poor, which only raises α; it stops when no class moves (α is
        then the unique price) or when nobody is left to pay the rest (unaffordable)."""
        counts = self.class_weights(p, budgets.class_of)
        budgets.classes[p] = list(counts)
        left = sum(counts.values())
        if not left:
            return None
        cost, num, den, eps = self.cost_scaled[p], self.num, budgets.den, budgets.eps
        numer, level, mult, shadow, value_of = budgets.numer, budgets.level, budgets.mult, budgets.shadow, budgets.value
        alpha = num(cost, left)
        rich, paid, poor = counts, 0, 0
        while True:
            lo, hi = _bounds(alpha, eps)
            short = [c for c in rich if shadow[c] < hi and (shadow[c] < lo or value_of(c) < alpha)]
            if not short:
                return alpha, poor
            weights = [rich.pop(c) for c in short]
            paid += sum([numer[c] * mult[level[c]] * w for c, w in zip(short, weights)])
            moved = sum(weights)
            left -= moved
            poor += moved
            if not left:
                return None
            alpha = num(cost * den - paid, den * left)

    def _evaluate_tracked(self, p: int, budgets: Budgets) -> tuple[Any, int, Any, Any]:
        """:meth:`_evaluate_budgets` that also returns dα/db and the headroom of its decisions: (α or
        None, poor weight, slope, headroom). Headroom (None = unlimited) is how far b may rise before
        a poor class stops being poor or an unaffordable project becomes affordable; rich classes stay
        rich because their budgets rise at least as fast as α (α's rate is never positive)."""
        counts = self.class_weights(p, budgets.class_of)
        budgets.classes[p] = list(counts)
        left = sum(counts.values())
        if not left:
            return None, 0, 0, None  # every supporter has exactly 0 left: b does not change that
        cost, num, den, eps = self.cost_scaled[p], self.num, budgets.den, budgets.eps
        numer, level, mult, shadow, value_of = budgets.numer, budgets.level, budgets.mult, budgets.shadow, budgets.value
        class_slope = budgets.slope
        alpha = num(cost, left)
        rich, paid, paid_slope, poor = counts, 0, ExactSum(), 0
        poor_classes: list[int] = []
        while True:
            lo, hi = _bounds(alpha, eps)
            short = [c for c in rich if shadow[c] < hi and (shadow[c] < lo or value_of(c) < alpha)]
            if not short:
                break
            weights = [rich.pop(c) for c in short]
            paid += sum([numer[c] * mult[level[c]] * w for c, w in zip(short, weights)])
            paid_slope.add(map(class_slope.__getitem__, short), weights)
            moved = sum(weights)
            left -= moved
            poor += moved
            poor_classes += short
            money_slope = num(paid_slope.numerator, paid_slope.denominator)
            if not left:  # unaffordable until the supporters' money, rising with b, reaches the cost
                shortfall = num(cost * den - paid, den)
                return None, 0, 0, shortfall / money_slope if money_slope > 0 else None
            alpha = num(cost * den - paid, den * left)
        paid_slope = num(paid_slope.numerator, paid_slope.denominator)
        alpha_slope = -paid_slope / left
        headroom = None
        for c in poor_classes:  # α − v > 0 must hold; it shrinks at rate v' − α'
            shrink = class_slope[c] - alpha_slope
            if shrink > 0:
                room = (alpha - value_of(c)) / shrink
                if headroom is None or room < headroom:
                    headroom = room
        return alpha, poor, alpha_slope, headroom

    def run(self, per_voter_scaled: int, step: int | None = None,
            resume: Sequence[Snapshot] | None = None) -> RunResult:
        """One MES run where every voter starts with ``per_voter_scaled`` (scaled money).

        With ``step``, the run also measures its ``horizon``: every amount in a run is an affine
        function of the starting budget b (α = (cost − what the poor pay)/rich weight, budgets = b −
        payments), so every comparison the run's decisions rest on is a sign of an affine function.
        The horizon is the nearest b at which one of them could change sign: the initial
        affordability of each project, each evaluation's poor classes and unaffordability, each
        purchase against the price bound of every project still in play, and a budget that is spent
        exactly. Below the horizon MES buys the same projects in the same order, with the same poor
        voters, so Add1 need not run those steps. Tracking stops once the horizon is within one step.

        While it tracks, the run also keeps a :class:`Snapshot` after each purchase. With ``resume``
        (an earlier run's snapshots; None = keep none), the run starts from the latest one still
        valid at this b: the purchases before it are the same here, so only the rest is computed.
        """
        num, m = self.num, len(self.candidates)
        cost_scaled, weight = self.cost_scaled, self.weight
        largest = max(per_voter_scaled, max(cost_scaled, default=0))
        track, keep = step is not None, resume is not None
        horizon: Any = None
        start = None
        for i in range(len(resume or ()) - 1, -1, -1):
            snap = resume[i]  # type: ignore[index]
            if snap.base <= per_voter_scaled and (snap.until is None or per_voter_scaled < snap.until):
                start = snap
                break
        if start is not None:
            delta = per_voter_scaled - start.base
            (class_of, budgets, done, fresh, version, alpha_now, alpha_rate, poor_now, key_now, key_rate,
             heap, result) = self._resumed(start, delta, largest)
            result.snapshots = list(resume[:i + 1])  # type: ignore[index]
            horizon = None if start.until is None else start.until - per_voter_scaled
            track = track and (horizon is None or horizon > step)
        else:
            class_of = [1] * len(self.group_weight)
            # class 0: nothing left; class 1: the starting budget
            budgets = Budgets(class_of, [num(0), num(per_voter_scaled)], num, m, [0, 1], largest)
            fresh = [True] * m
            version = [0] * m
            alpha_now: list[Any] = [None] * m
            alpha_rate: list[Any] = [0] * m
            poor_now = [0] * m
            key_now: list[Any] = [None] * m
            key_rate: list[Any] = [0] * m
            done = [False] * m
            if self._opening is None:  # the equal shares and their prices do not depend on b
                shares = [num(cost_scaled[p], weight[p]) for p in range(m)]
                self._opening = (shares, sorted((self._price(p, shares[p]), self.tie[p], p, 0) for p in range(m)))
            shares, opening = self._opening
            for p in range(m):
                if weight[p] * per_voter_scaled >= cost_scaled[p]:
                    alpha_now[p] = shares[p]
                else:
                    done[p] = True
                    if track:  # becomes affordable when weight · b reaches the cost
                        room = num(cost_scaled[p] - weight[p] * per_voter_scaled, weight[p])
                        if horizon is None or room < horizon:
                            horizon = room
            heap = [entry for entry in opening if not done[entry[2]]]  # sorted, so already a heap
            for entry in heap:
                key_now[entry[2]] = entry[0]
            if track and horizon is not None and horizon <= step:
                track = False
            result = RunResult([], [], [], [], 0, class_of, None, [], budgets.slope, budgets=budgets)
        snapshots = result.snapshots
        while heap:
            _, tie, p, ver = heapq.heappop(heap)
            if done[p] or ver != version[p]:
                continue
            if not fresh[p]:
                version[p] += 1
                if track:
                    alpha, poor, rate, room = self._evaluate_tracked(p, budgets)
                    if room is not None and (horizon is None or room < horizon):
                        horizon = room
                        track = horizon > step
                    evaluated = None if alpha is None else (alpha, poor)
                    alpha_rate[p] = rate
                    key_rate[p] = self._price(p, rate)
                else:
                    evaluated = self._evaluate_budgets(p, budgets)
                if evaluated is None:  # budgets only fall: it stays unaffordable for this run
                    done[p] = True
                    continue
                alpha_now[p], poor_now[p] = evaluated
                fresh[p] = True
                key_now[p] = self._price(p, alpha_now[p])
                heapq.heappush(heap, (key_now[p], tie, p, version[p]))
                continue
            if track:  # p must stay ahead of every project still in play
                key_p, rate_p = key_now[p], key_rate[p]
                for q in range(m):
                    if done[q] or q == p or not key_rate[q] < rate_p:  # compare before any arithmetic
                        continue
                    gap = key_now[q] - key_p
                    room = gap / (rate_p - key_rate[q]) if gap else 0
                    if horizon is None or room < horizon:
                        horizon = room
                        if horizon <= step:
                            track = False
                            break
            alpha = alpha_now[p]
            exact_spend = self._buy(p, alpha, budgets, alpha_rate[p] if track else None)
            if exact_spend:  # someone's budget equals α exactly and would not at a higher b
                horizon, track = 0, False
            done[p] = True
            result.bought.append(p)
            result.alpha.append(alpha)
            result.alpha_slope.append(alpha_rate[p])
            result.rho.append(key_now[p])
            result.poor_weight.append(poor_now[p])
            result.cost_minor += self.cost_minor[p]
            for q in self.neighbours(p):
                fresh[q] = False
            if track and keep:
                until = None if horizon is None else per_voter_scaled + horizon
                if snapshots and snapshots[-1].until == until:
                    snapshots.pop()  # this one is valid as long, and further on
                snapshots.append(Snapshot(
                    per_voter_scaled, until, len(result.bought), result.bought, result.alpha, result.alpha_slope,
                    result.poor_weight, result.cost_minor, budgets, len(budgets.numer), class_of[:],
                    dict(budgets.classes), done[:], fresh[:], version[:], alpha_now[:], alpha_rate[:], poor_now[:],
                    key_now[:], key_rate[:]))
        result.horizon = horizon if step is not None and track else 0
        return result

    def _resumed(self, snap: Snapshot, delta: int, largest: Any) -> tuple:
        """The run state of ``snap`` moved to b = snap.base + delta, exactly: below ``snap.until`` every
        decision so far is the same, and every amount is affine in b, so each class budget and each α
        and price bound moves by its rate times delta (a project never re-evaluated has rate 0: its
        equal share cost/weight does not depend on b). A stale project's moved bound is its price at
        its last evaluation, at this b: still a lower bound, as a run from scratch would have it."""
        class_of = snap.class_of[:]
        budgets = Budgets.moved(snap.budgets, snap.classes, class_of, delta, len(self.candidates))
        if largest >= _FLOAT_SAFE:  # amounts past float range: no shadows
            budgets.shadow, budgets.eps = [0.0] * snap.classes, _INF
        budgets.classes = dict(snap.evaluated)
        done, fresh, version, poor_now = snap.done[:], snap.fresh[:], snap.version[:], snap.poor_now[:]
        alpha_now, alpha_rate = snap.alpha_now[:], snap.alpha_rate[:]
        key_now, key_rate = snap.key_now[:], snap.key_rate[:]
        # every project still in play has one current heap entry (its key): the heap is rebuilt from them
        heap = []
        tie = self.tie
        for q in range(len(done)):
            if done[q]:
                continue
            if alpha_rate[q]:
                alpha_now[q] += alpha_rate[q] * delta
            if key_rate[q]:
                key_now[q] += key_rate[q] * delta
            heap.append((key_now[q], tie[q], q, version[q]))
        heapq.heapify(heap)
        j = snap.purchases
        bought = snap.bought[:j]
        alpha = [a + r * delta if r else a for a, r in zip(snap.alpha[:j], snap.alpha_slope)]
        result = RunResult(bought, alpha, [self._price(p, a) for p, a in zip(bought, alpha)], snap.poor_weight[:j],
                           snap.cost_minor, class_of, None, snap.alpha_slope[:j], budgets.slope, budgets=budgets)
        return (class_of, budgets, done, fresh, version, alpha_now, alpha_rate, poor_now, key_now, key_rate, heap,
                result)

    def shifted(self, result: RunResult, delta: int) -> RunResult:
        """``result`` as the run at b + delta gives it, for 0 <= delta < result.horizon: the same
        decisions, every amount moved along its exact rate."""
        alpha = [a + s * delta for a, s in zip(result.alpha, result.alpha_slope)]
        return RunResult(
            list(result.bought), alpha, [self._price(p, a) for p, a in zip(result.bought, alpha)],
            list(result.poor_weight), result.cost_minor, result.class_of,
            [result.value(c) + s * delta for c, s in enumerate(result.class_slope)], list(result.alpha_slope),
            list(result.class_slope), None if result.horizon is None else result.horizon - delta,
            snapshots=result.snapshots)

    def _buy(self, p: int, alpha: Any, budgets: Budgets, alpha_slope: Any) -> bool:
        """Each supporter pays min(budget, α); voters in one class stay together in a new class.
        With ``alpha_slope`` (tracking), returns True if a class pays exactly its budget while its
        budget rises with b at another rate than α (at a higher b it would keep a remainder)."""
        price = budgets.admit(alpha)  # α over den, like every budget from here on
        class_of, numer, level, mult = budgets.class_of, budgets.numer, budgets.level, budgets.mult
        shadow, class_slope, here = budgets.shadow, budgets.slope, len(mult) - 1
        lo = _bounds(alpha, budgets.eps)[0]
        alpha_f = float(alpha) if lo != -_INF else 0.0
        moved: dict[int, int] = {0: 0}
        exact_spend = False
        # p's supporters are in the classes its last evaluation counted (a supporter changes class
        # only when a project it approves is bought, which makes p stale), or all still in class 1
        for c in budgets.classes.get(p, (1,)):
            new = 0
            if shadow[c] >= lo:  # below lo the class certainly has less than α: it pays all
                value = numer[c] * mult[level[c]]
                if value > price:
                    numer.append(value - price)
                    level.append(here)
                    shadow.append(shadow[c] - alpha_f)
                    class_slope.append(class_slope[c] - alpha_slope if alpha_slope is not None else 0)
                    new = len(numer) - 1
                elif alpha_slope is not None and value == price and class_slope[c] != alpha_slope:
                    exact_spend = True
            moved[c] = new
        for g in self.supporters[p]:
            class_of[g] = moved[class_of[g]]
        return exact_spend

    def supporters_money(self, p: int, result: RunResult) -> Any:
        """What p's supporters had left at the end of a run (scaled money)."""
        counts = self.class_weights(p, result.class_of)
        budgets = result.budgets
        if budgets is not None:  # one sum of integers over the common denominator
            numer, level, mult = budgets.numer, budgets.level, budgets.mult
            return self.num(sum([numer[c] * mult[level[c]] * w for c, w in counts.items()]), budgets.den)
        money = ExactSum()
        money.add(map(result.value, counts), counts.values())
        return self.num(money.numerator, money.denominator)


@dataclass
class Completion:
    """The run kept by the completion loop, its per-voter budget, and the loop's story."""

    result: RunResult
    per_voter_scaled: int
    runs: int
    overspend_minor: int | None


def complete(engine: MesEngine, budget_minor: int, start_scaled: int, step_scaled: int, mode: str,
             resume: bool = True, floats: bool = True) -> Completion:
    """§3.2: ``none`` = one run; ``add1`` = raise b by step until the NEXT run would overspend (the
    official elections); ``add1-exhaustive`` = pabutools' early stop at the first exhaustive outcome.

    Steps below a run's horizon (:meth:`MesEngine.run`) buy exactly what that run bought, so they
    cannot overspend or become exhaustive: they are counted as runs but not computed, and the run
    kept at the end is the last computed one moved to its per-voter budget (:meth:`MesEngine.shifted`).
    Measuring a horizon costs a little, so after two measured runs in a row that could skip nothing
    only every fourth run measures it, until one can skip again (which runs measure changes only
    how much is computed, never the outcome).

    With ``resume`` (False only to test that it changes nothing), a computed step starts from the
    last purchase of the previous run that is provably the same at its b (:class:`Snapshot`), and
    every run measures (its snapshots pay for the measuring even when it can skip no step).

    With ``floats`` (False only to test that they change nothing), every step but the kept one is
    decided by a certified float run instead (:mod:`fundcircle.voting.rules.mes_float`: each
    decision taken only when a proven error bound makes it certain, else the exact engine), and
    the kept run is computed exactly: on 20,000 voters whose budgets all drift apart, a float run
    costs a fifth of an exact one."""
    if floats and mode != "none":
        from fundcircle.voting.rules.mes_float import complete_with_float  # numpy: loaded when needed

        done = complete_with_float(engine, budget_minor, start_scaled, step_scaled, mode)
        if done is not None:
            return done
    tracked = step_scaled if mode != "none" else None
    snapshots = [] if resume and tracked is not None else None
    per_voter = start_scaled
    current = engine.run(per_voter, tracked, snapshots)
    runs, fruitless = 1, 0
    everything = len(engine.candidates)
    while mode != "none" and len(current.bought) < everything:
        if mode == "add1-exhaustive" and _exhaustive(engine, current, budget_minor):
            break
        # the skipped steps cost what ``current`` costs, which is within the budget (B/n never
        # overspends, and a step is only kept when it fits), so none of them could stop the loop
        same = current.same_for_steps(step_scaled) if current.cost_minor <= budget_minor else 0
        if same:
            current = engine.shifted(current, same * step_scaled)
            per_voter += same * step_scaled
            runs += same
            continue
        fruitless = fruitless + 1 if tracked is not None and current.horizon == 0 else 0
        measure = tracked if snapshots is not None or fruitless < 2 or runs % 4 == 0 else None
        following = engine.run(per_voter + step_scaled, measure, None if snapshots is None else current.snapshots)
        runs += 1
        if following.cost_minor > budget_minor:
            return Completion(current, per_voter, runs, following.cost_minor)
        current, per_voter = following, per_voter + step_scaled
    return Completion(current, per_voter, runs, None)


def _exhaustive(engine: MesEngine, result: RunResult, budget_minor: int) -> bool:
    left = budget_minor - result.cost_minor
    bought = set(result.bought)
    return all(engine.cost_minor[p] > left for p in range(len(engine.candidates)) if p not in bought)


def _supporters_money(engine: MesEngine, result: RunResult, projects: Sequence[int]) -> list[Any]:
    """:meth:`MesEngine.supporters_money` of each of ``projects`` (for the trace), in one pass: each
    group's money is looked up once as an integer over the run's common denominator, and each
    project's supporters are summed by C loops (counting their classes first costs more)."""
    budgets = result.budgets
    if budgets is None or not projects:
        return [engine.supporters_money(p, result) for p in projects]
    numer, level, mult = budgets.numer, budgets.level, budgets.mult
    class_money = list(map(mul, numer, map(mult.__getitem__, level)))
    group_money = list(map(class_money.__getitem__, result.class_of))
    money = []
    for p in projects:
        total = sum(map(group_money.__getitem__, engine.single_supporters[p]))
        heavy = engine.heavy_supporters[p]
        if heavy:
            total += sum([group_money[g] * weight for g, weight in heavy])
        money.append(engine.num(total, budgets.den))
    return money


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
        valid, groups = approval_ballots(self, ballots, proposals, budget, params)
        if not valid:
            return no_approval_ballots_outcome(self.id, params, budget, seed)
        screening = screen(proposals, valid, budget, seed, params["tie_order"], groups)
        votes, n, unit = screening.votes, screening.n, budget.unit_minor
        trace = list(screening.trace)
        candidates = self._eligible(screening.candidates, votes, n, budget, params, trace)
        tie_key = tie_key_function(params["tie_order"], seed, votes)
        step_minor = params["step"] * unit
        scale = n * step_minor.denominator
        engine = MesEngine(candidates, screening.groups, params["utility"], tie_key, scale)
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
                    "screen", f"Not eligible: {format_units(share, 100)}% of voters approved it, below the "
                    f"{format_units(needed, 100)}% that its cost requires (cost ÷ ({factor} × budget)).", p.id,
                    {"votes": votes[p.id], "n": n, "support_factor": factor}))
            else:
                kept.append(p)
        return kept

    @staticmethod
    def _budget_sentence(params: Mapping[str, Any], budget: Budget, n: int, per_voter: Fraction,
                         done: Completion) -> TraceStep:
        unit = budget.unit_minor
        start = Fraction(budget.amount_minor, n)
        text = (f"Each of the {n:,} voters started with an equal share of {format_units(start, unit)} "
                f"({format_units(budget.amount_minor, unit)} ÷ {n:,}).")
        if params["completion"] != "none" and done.runs > 1:
            text += (f" Add1: the share was raised in steps of {format_units(params['step'] * unit, unit)} to "
                     f"{format_units(per_voter, unit)} ({done.runs:,} runs)")
            if done.overspend_minor is not None:
                text += (f"; one more step would have spent {format_units(done.overspend_minor, unit)}, more than "
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
            alpha_minor = to_fraction(alpha / scale)  # divided in the engine's type (mpq: no Python gcd)
            text = (f"Funded: {plural_thousands(votes[pid], 'voter')} approved it; each paid at most "
                    f"{format_units(alpha_minor, unit)}")
            text += f" ({poor:,} of them paid all they had left)." if poor else "."
            trace.append(TraceStep("fund", text, pid, {"votes": votes[pid], "alpha_minor": alpha_minor,
                                                       "rho": to_fraction(rho), "cost_minor": engine.cost_minor[p]}))
            bought.append((pid, p))
        chosen = set(result.bought)
        skipped = [p for p in range(len(engine.candidates)) if p not in chosen]
        for p, left in zip(skipped, _supporters_money(engine, result, skipped)):
            pid = engine.candidates[p].id
            money = to_fraction(left / scale)
            trace.append(TraceStep(
                "skip", f"Not funded: its {plural_thousands(votes[pid], 'supporter')} had only "
                f"{format_units(money, unit)} "
                f"left, it needed {format_units(engine.cost_minor[p], unit)}.", pid,
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
                trace.append(TraceStep("fund", f"Funded in the top-up: {plural_thousands(votes[p.id], 'voter')} "
                                       f"approved it "
                                       f"and it fit the {format_units(left + p.cost_minor, budget.unit_minor)} "
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
        # identical ballots prefer alike: one comparison per distinct approval set, weighted by its count
        groups = screening.groups if screening.groups else Counter(ballot.value for ballot in ballots)
        for value, count in groups.items():
            s_mes = len(value & mes_ids)
            s_greedy = len(value & greedy_ids)
            if params["comparison"] == "exclusion":
                s_mes, s_greedy = int(s_mes > 0), int(s_greedy > 0)
            if s_mes > s_greedy:
                prefer_mes += count
            elif s_greedy > s_mes:
                prefer_greedy += count
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
