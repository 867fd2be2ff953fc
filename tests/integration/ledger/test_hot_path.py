"""The hot path of post(): running balances cached per chain tip, replay detected by the header
insert itself. Every test here is about a way the cache could go stale and post a wrong running
balance or pass a floor check it should fail; on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from fundcircle.circles.models import Circle
from fundcircle.errors import IdempotencyConflict
from fundcircle.ledger import InsufficientFunds, Leg, Money, award, balance, post, record_contribution, verify
from tests.integration.ledger.helpers import NOW, World


def _take(session: Session, circle_id: int, key: str, amount_minor: int):  # type: ignore[no-untyped-def]
    """Move ``amount_minor`` from the pot (a floor account) to suspense."""
    return post(session, circle_id=circle_id, kind="adjustment", idempotency_key=key, now=NOW,
                legs=[Leg(f"{circle_id}:pot:available", Money(amount_minor, "EUR")),
                      Leg(f"{circle_id}:suspense", Money(-amount_minor, "EUR"))])


def _fund(session: Session, circle_id: int, ref: str, gross_minor: int):  # type: ignore[no-untyped-def]
    return record_contribution(session, session.get(Circle, circle_id), gross_minor=gross_minor,
                               manual_reference=ref, now=NOW)


def test_another_writer_invalidates_the_cached_balances(sessions: sessionmaker[Session], world: World) -> None:
    """Two long-lived sessions take turns on the same accounts: each must see the other's posts."""
    c = world.circle.id
    a, b = sessions(), sessions()
    try:
        _fund(a, c, "a1", 100_00)
        a.commit()  # a caches the pot at 100.00
        _take(b, c, "b1", 80_00)
        b.commit()  # the tip moved under a's cache
        with pytest.raises(InsufficientFunds) as caught:
            _take(a, c, "a2", 50_00)
        assert caught.value.available_minor == 20_00
        a.rollback()
        _take(a, c, "a3", 20_00)
        a.commit()
        for i in range(6):  # alternate, so every post starts from the other session's tip
            s = (a, b)[i % 2]
            _fund(s, c, f"turn{i}", 1_00 + i)
            s.commit()
        assert balance(a, f"{c}:pot:available") == Money(sum(1_00 + i for i in range(6)), "EUR")
        report = verify(a)
        assert report.ok, report.problems
        assert report.transactions == 9
    finally:
        a.close()
        b.close()


def test_a_rolled_back_post_leaves_no_stale_balance(sessions: sessionmaker[Session], world: World) -> None:
    c = world.circle.id
    s = sessions()
    try:
        _fund(s, c, "one", 10_00)
        s.commit()
        _fund(s, c, "two", 5_00)  # cached: pot 15.00 at seq 2
        s.rollback()
        with pytest.raises(InsufficientFunds):
            _take(s, c, "too-much", 15_00)
        s.rollback()
        _take(s, c, "fits", 10_00)
        s.commit()
        assert balance(s, f"{c}:pot:available") == Money(0, "EUR")
        assert verify(s).ok
    finally:
        s.close()


def test_a_savepoint_rollback_leaves_no_stale_balance(db_session: Session, world: World) -> None:
    c = world.circle.id
    _fund(db_session, c, "one", 10_00)
    savepoint = db_session.begin_nested()
    _fund(db_session, c, "two", 5_00)
    savepoint.rollback()
    with pytest.raises(InsufficientFunds):
        _take(db_session, c, "too-much", 15_00)
    _take(db_session, c, "fits", 10_00)
    db_session.commit()
    report = verify(db_session)
    assert report.ok and report.transactions == 2, report.problems


def test_replays_and_conflicts_win_over_later_failures(db_session: Session, world: World) -> None:
    """A replayed award returns the original after the pot was emptied; a changed award under the
    same key is a conflict, not an overdraft; neither writes anything."""
    c = world.circle.id
    _fund(db_session, c, "opening", 300_00)
    first = award(db_session, world.round, world.proposals[0], 200_00, now=NOW)
    _take(db_session, c, "drain", 100_00)  # the pot is empty now
    again = award(db_session, world.round, world.proposals[0], 200_00, now=NOW)
    assert again.replayed and again.transaction_id == first.transaction_id and again.seq == first.seq
    with pytest.raises(IdempotencyConflict):
        award(db_session, world.round, world.proposals[0], 250_00, now=NOW)
    with pytest.raises(InsufficientFunds):
        award(db_session, world.round, world.proposals[1], 1, now=NOW)
    db_session.commit()
    count = db_session.execute(sa.text("SELECT count(*) FROM ledger_transaction")).scalar_one()
    assert count == 3
    assert verify(db_session).ok


def test_replay_of_a_key_from_another_session_is_found_by_the_insert(sessions: sessionmaker[Session],
                                                                      world: World) -> None:
    c = world.circle.id
    a, b = sessions(), sessions()
    try:
        first = _fund(a, c, "shared", 7_00)
        a.commit()
        again = _fund(b, c, "shared", 7_00)
        assert again.replayed and again.transaction_id == first.transaction_id
        with pytest.raises(IdempotencyConflict):
            _fund(b, c, "shared", 8_00)
        b.rollback()
        assert verify(b).ok
    finally:
        a.close()
        b.close()


def test_verify_streams_a_ledger_too_big_to_fetch_at_once(db_session: Session, world: World,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the threshold verify streams rows (server-side cursors on PostgreSQL) instead of
    fetching the ledger in one round trip; both paths must agree, including on a broken ledger."""
    from fundcircle.ledger import checks

    c = world.circle.id
    for i in range(5):
        _fund(db_session, c, f"s{i}", 10_00 + i)
    _take(db_session, c, "t", 3_00)
    db_session.commit()
    small = verify(db_session)
    monkeypatch.setattr(checks, "STREAM_ABOVE_ROWS", 3)
    streamed = verify(db_session)
    assert small.ok and streamed.ok, (small.problems, streamed.problems)
    assert (streamed.transactions, streamed.postings, streamed.head) == (small.transactions, small.postings, small.head)
    assert streamed.transactions == 6



def test_keys_and_memos_with_quotes_backslashes_and_unicode_are_stored_verbatim(db_session: Session,
                                                                                world: World) -> None:
    """PostgreSQL writes through client-side binding (several statements in one message): values
    must arrive exactly, never as SQL."""
    c = world.circle.id
    _fund(db_session, c, "opening", 50_00)
    key = "manual:O'Brien \\\\ \"Zoë\" 100% ; --"
    memo = "'); DROP TABLE ledger_seal; -- \\x00ff %s %(x)s ✓"
    posted = post(db_session, circle_id=c, kind="adjustment", idempotency_key=key, memo=memo, now=NOW,
                  legs=[Leg(f"{c}:pot:available", Money(1_00, "EUR")), Leg(f"{c}:suspense", Money(-1_00, "EUR"))])
    db_session.commit()
    stored = db_session.execute(sa.text("SELECT idempotency_key, memo FROM ledger_transaction WHERE id = :i"),
                                {"i": posted.transaction_id}).one()
    assert tuple(stored) == (key, memo)
    again = post(db_session, circle_id=c, kind="adjustment", idempotency_key=key, memo="retry", now=NOW,
                 legs=[Leg(f"{c}:suspense", Money(-1_00, "EUR")), Leg(f"{c}:pot:available", Money(1_00, "EUR"))])
    assert again.replayed and again.hash_hex == posted.hash_hex
    assert verify(db_session).ok
