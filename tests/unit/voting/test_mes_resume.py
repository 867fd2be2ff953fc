"""Add1 runs that resume from the previous run's last provably unchanged purchase (mes ``Snapshot``)
must decide exactly as runs computed from scratch: the same Outcome, trace text and summary, and
the same kept run (α, ρ, poor weights, what every project's supporters have left)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundcircle.voting import pabulib
from fundcircle.voting.base import Ballot, Budget, Proposal
from fundcircle.voting.registry import get_rule
from fundcircle.voting.rules import mes
from tests.support.elections import approval_elections
from tests.support.mes import complete_with, floats_disabled

SETTINGS = settings(max_examples=150, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
ELECTIONS = approval_elections(max_projects=8, max_cost_minor=80, max_voters=30)
DATA_DIR = Path(os.environ.get("FUNDCIRCLE_PABULIB_DIR")
                or Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "pabulib")
# the three official MES elections (voting-rules.md §3.6) and their parameters
OFFICIAL_MES = {
    "Poland_Swiecie_2023.pb": {"support_factor": Fraction(3)},
    "Poland_Wieliczka_2023_Green_Budget.pb": {"comparison": "satisfaction"},
    "Netherlands_Assen_2024.pb": {},
}


def resume_disabled() -> Any:
    return complete_with(resume=False)


@contextmanager
def counting_resumed_purchases() -> Iterator[list[int]]:
    """Counts the purchases that resumed runs took over instead of computing."""
    counted = [0]
    original = mes.MesEngine._resumed

    def counting(self, snap, delta, largest):
        counted[0] += snap.purchases
        return original(self, snap, delta, largest)

    mes.MesEngine._resumed = counting  # type: ignore[method-assign]
    try:
        yield counted
    finally:
        mes.MesEngine._resumed = original  # type: ignore[method-assign]


def tally(proposals, ballots, budget: Budget, **params):
    rule = get_rule("mes")
    outcome = rule.tally(proposals, ballots, budget, rule.resolve_params(params), "seed")
    return (outcome.funded, [(t.action, t.message, t.proposal_id, dict(t.data)) for t in outcome.trace],
            outcome.summary)


def assert_resume_changes_nothing(proposals, ballots, budget: Budget, **params) -> int:
    """Tallies with and without resuming; returns how many purchases were resumed."""
    with floats_disabled():  # resuming is part of the exact path
        with counting_resumed_purchases() as resumed:
            with_resume = tally(proposals, ballots, budget, **params)
        with resume_disabled():
            assert tally(proposals, ballots, budget, **params) == with_resume
    return resumed[0]


@SETTINGS
@given(ELECTIONS, st.sampled_from(["add1", "add1-exhaustive"]), st.sampled_from(["cost", "cardinality"]),
       st.sampled_from([Fraction(1), Fraction(1, 3), Fraction(5, 2)]))
def test_resumed_add1_runs_tally_as_runs_from_scratch(case, completion, utility, step) -> None:
    proposals, ballots, budget_minor = case
    assert_resume_changes_nothing(proposals, ballots, Budget(budget_minor, "PLN", 1), completion=completion,
                                  utility=utility, step=step)


def test_small_elections_do_resume() -> None:
    """The property above is not vacuous: many voters with a few projects resume some purchases."""
    proposals = [Proposal("a", 300), Proposal("b", 200), Proposal("c", 250), Proposal("d", 90), Proposal("e", 40)]
    approvals = ["ab", "b", "ca", "d", "de", "e", "abc", "c", "ad", "be"] * 7
    ballots = [Ballot(str(v), frozenset(a)) for v, a in enumerate(approvals)]
    assert assert_resume_changes_nothing(proposals, ballots, Budget(400, "PLN", 1), completion="add1",
                                         step=Fraction(1, 7)) > 0


@pytest.mark.skipif(not DATA_DIR.is_dir(), reason="pabulib data directory absent")
@pytest.mark.parametrize("name", sorted(OFFICIAL_MES))
@pytest.mark.parametrize("completion", ["add1", "add1-exhaustive"])
def test_official_mes_elections_tally_the_same_with_and_without_resuming(name: str, completion: str) -> None:
    election = pabulib.load(DATA_DIR / name)
    resumed = assert_resume_changes_nothing(election.proposals, election.ballots, election.budget,
                                            completion=completion, **OFFICIAL_MES[name])
    assert resumed > 0
