"""Closing and tallying: stored result, awards, idempotency, ledger earmarks, reproducibility from
the exported ballots for every ballot kind, the automatic close, and ``fundcircle tally``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from fundcircle.circles.models import Circle
from fundcircle.cli import main
from fundcircle.db import begin_write
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Round
from fundcircle.voting import operations as ops
from fundcircle.voting.base import ConsentKind, ConsentResponse
from fundcircle.voting.models import Award, RoundResult
from fundcircle.voting.tiebreak import make_seed
from tests.integration.voting_db.helpers import VOTING_CLOSE_AT, VotingWorld, cast, close, make_voting_world


def _fund_pot(sessions: sessionmaker[Session], circle_id: int, amount_minor: int) -> None:
    from fundcircle import ledger

    with sessions() as s:
        begin_write(s)
        ledger.record_contribution(s, s.get(Circle, circle_id), gross_minor=amount_minor, now=VOTING_CLOSE_AT,
                                   manual_reference=f"test-{amount_minor}")
        s.commit()


def _recount(sessions: sessionmaker[Session], round_id: int) -> tuple[ops.TallyInput, dict[str, Any]]:
    with sessions() as s:
        round_ = s.get(Round, round_id)
        return ops.tally_input(s, round_), ops.recount(s, round_)


def _without_exclusions(outcome: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in outcome.items() if k != "excluded_ballots"}


def test_close_stores_result_and_awards_and_is_idempotent(sessions, world: VotingWorld) -> None:
    p1, p2, p3, _p4 = world.proposal_ids
    for voter, choice in zip(world.member_ids, ([p1, p2], [p1], [p1, p3], [p2], [p3])):
        cast(sessions, world.round_id, voter, choice)
    result = close(sessions, world.round_id)
    assert result.rule_id == "approval-greedy" and result.ballot_count == 5 and result.member_count == 5
    assert result.seed == make_seed(world.round_id, result.ballot_digest)
    assert result.outcome["selected"] == [str(p1), str(p2)]  # 3 votes, then 2 at 810 < p3's 2 at 820
    assert result.params["tie_order"] == "cost_asc,votes_desc,lottery"
    assert result.trace == result.outcome["trace"] and result.trace
    again = close(sessions, world.round_id)
    assert again.id == result.id and again.ballot_digest == result.ballot_digest
    with sessions() as s:
        awards = [(a.proposal_id, a.amount_minor, a.currency, a.position)
                  for a in s.scalars(ops.select_awards(world.round_id))]
        assert s.scalar(sa.select(sa.func.count()).select_from(RoundResult)) == 1
    assert awards == [(p1, 800_00, "EUR", 1), (p2, 810_00, "EUR", 2)]
    data, recounted = _recount(sessions, world.round_id)
    assert data.digest == result.ballot_digest
    assert recounted == _without_exclusions(result.outcome)


def test_unfunded_pot_stores_the_result_and_reports_the_awards(sessions, world: VotingWorld) -> None:
    cast(sessions, world.round_id, world.member_ids[1], [world.proposal_ids[0]])
    _fund_pot(sessions, world.circle_id, 500_00)  # less than the 800 EUR award
    result = close(sessions, world.round_id)
    with sessions() as s:
        [award] = s.scalars(ops.select_awards(world.round_id))
        assert award.earmarked_at is None and "nothing was earmarked" in award.earmark_problem
        assert s.get(RoundResult, result.id) is not None
    _fund_pot(sessions, world.circle_id, 1_000_00)
    with sessions() as s:
        begin_write(s)
        assert ops.earmark_awards(s, s.get(Round, world.round_id), now=VOTING_CLOSE_AT) == []
        s.commit()
    with sessions() as s:
        [award] = s.scalars(ops.select_awards(world.round_id))
        assert award.earmarked_at is not None and award.earmark_problem == ""
        from fundcircle import ledger

        balances = ledger.circle_balances(s, world.circle_id, "EUR")
        assert (balances.pot_available_minor, balances.earmarked_minor) == (700_00, 800_00)
        assert ledger.verify(s).ok


def test_funded_pot_earmarks_at_close(sessions, world: VotingWorld) -> None:
    _fund_pot(sessions, world.circle_id, 5_000_00)
    cast(sessions, world.round_id, world.member_ids[1], [world.proposal_ids[0], world.proposal_ids[1]])
    close(sessions, world.round_id)
    with sessions() as s:
        awards = list(s.scalars(ops.select_awards(world.round_id)))
        assert [a.earmarked_at is not None for a in awards] == [True, True]
        from fundcircle import ledger

        assert ledger.circle_balances(s, world.circle_id, "EUR").earmarked_minor == 1_610_00


def test_ballot_invalid_at_close_is_excluded_and_listed(sessions, world: VotingWorld) -> None:
    p1, p2 = world.proposal_ids[:2]
    cast(sessions, world.round_id, world.member_ids[1], [p1])
    cast(sessions, world.round_id, world.member_ids[2], [p2])
    with sessions() as s:
        s.get(Proposal, p1).status = "withdrawn"  # min_approvals=1: the first ballot is now empty
        s.commit()
    result = close(sessions, world.round_id)
    assert result.ballot_count == 1 and len(result.outcome["excluded_ballots"]) == 1
    data, recounted = _recount(sessions, world.round_id)
    assert data.digest == result.ballot_digest and recounted == _without_exclusions(result.outcome)


def test_recusal_log_and_eligible_voters(sessions, world: VotingWorld) -> None:
    with sessions() as s:
        s.get(Proposal, world.proposal_ids[0]).applicant_id = world.member_ids[4]
        s.commit()
    cast(sessions, world.round_id, world.member_ids[1], [world.proposal_ids[0]])
    result = close(sessions, world.round_id)
    assert result.recusal_log == {str(world.proposal_ids[0]): {"recusals": 1, "categories": {"applicant": 1}}}
    data, _ = _recount(sessions, world.round_id)
    assert {p.id: p.eligible_voters for p in data.proposals}[str(world.proposal_ids[0])] == 4


ALL_KINDS: list[tuple[str, dict[str, Any], Any]] = [
    ("approval-greedy", {}, lambda p, n: {p[n % 4], p[(n + 1) % 4]}),
    ("quadratic", {"credits": 25}, lambda p, n: {p[n % 4]: 3, p[(n + 2) % 4]: 4}),
    ("cumulative", {"total_points": 5}, lambda p, n: {p[n % 4]: 3, p[(n + 1) % 4]: 2}),
    ("score", {}, lambda p, n: {p[0]: n % 6, p[1]: 5 - n % 6, p[2]: 3}),
    ("borda", {}, lambda p, n: [p[n % 4], p[(n + 1) % 4], p[(n + 3) % 4]]),
    ("irv", {}, lambda p, n: [p[n % 3], p[3]]),
    ("consent", {}, lambda p, n: {p[0]: ConsentResponse(ConsentKind.CONSENT), p[1]: (
        "concern", "too expensive") if n % 2 else "consent", p[2]: {"response": "objection", "reason": "unsafe"}
        if n == 3 else "consent"}),
    ("equal-allocation", {}, lambda p, n: {p[n % 4]: 100_00, p[(n + 1) % 4]: 50_00}),
]


@pytest.mark.parametrize(("rule_id", "params", "make_choices"), ALL_KINDS, ids=[k[0] for k in ALL_KINDS])
def test_every_ballot_kind_round_trips_and_recounts_identically(sessions, rule_id: str, params: dict[str, Any],
                                                                make_choices) -> None:
    with sessions() as s:
        w = make_voting_world(s, members=6, rule_id=rule_id, rule_params=params)
        s.commit()
    stored_values = {}
    for n, voter in enumerate(w.member_ids):
        receipt = cast(sessions, w.round_id, voter, make_choices(w.proposal_ids, n))
        with sessions() as s:
            _stored, value = ops.ballot_of(s, w.round_id, voter)
        stored_values[receipt.receipt_id] = value
    result = close(sessions, w.round_id)
    assert result.ballot_count == 6 and result.outcome["excluded_ballots"] == {}
    data, recounted = _recount(sessions, w.round_id)
    assert {e.receipt_id: e.ballot.value for e in data.exported} == stored_values
    assert data.digest == result.ballot_digest
    assert recounted == _without_exclusions(result.outcome)
    with sessions() as s:
        awards = {str(a.proposal_id): a.amount_minor for a in s.scalars(ops.select_awards(w.round_id))}
    assert awards == result.outcome["funded"]


def test_automatic_close_of_due_rounds(sessions, world: VotingWorld) -> None:
    cast(sessions, world.round_id, world.member_ids[1], [world.proposal_ids[0]])
    with sessions() as s:
        assert ops.due_round_ids(s, VOTING_CLOSE_AT - ops.dt.timedelta(seconds=1)) == []
        assert ops.due_round_ids(s, VOTING_CLOSE_AT) == [world.round_id]
    assert ops.run_due_closes(sessions, VOTING_CLOSE_AT) == [world.round_id]
    assert ops.run_due_closes(sessions, VOTING_CLOSE_AT) == []
    with sessions() as s:
        assert s.scalar(sa.select(RoundResult.ballot_count).where(RoundResult.round_id == world.round_id)) == 1


def test_maybe_close_due_rounds_in_the_callers_transaction(sessions, world: VotingWorld) -> None:
    with sessions() as s:
        results = ops.maybe_close_due_rounds(s, VOTING_CLOSE_AT)
        assert [r.round_id for r in results] == [world.round_id]
        s.commit()
    with sessions() as s:
        assert ops.maybe_close_due_rounds(s, VOTING_CLOSE_AT) == []


def test_tally_command(sessions, world: VotingWorld, database_url: str, monkeypatch, tmp_path) -> None:
    cast(sessions, world.round_id, world.member_ids[1], [world.proposal_ids[0]])
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FUNDCIRCLE_ENV", "testing")
    monkeypatch.setenv("SECRET_KEY", "test-secret-key-" + "x" * 32)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    with ops_clock(VOTING_CLOSE_AT):
        out = runner.invoke(main, ["tally", str(world.round_id), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["ballot_count"] == 1 and doc["outcome"]["selected"] == [str(world.proposal_ids[0])]
    assert doc["awards"][0]["earmarked"] is False and "nothing was earmarked" in doc["awards"][0]["earmark_problem"]
    with ops_clock(VOTING_CLOSE_AT):
        text = runner.invoke(main, ["tally", str(world.round_id)])
    assert text.exit_code == 0 and doc["ballot_digest"] in text.output
    early = runner.invoke(main, ["tally", "999"])
    assert early.exit_code == 1 and "no round 999" in early.output
    with sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Award)) == 1


def test_tally_command_refuses_before_close(sessions, world: VotingWorld, database_url: str, monkeypatch,
                                           tmp_path) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FUNDCIRCLE_ENV", "testing")
    monkeypatch.setenv("SECRET_KEY", "test-secret-key-" + "x" * 32)
    monkeypatch.chdir(tmp_path)
    with ops_clock(VOTING_CLOSE_AT - ops.dt.timedelta(minutes=1)):
        out = CliRunner().invoke(main, ["tally", str(world.round_id)])
    assert out.exit_code == 1 and "cannot be tallied before" in out.output


def ops_clock(when):  # type: ignore[no-untyped-def]
    from freezegun import freeze_time

    return freeze_time(when)
