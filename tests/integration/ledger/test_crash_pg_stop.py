"""PostgreSQL server crashes (reference §5 and figure L3: "≥ 10 immediate PostgreSQL stops").

``test_crash.py`` kills the *writer*; here the *database server* dies under it. A writer process
posts in a loop through the public API and reports each transaction whose commit returned; after a
seeded random 0.1–0.8 s the server is crashed — ``pg_ctl stop -m immediate`` (no checkpoint, no
clean shutdown) on even rounds, SIGKILL to the postmaster and every backend on odd rounds — and the
writer is SIGKILLed. The server is restarted, which replays the WAL (crash recovery), and the
checker confirms that ``verify`` holds (chain, hashes over stored postings, zero sums, floors,
every header sealed) and that every acknowledged transaction survived.

It runs on a throwaway cluster in a temp dir (``pg_cluster.py``), never on the shared server; it
is skipped when the PostgreSQL server binaries are not installed. Stops per run:
``FUNDCIRCLE_LEDGER_PG_STOPS`` (default 10).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from fundcircle.circles.models import Circle
from fundcircle.db import make_engine, make_sessionmaker
from fundcircle.ledger import record_contribution, verify
from fundcircle.migrate import upgrade
from tests.integration.ledger import pg_cluster
from tests.integration.ledger.helpers import NOW, make_world
from tests.integration.ledger.test_crash import _correct_writer

STOPS = int(os.environ.get("FUNDCIRCLE_LEDGER_PG_STOPS") or 10)
SEED = 20261121

pytestmark = pytest.mark.skipif(pg_cluster.usable() is not None, reason=pg_cluster.usable() or "")


@pytest.fixture(scope="module")
def cluster() -> Iterator[pg_cluster.Cluster]:
    c = pg_cluster.create()
    try:
        yield c
    finally:
        c.destroy()


def _sealed_ids(url: str) -> set[int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT transaction_id FROM ledger_seal")).scalars())
    finally:
        engine.dispose()


def _verify(url: str) -> tuple[bool, list[object], int]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            report = verify(s)
            return report.ok, list(report.problems[:3]), report.transactions
    finally:
        engine.dispose()


def _writer_until_the_server_dies(url: str, run: int, circle_id: int, fd: int) -> None:
    """``test_crash._correct_writer`` until the server goes away under it (then it is SIGKILLed);
    the lost connection is the expected end, not a failure worth a traceback."""
    try:
        _correct_writer(url, run, circle_id, fd)
    except sa.exc.DBAPIError:
        os._exit(0)


def _write_then_crash(cluster: pg_cluster.Cluster, url: str, run: int, circle_id: int, delay_s: float) -> set[int]:
    """Fork a writer, crash the server after ``delay_s``, SIGKILL the writer; return its acks."""
    read_fd, write_fd = os.pipe()
    writer = multiprocessing.get_context("fork").Process(target=_writer_until_the_server_dies,
                                                         args=(url, 1_000 + run, circle_id, write_fd))
    writer.start()
    os.close(write_fd)
    time.sleep(delay_s)
    if run % 2 == 0:
        cluster.stop_immediate()
    else:
        cluster.kill_all()
    os.kill(writer.pid, signal.SIGKILL)  # type: ignore[arg-type]
    writer.join(10)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    return {int(line) for line in b"".join(chunks).split()}


def test_server_crashes_lose_no_acknowledged_post_and_break_no_invariant(cluster: pg_cluster.Cluster) -> None:
    admin = sa.create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql('CREATE DATABASE "ledger_crash"')
    admin.dispose()
    url = cluster.url("ledger_crash")
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        world = make_world(s)
        record_contribution(s, s.get(Circle, world.circle.id), gross_minor=10_000, manual_reference="opening",
                            now=NOW)
        s.commit()
        circle_id = world.circle.id
    engine.dispose()

    rnd = random.Random(SEED)
    acknowledged: set[int] = set()
    recoveries_before = cluster.recoveries()
    started = time.perf_counter()
    for run in range(STOPS):
        acknowledged |= _write_then_crash(cluster, url, run, circle_id, rnd.uniform(0.1, 0.8))
        cluster.start()  # crash recovery replays the WAL
        ok, problems, _count = _verify(url)
        assert ok, (run, problems)
        missing = acknowledged - _sealed_ids(url)
        assert not missing, f"acknowledged but missing after crash {run}: {sorted(missing)[:10]}"
    committed = _sealed_ids(url)
    recoveries = cluster.recoveries() - recoveries_before
    print(f"\nPostgreSQL server crashes: {STOPS} ({(STOPS + 1) // 2} pg_ctl stop -m immediate, {STOPS // 2} SIGKILL "
          f"of every server process), {recoveries} crash recoveries logged, {len(committed)} transactions, "
          f"{len(acknowledged)} acknowledged, {len(committed) - 1 - len(acknowledged)} committed without ack, "
          f"0 runs broken, 0 missing, {time.perf_counter() - started:.1f} s")
    assert recoveries >= STOPS, f"the server recovered only {recoveries} times:\n{cluster.log_tail()}"
    assert len(acknowledged) >= STOPS  # the writer made progress between crashes


def test_the_cluster_helper_really_crashes_the_server(cluster: pg_cluster.Cluster) -> None:
    """Teeth for the test above: after each kind of crash the server is gone (connections fail)
    and the next start logs a crash recovery."""
    for crash in (cluster.stop_immediate, cluster.kill_all):
        before = cluster.recoveries()
        crash()
        engine = sa.create_engine(cluster.url("postgres"), connect_args={"connect_timeout": 2})
        with pytest.raises(sa.exc.OperationalError):
            with engine.connect():
                pass
        engine.dispose()
        cluster.start()
        assert cluster.recoveries() == before + 1, cluster.log_tail()
