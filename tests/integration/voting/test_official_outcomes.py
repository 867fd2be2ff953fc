"""The real pabulib elections (shared/data/pabulib): the nine with an official outcome are reproduced
through ``fundcircle simulate FILE --json`` (the file's own rule) and with the explicit rule and
parameters of voting-rules.md §3.6; the other four load and run under every fitting rule."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fundcircle.cli import main
from fundcircle.voting import pabulib
from fundcircle.voting.registry import all_rules, get_rule
from fundcircle.voting.tiebreak import ballot_digest, make_seed

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA_DIR = Path(os.environ.get("FUNDCIRCLE_PABULIB_DIR") or REPO_ROOT / ".." / "shared" / "data" / "pabulib")

pytestmark = pytest.mark.skipif(not DATA_DIR.is_dir(), reason=f"pabulib data directory {DATA_DIR} is absent "
                                "(clone shared/ beside the repo or set FUNDCIRCLE_PABULIB_DIR)")

# file -> (rule id, params, official count, official cost) from voting-rules.md §3.6
OFFICIAL = {
    "Poland_Swiecie_2023.pb": ("mes", {"support_factor": "3"}, 17, 1_040_337),
    "Poland_Wieliczka_2023_Green_Budget.pb": ("mes", {"comparison": "satisfaction"}, 30, 995_079),
    "Netherlands_Assen_2024.pb": ("mes", {}, 9, 76_700),
    "Poland_Warszawa_2017_Kolo.pb": ("approval-greedy", {}, 13, 800_535),
    "Poland_Warszawa_2019_Rakowiec.pb": ("approval-greedy", {}, 22, 731_211),
    "Poland_Warszawa_2020_Mokotow.pb": ("approval-greedy", {}, 24, 7_146_781),
    "Poland_Warszawa_2021_Targowek.pb": ("approval-greedy", {}, 21, 4_071_944),
    "Poland_Warszawa_2023_Bemowo.pb": ("approval-greedy", {}, 31, 4_853_670),
    "Poland_Warszawa_2025_Ursynow.pb": ("approval-greedy", {}, 13, 6_346_444),
}
WITHOUT_OUTCOME = (
    "France_Toulouse_2019.pb",
    "Netherlands_Amsterdam_252.pb",
    "Netherlands_Amsterdam_643.pb",
    "US_Stanford_Dataset_Merced_Peoples_Budget_Ballot_2019_vote_rankings.pb",
)


def simulate_json(*args: str) -> dict:
    result = CliRunner().invoke(main, ["simulate", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def tally(name: str, rule_id: str, params: dict[str, str]):
    election = pabulib.load(DATA_DIR / name)
    rule = get_rule(rule_id)
    seed = make_seed(f"pabulib:{name}", ballot_digest(election.ballots))
    return election, rule.tally(election.proposals, election.ballots, election.budget,
                                rule.resolve_params(params), seed)


def test_the_shared_files_are_all_there() -> None:
    assert sorted(p.name for p in DATA_DIR.glob("*.pb")) == sorted([*OFFICIAL, *WITHOUT_OUTCOME])


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_simulate_with_the_files_own_rule_reproduces_the_official_outcome(name: str) -> None:
    rule_id, params, count, cost = OFFICIAL[name]
    out = simulate_json(str(DATA_DIR / name))
    assert out["rule"] == rule_id
    assert out["matches_official"] is True
    assert set(out["selected"]) == set(out["official_selected"])
    assert len(out["selected"]) == count
    assert out["cost"] == cost
    election = pabulib.load(DATA_DIR / name)
    costs = {p.id: p.cost_minor for p in election.proposals}
    assert out["cost"] == sum(costs[pid] for pid in out["selected"])
    assert out["cost"] <= out["budget"]


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_explicit_rule_and_params_reproduce_the_official_outcome(name: str) -> None:
    rule_id, params, count, cost = OFFICIAL[name]
    election, outcome = tally(name, rule_id, params)
    assert set(outcome.selected) == set(election.selected)
    assert (len(outcome.selected), outcome.cost_minor) == (count, cost)
    flags = [f"--param={k}={v}" for k, v in params.items()]
    out = simulate_json(str(DATA_DIR / name), "--rule", rule_id, *flags)
    assert out["selected"] == outcome.selected


def test_the_console_script_itself() -> None:
    script = shutil.which("fundcircle", path=str(Path(sys.executable).parent)) or "fundcircle"
    done = subprocess.run([script, "simulate", str(DATA_DIR / "Netherlands_Assen_2024.pb"), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["matches_official"] is True and out["rule"] == "mes"


def test_wieliczka_fails_with_the_early_stop() -> None:
    """§3.2: pabutools' early stop (add1-exhaustive) buys 31 projects, not the official 30."""
    election, outcome = tally("Poland_Wieliczka_2023_Green_Budget.pb", "mes",
                              {"completion": "add1-exhaustive", "comparison": "satisfaction"})
    assert (len(outcome.selected), outcome.cost_minor) == (31, 984_579)
    assert set(outcome.selected) != set(election.selected)
    assert {"66", "67"} <= set(outcome.selected) and "46" not in outcome.selected


@pytest.mark.parametrize("name", WITHOUT_OUTCOME)
def test_files_without_outcome_run_under_every_fitting_rule(name: str) -> None:
    election = pabulib.load(DATA_DIR / name)
    assert election.selected is None
    fitting = [rule for rule in all_rules() if rule.ballot_kind == election.ballot_kind]
    assert fitting, f"no rule takes {election.ballot_kind.value} ballots"
    costs = {p.id: p.cost_minor for p in election.proposals}
    for rule_cls in fitting:
        rule = rule_cls()
        seed = make_seed(f"pabulib:{name}", ballot_digest(election.ballots))
        outcome = rule.tally(election.proposals, election.ballots, election.budget, rule.resolve_params({}), seed)
        assert outcome.cost_minor <= election.budget.amount_minor, rule_cls.id
        assert set(outcome.selected) <= set(costs), rule_cls.id
        assert outcome.trace, rule_cls.id


@pytest.mark.parametrize("name,rule_id,count,cost", [
    ("France_Toulouse_2019.pb", "cumulative", 14, 1_000_000),
    ("Netherlands_Amsterdam_643.pb", "approval-greedy", 1, 5_000),
    ("US_Stanford_Dataset_Merced_Peoples_Budget_Ballot_2019_vote_rankings.pb", "borda", 7, 35_000),
    ("Netherlands_Amsterdam_252.pb", "approval-greedy", 23, 499_700),
])
def test_files_without_outcome_default_to_the_rule_of_section_3_6(name: str, rule_id: str, count: int,
                                                                  cost: int) -> None:
    out = simulate_json(str(DATA_DIR / name))
    assert out["rule"] == rule_id
    assert (len(out["selected"]), out["cost"]) == (count, cost)
    assert "matches_official" not in out


def test_toulouse_uses_the_files_point_limits() -> None:
    out = simulate_json(str(DATA_DIR / "France_Toulouse_2019.pb"))
    assert out["params"]["total_points"] == 7 and out["params"]["max_per_proposal"] == 3


def test_amsterdam_643_is_choose_one() -> None:
    out = simulate_json(str(DATA_DIR / "Netherlands_Amsterdam_643.pb"))
    assert out["params"]["max_approvals"] == 1 and out["selected"] == ["44251"]
