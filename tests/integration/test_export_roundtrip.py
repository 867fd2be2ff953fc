"""Open data round trip: tally a round from real cast ballots, export its pabulib file with
``fundcircle export``, re-run it with ``fundcircle simulate --json`` and get the published result.

Each case is built so that a tie-break matters (two proposals with the same cost and support), so
the test also proves the exported file carries what rebuilds the round's public tie-break seed.
Rules whose ballots pabulib cannot hold (consent, allocation) must be refused with a reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from fundcircle.cli import main
from fundcircle.proposals.models import Proposal
from fundcircle.voting.models import Award
from tests.integration.voting_db.helpers import cast, close, make_voting_world, sessions_for

SECRET = "roundtrip-secret-" + "y" * 32


def _env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "SECRET_KEY": SECRET, "FUNDCIRCLE_ENV": "testing",
            "FUNDCIRCLE_INSTANCE_PATH": str(tmp_path / "instance")}


def _world(database_url: str, *, rule_id: str, rule_params: dict[str, Any] | None, members: int,
           costs: list[int]) -> Any:
    with sessions_for(database_url) as sessions:
        s = sessions()
        world = make_voting_world(s, members=members, proposals=len(costs), rule_id=rule_id,
                                  rule_params=rule_params, budget_minor=2_000_00, slug=f"rt-{rule_id}")
        for pid, cost in zip(world.proposal_ids, costs):
            s.get(Proposal, pid).amount_requested_minor = cost
        s.commit()
        s.close()
    return world


def _cast_all(database_url: str, world: Any, ballots: list[Any]) -> list[str]:
    codes = []
    with sessions_for(database_url) as sessions:
        for voter_id, choices in zip(world.member_ids, ballots):
            codes.append(cast(sessions, world.round_id, voter_id, choices).code)
        close(sessions, world.round_id)
    return codes


def _published(database_url: str, round_id: int) -> tuple[list[str], int]:
    engine = sa.create_engine(sa.make_url(database_url).set(
        drivername="postgresql+psycopg" if database_url.startswith("postgresql") else "sqlite"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(Award.proposal_id, Award.amount_minor).where(Award.round_id == round_id)
                                .order_by(Award.position)).all()
    finally:
        engine.dispose()
    return [str(r.proposal_id) for r in rows], sum(r.amount_minor for r in rows)


def _award_amounts(database_url: str, round_id: int) -> dict[str, int]:
    engine = sa.create_engine(sa.make_url(database_url).set(
        drivername="postgresql+psycopg" if database_url.startswith("postgresql") else "sqlite"))
    try:
        with engine.connect() as conn:
            return {str(r.proposal_id): r.amount_minor for r in conn.execute(
                sa.select(Award.proposal_id, Award.amount_minor).where(Award.round_id == round_id))}
    finally:
        engine.dispose()


def _export_and_simulate(database_url: str, tmp_path: Path, round_id: int) -> tuple[dict[str, Any], str]:
    runner = CliRunner()
    out = tmp_path / f"round-{round_id}.pb"
    exported = runner.invoke(main, ["export", str(round_id), "--format", "pb", "-o", str(out)],
                             env=_env(database_url, tmp_path))
    assert exported.exit_code == 0, exported.output
    simulated = runner.invoke(main, ["simulate", str(out), "--json"])
    assert simulated.exit_code == 0, simulated.output
    return json.loads(simulated.stdout), out.read_text(encoding="utf-8")


def _ids(world: Any, *indexes: int) -> list[int]:
    return [world.proposal_ids[i] for i in indexes]


# (rule, params, proposal costs in cents, ballots as indexes into the proposals) — ties on purpose
CASES: dict[str, tuple[dict[str, Any] | None, list[int], list[Any]]] = {
    # p0 and p1 cost the same and get the same votes: the lottery decides which fits first
    "approval-greedy": (None, [900_00, 900_00, 700_00, 400_00],
                        [[0, 2], [1, 2], [0, 3], [1, 3], [2], [0, 1]]),
    "mes": (None, [900_00, 900_00, 600_00, 500_00],
            [[0, 2], [1, 2], [0, 3], [1, 3], [2, 3], [0, 1]]),
    # non-default params: the file must record them (rule "unknown" + fundcircle comment)
    "mes-custom": ({"completion": "none", "tie_order": "votes_desc,lottery"}, [900_00, 900_00, 600_00, 500_00],
                   [[0, 2], [1, 2], [0, 3], [1, 3], [2, 3], [0, 1]]),
    "quadratic": ({"credits": 9}, [1_000_00, 1_000_00, 500_00],
                  [{0: 2, 2: 2}, {1: 2, 2: 2}, {0: 1, 1: 1}, {2: 3}, {0: 1, 1: 1, 2: 1}, {0: 2, 1: 2}]),
    "score": ({"max_score": 5}, [1_200_00, 1_200_00, 700_00],
              [{0: 5, 1: 3, 2: 1}, {0: 3, 1: 5, 2: 1}, {0: 4, 1: 4, 2: 0}, {2: 5}, {0: 1, 1: 1}, {2: 2}]),
    "borda": (None, [1_200_00, 1_200_00, 700_00],
              [[0, 1, 2], [1, 0, 2], [2, 0, 1], [2, 1, 0], [0, 1], [1, 0]]),
    "lottery": (None, [800_00, 800_00, 800_00, 800_00],
                [[0], [1], [2], [3], [0, 1], [2, 3]]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_exported_pb_simulates_to_the_published_result(database_url: str, tmp_path: Path, case: str) -> None:
    rule_id = case.split("-custom")[0]
    params, costs, raw_ballots = CASES[case]
    world = _world(database_url, rule_id=rule_id, rule_params=params, members=len(raw_ballots), costs=costs)
    ballots = [{world.proposal_ids[k]: v for k, v in b.items()} if isinstance(b, dict) else _ids(world, *b)
               for b in raw_ballots]
    _cast_all(database_url, world, ballots)
    selected, total_minor = _published(database_url, world.round_id)

    simulated, text = _export_and_simulate(database_url, tmp_path, world.round_id)

    assert simulated["rule"] == rule_id
    assert simulated["selected"] == selected, "simulate must select the same proposals in the same order"
    # costs are written in currency units: EUR has 100 minor units
    assert round(float(simulated["cost"]) * 100) == total_minor
    assert simulated["ballots"] == len(raw_ballots)
    assert simulated["matches_official"] is True  # the file's `selected` column is the published awards
    # each award is the proposal's full cost as the file states it (these rules fund whole proposals)
    from fundcircle.voting import pabulib

    costs_in_file = {p.id: p.cost_minor * 100 // pabulib.load(text.encode()).budget.unit_minor
                     for p in pabulib.load(text.encode()).proposals}
    assert {pid: costs_in_file[pid] for pid in selected} == _award_amounts(database_url, world.round_id)
    # anonymised: voter ids are 1..n and no database user id appears as a voter
    votes = text.split("\nVOTES\n", 1)[1].splitlines()[1:]
    assert sorted(int(line.split(";")[0]) for line in votes) == list(range(1, len(raw_ballots) + 1))
    if case in ("approval-greedy", "mes"):
        assert "\nrule;" + ("greedy" if rule_id == "approval-greedy" else "equalshares/add1") + "\n" in text
    else:
        assert "\nrule;unknown\n" in text and f"#1: fundcircle {rule_id} " in text


def test_the_pb_order_is_shuffled_but_stable(database_url: str, tmp_path: Path) -> None:
    """Voters are ordered by an HMAC under the server secret: not by database id or casting order,
    the same every time, and different under another secret."""
    world = _world(database_url, rule_id="approval-greedy", rule_params=None, members=8,
                   costs=[500_00, 600_00, 700_00, 800_00])
    ballots = [_ids(world, n % 4) for n in range(8)]  # cast order = p0, p1, p2, p3, p0, ...
    _cast_all(database_url, world, ballots)
    runner = CliRunner()
    first = runner.invoke(main, ["export", str(world.round_id), "--format", "pb"], env=_env(database_url, tmp_path))
    again = runner.invoke(main, ["export", str(world.round_id), "--format", "pb"], env=_env(database_url, tmp_path))
    other_env = {**_env(database_url, tmp_path), "SECRET_KEY": "another-secret-" + "z" * 32}
    other = runner.invoke(main, ["export", str(world.round_id), "--format", "pb"], env=other_env)
    assert first.exit_code == 0, first.output
    assert first.stdout == again.stdout
    votes = [line.split(";")[1] for line in first.stdout.split("\nVOTES\n", 1)[1].splitlines()[1:]]
    cast_order = [str(b[0]) for b in ballots]
    assert sorted(votes) == sorted(cast_order)
    assert votes != cast_order
    assert other.stdout != first.stdout


@pytest.mark.parametrize("rule_id, ballots", [
    ("consent", [{0: "consent", 1: "consent"}] * 5),
    ("equal-allocation", [{0: 100_00}] * 5),
])
def test_rules_pabulib_cannot_hold_are_refused_with_a_reason(database_url: str, tmp_path: Path, rule_id: str,
                                                            ballots: list[Any]) -> None:
    world = _world(database_url, rule_id=rule_id, rule_params=None, members=5, costs=[300_00, 300_00])
    _cast_all(database_url, world, [{world.proposal_ids[k]: v for k, v in b.items()} for b in ballots])
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(world.round_id), "--format", "pb"], env=_env(database_url, tmp_path))
    assert result.exit_code == 1
    assert "pabulib" in result.output and "would not reproduce the result" in result.output
    # the result itself is still exported
    as_json = runner.invoke(main, ["export", str(world.round_id), "--format", "json"],
                            env=_env(database_url, tmp_path))
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["rule"]["id"] == rule_id


def test_export_before_the_tally_and_for_tiny_rounds_is_refused(database_url: str, tmp_path: Path) -> None:
    world = _world(database_url, rule_id="approval-greedy", rule_params=None, members=4, costs=[500_00, 600_00])
    runner = CliRunner()
    env = _env(database_url, tmp_path)
    early = runner.invoke(main, ["export", str(world.round_id), "--format", "pb"], env=env)
    assert early.exit_code == 1 and "has not been tallied yet" in early.output
    early_json = runner.invoke(main, ["export", str(world.round_id), "--format", "json"], env=env)
    assert early_json.exit_code == 1 and "has not been tallied yet" in early_json.output
    _cast_all(database_url, world, [_ids(world, 0)] * 4)  # 4 ballots < the default threshold of 5
    tiny = runner.invoke(main, ["export", str(world.round_id), "--format", "pb"], env=env)
    assert tiny.exit_code == 1 and "fewer than 5" in tiny.output
    totals = runner.invoke(main, ["export", str(world.round_id), "--format", "csv"], env=env)
    assert totals.exit_code == 0, totals.output
    assert totals.stdout.splitlines()[0].startswith("proposal_id,title,")
    missing = runner.invoke(main, ["export", "999999", "--format", "pb"], env=env)
    assert missing.exit_code == 1 and "no published round 999999" in missing.output


def test_export_to_an_unwritable_file_is_a_clear_error(database_url: str, tmp_path: Path) -> None:
    world = _world(database_url, rule_id="approval-greedy", rule_params=None, members=5, costs=[500_00, 600_00])
    _cast_all(database_url, world, [_ids(world, 0)] * 5)
    result = CliRunner().invoke(main, ["export", str(world.round_id), "--format", "csv", "-o",
                                       str(tmp_path / "missing-dir" / "out.csv")], env=_env(database_url, tmp_path))
    assert result.exit_code == 1 and "cannot write" in result.output
    assert "Traceback" not in result.output


def test_consent_rounds_re_run_from_the_published_json(app, client) -> None:  # type: ignore[no-untyped-def]
    """pabulib cannot hold consent ballots, but the published JSON can: the ballot list (responses
    and reasons) plus the result (budget, parameters, seed, members and recusals per proposal)
    re-run through the consent rule give the published awards, and the ballots hash to the digest."""
    from fundcircle.db import utcnow
    from fundcircle.extensions import db
    from fundcircle.voting.base import Ballot, Budget
    from fundcircle.voting.base import Proposal as RuleProposal
    from fundcircle.voting.ballots import normalise_choices
    from fundcircle.voting.registry import get_rule
    from fundcircle.voting.tiebreak import ballot_digest
    from tests.support import factories as f
    from tests.support.opendata import add_members, create_tallied_round

    with app.app_context():
        circle = f.create_circle(db.session, slug="consent-json")
        voters = add_members(db.session, circle, 6)
        ballots = [{0: "consent", 1: "consent", 2: ("objection", "Unsafe as planned.")},
                   {0: "consent", 1: ("concern", "Needs a maintenance plan.")}, {0: "consent"},
                   {1: "consent", 2: "consent"}, {0: "consent", 1: "consent"}, {2: "consent"}]
        round_, _, _ = create_tallied_round(db.session, circle, voters, ballots, now=utcnow(), rule_id="consent")
        db.session.commit()
        base = f"/c/{circle.slug}/r/{round_.id}/data"
    result = client.get(f"{base}/results.json").get_json()
    listed = client.get(f"{base}/ballots.json").get_json()

    values = [normalise_choices("consent", {pid: (v["response"], v["reason"]) for pid, v in b["ballot"].items()})
              for b in listed["ballots"]]
    assert ballot_digest(values) == result["ballot_digest"]
    on_ballot = [p for p in result["proposals"] if p["on_ballot"]]
    proposals = [RuleProposal(id=str(p["proposal_id"]), cost_minor=p["amount_requested_minor"], title=p["title"],
                              eligible_voters=result["member_count"] - p["recusals"]) for p in on_ballot]
    rule = get_rule("consent")
    outcome = rule.tally(proposals, [Ballot(f"v{n}", v) for n, v in enumerate(values, start=1)],
                         Budget(result["round"]["budget_minor"], result["round"]["currency"], 100),
                         rule.resolve_params(result["rule"]["params"]), result["seed"])
    published = {str(p["proposal_id"]): p["amount_awarded_minor"] for p in result["proposals"] if p["funded"]}
    assert published, "the case funds something"
    assert dict(outcome.funded) == published
    assert str(on_ballot[2]["proposal_id"]) not in published, "the open objection blocks"
