"""Certified float runs (``mes_float``) decide exactly as the exact MES engine, or not at all.

Each float run either returns None (a decision too close for its error bounds) or exactly the
exact engine's purchases and cost at the same budget. Elections are drawn with many exact ties
(few distinct costs, repeated ballots) and budgets near the prices, where the bounds are tested
hardest; the real elections cover the many-voter case along their Add1 paths.

Every test runs twice: on the numpy code and on the compiled extension ``_mes_float_c`` (skipped
when it is not built), and the two must give identical runs, None included.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundcircle.voting import pabulib
from fundcircle.voting.base import Ballot, Budget, Proposal
from fundcircle.voting.registry import get_rule
from fundcircle.voting.rules import mes, mes_float
from fundcircle.voting.rules._common import approval_ballots, screen
from fundcircle.voting.rules.mes_float import FloatRuns, complete_with_float
from fundcircle.voting.tiebreak import tie_key_function
from tests.support.mes import floats_disabled

SETTINGS = settings(max_examples=300, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
DATA_DIR = Path(os.environ.get("FUNDCIRCLE_PABULIB_DIR")
                or Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "pabulib")

#: the compiled run as the module imported it, before any test switches it off (None: not built)
COMPILED = mes_float._mes_float_c


@pytest.fixture(autouse=True, params=["numpy", "compiled"])
def float_implementation(request, monkeypatch):
    """Each test runs with FloatRuns on the numpy code and on the compiled extension (skipped
    when it is not built); FloatRuns takes the extension the module imported, if any."""
    if request.param == "numpy":
        monkeypatch.setattr(mes_float, "_mes_float_c", None)
    elif COMPILED is None:
        pytest.skip("fundcircle.voting.rules._mes_float_c is not built")
    return request.param


def float_runs_for(engine) -> FloatRuns:
    """FloatRuns for the implementation under test, checking that it really is the one used."""
    runs = FloatRuns(engine)
    if mes_float._mes_float_c is not None and runs.usable:
        assert runs.native is not None, "the compiled run must be used when it is built"
    else:
        assert runs.native is None
    return runs


def skip_unless_compiled() -> None:
    if mes_float._mes_float_c is None:
        pytest.skip("compares the compiled run with the numpy one: runs under the compiled parameter")


def assert_identical_runs(engine, budgets_scaled) -> None:
    """The compiled run and the numpy run give the same result at each budget, None included
    (under the numpy parameter there is nothing to compare)."""
    if mes_float._mes_float_c is None:
        return
    compiled = FloatRuns(engine)
    plain = FloatRuns(engine)
    plain.native = None
    got = [compiled.run(b) for b in budgets_scaled]
    expected = [plain.run(b) for b in budgets_scaled]
    assert got == expected


def engine_for(proposals, ballots, budget: Budget, utility: str = "cost"):
    """The engine, first per-voter budget and Add1 step that ``mes`` builds for this election."""
    rule = get_rule("mes")
    params = rule.resolve_params({"utility": utility})
    valid, groups = approval_ballots(rule, ballots, proposals, budget, params)
    screening = screen(proposals, valid, budget, "seed", params["tie_order"], groups)
    tie_key = tie_key_function(params["tie_order"], "seed", screening.votes)
    step_minor = params["step"] * budget.unit_minor
    engine = mes.MesEngine(screening.candidates, screening.groups, utility, tie_key,
                           screening.n * step_minor.denominator)
    return engine, budget.amount_minor * step_minor.denominator, step_minor.numerator * screening.n


@st.composite
def tied_elections(draw):
    """Few distinct costs and repeated ballots: many projects with exactly equal prices."""
    ids = [f"p{i}" for i in range(draw(st.integers(1, 8)))]
    costs = draw(st.lists(st.sampled_from([6, 12, 30, 60]), min_size=len(ids), max_size=len(ids)))
    proposals = [Proposal(pid, c) for pid, c in zip(ids, costs)]
    kinds = draw(st.lists(st.frozensets(st.sampled_from(ids), min_size=1), min_size=1, max_size=5))
    ballots = [Ballot(str(v), draw(st.sampled_from(kinds))) for v in range(draw(st.integers(1, 40)))]
    budget = draw(st.integers(1, sum(costs)))
    return proposals, ballots, Budget(budget, "EUR", 1), draw(st.sampled_from(["cost", "cardinality"]))


def assert_float_runs_agree(proposals, ballots, budget: Budget, utility: str, budgets_scaled) -> int:
    """Every float run is None or the exact run; returns how many were decided in floats."""
    engine, _start, _step = engine_for(proposals, ballots, budget, utility)
    float_runs = float_runs_for(engine)
    decided = 0
    for per_voter in budgets_scaled:
        got = float_runs.run(per_voter)
        exact = engine.run(per_voter)
        if got is not None:
            decided += 1
            assert got == (exact.bought, exact.cost_minor), per_voter
    return decided


@SETTINGS
@given(tied_elections(), st.integers(0, 40))
def test_float_runs_are_the_exact_runs_or_none(election, steps):
    proposals, ballots, budget, utility = election
    engine, start, step = engine_for(proposals, ballots, budget, utility)
    assert_float_runs_agree(proposals, ballots, budget, utility, [start + k * step for k in range(steps, steps + 3)])


def test_exact_ties_between_opening_prices_are_decided_in_floats_by_the_tie_order():
    # four projects with the same cost and the same number of supporters: equal prices, which
    # floats cannot order by themselves; the exact opening prices and the tie order do
    proposals = [Proposal(f"p{i}", 30) for i in range(4)]
    ballots = [Ballot(str(v), frozenset({f"p{v % 4}"})) for v in range(12)]
    budget = Budget(60, "EUR", 1)
    engine, start, _step = engine_for(proposals, ballots, budget)
    decided = float_runs_for(engine).run(start)
    assert decided is not None
    assert decided == (engine.run(start).bought, engine.run(start).cost_minor)


def test_a_run_too_close_to_call_falls_back_and_the_completion_is_unchanged():
    # three voters approving everything: after the first 30 is bought, at 20 per voter each has
    # exactly 10 left, the price of the second 30 - a budget equal to α, which no error bound can
    # place on either side
    proposals = [Proposal("p0", 60), Proposal("p1", 30), Proposal("p2", 30)]
    ballots = [Ballot(str(v), frozenset({"p0", "p1", "p2"})) for v in range(3)]
    budget = Budget(39, "EUR", 1)
    engine, start, step = engine_for(proposals, ballots, budget)
    float_runs = float_runs_for(engine)
    undecided = [k for k in range(30) if float_runs.run(start + k * step) is None]
    assert undecided, "the example must reach a decision floats cannot take"
    for mode in ("add1", "add1-exhaustive"):
        fast = complete_with_float(engine, budget.amount_minor, start, step, mode)
        slow = mes.complete(engine, budget.amount_minor, start, step, mode, resume=False, floats=False)
        assert (fast.result.bought, fast.per_voter_scaled, fast.runs, fast.overspend_minor) == (
            slow.result.bought, slow.per_voter_scaled, slow.runs, slow.overspend_minor)


@SETTINGS
@given(tied_elections(), st.sampled_from(["add1", "add1-exhaustive"]))
def test_completion_with_float_runs_keeps_the_same_run(election, mode):
    proposals, ballots, budget, utility = election
    engine, start, step = engine_for(proposals, ballots, budget, utility)
    fast = complete_with_float(engine, budget.amount_minor, start, step, mode)
    slow = mes.complete(engine, budget.amount_minor, start, step, mode, resume=False, floats=False)
    assert (fast.result.bought, fast.result.alpha, fast.per_voter_scaled, fast.runs, fast.overspend_minor) == (
        slow.result.bought, slow.result.alpha, slow.per_voter_scaled, slow.runs, slow.overspend_minor)


@SETTINGS
@given(tied_elections(), st.integers(0, 40))
def test_compiled_and_numpy_runs_are_identical(election, steps):
    skip_unless_compiled()
    proposals, ballots, budget, utility = election
    engine, start, step = engine_for(proposals, ballots, budget, utility)
    assert_identical_runs(engine, [start + k * step for k in range(steps, steps + 3)])


APPROVAL_FILES = ["Poland_Swiecie_2023.pb", "Poland_Wieliczka_2023_Green_Budget.pb", "Netherlands_Assen_2024.pb"]


@pytest.mark.parametrize("name", APPROVAL_FILES)
def test_real_elections_along_their_add1_path(name):
    path = DATA_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    election = pabulib.load(path)
    engine, start, step = engine_for(election.proposals, election.ballots, election.budget)
    budgets = [start + k * step for k in range(0, 200, 7)]
    decided = assert_float_runs_agree(election.proposals, election.ballots, election.budget, "cost", budgets)
    # floats must do the work on real elections, not fall back every time
    assert decided >= len(budgets) * 3 // 4


@pytest.mark.parametrize("name", APPROVAL_FILES)
def test_real_elections_compiled_and_numpy_runs_are_identical(name):
    # numpy's masked dot products (xw @ short) sum in BLAS's order, the compiled run pairwise: both
    # are within the bounds, and on these elections every result is the same, None included
    skip_unless_compiled()
    path = DATA_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    election = pabulib.load(path)
    engine, start, step = engine_for(election.proposals, election.ballots, election.budget)
    assert_identical_runs(engine, [start + k * step for k in range(0, 300, 3)])


def test_compiled_runs_reject_bad_input():
    skip_unless_compiled()
    import numpy as np

    runs = COMPILED.Runs
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    f64 = lambda *v: np.array(v, dtype=np.float64)  # noqa: E731
    # two candidates: p0 supported by groups 0 and 1 (weights 2, 3), p1 by group 1
    good = dict(sup_ptr=i64(0, 2, 3), sup_idx=i64(0, 1, 1), sup_w=f64(2, 3, 3), weight=i64(5, 3),
                cost=i64(10, 6), tie_rank=i64(0, 1), groups=2, by_cost=True)
    assert runs(**good).run(2) == [0]
    assert runs(**good).run(1) == []
    bad_types = [("sup_ptr", [0, 2, 3]), ("sup_idx", np.array([0, 1, 1], dtype=np.int32)),
                 ("sup_w", i64(2, 3, 3)), ("weight", f64(5, 3)), ("cost", np.zeros((2, 1), dtype=np.int64)),
                 ("tie_rank", np.arange(4, dtype=np.int64)[::2]), ("groups", "2")]
    for field, value in bad_types:
        with pytest.raises(TypeError):
            runs(**{**good, field: value})
    bad_values = [("sup_ptr", i64(0, 2)), ("sup_ptr", i64(1, 2, 3)), ("sup_ptr", i64(0, 3, 2)),
                  ("sup_idx", i64(0, 2, 1)), ("sup_idx", i64(0, -1, 1)), ("sup_idx", i64(1, 1, 1)),
                  ("sup_w", f64(2, 3)), ("sup_w", f64(2, 3.5, 3)), ("sup_w", f64(2, float("nan"), 3)),
                  ("sup_w", f64(0, 5, 3)), ("weight", i64(5, 4)), ("weight", i64(5)), ("cost", i64(10, 0)),
                  ("cost", i64(10, 2**53)), ("tie_rank", i64(0)), ("groups", 1), ("groups", -1)]
    for field, value in bad_values:
        with pytest.raises(ValueError):
            runs(**{**good, field: value})
    ok = runs(**good)
    for b in (-1, 2**53, 2**70):
        with pytest.raises(ValueError):
            ok.run(b)
    for b in (2.0, "2", None):
        with pytest.raises(TypeError):
            ok.run(b)


def test_elections_the_compiled_run_cannot_take_use_the_numpy_run():
    # a cost below 1 (never in a tally: free proposals are set aside before the engine) and tie
    # keys that do not sort: the numpy code runs
    engine = mes.MesEngine([Proposal("a", 0), Proposal("b", 4)], {frozenset({"a", "b"}): 2}, "cost",
                           lambda p: (p.id,), 1)
    assert FloatRuns(engine).native is None
    keys = {"a": (1,), "b": ("x",)}  # never compared by the numpy run: the prices 3/2 and 4/2 differ
    engine = mes.MesEngine([Proposal("a", 3), Proposal("b", 4)], {frozenset({"a", "b"}): 2}, "cardinality",
                           lambda p: keys[p.id], 1)
    runs = FloatRuns(engine)
    assert runs.native is None
    assert runs.run(3) == (engine.run(3).bought, engine.run(3).cost_minor)


def tally(proposals, ballots, budget: Budget, **params):
    rule = get_rule("mes")
    outcome = rule.tally(proposals, ballots, budget, rule.resolve_params(params), "seed")
    return outcome.funded, [(t.action, t.message, t.proposal_id, dict(t.data)) for t in outcome.trace], outcome.summary


@SETTINGS
@given(tied_elections(), st.sampled_from(["add1", "add1-exhaustive"]),
       st.sampled_from([Fraction(1), Fraction(1, 3), Fraction(5, 2)]))
def test_tallies_with_float_runs_equal_exact_tallies(election, completion, step):
    proposals, ballots, budget, utility = election
    fast = tally(proposals, ballots, budget, completion=completion, utility=utility, step=step)
    with floats_disabled():
        assert tally(proposals, ballots, budget, completion=completion, utility=utility, step=step) == fast


@pytest.mark.parametrize("name", APPROVAL_FILES)
def test_official_mes_elections_tally_the_same_without_float_runs(name):
    path = DATA_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    election = pabulib.load(path)
    fast = tally(election.proposals, election.ballots, election.budget, completion="add1")
    with floats_disabled():
        assert tally(election.proposals, election.ballots, election.budget, completion="add1") == fast


def test_a_kept_run_that_disagrees_with_its_float_run_completes_exactly(monkeypatch, caplog):
    # the bounds rule this out; if it ever happened, the exact loop decides and the log says so
    proposals = [Proposal("a", 30), Proposal("b", 20), Proposal("c", 25)]
    ballots = [Ballot("1", frozenset({"a", "b"})), Ballot("2", frozenset({"b"})), Ballot("3", frozenset({"c", "a"}))]
    budget = Budget(60, "EUR", 1)
    expected = tally(proposals, ballots, budget, completion="add1")
    def wrong_order(self, per_voter):  # the right projects and cost, in the wrong order
        exact = self.engine.run(per_voter)
        return exact.bought[::-1], exact.cost_minor

    monkeypatch.setattr(FloatRuns, "run", wrong_order)
    with caplog.at_level("ERROR", logger="fundcircle.voting.rules.mes_float"):
        assert tally(proposals, ballots, budget, completion="add1") == expected
    assert "completing exactly" in caplog.text
