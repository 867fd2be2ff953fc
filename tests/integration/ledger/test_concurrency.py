"""Concurrent writers serialize: no gap, no fork, floors hold (both databases)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from fundcircle.ledger import InsufficientFunds, award, circle_balances, record_contribution, run_with_retry, verify
from fundcircle.ledger.models import LedgerSeal
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Round
from fundcircle.circles.models import Circle
from tests.integration.ledger.helpers import NOW, World


def _race(n: int, target: Callable[[int], Any]) -> list[Any]:
    """Run target(i) in n threads released together; returns each result or exception."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 - collected and asserted on below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_racing_awards_of_the_whole_pot_exactly_one_wins(sessions: sessionmaker[Session], db_session: Session,
                                                         world: World) -> None:
    record_contribution(db_session, world.circle, gross_minor=1_000_00, manual_reference="seed", now=NOW)
    db_session.commit()
    round_id, proposal_ids = world.round.id, [p.id for p in world.proposals]

    def claim(i: int) -> Any:
        def work(s: Session) -> Any:
            return award(s, s.get(Round, round_id), s.get(Proposal, proposal_ids[i]), 1_000_00, now=NOW)
        return run_with_retry(sessions, work)

    for _attempt in range(3):  # repeat to give the race several chances to go wrong
        results = _race(3, claim)
        wins = [r for r in results if not isinstance(r, Exception) and not r.replayed]
        losses = [r for r in results if isinstance(r, InsufficientFunds)]
        replays = [r for r in results if not isinstance(r, Exception) and r.replayed]
        unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, InsufficientFunds)]
        assert not unexpected
        assert len(wins) + len(replays) + len(losses) == 3
        assert len(wins) <= 1 and len(wins) + len(replays) == 1
    with sessions() as s:
        summary = circle_balances(s, world.circle.id, "EUR")
        assert summary.pot_available_minor == 0 and summary.earmarked_minor == 1_000_00
        assert verify(s).ok


def test_concurrent_contributions_leave_a_gapless_chain(sessions: sessionmaker[Session], db_session: Session,
                                                        world: World) -> None:
    threads, per_thread = 6, 15
    circle_id = world.circle.id

    def contribute(i: int) -> list[int]:
        seqs = []
        for j in range(per_thread):
            posted = run_with_retry(sessions, lambda s: record_contribution(
                s, s.get(Circle, circle_id), gross_minor=100 + j, fee_minor=j, payment_intent_id=f"pi_{i}_{j}",
                now=NOW), attempts=10)
            seqs.append(posted.seq)
        return seqs

    results = _race(threads, contribute)
    assert not [r for r in results if isinstance(r, Exception)], results
    seqs = sorted(s for r in results for s in r)
    assert seqs == list(range(1, threads * per_thread + 1))  # no gap, no fork
    with sessions() as s:
        assert s.scalar(sa.select(sa.func.max(LedgerSeal.seq))) == threads * per_thread
        report = verify(s)
        assert report.ok, report.problems
        assert circle_balances(s, circle_id, "EUR").pot_available_minor == threads * sum(100 + j for j in range(per_thread))
