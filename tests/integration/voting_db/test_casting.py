"""Casting: one ballot per member, changes, receipts, eligibility, recusal (operation and database),
the voting window edges, and the freeze after close (operation and raw SQL). Both databases."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from sqlalchemy.orm import Session, sessionmaker

from fundcircle.auth.models import User
from fundcircle.db import begin_write, make_engine, utcnow
from fundcircle.errors import PermissionDenied, RuleViolation, ValidationError
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Round
from fundcircle.voting import ballots as codec
from fundcircle.voting import operations as ops
from fundcircle.voting.models import BallotItem, ConflictOfInterest, StoredBallot
from tests.integration.voting_db.helpers import (
    DURING, VOTING_CLOSE_AT, VOTING_OPEN_AT, VotingWorld, cast, close, make_voting_world)

SECOND = dt.timedelta(seconds=1)


def _ballots(sessions: sessionmaker[Session], round_id: int) -> list[StoredBallot]:
    with sessions() as s:
        return list(s.scalars(sa.select(StoredBallot).where(StoredBallot.round_id == round_id)))


def _items(sessions: sessionmaker[Session], ballot_id: int) -> list[tuple[int, int | None]]:
    with sessions() as s:
        return [(i.proposal_id, i.value) for i in s.scalars(
            sa.select(BallotItem).where(BallotItem.ballot_id == ballot_id).order_by(BallotItem.proposal_id))]


def test_cast_stores_one_ballot_and_returns_a_receipt(sessions, world: VotingWorld) -> None:
    p1, p2 = world.proposal_ids[:2]
    receipt = cast(sessions, world.round_id, world.member_ids[1], {p1, str(p2)})
    assert not receipt.is_change
    assert receipt.receipt_id == codec.public_receipt_id(codec.receipt_hash(receipt.code))
    [stored] = _ballots(sessions, world.round_id)
    assert stored.voter_id == world.member_ids[1] and stored.ballot_kind == "approval" and stored.times_cast == 1
    # only the hash is stored, never the code
    assert stored.receipt_hash == codec.receipt_hash(receipt.code)
    assert receipt.code.replace("-", "") not in stored.receipt_hash
    assert _items(sessions, stored.id) == [(p1, 1), (p2, 1)]


def test_change_replaces_the_ballot_and_issues_a_fresh_receipt(sessions, world: VotingWorld) -> None:
    p1, p2, p3 = world.proposal_ids[:3]
    first = cast(sessions, world.round_id, world.member_ids[1], [p1, p2])
    second = cast(sessions, world.round_id, world.member_ids[1], [p3], now=DURING + dt.timedelta(hours=1))
    assert second.is_change and second.ballot_id == first.ballot_id and second.code != first.code
    [stored] = _ballots(sessions, world.round_id)
    assert stored.times_cast == 2
    assert stored.cast_at == DURING and stored.updated_at == DURING + dt.timedelta(hours=1)
    assert stored.receipt_hash == codec.receipt_hash(second.code) != codec.receipt_hash(first.code)
    assert _items(sessions, stored.id) == [(p3, 1)]


def test_one_ballot_per_member_is_a_database_constraint(sessions, world: VotingWorld) -> None:
    cast(sessions, world.round_id, world.member_ids[1], [world.proposal_ids[0]])
    with sessions() as s, pytest.raises(sa.exc.IntegrityError):
        s.execute(sa.insert(StoredBallot.__table__).values(
            round_id=world.round_id, voter_id=world.member_ids[1], ballot_kind="approval", receipt_hash="f" * 64,
            cast_at=DURING, updated_at=DURING, times_cast=1))


def test_non_member_cannot_vote(sessions, world: VotingWorld) -> None:
    with pytest.raises(PermissionDenied):
        cast(sessions, world.round_id, world.applicant_id, [world.proposal_ids[0]])
    assert _ballots(sessions, world.round_id) == []


@pytest.mark.parametrize("change", ["withdrawn", "ineligible", "draft"])
def test_only_eligible_proposals_can_be_voted_on(sessions, world: VotingWorld, change: str) -> None:
    with sessions() as s:
        p = s.get(Proposal, world.proposal_ids[0])
        if change == "ineligible":
            p.screening = "ineligible"
        else:
            p.status = change
        s.commit()
    with pytest.raises(ValidationError) as err:
        cast(sessions, world.round_id, world.member_ids[1], [world.proposal_ids[0]])
    assert str(world.proposal_ids[0]) in err.value.field_errors
    assert _ballots(sessions, world.round_id) == []


def test_the_rule_validates_the_ballot(sessions) -> None:
    with sessions() as s:
        w = make_voting_world(s, rule_id="quadratic", rule_params={"credits": 10})
        s.commit()
    with pytest.raises(ValidationError, match="credits"):
        cast(sessions, w.round_id, w.member_ids[1], {w.proposal_ids[0]: 3, w.proposal_ids[1]: 2})  # 9 + 4 > 10
    ok = cast(sessions, w.round_id, w.member_ids[1], {w.proposal_ids[0]: 3})
    assert ok.ballot_id


# -- recusal ----------------------------------------------------------------------------------------

def _declare(sessions, world: VotingWorld, member_id: int, proposal_id: int, level: str = "recuse",
             category: str = "family", now: dt.datetime = DURING) -> None:
    with sessions() as s:
        begin_write(s)
        ops.declare_conflict(s, member=s.get(User, member_id), proposal=s.get(Proposal, proposal_id), level=level,
                             category=category, reason="my sister runs it", now=now)
        s.commit()


def test_recused_member_is_refused_by_the_operation(sessions, world: VotingWorld) -> None:
    voter, (p1, p2) = world.member_ids[2], world.proposal_ids[:2]
    _declare(sessions, world, voter, p1)
    with pytest.raises(ops.Recused) as err:
        cast(sessions, world.round_id, voter, [p1, p2])
    assert list(err.value.field_errors) == [str(p1)]
    assert cast(sessions, world.round_id, voter, [p2]).ballot_id


def test_disclose_only_does_not_recuse(sessions, world: VotingWorld) -> None:
    voter, p1 = world.member_ids[2], world.proposal_ids[0]
    _declare(sessions, world, voter, p1, level="disclose", category="organisation")
    assert cast(sessions, world.round_id, voter, [p1]).ballot_id


def test_declaring_a_recusal_removes_the_item_already_cast(sessions, world: VotingWorld) -> None:
    voter, (p1, p2) = world.member_ids[2], world.proposal_ids[:2]
    receipt = cast(sessions, world.round_id, voter, [p1, p2])
    _declare(sessions, world, voter, p1)
    assert _items(sessions, receipt.ballot_id) == [(p2, 1)]


def test_recusal_is_enforced_by_the_database(sessions, world: VotingWorld, database_url: str) -> None:
    voter, (p1, p2) = world.member_ids[2], world.proposal_ids[:2]
    receipt = cast(sessions, world.round_id, voter, [p2])
    _declare(sessions, world, voter, p1)
    engine = make_engine(database_url)
    try:
        with pytest.raises(sa.exc.DatabaseError, match="recused"):
            with engine.begin() as conn:
                conn.execute(sa.insert(BallotItem.__table__).values(
                    ballot_id=receipt.ballot_id, proposal_id=p1, value=1, reason=""))
        with pytest.raises(sa.exc.DatabaseError, match="recused"):
            with engine.begin() as conn:
                conn.execute(sa.update(BallotItem.__table__).where(BallotItem.ballot_id == receipt.ballot_id)
                             .values(proposal_id=p1))
    finally:
        engine.dispose()
    assert _items(sessions, receipt.ballot_id) == [(p2, 1)]


def test_item_for_a_proposal_of_another_round_is_refused_by_the_database(sessions, world: VotingWorld,
                                                                         database_url: str) -> None:
    with sessions() as s:
        other = make_voting_world(s, slug="other-circle")
        s.commit()
    receipt = cast(sessions, world.round_id, world.member_ids[1], [world.proposal_ids[0]])
    engine = make_engine(database_url)
    try:
        with pytest.raises(sa.exc.DatabaseError, match="not in the ballot"):
            with engine.begin() as conn:
                conn.execute(sa.insert(BallotItem.__table__).values(
                    ballot_id=receipt.ballot_id, proposal_id=other.proposal_ids[0], value=1, reason=""))
    finally:
        engine.dispose()


def test_applicant_and_payee_members_are_recused_automatically(sessions, world: VotingWorld) -> None:
    applicant, payee = world.member_ids[3], world.member_ids[4]
    with sessions() as s:
        p = s.get(Proposal, world.proposal_ids[0])
        p.applicant_id = applicant
        q = s.get(Proposal, world.proposal_ids[1])
        q.payee_kind, q.payee_email = "email", s.get(User, payee).email.upper()
        s.commit()
    with pytest.raises(ops.Recused):
        cast(sessions, world.round_id, applicant, [world.proposal_ids[0]])
    with pytest.raises(ops.Recused):
        cast(sessions, world.round_id, payee, [world.proposal_ids[1]])
    # a refused cast rolls back; an accepted one stores the automatic recusals the trigger reads
    cast(sessions, world.round_id, applicant, [world.proposal_ids[2]])
    cast(sessions, world.round_id, payee, [world.proposal_ids[2]])
    with sessions() as s:
        rows = {(c.user_id, c.proposal_id): (c.level, c.reason_category, c.is_automatic)
                for c in s.scalars(sa.select(ConflictOfInterest))}
    assert rows == {(applicant, world.proposal_ids[0]): ("recuse", "applicant", True),
                    (payee, world.proposal_ids[1]): ("recuse", "payee", True)}
    with pytest.raises(RuleViolation, match="cannot be lowered"):
        _declare(sessions, world, applicant, world.proposal_ids[0], level="disclose", category="other")


def test_declare_conflict_checks_its_input(sessions, world: VotingWorld) -> None:
    with pytest.raises(ValidationError):
        _declare(sessions, world, world.member_ids[1], world.proposal_ids[0], category="applicant")
    with pytest.raises(ValidationError):
        _declare(sessions, world, world.member_ids[1], world.proposal_ids[0], level="maybe")
    with pytest.raises(PermissionDenied):
        _declare(sessions, world, world.applicant_id, world.proposal_ids[0])


# -- the voting window ------------------------------------------------------------------------------

@pytest.mark.parametrize(("when", "accepted"), [
    (VOTING_OPEN_AT - SECOND, False),
    (VOTING_OPEN_AT, True),
    (VOTING_CLOSE_AT - SECOND, True),
    (VOTING_CLOSE_AT, False),
])
def test_voting_window_edges(sessions, world: VotingWorld, when: dt.datetime, accepted: bool) -> None:
    with freeze_time(when):
        now = utcnow()
        if accepted:
            assert cast(sessions, world.round_id, world.member_ids[1], [world.proposal_ids[0]], now=now).ballot_id
        else:
            with pytest.raises(ops.VotingClosed):
                cast(sessions, world.round_id, world.member_ids[1], [world.proposal_ids[0]], now=now)
        if now < VOTING_CLOSE_AT:
            with pytest.raises(RuleViolation, match="cannot be tallied before"):
                close(sessions, world.round_id, now=now)
        else:
            assert close(sessions, world.round_id, now=now).ballot_count == 0
    assert len(_ballots(sessions, world.round_id)) == (1 if accepted else 0)


# -- frozen after close ------------------------------------------------------------------------------

FROZEN_STATEMENTS = [
    ("insert ballot", "INSERT INTO ballots (round_id, voter_id, ballot_kind, receipt_hash, cast_at, updated_at, "
                      "times_cast) VALUES (:r, :v, 'approval', :h, :t, :t, 1)"),
    ("update ballot", "UPDATE ballots SET times_cast = times_cast + 1 WHERE round_id = :r"),
    ("delete ballot", "DELETE FROM ballots WHERE round_id = :r"),
    ("insert item", "INSERT INTO ballot_items (ballot_id, proposal_id, value, reason) "
                    "SELECT id, :p, 1, '' FROM ballots WHERE round_id = :r"),
    ("update item", "UPDATE ballot_items SET value = 7 WHERE ballot_id IN (SELECT id FROM ballots WHERE round_id = :r)"),
    ("delete item", "DELETE FROM ballot_items WHERE ballot_id IN (SELECT id FROM ballots WHERE round_id = :r)"),
]


@pytest.mark.parametrize(("label", "statement"), FROZEN_STATEMENTS, ids=[s[0] for s in FROZEN_STATEMENTS])
def test_ballots_are_frozen_after_close(sessions, world: VotingWorld, database_url: str, label: str,
                                        statement: str) -> None:
    cast(sessions, world.round_id, world.member_ids[1], [world.proposal_ids[0]])
    result = close(sessions, world.round_id)
    with pytest.raises(ops.VotingClosed):
        cast(sessions, world.round_id, world.member_ids[2], [world.proposal_ids[0]])
    with pytest.raises(ops.VotingClosed):  # even with a clock that says voting is open
        cast(sessions, world.round_id, world.member_ids[1], [world.proposal_ids[1]], now=DURING)
    engine = make_engine(database_url)
    try:
        with pytest.raises(sa.exc.DatabaseError, match="frozen"):
            with engine.begin() as conn:
                conn.execute(sa.text(statement), {"r": world.round_id, "v": world.member_ids[2], "h": "e" * 64,
                                                  "t": DURING.replace(tzinfo=None), "p": world.proposal_ids[1]})
    finally:
        engine.dispose()
    with sessions() as s:
        again = ops.tally_input(s, s.get(Round, world.round_id))
    assert again.digest == result.ballot_digest and len(again.exported) == 1


def test_the_stored_result_is_append_only(sessions, world: VotingWorld, database_url: str) -> None:
    close(sessions, world.round_id)
    engine = make_engine(database_url)
    try:
        for statement in ("UPDATE round_results SET ballot_digest = 'x'", "DELETE FROM round_results"):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"):
                with engine.begin() as conn:
                    conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def test_voting_triggers_exist(database_url: str, backend: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                names = {r[0] for r in conn.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
            else:
                names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    finally:
        engine.dispose()
    expected = ({"ballots_frozen", "ballot_items_frozen", "ballots_frozen_truncate", "ballot_items_frozen_truncate",
                 "ballot_items_check", "round_results_no_change", "round_results_no_truncate"}
                if backend == "postgresql" else
                {f"{t}_frozen_{o}" for t in ("ballots", "ballot_items") for o in ("insert", "update", "delete")}
                | {"ballot_items_check_insert", "ballot_items_check_update", "round_results_no_update",
                   "round_results_no_delete"})
    assert expected <= names


def test_cast_in_a_transaction_that_already_read(sessions, world: VotingWorld) -> None:
    """A caller that read before casting (a deferred SQLite transaction) still gets the write lock."""
    with sessions() as s:
        round_ = s.get(Round, world.round_id)
        voter = s.get(User, world.member_ids[1])
        receipt = ops.cast_ballot(s, round_, voter, [world.proposal_ids[0]], DURING)
        s.commit()
    assert receipt.ballot_id and len(_ballots(sessions, world.round_id)) == 1
