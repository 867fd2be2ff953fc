"""Adversarial cases for certified float runs (``mes_float``): each float run must finish, and be
None or exactly the exact engine's run at the same budget.

The hand-made elections put a budget exactly on a price (where float roundings of α go either
way), on the largest exact integers, near 0, or make grouped ballots heavy; the generated ones
draw costs and weights that give non-dyadic α (thirds, sevenths) and long purchase chains. Every test runs on the numpy code and on the compiled extension
(``float_implementation``, test_mes_float.py).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundcircle.voting.base import Ballot, Budget, Proposal
from fundcircle.voting.registry import get_rule
from fundcircle.voting.rules import mes
from fundcircle.voting.rules.mes_float import FloatRuns
from tests.unit.voting.test_mes_float import (  # noqa: F401  (float_implementation: autouse, numpy and compiled)
    assert_float_runs_agree, assert_identical_runs, engine_for, float_implementation, float_runs_for, skip_unless_compiled,
)

SETTINGS = settings(max_examples=150, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


class TookTooLong(Exception):
    pass


@contextmanager
def finishes_within(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    def stop(signum, frame):
        raise TookTooLong(f"did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def election(groups: list[tuple[set[str], int]], costs: dict[str, int], budget_minor: int):
    """Proposals and ballots: ``groups`` = (approved ids, how many identical ballots)."""
    proposals = [Proposal(pid, cost) for pid, cost in costs.items()]
    ballots = [Ballot(f"{i}-{v}", frozenset(approved)) for i, (approved, count) in enumerate(groups)
               for v in range(count)]
    return proposals, ballots, Budget(budget_minor, "EUR", 1)


def check_runs(proposals, ballots, budget: Budget, utility: str, budgets_scaled) -> int:
    """Every float run finishes and is None or the exact run; returns how many floats decided."""
    budgets_scaled = list(budgets_scaled)
    with finishes_within(5 * max(len(budgets_scaled), 1)):
        return assert_float_runs_agree(proposals, ballots, budget, utility, budgets_scaled)


# --- a budget exactly at a price: the search for α must not go round in circles ---------------

def budget_on_the_price(w_j: int, w_a: int, w_r: int, w_d: int, b: int, cost_1: int, cost_2: int, cost_p: int):
    """q1 (groups J, D) and q2 (A, D) are bought first; then J's budget is exactly p's α with A
    short (cost_p = (w_j + w_r)·J's budget + w_a·A's budget). In floats J's budget and α each carry
    a rounding, so J is short at one α and not at the next."""
    groups = [({"q1", "p"}, w_j), ({"q2", "p"}, w_a), ({"p"}, w_r), ({"q1", "q2"}, w_d)]
    return election(groups, {"q1": cost_1, "q2": cost_2, "p": cost_p}, b * (w_j + w_a + w_r + w_d))


# found by a search over such elections (each float run of _evaluate's loop alternated between two
# splits forever before the fix); the first is cost utility, the second cardinality
ON_THE_PRICE = [
    ((3, 13, 8, 30, 780140, 7083348, 15248445, 11752249), "cost"),
    ((2, 12, 5, 54, 830136, 10367064, 41439563, 6942235), "cost"),
    ((3, 29, 12, 0, 582404, 64810, 5063683, 20238043), "cardinality"),
]


@pytest.mark.parametrize(("case", "utility"), ON_THE_PRICE)
def test_a_budget_exactly_at_the_price_finishes_and_agrees(case, utility):
    proposals, ballots, budget = budget_on_the_price(*case)
    engine, start, step = engine_for(proposals, ballots, budget, utility)
    check_runs(proposals, ballots, budget, utility, [start + k * step for k in range(3)])


def test_a_tally_whose_first_run_has_a_budget_at_the_price_finishes():
    proposals, ballots, budget = budget_on_the_price(*ON_THE_PRICE[0][0])
    rule = get_rule("mes")
    with finishes_within(10):
        outcome = rule.tally(proposals, ballots, budget, rule.resolve_params({"completion": "add1"}), "seed")
    assert set(outcome.funded) == {"q1", "q2", "p"}


def test_the_tally_of_a_budget_on_the_price_is_the_exact_tally():
    proposals, ballots, budget = budget_on_the_price(*ON_THE_PRICE[1][0])
    rule = get_rule("mes")
    params = rule.resolve_params({"completion": "add1"})
    engine, start, step = engine_for(proposals, ballots, budget)
    fast = mes.complete(engine, budget.amount_minor, start, step, "add1")
    slow = mes.complete(engine, budget.amount_minor, start, step, "add1", resume=False, floats=False)
    assert (fast.result.bought, fast.per_voter_scaled, fast.runs) == (slow.result.bought, slow.per_voter_scaled,
                                                                       slow.runs)
    assert rule.tally(proposals, ballots, budget, params, "seed").funded


# --- hand-made corners ----------------------------------------------------------------------

def engine_from_groups(costs: list[int], groups: dict[frozenset[str], int], utility: str = "cost", scale: int = 1):
    """An engine straight from weighted groups (weights far beyond what ballot lists allow), ties by id."""
    candidates = [Proposal(f"p{i}", cost) for i, cost in enumerate(costs)]
    return mes.MesEngine(candidates, groups, utility, lambda p: (p.id,), scale)


def agree(engine, budgets_scaled) -> int:
    float_runs = float_runs_for(engine)
    decided = 0
    for per_voter in budgets_scaled:
        with finishes_within(5):
            got = float_runs.run(per_voter)
        if got is not None:
            decided += 1
            exact = engine.run(per_voter)
            assert got == (exact.bought, exact.cost_minor), per_voter
    return decided


def test_amounts_next_to_two_to_the_53():
    top = 2**53 - 1
    groups = {frozenset({"p0", "p1"}): 3, frozenset({"p1", "p2"}): 7, frozenset({"p2"}): 1}
    engine = engine_from_groups([top - 2, top // 3, top - 12345], groups)
    decided = agree(engine, [top // 3, top // 7, top // 2, top - 1, top])
    assert decided  # floats still decide some of these
    # at 2**53 floats are no longer exact: the run must refuse
    assert FloatRuns(engine).run(2**53) is None


def test_costs_at_two_to_the_53_make_floats_unusable():
    engine = engine_from_groups([2**53, 5], {frozenset({"p0", "p1"}): 2})
    assert not FloatRuns(engine).usable
    assert FloatRuns(engine).run(10) is None


def test_heavy_groups_and_tiny_prices():
    # weights of 2**40: α = cost/weight is ~2**-40 of a scaled unit (never subnormal, never exact)
    heavy = 2**40
    groups = {frozenset({"p0", "p1"}): heavy, frozenset({"p1"}): heavy + 1, frozenset({"p2", "p0"}): 3}
    engine = engine_from_groups([1, 3, 2], groups)
    assert agree(engine, [0, 1, 2, 3, 5])
    engine = engine_from_groups([1, 3, 2], groups, "cardinality")
    agree(engine, [0, 1, 2, 3, 5])


def test_a_budget_of_zero_buys_nothing():
    engine = engine_from_groups([1, 2], {frozenset({"p0", "p1"}): 5})
    assert FloatRuns(engine).run(0) == ([], 0)


def test_identical_supporters_and_costs_tie_by_the_tie_order_after_purchases():
    # p1 and p2 have the same supporters and cost: equal prices at every step, also when some of
    # their supporters are short after p0 is bought; floats must never order them by rounding
    groups = {frozenset({"p0", "p1", "p2"}): 2, frozenset({"p1", "p2"}): 5, frozenset({"p0"}): 1}
    for utility in ("cost", "cardinality"):
        engine = engine_from_groups([21, 10, 10], groups, utility, scale=7)
        agree(engine, range(1, 60))


def test_a_supporter_left_with_exactly_the_price():
    # after p0 (cost 30 among 3) each voter of the first group has exactly 10 left, p1's price
    groups = {frozenset({"p0", "p1"}): 3, frozenset({"p1"}): 3}
    for utility in ("cost", "cardinality"):
        engine = engine_from_groups([30, 60], groups, utility)
        agree(engine, range(15, 30))


# --- generated elections --------------------------------------------------------------------

@st.composite
def weighted_elections(draw):
    """Costs with odd factors (thirds, sevenths: α never dyadic), heavy groups, any scale."""
    m = draw(st.integers(1, 6))
    base = draw(st.sampled_from([[3, 7, 21, 9], [1, 2, 3, 5, 7, 11, 13], [6, 12, 30, 60]]))
    costs = [draw(st.sampled_from(base)) * draw(st.sampled_from([1, 7, 49, 1001])) for _ in range(m)]
    ids = [f"p{i}" for i in range(m)]
    weight = draw(st.sampled_from([3, 60, 10**6]))
    kinds = draw(st.lists(st.tuples(st.frozensets(st.sampled_from(ids), min_size=1), st.integers(1, weight)),
                          min_size=1, max_size=6))
    groups: dict[frozenset[str], int] = {}
    for kind, count in kinds:
        groups[kind] = groups.get(kind, 0) + count
    supported = sorted(set().union(*groups), key=ids.index)  # the engine takes supported candidates only
    rename = {pid: f"p{i}" for i, pid in enumerate(supported)}
    groups = {frozenset(rename[pid] for pid in kind): count for kind, count in groups.items()}
    costs = [costs[ids.index(pid)] for pid in supported]
    utility = draw(st.sampled_from(["cost", "cardinality"]))
    scale = draw(st.sampled_from([1, 3, 7, sum(groups.values())]))
    return costs, groups, utility, scale


@SETTINGS
@given(weighted_elections(), st.lists(st.integers(-1, 1), min_size=1, max_size=3), st.integers(1, 10**6))
def test_generated_elections_at_budgets_on_and_next_to_opening_prices(election, offsets, free_budget):
    costs, groups, utility, scale = election
    engine = engine_from_groups(costs, groups, utility, scale)
    thresholds = [-(-engine.cost_scaled[p] // engine.weight[p]) for p in range(len(costs))]
    budgets = [max(0, t + d) for t in thresholds for d in offsets]
    agree(engine, [*budgets, free_budget % (max(engine.cost_scaled) + 1)])


@SETTINGS
@given(weighted_elections(), st.lists(st.integers(-1, 1), min_size=1, max_size=3), st.integers(1, 10**6))
def test_generated_elections_compiled_and_numpy_runs_are_identical(election, offsets, free_budget):
    skip_unless_compiled()
    costs, groups, utility, scale = election
    engine = engine_from_groups(costs, groups, utility, scale)
    thresholds = [-(-engine.cost_scaled[p] // engine.weight[p]) for p in range(len(costs))]
    budgets = [max(0, t + d) for t in thresholds for d in offsets]
    assert_identical_runs(engine, [*budgets, free_budget % (max(engine.cost_scaled) + 1)])


@SETTINGS
@given(st.lists(st.integers(1, 2**52), min_size=1, max_size=5), st.lists(st.integers(1, 2**40), min_size=1,
       max_size=5), st.integers(1, 2**53 - 1), st.sampled_from(["cost", "cardinality"]), st.randoms())
def test_generated_large_amounts(costs, weights, per_voter, utility, random):
    ids = [f"p{i}" for i in range(len(costs))]
    groups: dict[frozenset[str], int] = {frozenset(ids): 1}
    for w in weights:
        kind = frozenset(random.sample(ids, random.randint(1, len(ids))))
        groups[kind] = groups.get(kind, 0) + w
    engine = engine_from_groups(costs, groups, utility)
    agree(engine, [per_voter, per_voter // 3, max(costs) // 2])
    assert_identical_runs(engine, [per_voter, per_voter // 3, max(costs) // 2])


def critical_budgets(engine, start, count: int):
    """The next ``count`` per-voter budgets (exact rationals) from ``start`` on at which a decision of
    the exact run changes: where a budget equals a price, two prices tie, or the money of a
    project's supporters equals its cost (the run's horizon, :meth:`MesEngine.run`)."""
    found = []
    b = start
    for _ in range(count):
        horizon = engine.run(b, 0).horizon
        if horizon is None:
            break
        if horizon:
            b += horizon
        found.append(b)
        if not horizon:
            b += Fraction(1, 997)  # a decision changes right here: look past it
    return found


@SETTINGS
@given(weighted_elections(), st.integers(1, 60), st.integers(1, 5),
       st.sampled_from([(lambda p: (p.id,)), (lambda p: (-p.cost_minor, p.id))]))
def test_generated_elections_at_the_budgets_where_decisions_change(election, numerator, denominator, tie_key):
    costs, groups, utility, _scale = election
    candidates = [Proposal(f"p{i}", cost) for i, cost in enumerate(costs)]
    engine = mes.MesEngine(candidates, groups, utility, tie_key, 1)
    for b in critical_budgets(engine, Fraction(numerator * min(costs), denominator), 4):
        if b.denominator > 10**6:
            continue
        # the same election in money scaled by b's denominator, so that b is an integer there
        scaled = mes.MesEngine(candidates, groups, utility, tie_key, b.denominator)
        on = int(b * b.denominator)
        agree(scaled, [on - 1, on, on + 1])
