"""A third-party rule installed with a real ``pip install`` is found through the ``fundcircle.rules``
entry-point group: listed by ``fundcircle rules --json`` and usable through ``get_rule`` + tally.

The plugin (tests/fixtures/plugin_rule) is copied to a temporary directory, installed with
``pip install --no-deps --no-build-isolation --target``, and only ever imported in subprocesses
with that target on PYTHONPATH, so this test process's registry is left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN_SOURCE = Path(__file__).resolve().parents[2] / "fixtures" / "plugin_rule"
FUNDCIRCLE_SCRIPT = Path(sys.executable).parent / "fundcircle"

TALLY_SCRIPT = """
import json
from fundcircle.voting import Ballot, Budget, Proposal, all_rules, get_rule
rule = get_rule("cheapest-first")
proposals = [Proposal("big", 600), Proposal("mid", 300), Proposal("small", 100), Proposal("nobody", 50)]
ballots = [Ballot("v1", frozenset({"big", "mid"})), Ballot("v2", frozenset({"small", "big"}))]
outcome = rule.tally(proposals, ballots, Budget(800), rule.resolve_params({}), "seed")
print(json.dumps({"ids": [r.id for r in all_rules()], "outcome": outcome.to_json()}))
"""


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("plugin")
    source = work / "src"
    shutil.copytree(PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--disable-pip-version-check", "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True, timeout=120)
    assert (target / "fc_plugin_rule.py").exists()
    return target


def run_with_plugin(args: list[str], plugin_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_path), env.get("PYTHONPATH", "")]))
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=True)


def test_plugin_rule_is_used_through_the_registry(plugin_path: Path) -> None:
    result = json.loads(run_with_plugin([sys.executable, "-c", TALLY_SCRIPT], plugin_path).stdout)
    assert "cheapest-first" in result["ids"]
    assert "quadratic" in result["ids"]  # built-ins still load next to the plugin
    outcome = result["outcome"]
    assert outcome["rule"] == "cheapest-first"
    assert outcome["selected"] == ["small", "mid"]  # big (600) no longer fits 400; nobody has no votes
    assert outcome["params"] == {"min_votes": 1, "tie_order": "cost_asc,votes_desc,lottery"}


def test_fundcircle_rules_lists_the_plugin(plugin_path: Path) -> None:
    command = [str(FUNDCIRCLE_SCRIPT)] if FUNDCIRCLE_SCRIPT.exists() else [sys.executable, "-m", "fundcircle.cli"]
    listed = json.loads(run_with_plugin(command + ["rules", "--json"], plugin_path).stdout)
    by_id = {rule["id"]: rule for rule in listed["rules"]}
    assert by_id["cheapest-first"]["ballot_kind"] == "approval"
    assert by_id["cheapest-first"]["name"] == "Cheapest first (plugin)"


def test_without_the_plugin_the_rule_is_absent() -> None:
    result = subprocess.run([sys.executable, "-c", "from fundcircle.voting import all_rules; "
                             "print([r.id for r in all_rules()])"], capture_output=True, text=True, check=True)
    assert "cheapest-first" not in result.stdout
