"""pabutools 1.2.3 (GPL-3.0, test-only) as a second oracle for approval-greedy, mes and phragmen on
random small instances (voting-rules.md §6), under the same full tie order, lottery key included."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fundcircle.voting.base import Ballot, Budget, Proposal
from fundcircle.voting.registry import get_rule
from fundcircle.voting.tiebreak import ballot_digest, lottery_key, make_seed, tie_key_function

ORACLE_SETTINGS = settings(max_examples=300, derandomize=True, deadline=None,
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def test_fundcircle_never_imports_pabutools() -> None:
    """GPL stays out of the package: importing all of fundcircle.voting (and the CLI) loads no pabutools."""
    code = (
        "import sys, importlib, pkgutil, fundcircle, fundcircle.cli, fundcircle.voting\n"
        "import fundcircle.voting.rules as rules\n"
        "for m in ('base','registry','tiebreak','pabulib'): importlib.import_module('fundcircle.voting.' + m)\n"
        "for info in pkgutil.iter_modules(rules.__path__): importlib.import_module('fundcircle.voting.rules.' + info.name)\n"
        "from fundcircle.voting.registry import all_rules; all_rules()\n"
        "bad = sorted(m for m in sys.modules if m == 'pabutools' or m.startswith('pabutools.'))\n"
        "print(','.join(bad)); sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"pabutools modules loaded: {done.stdout} {done.stderr}"


pabutools = pytest.importorskip("pabutools")
from pabutools.election import ApprovalBallot, ApprovalProfile, Cost_Sat, Instance, Project  # noqa: E402
from pabutools.rules import (  # noqa: E402
    greedy_utilitarian_welfare, method_of_equal_shares, sequential_phragmen,
)
from pabutools.tiebreaking import TieBreakingRule  # noqa: E402

SEED_ROUND = "oracle"


@st.composite
def instances(draw, max_projects: int = 7, max_voters: int = 14, max_cost: int = 60):
    """(proposals, ballots, budget): costs >= 1, every ballot non-empty."""
    m = draw(st.integers(2, max_projects))
    costs = draw(st.lists(st.integers(1, max_cost), min_size=m, max_size=m))
    ids = [str(i + 1) for i in range(m)]  # "10" vs "9" ordering would differ from pabutools' default
    n = draw(st.integers(1, max_voters))
    ballots = [frozenset(draw(st.lists(st.sampled_from(ids), min_size=1, max_size=m, unique=True)))
               for _ in range(n)]
    budget = draw(st.integers(1, sum(costs)))
    proposals = [Proposal(pid, cost) for pid, cost in zip(ids, costs)]
    return proposals, [Ballot(str(i), b) for i, b in enumerate(ballots)], budget


def ours(rule_id: str, proposals, ballots, budget_minor: int, **params):
    rule = get_rule(rule_id)
    seed = make_seed(SEED_ROUND, ballot_digest(ballots))
    outcome = rule.tally(proposals, ballots, Budget(budget_minor, "PLN", 1), rule.resolve_params(params), seed)
    return outcome, seed


def oracle_inputs(proposals, ballots, budget_minor: int, seed: str, budget_limit: int | None = None):
    """The same election for pabutools, leaving out what our screening removes (§0, §6): proposals
    costing more than B and proposals nobody approved (pabutools' greedy would add those)."""
    votes = {p.id: sum(p.id in b.value for b in ballots) for p in proposals}
    kept = [p for p in proposals if p.cost_minor <= budget_minor and votes[p.id] > 0]
    projects = {p.id: Project(p.id, p.cost_minor) for p in kept}
    instance = Instance(projects.values(), budget_limit=budget_limit if budget_limit is not None else budget_minor)
    profile = ApprovalProfile([ApprovalBallot([projects[pid] for pid in b.value if pid in projects])
                               for b in ballots], instance=instance)
    ours_key = tie_key_function("cost_asc,votes_desc,lottery", seed, votes)
    by_name = {p.id: p for p in kept}
    tie = TieBreakingRule(lambda _inst, _prof, project: ours_key(by_name[project.name]))
    return instance, profile, tie, projects


def names(allocation) -> set[str]:
    return {p.name for p in allocation}


@ORACLE_SETTINGS
@given(instances())
def test_approval_greedy_matches_pabutools(case) -> None:
    proposals, ballots, budget = case
    outcome, seed = ours("approval-greedy", proposals, ballots, budget)
    instance, profile, tie, _ = oracle_inputs(proposals, ballots, budget, seed)
    expected = greedy_utilitarian_welfare(instance, profile, sat_class=Cost_Sat, tie_breaking=tie)
    assert set(outcome.selected) == names(expected)


@ORACLE_SETTINGS
@given(instances())
def test_plain_mes_matches_pabutools(case) -> None:
    proposals, ballots, budget = case
    outcome, seed = ours("mes", proposals, ballots, budget, completion="none")
    instance, profile, tie, _ = oracle_inputs(proposals, ballots, budget, seed)
    expected = method_of_equal_shares(instance, profile, sat_class=Cost_Sat, tie_breaking=tie)
    assert outcome.selected == [p.name for p in expected]  # same order, too


@ORACLE_SETTINGS
@given(instances())
def test_mes_add1_exhaustive_matches_pabutools_voter_budget_increment(case) -> None:
    proposals, ballots, budget = case
    outcome, seed = ours("mes", proposals, ballots, budget, completion="add1-exhaustive")
    instance, profile, tie, _ = oracle_inputs(proposals, ballots, budget, seed)
    expected = method_of_equal_shares(instance, profile, sat_class=Cost_Sat, tie_breaking=tie,
                                      voter_budget_increment=1)
    assert set(outcome.selected) == names(expected)


@ORACLE_SETTINGS
@given(instances(max_voters=10, max_cost=30))
def test_mes_official_add1_matches_the_budget_limit_loop(case) -> None:
    """§6: run pabutools' plain MES on Instance(budget_limit=B + k·n) for k = 0, 1, ... and keep the
    last outcome costing at most B (stop at the first overspend or when everything is bought)."""
    proposals, ballots, budget = case
    outcome, seed = ours("mes", proposals, ballots, budget, completion="add1")
    n = len(ballots)
    _, _, _, projects = oracle_inputs(proposals, ballots, budget, seed)
    kept = None
    for k in range(10_000):
        instance, profile, tie, _ = oracle_inputs(proposals, ballots, budget, seed, budget_limit=budget + k * n)
        run = method_of_equal_shares(instance, profile, sat_class=Cost_Sat, tie_breaking=tie)
        if sum(p.cost for p in run) > budget:
            break
        kept = run
        if len(run) == len(projects):
            break
    assert kept is not None
    assert set(outcome.selected) == names(kept)
    assert outcome.summary["runs"] == k + 1 or len(kept) == len(projects)


@ORACLE_SETTINGS
@given(instances())
def test_phragmen_matches_pabutools(case) -> None:
    proposals, ballots, budget = case
    outcome, seed = ours("phragmen", proposals, ballots, budget)
    # pabutools stops when ANY proposal tied at the earliest moment misfits; we apply the tie order
    # first (§2.1). Such instances are left out here and pinned by the test below.
    assume(not outcome.summary.get("tied_misfit"))
    instance, profile, tie, _ = oracle_inputs(proposals, ballots, budget, seed)
    expected = sequential_phragmen(instance, profile, tie_breaking=tie)
    assert set(outcome.selected) == names(expected)


def test_phragmen_tie_with_a_misfit_follows_the_tie_order() -> None:
    """c (8, four supporters) goes first at moment 2, leaving 17. Then a (10, one supporter) and b (20,
    two supporters) both reach moment 10; a is cheaper, so the tie order picks it and it fits, while b
    would not. pabutools stops at such a tie; our rule buys a (voting-rules.md §2.1)."""
    proposals = [Proposal("a", 10), Proposal("b", 20), Proposal("c", 8)]
    ballots = [Ballot("1", frozenset({"a"})), Ballot("2", frozenset({"b"})), Ballot("3", frozenset({"b"}))]
    ballots += [Ballot(str(i), frozenset({"c"})) for i in range(4, 8)]
    outcome, seed = ours("phragmen", proposals, ballots, 25)
    assert outcome.selected == ["c", "a"] and outcome.summary["tied_misfit"] is True
    instance, profile, tie, _ = oracle_inputs(proposals, ballots, 25, seed)
    assert names(sequential_phragmen(instance, profile, tie_breaking=tie)) == {"c"}


def test_exact_backends_agree() -> None:
    """gmpy2 mpq and Fraction give the identical outcome and trace (both exact)."""
    import os

    proposals = [Proposal(str(i), c) for i, c in enumerate([7, 11, 13, 17, 19, 23], start=1)]
    ballots = [Ballot(str(i), frozenset(str(1 + (i * j) % 6) for j in range(1, 1 + i % 4 + 1))) for i in range(40)]
    first, _ = ours("mes", proposals, ballots, 50)
    os.environ["FUNDCIRCLE_EXACT"] = "fraction"
    try:
        second, _ = ours("mes", proposals, ballots, 50)
    finally:
        del os.environ["FUNDCIRCLE_EXACT"]
    assert first.to_json() == second.to_json()


def test_lottery_key_reaches_pabutools() -> None:
    """Equal cost and votes: only the lottery key decides, and pabutools follows it."""
    proposals = [Proposal(pid, 10) for pid in ("x", "y", "z")]
    ballots = [Ballot(str(i), frozenset({"x", "y", "z"})) for i in range(3)]
    outcome, seed = ours("approval-greedy", proposals, ballots, 10)
    winner = min(("x", "y", "z"), key=lambda pid: lottery_key(seed, pid))
    assert outcome.selected == [winner]
    instance, profile, tie, _ = oracle_inputs(proposals, ballots, 10, seed)
    assert names(greedy_utilitarian_welfare(instance, profile, sat_class=Cost_Sat, tie_breaking=tie)) == {winner}
    mes, _ = ours("mes", proposals, ballots, 10, completion="none")
    assert mes.selected == [winner] == [p.name for p in method_of_equal_shares(
        instance, profile, sat_class=Cost_Sat, tie_breaking=tie)]
    assert Fraction(1) == 1  # keep Fraction import meaningful for readers of the exact test above
