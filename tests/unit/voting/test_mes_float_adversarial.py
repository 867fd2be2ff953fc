"""Adversarial cases for certified float runs (``mes_float``): each float run must finish, and be
None or exactly the exact engine's run at the same budget.

The hand-made elections put a budget exactly on a price (where float roundings of α go either
way), on the largest exact integers, near 0, or make grouped ballots heavy; the generated ones
draw costs and weights that give non-dyadic α (thirds, sevenths) and long purchase chains.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundcircle.voting.base import Ballot, Budget, Proposal
from fundcircle.voting.registry import get_rule
from fundcircle.voting.rules import mes
from fundcircle.voting.rules.mes_float import FloatRuns
from tests.unit.voting.test_mes_float import engine_for

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
    engine, _start, _step = engine_for(proposals, ballots, budget, utility)
    float_runs = FloatRuns(engine)
    decided = 0
    for per_voter in budgets_scaled:
        with finishes_within(5):
            got = float_runs.run(per_voter)
        exact = engine.run(per_voter)
        if got is not None:
            decided += 1
            assert got == (exact.bought, exact.cost_minor), per_voter
    return decided


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
