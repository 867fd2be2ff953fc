"""``fundcircle rules`` and ``fundcircle simulate``: output shape and clean failures (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fundcircle.cli import main

SMALL = """META
key;value
description;test
country;Nowhere
unit;Town
instance;2024
num_projects;3
num_votes;4
budget;100
vote_type;approval
rule;{rule}
date_begin;2024
date_end;2024
PROJECTS
project_id;cost;votes;selected
a;60;3;1
b;50;2;0
c;40;2;1
VOTES
voter_id;vote
1;a,b
2;a,c
3;a
4;b,c
"""


def write(tmp_path: Path, rule: str = "greedy", text: str | None = None) -> str:
    path = tmp_path / "small.pb"
    path.write_text(text if text is not None else SMALL.format(rule=rule), encoding="utf-8")
    return str(path)


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_rules_json_lists_our_rules_with_params() -> None:
    result = run("rules", "--json")
    assert result.exit_code == 0
    rules = {r["id"]: r for r in json.loads(result.stdout)["rules"]}
    assert {"approval-greedy", "mes", "phragmen"} <= set(rules)
    mes = {p["name"]: p for p in rules["mes"]["params"]}
    assert mes["completion"]["default"] == "add1"
    assert mes["completion"]["choices"] == ["add1", "add1-exhaustive", "none"]
    assert rules["mes"]["ballot_kind"] == "approval" and rules["mes"]["description"]


def test_rules_text() -> None:
    result = run("rules")
    assert result.exit_code == 0 and "phragmen" in result.stdout and "--param overflow=stop" in result.stdout


def test_simulate_json_shape(tmp_path: Path) -> None:
    result = run("simulate", write(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    # greedy by votes: a (3 votes, 60), then b and c tie on 2 votes; c is cheaper, so c first: 100
    assert out["rule"] == "approval-greedy" and out["selected"] == ["a", "c"] and out["cost"] == 100
    assert out["budget"] == 100 and out["official_selected"] == ["a", "c"] and out["matches_official"] is True


def test_simulate_text_explains(tmp_path: Path) -> None:
    result = run("simulate", write(tmp_path))
    assert result.exit_code == 0
    assert "Funded: 3 voters approved it" in result.stdout
    assert "Not funded: 2 voters approved it, but it needed 50 and only 0 was left." in result.stdout


def test_simulate_param_overrides(tmp_path: Path) -> None:
    out = json.loads(run("simulate", write(tmp_path), "--rule", "approval-greedy", "--param", "min_votes=3",
                         "--json").stdout)
    assert out["selected"] == ["a"] and out["params"]["min_votes"] == 3


@pytest.mark.parametrize("args,fragment", [
    (["--rule", "nope"], "unknown voting rule 'nope'"),
    (["--rule", "irv"], "rule 'irv' takes ranking ballots"),
    (["--param", "order=random"], "parameter 'order' must be one of"),
    (["--param", "nonsense"], "--param needs the form key=value"),
    (["--param", "colour=blue"], "has no parameter 'colour'"),
    (["--rule", "mes", "--param", "step=abc"], "parameter 'step'"),
])
def test_simulate_bad_input_exits_2(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = run("simulate", write(tmp_path), *args)
    assert result.exit_code == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_simulate_unknown_file_rule_suggests_rule_flag(tmp_path: Path) -> None:
    result = run("simulate", write(tmp_path, rule="greedy-custom"))
    assert result.exit_code == 2
    assert "'greedy-custom'" in result.stderr and "--rule" in result.stderr


def test_simulate_missing_and_malformed_files(tmp_path: Path) -> None:
    missing = run("simulate", str(tmp_path / "nothere.pb"))
    assert missing.exit_code == 2 and "nothere.pb: cannot read the file" in missing.stderr
    broken = run("simulate", write(tmp_path, text=SMALL.format(rule="greedy").replace("num_votes;4", "num_votes;5")))
    assert broken.exit_code == 2
    assert "small.pb, section META, line 8" in broken.stderr and "Traceback" not in broken.output


def test_simulate_runs_a_rule_recorded_in_a_fundcircle_comment(tmp_path: Path) -> None:
    text = SMALL.format(rule="unknown").replace(
        "date_end;2024\n", 'date_end;2024\ncomment;"#1: fundcircle phragmen {""overflow"": ""skip""}"\n')
    out = json.loads(run("simulate", write(tmp_path, text=text), "--json").stdout)
    assert out["rule"] == "phragmen" and out["params"]["overflow"] == "skip"
