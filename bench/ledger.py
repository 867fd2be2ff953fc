"""Ledger benchmark: posts per second and verify time, each next to its anchor, in one run.

    python bench/ledger.py [--transactions N] [--posts N] [--database-url URL] [--workdir DIR]
                           [--only posts|verify]

1. Posting through the public API (``post()`` with three legs, one database transaction and one
   commit per ledger transaction, triggers on) vs. the anchor: raw sqlite3 INSERTs of one row with
   one commit each, same pragmas (WAL, synchronous=FULL).
2. ``verify()`` over N transactions (default 1,000,000) vs. the anchor: a bare SHA-256 chain over
   the same canonical bytes stored in one table, read with one scan.

Both figures are printed as wall-clock rates and as rates over this process's CPU time (user +
system, which includes SQLite's own work since it runs in-process). On a shared machine the wall
clock mostly measures the neighbours; the CPU figure is what one idle core would do. The anchor
gets the same two figures, so each ratio is like for like.

Building the N-transaction ledger uses a BULK PATH THAT EXISTS ONLY IN THIS BENCHMARK: rows
computed in Python (same canonical encoding, hashes and running balances as post()) and inserted
with executemany and synchronous=OFF, with the posting/seal check triggers dropped in this
throwaway database so the load takes seconds, not minutes. verify() does not rely on triggers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

import fundcircle.models  # noqa: E402,F401
from fundcircle.circles.models import Circle  # noqa: E402
from fundcircle.db import make_engine, make_sessionmaker  # noqa: E402
from fundcircle.ledger import Leg, Money, ensure_circle_accounts, post, verify  # noqa: E402
from fundcircle.ledger.chain import canonical_bytes, chain_hash, request_digest  # noqa: E402
from fundcircle.migrate import upgrade  # noqa: E402

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)


def _fresh_db(workdir: Path, name: str, url: str | None) -> str:
    if url:
        return url
    path = workdir / f"{name}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db_url = f"sqlite:///{path}"
    upgrade(db_url)
    return db_url


def _circle(session, slug: str = "bench") -> Circle:  # type: ignore[no-untyped-def]
    circle = Circle(slug=slug, name=f"Bench Circle {slug}", purpose="", currency="EUR")
    session.add(circle)
    session.flush()
    ensure_circle_accounts(session, circle, now=NOW)
    session.commit()
    return circle


class Rate:
    """Work per second, by the wall clock and by this process's CPU time."""

    def __init__(self, work: float, wall_s: float, cpu_s: float) -> None:
        self.wall = work / wall_s if wall_s else float("inf")
        self.cpu = work / cpu_s if cpu_s else float("inf")
        self.wall_s, self.cpu_s = wall_s, cpu_s


class Clock:
    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def bench_posts(url: str, n: int, per_commit: int = 1) -> Rate:
    """Posts per second through post(): three legs, one commit per ``per_commit`` posts (1: every
    post is its own database transaction, the figure the target is about)."""
    engine = make_engine(url)
    session = make_sessionmaker(engine)()
    c = _circle(session, f"bench-{per_commit}").id
    keys = (f"{c}:pot:available", f"{c}:stripe:clearing", f"{c}:fees:stripe")
    with Clock() as clock:
        for i in range(n):
            gross = 1_000 + i % 500
            post(session, circle_id=c, kind="contribution", idempotency_key=f"stripe:payment_intent:pi_{c}_{i}",
                 now=NOW, legs=[Leg(keys[0], Money(-gross, "EUR")), Leg(keys[1], Money(gross - 30, "EUR")),
                                Leg(keys[2], Money(30, "EUR"))])
            if (i + 1) % per_commit == 0:
                session.commit()
        session.commit()
    report = verify(session)
    assert report.ok and report.transactions >= n, report.problems[:3]
    session.close()
    engine.dispose()
    return Rate(n, clock.wall, clock.cpu)


def bench_raw_inserts(workdir: Path, n: int) -> Rate:
    """Anchor: raw sqlite3 INSERT of one row, one commit each (WAL, synchronous=FULL)."""
    path = workdir / "raw.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, amount_minor INTEGER)")
    with Clock() as clock:
        for i in range(n):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t (k, amount_minor) VALUES (?, ?)", (f"k{i}", i))
            conn.execute("COMMIT")
    conn.close()
    return Rate(n, clock.wall, clock.cpu)


def build_big_ledger(path: Path, n: int) -> None:
    """BENCH-ONLY bulk path: an n-transaction ledger (2/3 Stripe contributions with three legs,
    1/3 awards to one of 1,000 earmarks), plus the bare chain table for the anchor."""
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        c = _circle(session).id
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("DROP TRIGGER ledger_posting_check")
    conn.execute("DROP TRIGGER ledger_seal_check")
    accounts = {k: i for i, k in conn.execute("SELECT id, key FROM ledger_account")}
    pot, clearing, fees = f"{c}:pot:available", f"{c}:stripe:clearing", f"{c}:fees:stripe"
    marks = [f"{c}:pot:1:earmarked:{p}" for p in range(1, 1001)]
    for k in marks:
        accounts[k] = conn.execute(
            "INSERT INTO ledger_account (circle_id, key, kind, normal_side, currency, floor_zero, created_at) "
            "VALUES (?, ?, 'liability', 'credit', 'EUR', 1, ?) RETURNING id",
            (c, k, NOW.replace(tzinfo=None).isoformat(" "))).fetchone()[0]
    conn.execute("CREATE TABLE bare_chain (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL, hash BLOB NOT NULL)")
    rnd = random.Random(1)
    balances: dict[int, int] = {}
    prev: bytes | None = None
    day = NOW.date()
    recorded = NOW.replace(tzinfo=None).isoformat(" ")
    txs, postings, seals, bare = [], [], [], []
    posting_id = 0

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO ledger_transaction (id, circle_id, idempotency_key, request_digest, kind, "
                         "effective_on, recorded_at, memo) VALUES (?, ?, ?, ?, ?, ?, ?, '')", txs)
        conn.executemany("INSERT INTO ledger_posting (id, transaction_id, account_id, currency, amount_minor, "
                         "balance_after_minor) VALUES (?, ?, ?, 'EUR', ?, ?)", postings)
        conn.executemany("INSERT INTO ledger_seal (seq, transaction_id, prev_hash, hash, encoding_version, "
                         "sealed_at) VALUES (?, ?, ?, ?, 1, ?)", seals)
        conn.executemany("INSERT INTO bare_chain (seq, payload, hash) VALUES (?, ?, ?)", bare)
        conn.execute("COMMIT")
        for batch in (txs, postings, seals, bare):
            batch.clear()

    for seq in range(1, n + 1):
        if seq % 3 or -balances.get(accounts[pot], 0) < 5_000:
            gross = rnd.randint(500, 20_000)
            fee = gross * 15 // 1000 + 25
            kind, key = "contribution", f"stripe:payment_intent:pi_{seq}"
            legs = [(pot, -gross), (clearing, gross - fee), (fees, fee)]
        else:
            amount = rnd.randint(1, 5_000)
            kind, key = "award", f"award:1:{seq}"
            legs = [(pot, amount), (rnd.choice(marks), -amount)]
        triples = [(k, "EUR", m) for k, m in legs]
        canon = canonical_bytes(seq=seq, key=key, kind=kind, effective_on=day, reverses=None, postings=triples)
        digest = chain_hash(prev, canon)
        txs.append((seq, c, key, request_digest(kind=kind, effective_on=day, postings=triples, circle_id=c),
                    kind, day.isoformat(), recorded))
        for k, m in legs:
            posting_id += 1
            aid = accounts[k]
            balances[aid] = balances.get(aid, 0) + m
            postings.append((posting_id, seq, aid, m, balances[aid]))
        seals.append((seq, seq, prev, digest, recorded))
        bare.append((seq, canon, digest))
        prev = digest
        if seq % 50_000 == 0:
            flush()
    flush()
    conn.close()


def bench_bare_chain(path: Path) -> Clock:
    """Anchor: scan the bare table and recompute the SHA-256 chain over the same bytes."""
    conn = sqlite3.connect(path)
    sha = hashlib.sha256
    with Clock() as clock:
        prev = b""
        bad = 0
        for payload, stored in conn.execute("SELECT payload, hash FROM bare_chain ORDER BY seq"):
            prev = sha(prev + payload).digest()
            bad += prev != stored
    conn.close()
    assert bad == 0
    return clock


def bench_read_floor(path: Path) -> Clock:
    """Not a target, a floor: fetch the rows verify() must read (headers with their seals, and
    postings, in the same order and through the same driver) and do nothing with them. verify
    cannot be faster than this while it re-derives every hash from the relational rows."""
    from fundcircle.ledger.checks import _SQL_HEADERS, _SQL_POSTINGS

    conn = sqlite3.connect(path)
    with Clock() as clock:
        for sql in (_SQL_HEADERS, _SQL_POSTINGS):
            cursor = conn.execute(sql)
            while cursor.fetchmany(20000):
                pass
    conn.close()
    return clock


def bench_verify(path: Path) -> tuple[Clock, int]:
    engine = make_engine(f"sqlite:///{path}")
    with make_sessionmaker(engine)() as session:
        with Clock() as clock:
            report = verify(session)
    engine.dispose()
    assert report.ok, report.problems[:3]
    return clock, report.transactions


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "load average unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=1_000_000, help="ledger size for verify (default 1e6)")
    parser.add_argument("--posts", type=int, default=20_000, help="posts through the API (default 20,000)")
    parser.add_argument("--database-url", default=None, help="post to this (migrated, empty) database instead "
                        "of a fresh SQLite file; verify always runs on SQLite")
    parser.add_argument("--workdir", default=None, help="where to put the SQLite files (default: a temp dir)")
    parser.add_argument("--only", choices=("posts", "verify"), default=None, help="run one of the two benchmarks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        print(f"sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
              f"{_load()}, workdir {workdir}")
        if args.only != "verify":
            raw = bench_raw_inserts(workdir, args.posts)
            api = bench_posts(_fresh_db(workdir, "posts", args.database_url), args.posts)
            where = sa.make_url(args.database_url).get_backend_name() if args.database_url else "sqlite"
            print(f"\nposts ({args.posts:,}, one commit each)            wall clock          CPU time")
            print(f"  anchor: raw sqlite3 insert+commit      {raw.wall:>12,.0f} /s   {raw.cpu:>12,.0f} /s")
            print(f"  post() via public API ({where:<10})   {api.wall:>12,.0f} /s   {api.cpu:>12,.0f} /s"
                  f"   ratio {raw.wall / api.wall:.1f}x / {raw.cpu / api.cpu:.1f}x slower")
            print(f"  target >= 5,000/s: wall {'OK' if api.wall >= 5_000 else 'MISSED'}, "
                  f"CPU {'OK' if api.cpu >= 5_000 else 'MISSED'}")
            # the same posts ten to a database transaction: what post() itself costs once the
            # caller's session begin/commit (about half of the figure above) is shared
            batched = bench_posts(_fresh_db(workdir, "posts10", args.database_url), args.posts, per_commit=10)
            print(f"  post(), 10 per commit ({where:<10})   {batched.wall:>12,.0f} /s   {batched.cpu:>12,.0f} /s"
                  f"   (for comparison; not the target's setting)")
        if args.only != "posts":
            big = workdir / "big.sqlite3"
            upgrade(f"sqlite:///{big}")
            started = time.perf_counter()
            build_big_ledger(big, args.transactions)
            print(f"\nverify ({args.transactions:,} transactions; bench-only bulk load took "
                  f"{time.perf_counter() - started:.1f} s)    wall clock     CPU time")
            bare = bench_bare_chain(big)
            floor = bench_read_floor(big)
            took, count = bench_verify(big)
            assert count == args.transactions
            print(f"  anchor: bare SHA-256 chain + scan      {bare.wall:>12.2f} s   {bare.cpu:>9.2f} s")
            print(f"  floor: fetching the rows verify reads  {floor.wall:>12.2f} s   {floor.cpu:>9.2f} s"
                  f"   ratio {floor.wall / bare.wall:.2f}x / {floor.cpu / bare.cpu:.2f}x (no checks, no hashing)")
            print(f"  verify() full recompute + invariants   {took.wall:>12.2f} s   {took.cpu:>9.2f} s"
                  f"   ratio {took.wall / bare.wall:.2f}x / {took.cpu / bare.cpu:.2f}x")
            print(f"  target <= 2x: wall {'OK' if took.wall <= 2 * bare.wall else 'MISSED'}, "
                  f"CPU {'OK' if took.cpu <= 2 * bare.cpu else 'MISSED'}")


if __name__ == "__main__":
    main()
