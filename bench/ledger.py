"""Ledger benchmark: posts per second and verify time, each next to its anchor, in one run.

    python bench/ledger.py [--transactions N] [--posts N] [--database-url URL] [--workdir DIR]
                           [--only posts|verify] [--repeat N] [--python-pass]
                           [--probe-layers] [--probe-stored-bytes]

1. Posting through the public API (``post()`` with three legs, one database transaction and one
   commit per ledger transaction, triggers on) vs. the anchor: raw sqlite3 INSERTs of one row with
   one commit each, same pragmas (WAL, synchronous=FULL). The target, 5,000/s where the anchor
   does about 62,000/s, is checked as a ratio (at most 12.4x slower than the anchor in the same
   run): the anchor itself moved from 29,000/s to 85,000/s between the 2-core machines this ran on.
   Where fsync costs real time (a disk-backed --workdir), it dominates both sides and the ratio
   shrinks; a tmpfs --workdir such as /dev/shm is the stricter setting.
2. ``verify()`` over N transactions (default 1,000,000) vs. the anchor: a bare SHA-256 chain over
   the same canonical bytes stored in one table, read with one scan. The line says which pass
   answered: "native" (the compiled confirm-clean pass, fundcircle/ledger/README.md) or "python";
   ``--python-pass`` also times the Python pass alone, ``--repeat N`` prints medians of N runs.

Both figures are printed as wall-clock rates and as rates over this process's CPU time (user +
system, which includes SQLite's own work since it runs in-process). On a shared machine the wall
clock mostly measures the neighbours; the CPU figure is what one idle core would do. The anchor
gets the same two figures, so each ratio is like for like.

Building the N-transaction ledger uses a BULK PATH THAT EXISTS ONLY IN THIS BENCHMARK: rows
computed in Python (same canonical encoding, hashes and running balances as post()) and inserted
with executemany and synchronous=OFF, with the posting/seal check triggers dropped in this
throwaway database so the load takes seconds, not minutes. verify() does not rely on triggers.

3. ``--probe-stored-bytes`` (opt-in, after 2): the components of the design "store the canonical
   bytes on the seal row; verify = chain over the stored bytes + an audit in SQL, on a second
   connection in a second thread" (issue 4), timed over the same ledger. BENCH-ONLY: a
   ``canonical`` column is added to ``ledger_seal`` in the throwaway database and filled from the
   anchor's table, and one probe adds a covering index. Each probe asserts that the clean ledger
   passes (so the SQL builds exactly the bytes Python hashed). The last line runs the chain and the
   SQL audit on two threads (sqlite3 releases the GIL while SQLite runs) and reports wall and CPU
   (CPU = both threads).
4. ``--probe-layers`` (opt-in, after 1): where the posts' ratio goes. From the anchor to
   ``post()`` + ``session.commit()``, one layer at a time, taking turns of 250 posts so drift hits
   all layers alike: the posts' SQL from sqlite3 (also with two BENCH-ONLY schema variants in the
   throwaway database: partial unique indexes, 2 KB pages); the same SQL with the transaction begun and
   committed by a SQLAlchemy Connection; the same through the ORM Session; ``post()`` on a
   BENCH-ONLY stand-in that offers post() a Connection instead of a Session (no app code has such
   a path); and ``post()`` with a Session, the target's line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

import fundcircle.models  # noqa: E402,F401
from fundcircle.circles.models import Circle  # noqa: E402
from fundcircle.db import make_engine, make_sessionmaker  # noqa: E402
from fundcircle.ledger import Leg, Money, checks, ensure_circle_accounts, post, verify  # noqa: E402
from fundcircle.ledger.chain import canonical_bytes, chain_hash, request_digest  # noqa: E402
from fundcircle.migrate import upgrade  # noqa: E402

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)
#: issue 4: "at least 5,000 posts/s" next to "about 62,000/s" for the anchor on the issue's machine
TARGET_POSTS_PER_S = 5_000
ANCHOR_ON_ISSUE_MACHINE = 62_000


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


def _contribution_keys(circle_id: int) -> tuple[str, str, str]:
    return f"{circle_id}:pot:available", f"{circle_id}:stripe:clearing", f"{circle_id}:fees:stripe"


def _contribution_legs(keys: tuple[str, str, str], i: int) -> list[Leg]:
    """Post number ``i``: a contribution of 10.00–14.99 EUR into the pot, 0.30 of it Stripe's fee."""
    gross = 1_000 + i % 500
    return [Leg(keys[0], Money(-gross, "EUR")), Leg(keys[1], Money(gross - 30, "EUR")), Leg(keys[2], Money(30, "EUR"))]


def bench_posts(url: str, n: int, per_commit: int = 1) -> Rate:
    """Posts per second through post(): three legs, one commit per ``per_commit`` posts (1: every
    post is its own database transaction, the figure the target is about)."""
    engine = make_engine(url)
    session = make_sessionmaker(engine)()
    c = _circle(session, f"bench-{per_commit}").id
    keys = _contribution_keys(c)
    with Clock() as clock:
        for i in range(n):
            post(session, circle_id=c, kind="contribution", idempotency_key=f"stripe:payment_intent:pi_{c}_{i}",
                 now=NOW, legs=_contribution_legs(keys, i))
            if (i + 1) % per_commit == 0:
                session.commit()
        session.commit()
    report = verify(session)
    assert report.ok and report.transactions >= n, report.problems[:3]
    session.close()
    engine.dispose()
    return Rate(n, clock.wall, clock.cpu)


def _anchor_db(path: Path) -> sqlite3.Connection:
    """The anchor's fresh database: one table, WAL, synchronous=FULL."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, amount_minor INTEGER)")
    return conn


def bench_raw_inserts(workdir: Path, n: int) -> Rate:
    """Anchor: raw sqlite3 INSERT of one row, one commit each (WAL, synchronous=FULL)."""
    conn = _anchor_db(workdir / "raw.sqlite3")
    with Clock() as clock:
        for i in range(n):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t (k, amount_minor) VALUES (?, ?)", (f"k{i}", i))
            conn.execute("COMMIT")
    conn.close()
    return Rate(n, clock.wall, clock.cpu)


class _PostsSql:
    """The SQL of one post, issued from sqlite3 with no SQLAlchemy and no Python checks: the tip
    read, the header, the three postings and the seal (the statements post() runs, triggers on).
    The caller begins and commits."""

    def __init__(self, url: str, slug: str) -> None:
        from fundcircle.ledger import posting as p

        engine = make_engine(url)
        with make_sessionmaker(engine)() as session:
            self.circle_id = c = _circle(session, slug).id
            ids = dict(session.execute(sa.text("SELECT key, id FROM ledger_account")).all())
        engine.dispose()
        self.accounts = [ids[key] for key in _contribution_keys(c)]
        self.balances = dict.fromkeys(self.accounts, 0)
        self.sql_tip, self.sql_header, self.sql_seal = p._SQL_TIP, p._SQL_INSERT_TX_SQLITE, p._SQL_INSERT_SEAL
        self.sql_postings = p._insert_postings_sql(3)
        self.recorded, self.day = NOW.replace(tzinfo=None).isoformat(" "), NOW.date().isoformat()
        self.digest = hashlib.sha256(b"request").digest()

    def run(self, conn: sqlite3.Connection, i: int) -> None:
        gross = 1_000 + i % 500
        tip = conn.execute(self.sql_tip).fetchone()
        seq, prev = (1, None) if tip is None else (tip[0] + 1, tip[1])
        tx = conn.execute(self.sql_header, (self.circle_id, f"floor:{i}", self.digest, "contribution", self.day,
                                            self.recorded, "", None, None, None, None)).lastrowid
        params: list[object] = []
        for account, amount in zip(self.accounts, (-gross, gross - 30, 30)):
            self.balances[account] += amount
            params += (tx, account, "EUR", amount, self.balances[account])
        conn.execute(self.sql_postings, params)
        conn.execute(self.sql_seal, (seq, tx, prev, hashlib.sha256((prev or b"") + b"%d" % i).digest(), 1,
                                     self.recorded))


def _sqlite3_connect(url: str) -> sqlite3.Connection:
    """A plain sqlite3 connection with fundcircle's pragmas (fundcircle.db._sqlite_pragmas)."""
    conn = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
    for pragma in ("foreign_keys = ON", "journal_mode = WAL", "synchronous = FULL"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def bench_sql_floor(url: str, n: int) -> Rate:
    """Not a target, a floor: the SQL of n posts alone (``_PostsSql``), each in BEGIN IMMEDIATE ..
    COMMIT. post() cannot be faster than this while it writes these rows; the ratio says how much
    of the target's budget the schema takes."""
    sql = _PostsSql(url, "floor")
    conn = _sqlite3_connect(url)
    with Clock() as clock:
        for i in range(n):
            conn.execute("BEGIN IMMEDIATE")
            sql.run(conn, i)
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
    pot, clearing, fees = _contribution_keys(c)
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


def bench_verify(path: Path) -> tuple[Clock, int, str]:
    engine = make_engine(f"sqlite:///{path}")
    with make_sessionmaker(engine)() as session:
        with Clock() as clock:
            report = verify(session)
    engine.dispose()
    assert report.ok, report.problems[:3]
    return clock, report.transactions, report.checked_by


def bench_verify_python(path: Path) -> Clock:
    """The same verify() with the compiled pass switched off: the Python pass alone, for comparison."""
    saved = checks._native_verify
    checks._native_verify = None
    try:
        took, _count, used = bench_verify(path)
    finally:
        checks._native_verify = saved
    assert used == "python"
    return took


#: the canonical v1 text of each sealed transaction, built by SQLite's JSON1 from the relational
#: rows (json_object keeps the argument order, which is the sorted key order; postings ordered by
#: account key, then currency, then amount, as the canonical encoding sorts them)
_PROBE_CONTENT = """
SELECT count(*) FROM ledger_seal s JOIN ledger_transaction t ON t.id = s.transaction_id
LEFT JOIN ledger_seal r ON r.transaction_id = t.reverses_id
WHERE CAST(s.canonical AS TEXT) IS NOT json_object(
  'effective_on', t.effective_on, 'key', t.idempotency_key, 'kind', t.kind,
  'postings', (SELECT json_group_array(json_array(k, c, m)) FROM (
      SELECT a.key AS k, p.currency AS c, p.amount_minor AS m FROM ledger_posting p
      JOIN ledger_account a ON a.id = p.account_id WHERE p.transaction_id = s.transaction_id ORDER BY 1, 2, 3)),
  'reverses', r.seq, 'seq', s.seq, 'v', 1)"""
#: >= 2 postings, zero sum, one currency, the account's currency (per transaction)
_PROBE_SUMS = """
SELECT count(*) FROM (SELECT count(*) AS n, sum(p.amount_minor) AS total, min(p.currency) AS c1,
  max(p.currency) AS c2, sum(p.currency IS a.currency) AS same FROM ledger_posting p
  JOIN ledger_account a ON a.id = p.account_id GROUP BY p.transaction_id)
WHERE n < 2 OR total <> 0 OR c1 <> c2 OR same <> n"""
#: every balance_after_minor is the running sum of its account's amounts, in id order
_PROBE_RUNNING = """
SELECT count(*) FROM (SELECT balance_after_minor - sum(amount_minor) OVER (PARTITION BY account_id ORDER BY id
  ROWS UNBOUNDED PRECEDING) AS d FROM ledger_posting INDEXED BY {index}) WHERE d <> 0"""
_PROBE_COVERING = ("CREATE INDEX bench_ix_posting_running ON ledger_posting "
                   "(account_id, id, amount_minor, balance_after_minor)")


def _probe_chain(path: Path) -> int:
    """Python: the chain over the stored bytes on the seal row (seq gapless, links, hashes)."""
    conn = sqlite3.connect(path)
    sha = hashlib.sha256
    prev: bytes | None = None
    expected, bad = 1, 0
    for seq, prev_hash, stored, canon in conn.execute(
            "SELECT seq, prev_hash, hash, canonical FROM ledger_seal ORDER BY seq"):
        if seq != expected or prev_hash != prev or sha((prev_hash or b"") + canon).digest() != stored:
            bad += 1
        prev, expected = stored, seq + 1
    conn.close()
    return bad


def _probe_sql(path: Path, *sqls: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return sum(conn.execute(sql).fetchone()[0] for sql in sqls)
    finally:
        conn.close()


def _timed(work, *args) -> Clock:  # type: ignore[no-untyped-def]
    with Clock() as clock:
        bad = work(*args)
    assert bad == 0, f"{work.__name__}: {bad} mismatches on a clean ledger"
    return clock


def probe_stored_bytes(path: Path, bare: Clock) -> None:
    """BENCH-ONLY (module docstring, 3): time each part of the stored-bytes design."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER ledger_seal_no_update")
    conn.execute("ALTER TABLE ledger_seal ADD COLUMN canonical BLOB")
    conn.execute("UPDATE ledger_seal SET canonical = (SELECT payload FROM bare_chain b WHERE b.seq = ledger_seal.seq)")
    conn.close()
    rows = [
        ("Python: chain over stored bytes", _timed(_probe_chain, path)),
        ("SQL: rows = stored bytes (JSON1)", _timed(_probe_sql, path, _PROBE_CONTENT)),
        ("SQL: count/sum/currency per tx", _timed(_probe_sql, path, _PROBE_SUMS)),
        ("SQL: running balances (index today)",
         _timed(_probe_sql, path, _PROBE_RUNNING.format(index="ix_ledger_posting_account_id_id"))),
    ]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(_PROBE_COVERING)
    conn.close()
    running = _PROBE_RUNNING.format(index="bench_ix_posting_running")
    rows.append(("SQL: running balances (covering idx)", _timed(_probe_sql, path, running)))
    print("\nstored-bytes design, its parts (BENCH-ONLY probe)  wall clock     CPU time")
    for label, clock in rows:
        print(f"  {label:<38} {clock.wall:>9.2f} s   {clock.cpu:>9.2f} s   ratio {clock.wall / bare.wall:.2f}x / "
              f"{clock.cpu / bare.cpu:.2f}x")
    needed = rows[0][1].cpu + rows[1][1].cpu + rows[2][1].cpu + rows[4][1].cpu
    # the bound is in CPU terms on both sides: on a shared machine the wall clock measures the neighbours
    print(f"  sum of the parts it needs (chain, content, sums, running with the covering index): CPU {needed:.2f} s "
          f"= {needed / bare.cpu:.2f}x the anchor's CPU;\n  so on 2 idle CPUs, perfectly split, at best "
          f"{needed / 2:.2f} s = {needed / 2 / bare.cpu:.2f}x the anchor (floors, reversals, order not counted)")

    def audit() -> None:
        assert _probe_sql(path, _PROBE_CONTENT, _PROBE_SUMS, running) == 0

    with Clock() as both:
        helper = threading.Thread(target=audit)  # second thread, second connection
        helper.start()
        chain_bad = _probe_chain(path)
        helper.join()
    assert chain_bad == 0
    print(f"  2 threads: chain || SQL audit (same)   {both.wall:>9.2f} s   {both.cpu:>9.2f} s   ratio "
          f"{both.wall / bare.wall:.2f}x / {both.cpu / bare.cpu:.2f}x (CPU of both threads)")


# -- 4. where the posts' ratio goes (opt-in) ------------------------------------------------------

class _ConnectionAsSession:
    """BENCH-ONLY: the few Session methods post() uses, over one held SQLAlchemy Connection, so
    ``post()`` runs without the ORM Session's transaction bookkeeping. No app code has such a path;
    the layer says what one would buy."""

    def __init__(self, engine: sa.Engine) -> None:
        self.bind, self.info = engine, {}
        self.conn = engine.connect()

    def _is_clean(self) -> bool:
        return True

    def get_bind(self, *_args: object, **_kw: object) -> sa.Engine:
        return self.bind

    def connection(self) -> sa.Connection:
        if not self.conn.in_transaction():
            self.conn.begin()  # BEGIN IMMEDIATE when post() asks for the write lock (fundcircle.db)
        return self.conn

    def execute(self, *args: object, **kw: object) -> object:
        return self.connection().execute(*args, **kw)  # type: ignore[call-overload]

    def commit(self) -> None:
        self.conn.commit()


def _post_step(session, circle_id: int):  # type: ignore[no-untyped-def]
    keys = _contribution_keys(circle_id)

    def step(i: int) -> None:
        post(session, circle_id=circle_id, kind="contribution", idempotency_key=f"layers:{i}", now=NOW,
             legs=_contribution_legs(keys, i))
        session.commit()
    return step


_NULL_MOSTLY_UNIQUES = re.compile(
    r",\s*CONSTRAINT uq_ledger_transaction_(reverses_id|external_source_external_id) UNIQUE \([^)]*\)")


def _partial_unique_indexes(url: str) -> None:
    """BENCH-ONLY, in a throwaway database: ``ledger_transaction`` rebuilt with its two mostly-NULL
    unique constraints (``reverses_id``; ``external_source, external_id``) as partial unique
    indexes, which a post without a reversal or an external id does not touch. Same rows, same
    triggers and other indexes."""
    conn = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
    create, = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ledger_transaction'").fetchone()
    others = [sql for sql, in conn.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'ledger_transaction' "
                                           "AND type IN ('index', 'trigger') AND sql IS NOT NULL")]
    leaner, found = _NULL_MOSTLY_UNIQUES.subn("", create)
    assert found == 2, create
    conn.executescript(
        "PRAGMA legacy_alter_table = ON; BEGIN; "  # legacy: other tables' references keep the name
        + leaner.replace("CREATE TABLE ledger_transaction", "CREATE TABLE ledger_transaction_lean", 1) + "; "
        "INSERT INTO ledger_transaction_lean SELECT * FROM ledger_transaction; DROP TABLE ledger_transaction; "
        "ALTER TABLE ledger_transaction_lean RENAME TO ledger_transaction; "
        + "; ".join(others) + "; "
        "CREATE UNIQUE INDEX uq_ledger_transaction_reverses_id ON ledger_transaction (reverses_id) "
        "WHERE reverses_id IS NOT NULL; "
        "CREATE UNIQUE INDEX uq_ledger_transaction_external_source_external_id ON ledger_transaction "
        "(external_source, external_id) WHERE external_source IS NOT NULL AND external_id IS NOT NULL; COMMIT")
    conn.close()


def _page_size(url: str, page_size: int) -> None:
    """BENCH-ONLY: the throwaway database rewritten with another page size."""
    conn = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")  # a WAL database keeps its page size
    conn.execute(f"PRAGMA page_size = {page_size}")
    conn.execute("VACUUM")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()


def probe_layers(workdir: Path, n: int, chunk: int = 250) -> None:
    """From the anchor to post() + session.commit(), one layer at a time, each layer one commit per
    post. The layers run in turns of ``chunk`` posts each, so drift on a shared machine hits them
    alike; each line is the layer's per-post time and its ratio to the anchor in this run."""
    from fundcircle.db import sqlite_write_connection

    layers: list[tuple[str, object]] = []
    anchor = _anchor_db(workdir / "layers-anchor.sqlite3")

    def anchor_step(i: int) -> None:
        anchor.execute("BEGIN")
        anchor.execute("INSERT INTO t (k, amount_minor) VALUES (?, ?)", (f"k{i}", i))
        anchor.execute("COMMIT")
    layers.append(("anchor: one-row insert + commit", anchor_step))

    raw_connections = []
    for name, change in (("the posts' SQL from sqlite3", None),
                         ("  partial unique indexes (bench-only)", _partial_unique_indexes),
                         ("  2 KB pages (bench-only)", lambda url: _page_size(url, 2048))):
        url = _fresh_db(workdir, f"layers-sql{len(raw_connections)}", None)
        sql = _PostsSql(url, f"layers-sql{len(raw_connections)}")
        if change is not None:
            change(url)
        conn = _sqlite3_connect(url)
        raw_connections.append(conn)

        def sql_step(i: int, sql: _PostsSql = sql, conn: sqlite3.Connection = conn) -> None:
            conn.execute("BEGIN IMMEDIATE")
            sql.run(conn, i)
            conn.execute("COMMIT")
        layers.append((name, sql_step))

    url = _fresh_db(workdir, "layers-conn", None)
    sql_c, engine_c = _PostsSql(url, "layers-conn"), make_engine(url)
    held = _ConnectionAsSession(engine_c)

    def conn_step(i: int) -> None:
        sql_c.run(sqlite_write_connection(held).connection.driver_connection, i)  # type: ignore[arg-type]
        held.commit()
    layers.append(("  + SQLAlchemy Connection begin/commit", conn_step))

    url = _fresh_db(workdir, "layers-session", None)
    sql_s, engine_s = _PostsSql(url, "layers-session"), make_engine(url)
    session_s = make_sessionmaker(engine_s)()

    def session_step(i: int) -> None:
        sql_s.run(sqlite_write_connection(session_s).connection.driver_connection, i)
        session_s.commit()
    layers.append(("  + ORM Session begin/commit instead", session_step))

    url = _fresh_db(workdir, "layers-shim", None)
    engine_p = make_engine(url)
    with make_sessionmaker(engine_p)() as setup:
        circle_p = _circle(setup, "layers-shim").id
    layers.append(("post() on a Connection (bench-only shim)", _post_step(_ConnectionAsSession(engine_p), circle_p)))

    url = _fresh_db(workdir, "layers-post", None)
    engine_q = make_engine(url)
    session_q = make_sessionmaker(engine_q)()
    layers.append(("post() + session.commit() (the target)", _post_step(session_q, _circle(session_q, "layers").id)))

    spent = [0.0] * len(layers)
    for start in range(0, n - n % chunk, chunk):
        for k, (_, step) in enumerate(layers):
            began = time.perf_counter()
            for i in range(start, start + chunk):
                step(i)  # type: ignore[operator]
            spent[k] += time.perf_counter() - began
    done = n - n % chunk
    print(f"\nlayers ({done:,} posts each, turns of {chunk}; per post, ratio to the anchor)")
    for (name, _), seconds in zip(layers, spent):
        print(f"  {name:<44} {seconds / done * 1e6:>8.1f} us   {seconds / spent[0]:>5.1f}x")
    print(f"  budget at the target: {ANCHOR_ON_ISSUE_MACHINE / TARGET_POSTS_PER_S:.1f}x")
    for conn in (anchor, *raw_connections):
        conn.close()
    session_s.close()
    session_q.close()
    held.conn.close()
    for engine in (engine_c, engine_s, engine_p, engine_q):
        engine.dispose()


def _median(samples: list[Clock] | list[Rate], out: Clock | Rate) -> Clock | Rate:
    """``out`` holding the median wall and the median CPU figure of ``samples`` (Clocks or Rates)."""
    out.wall = statistics.median(x.wall for x in samples)
    out.cpu = statistics.median(x.cpu for x in samples)
    return out


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
    parser.add_argument("--probe-stored-bytes", action="store_true",
                        help="after verify, time the parts of the stored-canonical-bytes design (docstring, 3)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each side this many times (interleaved), print medians")
    parser.add_argument("--probe-layers", action="store_true",
                        help="after posts, time the layers between the anchor and post() on SQLite (docstring, 4)")
    parser.add_argument("--python-pass", action="store_true",
                        help="also time verify() with the compiled pass switched off")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        print(f"sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
              f"{_load()}, workdir {workdir}")
        if args.only != "verify":
            where = sa.make_url(args.database_url).get_backend_name() if args.database_url else "sqlite"
            # interleaved repeats, medians (the machine is shared, and one run moves by +-15%)
            raws, apis, sql_floors = [], [], []
            for run in range(args.repeat):
                raws.append(bench_raw_inserts(workdir, args.posts))
                apis.append(bench_posts(_fresh_db(workdir, f"posts{run}", args.database_url), args.posts))
                if not args.database_url:
                    sql_floors.append(bench_sql_floor(_fresh_db(workdir, f"floor{run}", None), args.posts))
            raw, api = _median(raws, Rate(1, 1, 1)), _median(apis, Rate(1, 1, 1))
            print(f"\nposts ({args.posts:,}, one commit each)            wall clock          CPU time")
            if args.repeat > 1:
                print(f"  (medians of {args.repeat} interleaved runs; post() wall each: "
                      f"{', '.join(f'{r.wall:,.0f}' for r in apis)} /s; anchor wall each: "
                      f"{', '.join(f'{r.wall:,.0f}' for r in raws)} /s)")
            print(f"  anchor: raw sqlite3 insert+commit      {raw.wall:>12,.0f} /s   {raw.cpu:>12,.0f} /s")
            print(f"  post() via public API ({where:<10})   {api.wall:>12,.0f} /s   {api.cpu:>12,.0f} /s"
                  f"   ratio {raw.wall / api.wall:.1f}x / {raw.cpu / api.cpu:.1f}x slower")
            if sql_floors:
                sql = _median(sql_floors, Rate(1, 1, 1))
                print(f"  floor: the posts' SQL alone (sqlite3)  {sql.wall:>12,.0f} /s   {sql.cpu:>12,.0f} /s"
                      f"   ratio {raw.wall / sql.wall:.1f}x / {raw.cpu / sql.cpu:.1f}x (no SQLAlchemy, no checks)")
            # The issue's target is 5,000/s next to an anchor of about 62,000/s on its machine: at
            # most 12.4x slower than the anchor. The ratio carries across machines; the rate does not.
            allowed = ANCHOR_ON_ISSUE_MACHINE / TARGET_POSTS_PER_S
            print(f"  target >= {TARGET_POSTS_PER_S:,}/s where the anchor does {ANCHOR_ON_ISSUE_MACHINE:,}/s, i.e. "
                  f"ratio <= {allowed:.1f}x: wall {'OK' if raw.wall / api.wall <= allowed else 'MISSED'}, "
                  f"CPU {'OK' if raw.cpu / api.cpu <= allowed else 'MISSED'}; absolute on this machine: "
                  f"{'OK' if api.wall >= TARGET_POSTS_PER_S else 'MISSED'}")
            # the same posts ten to a database transaction: what post() itself costs once the
            # caller's session begin/commit is shared
            batched = bench_posts(_fresh_db(workdir, "posts10", args.database_url), args.posts, per_commit=10)
            print(f"  post(), 10 per commit ({where:<10})   {batched.wall:>12,.0f} /s   {batched.cpu:>12,.0f} /s"
                  f"   (for comparison; not the target's setting)")
            if args.probe_layers:
                probe_layers(workdir, args.posts)
        if args.only != "posts":
            big = workdir / "big.sqlite3"
            upgrade(f"sqlite:///{big}")
            started = time.perf_counter()
            build_big_ledger(big, args.transactions)
            print(f"\nverify ({args.transactions:,} transactions; bench-only bulk load took "
                  f"{time.perf_counter() - started:.1f} s)    wall clock     CPU time")
            # interleaved repeats, medians of wall and of CPU (the machine is shared)
            bares, floors, tooks, used = [], [], [], set()
            for _ in range(args.repeat):
                bares.append(bench_bare_chain(big))
                floors.append(bench_read_floor(big))
                took, count, ran = bench_verify(big)
                assert count == args.transactions
                tooks.append(took)
                used.add(ran)
            bare, floor, took = _median(bares, Clock()), _median(floors, Clock()), _median(tooks, Clock())
            used = "/".join(sorted(used))
            if args.repeat > 1:
                print(f"  (medians of {args.repeat} interleaved runs; verify wall each: "
                      f"{', '.join(f'{t.wall:.2f}' for t in tooks)} s, CPU each: "
                      f"{', '.join(f'{t.cpu:.2f}' for t in tooks)} s; anchor CPU each: "
                      f"{', '.join(f'{t.cpu:.2f}' for t in bares)} s)")
            print(f"  anchor: bare SHA-256 chain + scan      {bare.wall:>12.2f} s   {bare.cpu:>9.2f} s")
            print(f"  floor: fetching the rows verify reads  {floor.wall:>12.2f} s   {floor.cpu:>9.2f} s"
                  f"   ratio {floor.wall / bare.wall:.2f}x / {floor.cpu / bare.cpu:.2f}x (no checks, no hashing)")
            print(f"  verify() full recompute + invariants   {took.wall:>12.2f} s   {took.cpu:>9.2f} s"
                  f"   ratio {took.wall / bare.wall:.2f}x / {took.cpu / bare.cpu:.2f}x   (ran: {used})")
            if args.python_pass:
                py = bench_verify_python(big)
                print(f"  verify() Python pass only (comparison) {py.wall:>12.2f} s   {py.cpu:>9.2f} s"
                      f"   ratio {py.wall / bare.wall:.2f}x / {py.cpu / bare.cpu:.2f}x")
            print(f"  target <= 2x: wall {'OK' if took.wall <= 2 * bare.wall else 'MISSED'}, "
                  f"CPU {'OK' if took.cpu <= 2 * bare.cpu else 'MISSED'}")
            if args.probe_stored_bytes:
                probe_stored_bytes(big, bare)


if __name__ == "__main__":
    main()
