"""The fast paths of the approval engines against plain reference versions: Add1 that skips the
steps a run proves unchanged, the fixed-point price, sums over a common denominator, grouped
ballot validation."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundcircle.errors import ValidationError
from fundcircle.voting import pabulib
from fundcircle.voting.base import Ballot, Budget, Proposal
from fundcircle.voting.registry import get_rule
from fundcircle.voting.rules import mes
from fundcircle.voting.rules._common import ExactSum, approval_ballots, screen
from fundcircle.voting.tiebreak import tie_key_function

SETTINGS = settings(max_examples=150, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
ASSEN = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "pabulib" / "Netherlands_Assen_2024.pb"


@st.composite
def elections(draw, max_projects: int = 6, max_voters: int = 12):
    m = draw(st.integers(1, max_projects))
    ids = [f"p{i}" for i in range(m)]
    proposals = [Proposal(pid, draw(st.integers(1, 60))) for pid in ids]
    n = draw(st.integers(1, max_voters))
    ballots = [Ballot(str(v), frozenset(draw(st.lists(st.sampled_from(ids), min_size=1, max_size=m, unique=True))))
               for v in range(n)]
    budget = draw(st.integers(1, sum(p.cost_minor for p in proposals)))
    return proposals, ballots, budget


def engine_for(proposals, ballots, budget_minor: int, utility: str = "cost",
               step_denominator: int = 1) -> tuple[mes.MesEngine, int]:
    """The engine as ``mes`` builds it for a step of 1/step_denominator currency units."""
    screening = screen(proposals, ballots, Budget(budget_minor, "PLN", 1), "seed", "cost_asc,votes_desc,lottery")
    tie = tie_key_function("cost_asc,votes_desc,lottery", "seed", screening.votes)
    scale = screening.n * step_denominator
    return mes.MesEngine(screening.candidates, screening.groups, utility, tie, scale), screening.n


def reference_complete(engine: mes.MesEngine, budget_minor: int, start: int, step: int, mode: str) -> mes.Completion:
    """The Add1 loop of voting-rules.md §3.2 as written: every step is a full run."""
    per_voter, current, runs = start, engine.run(start), 1
    while mode != "none" and len(current.bought) < len(engine.candidates):
        if mode == "add1-exhaustive" and mes._exhaustive(engine, current, budget_minor):
            break
        following = engine.run(per_voter + step)
        runs += 1
        if following.cost_minor > budget_minor:
            return mes.Completion(current, per_voter, runs, following.cost_minor)
        current, per_voter = following, per_voter + step
    return mes.Completion(current, per_voter, runs, None)


def assert_same_completion(engine: mes.MesEngine, fast: mes.Completion, slow: mes.Completion) -> None:
    assert (fast.per_voter_scaled, fast.runs, fast.overspend_minor) == (
        slow.per_voter_scaled, slow.runs, slow.overspend_minor)
    a, b = fast.result, slow.result
    assert (a.bought, a.alpha, a.rho, a.poor_weight, a.cost_minor) == (b.bought, b.alpha, b.rho, b.poor_weight,
                                                                        b.cost_minor)
    for p in range(len(engine.candidates)):
        assert engine.supporters_money(p, a) == engine.supporters_money(p, b)


@SETTINGS
@given(elections(), st.sampled_from(["add1", "add1-exhaustive"]), st.sampled_from(["cost", "cardinality"]),
       st.sampled_from([1, 2, 3]))
def test_add1_with_skipped_steps_equals_running_every_step(case, mode, utility, step_denominator) -> None:
    proposals, ballots, budget_minor = case
    engine, n = engine_for(proposals, ballots, budget_minor, utility, step_denominator)
    start, step = budget_minor * step_denominator, n  # B/n and a step of 1/step_denominator, scaled
    fast = mes.complete(engine, budget_minor, start, step, mode)
    slow = reference_complete(engine, budget_minor, start, step, mode)
    assert_same_completion(engine, fast, slow)


def test_skipping_never_hides_an_overspend_from_a_run_that_already_overspends() -> None:
    """Outside the rule (a start above B/n) the first run can overspend; the loop must still stop at once."""
    proposals = [Proposal("p0", 12), Proposal("p1", 10), Proposal("p2", 25), Proposal("p3", 13)]
    ballots = [Ballot("1", frozenset({"p1"})), Ballot("2", frozenset({"p0", "p2", "p3"}))]
    engine, n = engine_for(proposals, ballots, 26, "cardinality")
    fast = mes.complete(engine, 26, 52, n, "add1")
    assert (fast.per_voter_scaled, fast.runs, fast.overspend_minor) == (52, 2, 35)
    assert_same_completion(engine, fast, reference_complete(engine, 26, 52, n, "add1"))


@pytest.mark.skipif(not ASSEN.is_file(), reason="pabulib data directory absent")
def test_assen_add1_computes_few_of_its_845_runs() -> None:
    election = pabulib.load(ASSEN)
    engine, n = engine_for(election.proposals, election.ballots, election.budget.amount_minor)
    computed = 0
    real_run = engine.run

    def counting_run(*args):
        nonlocal computed
        computed += 1
        return real_run(*args)

    engine.run = counting_run  # type: ignore[method-assign]
    budget_minor = election.budget.amount_minor
    fast = mes.complete(engine, budget_minor, budget_minor, n, "add1")
    assert fast.runs == 845
    assert computed < 845 // 3  # the horizons let most steps go uncomputed
    engine.run = real_run  # type: ignore[method-assign]
    assert_same_completion(engine, fast, reference_complete(engine, budget_minor, budget_minor, n, "add1"))


def reference_price(cost, classes: list[tuple[Fraction, int]]):
    """The sorted scan: cheapest classes first pay all they have while that is below the equal share."""
    items = sorted(classes)
    if sum(v * w for v, w in items) < cost:
        return None
    paid, left, poor = Fraction(0), sum(w for _, w in items), 0
    alpha = Fraction(cost, left)
    for value, w in items:
        alpha = (cost - paid) / left
        if value < alpha:
            paid += value * w
            left -= w
            poor += w
        else:
            break
    return alpha, poor


@SETTINGS
@given(st.integers(1, 500), st.lists(st.tuples(st.fractions(min_value=Fraction(1, 7), max_value=200,
                                                               max_denominator=50), st.integers(1, 9)),
                                     min_size=1, max_size=8))
def test_fixed_point_price_equals_the_sorted_scan(cost, classes) -> None:
    engine = mes.MesEngine([Proposal("x", cost)], {frozenset({"x"}): 1}, "cost", lambda p: (p.id,), 1)
    engine.num = Fraction
    class_value = [Fraction(0)] + [v for v, _ in classes]
    engine.single_supporters = [[]]
    engine.heavy_supporters = [[(g, w) for g, (_, w) in enumerate(classes)]]
    class_of = list(range(1, len(classes) + 1))
    assert engine._evaluate(0, class_of, class_value) == reference_price(cost, classes)


@SETTINGS
@given(st.lists(st.tuples(st.fractions(max_denominator=10**12), st.integers(0, 10**6)), max_size=30))
def test_exact_sum_is_the_sum_of_the_fractions(terms) -> None:
    total = ExactSum()
    total.add((v for v, _ in terms), (w for _, w in terms))
    assert Fraction(total.numerator, total.denominator) == sum((v * w for v, w in terms), Fraction(0))


PROPOSALS = [Proposal("a", 10), Proposal("b", 20), Proposal("c", 30)]


def check(ballots, **params):
    rule = get_rule("mes")
    return approval_ballots(rule, ballots, PROPOSALS, Budget(50, "PLN", 1), rule.resolve_params(params))


def test_grouped_validation_groups_identical_ballots_and_drops_abstentions() -> None:
    ballots = [Ballot("1", frozenset({"a"})), Ballot("2", frozenset()), Ballot("3", {"a"}),
               Ballot("4", frozenset({"b", "c"})), Ballot("5", frozenset({"a"}))]
    valid, groups = check(ballots, min_approvals="0")
    assert [b.voter_id for b in valid] == ["1", "3", "4", "5"]
    assert groups == Counter({frozenset({"a"}): 3, frozenset({"b", "c"}): 1})
    valid, groups = check([b for b in ballots if b.value and isinstance(b.value, frozenset)])
    assert groups == Counter({frozenset({"a"}): 2, frozenset({"b", "c"}): 1}) and len(valid) == 3


@pytest.mark.parametrize(("ballots", "params", "voter", "fragment"), [
    ([Ballot("1", frozenset({"a"})), Ballot("2", frozenset({"zz"})), Ballot("3", frozenset({"zz"}))], {}, "2",
     "not in the round: zz"),
    ([Ballot("1", frozenset({"a"})), Ballot("2", frozenset()), Ballot("3", frozenset())], {}, "2",
     "at least 1 proposal"),
    ([Ballot("1", frozenset({"a", "b"})), Ballot("2", frozenset({"a"})), Ballot("3", frozenset({"a", "b"}))],
     {"max_approvals": "1"}, "1", "at most 1 proposal"),
    ([Ballot("1", frozenset({"a"})), Ballot("2", ("a",))], {}, "2", "is a set of proposals"),
    ([Ballot("1", frozenset({"a"})), Ballot("2", ["a"])], {}, "2", "is a set of proposals"),
])
def test_grouped_validation_names_the_first_bad_ballot(ballots, params, voter, fragment) -> None:
    with pytest.raises(ValidationError) as raised:
        check(ballots, **params)
    assert f"ballot of voter {voter!r}" in raised.value.user_message
    assert fragment in raised.value.user_message
