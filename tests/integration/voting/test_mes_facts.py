"""Facts of voting-rules.md §3.3–§3.5 on the real MES elections: Świecie's support threshold, Assen
without top-up, Wieliczka's comparison step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fundcircle.voting import pabulib
from fundcircle.voting.registry import get_rule
from fundcircle.voting.tiebreak import ballot_digest, make_seed

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA_DIR = Path(os.environ.get("FUNDCIRCLE_PABULIB_DIR") or REPO_ROOT / ".." / "shared" / "data" / "pabulib")
pytestmark = pytest.mark.skipif(not DATA_DIR.is_dir(), reason=f"pabulib data directory {DATA_DIR} is absent")


def run_mes(name: str, **params: str):
    election = pabulib.load(DATA_DIR / name)
    rule = get_rule("mes")
    seed = make_seed(f"pabulib:{name}", ballot_digest(election.ballots))
    return election, rule.tally(election.proposals, election.ballots, election.budget, rule.resolve_params(params),
                                seed)


def test_swiecie_support_factor_drops_only_c22_and_changes_nothing() -> None:
    election, with_threshold = run_mes("Poland_Swiecie_2023.pb", support_factor="3")
    screened = [s.proposal_id for s in with_threshold.trace if s.message.startswith("Not eligible")]
    assert screened == ["c22"]
    # c22: 375 of 2,553 votes; 3·1,070,000·375 < 2,553·482,037
    assert 3 * 1_070_000 * 375 < 2_553 * 482_037
    _, without = run_mes("Poland_Swiecie_2023.pb")
    assert set(with_threshold.selected) == set(without.selected) == set(election.selected)
    assert with_threshold.summary["per_voter_budget_minor"] == without.summary["per_voter_budget_minor"]
    assert int(with_threshold.summary["per_voter_budget_minor"] * 100) == 66_111  # 661.11 zł (§3.2)


def test_assen_topup_would_add_project_7() -> None:
    election, plain = run_mes("Netherlands_Assen_2024.pb")
    assert set(plain.selected) == set(election.selected) and plain.cost_minor == 76_700
    assert plain.summary["runs"] == 845
    _, topped = run_mes("Netherlands_Assen_2024.pb", topup="greedy")
    assert set(topped.selected) - set(plain.selected) == {"7"}
    assert (len(topped.selected), topped.cost_minor) == (10, 88_700)


def test_wieliczka_comparison_keeps_mes() -> None:
    election, outcome = run_mes("Poland_Wieliczka_2023_Green_Budget.pb", comparison="satisfaction")
    assert (outcome.summary["prefer_mes"], outcome.summary["prefer_greedy"]) == (1_615, 873)
    assert set(outcome.selected) == set(election.selected)
    assert outcome.summary["runs"] == 166
    _, exclusion = run_mes("Poland_Wieliczka_2023_Green_Budget.pb", comparison="exclusion")
    assert (exclusion.summary["prefer_mes"], exclusion.summary["prefer_greedy"]) == (986, 338)
    _, early = run_mes("Poland_Wieliczka_2023_Green_Budget.pb", completion="add1-exhaustive",
                       comparison="satisfaction")
    assert (early.summary["prefer_mes"], early.summary["prefer_greedy"]) == (1_625, 885)


def test_wieliczka_plain_mes_underspends() -> None:
    _, plain = run_mes("Poland_Wieliczka_2023_Green_Budget.pb", completion="none")
    assert (len(plain.selected), plain.cost_minor) == (21, 450_548)


def test_cardinality_utility_reproduces_none_of_them() -> None:
    for name in ("Netherlands_Assen_2024.pb", "Poland_Swiecie_2023.pb"):
        election, outcome = run_mes(name, utility="cardinality")
        assert set(outcome.selected) != set(election.selected)
