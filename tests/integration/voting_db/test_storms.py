"""Concurrency storms (reference/ledger-and-reliability.md §2, figures V1 and V2), on a file-backed
SQLite database and on PostgreSQL. Every cast is its own unit of work on its own connection, as a
request is. The figures are printed (run with ``-s``) for the closing note of issue 5."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from fundcircle.rounds.models import Round
from fundcircle.voting import operations as ops
from fundcircle.voting.models import StoredBallot
from tests.integration.voting_db.helpers import cast, close, make_voting_world, sessions_for

#: threads per backend, as in the reference's measurements
THREADS = {"postgresql": 48, "sqlite": 24}


def _choice(world, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    return [world.proposal_ids[n % len(world.proposal_ids)]]


def test_double_submit_storm_stores_exactly_one_ballot_per_member(database_url: str, backend: str) -> None:
    """V1: 300 members × 6 concurrent copies → 300 ballots, every copy answered, no errors."""
    members, copies = 300, 6
    with sessions_for(database_url, pool_size=THREADS[backend]) as sessions:
        with sessions() as s:
            world = make_voting_world(s, members=members)
            s.commit()
        outcomes: Counter[str] = Counter()
        lock = threading.Lock()

        def one(voter_id: int, n: int) -> None:
            try:
                cast(sessions, world.round_id, voter_id, _choice(world, n))
                kind = "ok"
            except Exception as exc:  # noqa: BLE001 - counted and reported
                kind = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            with lock:
                outcomes[kind] += 1

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=THREADS[backend]) as pool:
            # the copies of one member are submitted back to back, so they run at the same time
            for n, voter_id in enumerate(world.member_ids):
                for _ in range(copies):
                    pool.submit(one, voter_id, n)
        storm_s = time.perf_counter() - started
        with sessions() as s:
            ballots = s.scalar(sa.select(sa.func.count()).select_from(StoredBallot))
            casts = s.scalar(sa.select(sa.func.sum(StoredBallot.times_cast)))
            per_voter = s.execute(sa.select(StoredBallot.voter_id, sa.func.count()).group_by(StoredBallot.voter_id)
                                  .having(sa.func.count() > 1)).all()
    print(f"\nV1 {backend}: {members}x{copies} casts, {THREADS[backend]} threads: {ballots} ballots, "
          f"{casts} casts recorded, outcomes {dict(outcomes)}, storm {storm_s:.2f} s")
    assert outcomes == Counter({"ok": members * copies})
    assert ballots == members and per_voter == [] and casts == members * copies


def test_close_racing_a_storm_admits_no_ballot_after_the_tally_read(database_url: str, backend: str) -> None:
    """V2: 1,800 distinct voters, the close issued halfway → every accepted ballot is in the tally,
    every refused one is absent, the stored digest equals a recount, nothing changes afterwards."""
    voters = 1_800
    with sessions_for(database_url, pool_size=THREADS[backend] + 1) as sessions:
        with sessions() as s:
            world = make_voting_world(s, members=voters)
            s.commit()
        accepted: dict[int, str] = {}
        refused: list[int] = []
        unexpected: list[str] = []
        lock = threading.Lock()
        done = threading.Event()
        halfway = threading.Event()
        close_timing: dict[str, float] = {}
        submitted = [0]

        def one(voter_id: int, n: int) -> None:
            try:
                receipt = cast(sessions, world.round_id, voter_id, _choice(world, n))
                with lock:
                    accepted[voter_id] = receipt.receipt_id
            except ops.VotingClosed:
                with lock:
                    refused.append(voter_id)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    unexpected.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            finally:
                with lock:
                    submitted[0] += 1
                    if submitted[0] == voters // 2:
                        halfway.set()

        def closer() -> None:
            halfway.wait()
            t0 = time.perf_counter()
            close_timing["result_id"] = close(sessions, world.round_id).id
            close_timing["latency_s"] = time.perf_counter() - t0
            done.set()

        started = time.perf_counter()
        close_thread = threading.Thread(target=closer)
        close_thread.start()
        with ThreadPoolExecutor(max_workers=THREADS[backend]) as pool:
            for n, voter_id in enumerate(world.member_ids):
                pool.submit(one, voter_id, n)
        close_thread.join(timeout=60)
        storm_s = time.perf_counter() - started
        assert done.is_set(), "the close never finished"
        with sessions() as s:
            round_ = s.get(Round, world.round_id)
            result = ops.stored_result(s, world.round_id)
            recount = ops.tally_input(s, round_)
            stored_voters = set(s.scalars(sa.select(StoredBallot.voter_id)))
            late = s.scalar(sa.select(sa.func.count()).select_from(StoredBallot)
                            .where(StoredBallot.updated_at > result.tallied_at))
    late_after_read = len(stored_voters - set(accepted)) + (result.ballot_count != len(stored_voters))
    print(f"\nV2 {backend}: {voters} voters, {THREADS[backend]} threads: {len(accepted)} accepted, "
          f"{len(refused)} refused after the close, {len(unexpected)} unexpected {unexpected[:3]}, "
          f"tallied {result.ballot_count}, ballots committed after the tally read {late_after_read}, "
          f"close latency {close_timing['latency_s'] * 1000:.0f} ms, storm {storm_s:.2f} s")
    assert unexpected == []
    assert len(accepted) + len(refused) == voters
    assert stored_voters == set(accepted)  # every accepted cast is stored, no refused one is
    assert result.ballot_count == len(accepted)  # ... and every stored ballot was in the tally read
    assert recount.digest == result.ballot_digest
    assert {e.receipt_id for e in recount.exported} == set(accepted.values())
    assert late == 0
