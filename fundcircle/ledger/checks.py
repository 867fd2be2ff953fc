"""Reading the ledger back: ``verify`` (the self-check), ``head``, balances.

``verify`` recomputes the whole chain from seq 1 and re-checks every invariant of reference §1.6:

- gapless ``seq`` (1, 2, …), each ``prev_hash`` equal to the previous seal's hash, each hash equal
  to SHA-256(prev_hash ‖ canonical v1 of the stored rows) — so any edited amount, key, kind, date
  or reversal link shows up at its own seq;
- every transaction header sealed; ≥ 2 postings; zero sum per currency; posting currency equals
  the account currency;
- running balances: each posting's ``balance_after_minor`` continues its account, and floor
  accounts never go below zero after any transaction;
- a reversal reverses a transaction sealed before it, at most once, and exactly negates it;
- the whole ledger sums to zero per currency.

It names the first bad seq (problems without a seq of their own are attached to the seq where the
chain should have continued). It reads through two ordered streams (headers+seals by id, postings
by id) merged in one pass; if the rows are not in the order one writer at a time produces, it falls
back to an in-memory pass ordered by seq.

On SQLite files above ``NATIVE_ABOVE_SEALS`` seals, the optional C extension ``_native_verify``
runs first: it re-checks everything above and answers only when the ledger is clean (counts and
head); on any problem the Python pass runs and writes the report (README.md, "compiled verifier").
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fundcircle.ledger import accounts as chart
from json.encoder import encode_basestring as _encode_str  # C; same as json.dumps(ensure_ascii=False)

from fundcircle.db import SQLITE_WRITE_LOCKED
from fundcircle.ledger.chain import canonical_bytes_fast, json_string
from fundcircle.ledger.models import LedgerAccount, LedgerPosting, LedgerSeal, LedgerTransaction
from fundcircle.ledger.money import Money, format_money

_sha256 = hashlib.sha256
MAX_PROBLEMS = 50


class Head(NamedTuple):
    """The chain head to publish: ``(seq, hash_hex)``; ``(0, "")`` for an empty ledger."""

    seq: int
    hash_hex: str


@dataclass(frozen=True)
class Problem:
    seq: int | None
    code: str
    message: str


@dataclass
class VerifyReport:
    """Outcome of ``verify``. ``ok`` iff no problem; ``first_bad_seq`` is the lowest seq at fault."""

    transactions: int = 0
    postings: int = 0
    head: Head = Head(0, "")
    problems: list[Problem] = field(default_factory=list)
    #: which pass answered: "native" (the compiled pass confirmed a clean ledger) or "python";
    #: not part of the outcome (both passes give equal reports)
    checked_by: str = field(default="python", compare=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "transactions": self.transactions, "postings": self.postings,
                "head": {"seq": self.head.seq, "hash": self.head.hash_hex},
                "first_bad_seq": self.first_bad_seq, "problems": [asdict(p) for p in self.problems]}


class _OutOfOrder(Exception):
    """Rows are not in single-writer order; use the in-memory pass."""


@dataclass
class _Account:
    key: str
    key_json: str
    currency: str
    credit_normal: bool
    floor_zero: bool


class _Checker:
    def __init__(self, accounts: dict[int, _Account], reversed_ids: set[int]) -> None:
        self.accounts = accounts
        self.reversed_ids = reversed_ids
        self.report = VerifyReport()
        self.expected_seq = 1
        self.prev_hash: bytes | None = None
        self.balances: dict[int, int] = defaultdict(int)
        self.totals: dict[str, int] = defaultdict(int)
        #: reversed transactions: id -> (seq, {(account_id, amount)})
        self.originals: dict[int, tuple[int, set[tuple[int, int]]]] = {}
        self.reversed_by: dict[int, int] = {}
        self.kinds: dict[str, str] = {}
        self.count = 0
        self.posting_count = 0
        self.last: tuple[int, bytes] | None = None

    def problem(self, seq: int | None, code: str, message: str) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(Problem(seq, code, message))

    def unsealed(self, tx_id: int, key: str) -> None:
        self.problem(self.expected_seq, "unsealed",
                     f"transaction #{tx_id} ({key}) has no seal (expected around seq {self.expected_seq})")

    def sealed(self, tx_id: int, key: str, kind: str, effective_on: Any, reverses_id: int | None,
               seq: int, prev_hash: bytes | None, stored_hash: bytes,
               postings: list[tuple[int, str, int, int]]) -> None:
        """One sealed transaction in seq order; postings are (account_id, currency, amount, balance_after).

        Written for speed (it runs once per transaction over the whole ledger): the common path is
        a handful of comparisons; every failed check records a Problem and carries on.
        """
        if seq != self.expected_seq:
            if seq < self.expected_seq:
                raise _OutOfOrder
            self.problem(self.expected_seq, "seq_gap", f"seq {self.expected_seq} is missing (next seal is {seq})")
            self.expected_seq = seq
        if prev_hash != self.prev_hash:
            self.problem(seq, "broken_link", f"seq {seq}: prev_hash does not equal the hash of seq {seq - 1}")
        accounts = self.accounts
        balances = self.balances
        if len(postings) < 2:
            self.problem(seq, "too_few_postings", f"seq {seq}: {len(postings)} posting(s), at least two required")
        first_currency = postings[0][1] if postings else ""
        total = 0
        mixed = False
        parts = []
        for account_id, currency, amount, balance_after in postings:
            acct = accounts[account_id]
            if currency != acct.currency:
                self.problem(seq, "currency", f"seq {seq}: posting in {currency} on {acct.key} ({acct.currency})")
            if currency != first_currency:
                mixed = True
            total += amount
            new_balance = balances.get(account_id, 0) + amount
            balances[account_id] = new_balance
            if balance_after != new_balance:
                self.problem(seq, "running_balance",
                             f"seq {seq}: {acct.key} balance_after_minor {balance_after} but recomputed {new_balance}")
            if acct.floor_zero and (-new_balance if acct.credit_normal else new_balance) < 0:
                natural = -new_balance if acct.credit_normal else new_balance
                self.problem(seq, "floor", f"seq {seq}: {acct.key} below zero ({format_money(natural, acct.currency)})")
            parts.append((acct.key, currency, amount, acct.key_json))
        if mixed:
            sums: dict[str, int] = defaultdict(int)
            for _a, currency, amount, _b in postings:
                sums[currency] += amount
        else:
            sums = {first_currency: total} if postings else {}
        for currency, subtotal in sums.items():
            self.totals[currency] += subtotal
            if subtotal != 0:
                self.problem(seq, "unbalanced", f"seq {seq}: postings sum to {format_money(subtotal, currency)}")
        reverses_seq = None
        if reverses_id is not None:
            reverses_seq = self._check_reversal(seq, tx_id, reverses_id, postings)
        if tx_id in self.reversed_ids:
            self.originals[tx_id] = (seq, {(a, m) for a, _c, m, _b in postings})
        parts.sort()
        key_json = _encode_str(key)
        kind_json = self.kinds.get(kind) or self.kinds.setdefault(kind, _encode_str(kind))
        eff = effective_on if effective_on.__class__ is str else effective_on.isoformat()
        canonical = canonical_bytes_fast(seq, key_json, kind_json, eff, reverses_seq,
                                         [f'[{kj},"{c}",{m}]' for _k, c, m, kj in parts])
        if _sha256((prev_hash or b"") + canonical).digest() != stored_hash:
            self.problem(seq, "hash", f"seq {seq}: stored hash does not match the recomputed hash "
                                      f"(a sealed row was altered)")
        self.prev_hash = stored_hash
        self.expected_seq = seq + 1
        self.count += 1
        self.posting_count += len(postings)
        self.last = (seq, stored_hash)

    def _check_reversal(self, seq: int, tx_id: int, reverses_id: int,
                        postings: list[tuple[int, str, int, int]]) -> int | None:
        original = self.originals.get(reverses_id)
        if original is None:
            self.problem(seq, "reversal_order", f"seq {seq}: reverses #{reverses_id}, not sealed before it")
            return None
        if reverses_id in self.reversed_by:
            self.problem(seq, "double_reversal", f"seq {seq}: #{reverses_id} reversed twice")
        self.reversed_by[reverses_id] = tx_id
        if {(a, -m) for a, _c, m, _b in postings} != original[1] or len(postings) != len(original[1]):
            self.problem(seq, "reversal_mismatch", f"seq {seq}: does not exactly negate #{reverses_id}")
        return original[0]

    def finish(self) -> VerifyReport:
        self.report.transactions = self.count
        self.report.postings = self.posting_count
        if self.last is not None:
            self.report.head = Head(self.last[0], self.last[1].hex())
        for currency, total in self.totals.items():
            if total != 0:
                self.problem(None, "ledger_unbalanced", f"the whole ledger sums to {format_money(total, currency)}")
        return self.report


_SQL_ACCOUNTS = "SELECT id, key, currency, normal_side, floor_zero FROM ledger_account"
_SQL_REVERSED = "SELECT reverses_id FROM ledger_transaction WHERE reverses_id IS NOT NULL"
_SQL_HEADERS = (
    "SELECT t.id, t.idempotency_key, t.kind, t.effective_on, t.reverses_id, s.seq, s.prev_hash, s.hash "
    "FROM ledger_transaction t LEFT JOIN ledger_seal s ON s.transaction_id = t.id ORDER BY t.id"
)
_SQL_POSTINGS = ("SELECT transaction_id, account_id, currency, amount_minor, balance_after_minor "
                 "FROM ledger_posting ORDER BY id")
_SQL_HEADERS_BY_SEQ = (
    "SELECT t.id, t.idempotency_key, t.kind, t.effective_on, t.reverses_id, s.seq, s.prev_hash, s.hash "
    "FROM ledger_seal s JOIN ledger_transaction t ON t.id = s.transaction_id ORDER BY s.seq"
)
_SQL_UNSEALED = ("SELECT t.id, t.idempotency_key FROM ledger_transaction t "
                 "WHERE NOT EXISTS (SELECT 1 FROM ledger_seal s WHERE s.transaction_id = t.id) ORDER BY t.id")


def _b(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


#: above this many rows (headers or postings), rows are streamed (server-side cursors on
#: PostgreSQL) instead of fetched at once; below it the extra round trips cost more than the
#: memory saved
STREAM_ABOVE_ROWS = 150_000


def _stream(conn: sa.Connection, sql: str, big: bool) -> Iterator[Any]:
    """Rows of ``sql`` from a raw DBAPI cursor on the session's connection (SQLAlchemy's result
    layer costs more than the checks). PostgreSQL: a named server-side cursor for big ledgers."""
    dbapi = conn.connection
    if big and conn.dialect.name == "postgresql":
        import uuid

        cursor = dbapi.driver_connection.cursor(name=f"fc_verify_{uuid.uuid4().hex[:12]}")
        cursor.itersize = 20000
    else:
        cursor = dbapi.cursor()
    try:
        cursor.execute(sql)
        while True:
            rows = cursor.fetchmany(20000)
            if not rows:
                return
            yield from rows
    finally:
        cursor.close()


_SQL_MAX_SEQ = "SELECT max(seq) FROM ledger_seal"


def _fetch_all(conn: sa.Connection, sqls: list[str]) -> list[list[Any]]:
    """All rows of each statement. On PostgreSQL the statements travel as one multi-statement
    query (one round trip instead of one each: verify runs after every step of the model test)."""
    dbapi = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        import psycopg

        cursor = psycopg.ClientCursor(dbapi)
        try:
            cursor.execute("; ".join(sqls))
            results = [cursor.fetchall()]
            while cursor.nextset():
                results.append(cursor.fetchall())
        finally:
            cursor.close()
        if len(results) != len(sqls):  # pragma: no cover - one result set per statement
            raise RuntimeError(f"expected {len(sqls)} result sets, got {len(results)}")
        return results
    results = []
    for sql in sqls:
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql)
            results.append(cursor.fetchall())
        finally:
            cursor.close()
    return results


def _checker(account_rows: list[Any], reversed_rows: list[Any]) -> _Checker:
    accounts = {r[0]: _Account(r[1], json_string(r[1]), r[2], r[3] == "credit", bool(r[4])) for r in account_rows}
    return _Checker(accounts, {r[0] for r in reversed_rows})


def _setup(conn: sa.Connection) -> _Checker:
    return _checker(*_fetch_all(conn, [_SQL_ACCOUNTS, _SQL_REVERSED]))


def _read_small(conn: sa.Connection) -> tuple[_Checker, list[Any], list[Any]] | None:
    """The whole ledger in one round trip when it is small (at most ``STREAM_ABOVE_ROWS`` headers
    and postings), else None (the caller streams)."""
    if conn.dialect.name == "sqlite":  # no round trips to save; ask for the size first
        if (conn.exec_driver_sql(_SQL_MAX_SEQ).scalar() or 0) > STREAM_ABOVE_ROWS // 3:
            return None
        account_rows, reversed_rows, postings, headers = _fetch_all(
            conn, [_SQL_ACCOUNTS, _SQL_REVERSED, _SQL_POSTINGS, _SQL_HEADERS])
    else:
        limit = f" LIMIT {STREAM_ABOVE_ROWS + 1}"
        account_rows, reversed_rows, postings, headers = _fetch_all(
            conn, [_SQL_ACCOUNTS, _SQL_REVERSED, _SQL_POSTINGS + limit, _SQL_HEADERS + limit])
        if len(postings) > STREAM_ABOVE_ROWS or len(headers) > STREAM_ABOVE_ROWS:
            return None
    return _checker(account_rows, reversed_rows), postings, headers


def _fast_pass(conn: sa.Connection) -> VerifyReport:
    small = _read_small(conn)
    if small is None:
        checker = _setup(conn)
        postings: Iterator[Any] = _stream(conn, _SQL_POSTINGS, True)
        headers: Iterator[Any] = _stream(conn, _SQL_HEADERS, True)
    else:
        checker, posting_rows, header_rows = small
        postings, headers = iter(posting_rows), iter(header_rows)
    try:
        _walk(checker, headers, postings)
    finally:
        if small is None:
            headers.close()  # type: ignore[attr-defined]
            postings.close()  # type: ignore[attr-defined]
    return checker.finish()


def _walk(checker: _Checker, headers: Iterator[Any], postings: Iterator[Any]) -> None:
    """Merge the two id-ordered streams and check each transaction.

    (A variant that checked the common case inline with pre-encoded account fragments was
    measured at the same CPU time over 1,000,000 transactions: reading the rows costs more than
    checking them, see bench/ledger.py.)
    """
    pending = next(postings, None)
    for tx_id, key, kind, eff, reverses_id, seq, prev_hash, stored_hash in headers:
        legs = []
        while pending is not None and pending[0] == tx_id:
            legs.append((pending[1], pending[2], pending[3], pending[4]))
            pending = next(postings, None)
        if pending is not None and pending[0] < tx_id:
            raise _OutOfOrder
        if seq is None:
            checker.unsealed(tx_id, key)
            continue
        checker.sealed(tx_id, key, kind, eff, reverses_id, seq, _b(prev_hash), bytes(stored_hash), legs)
    if pending is not None:
        raise _OutOfOrder


def _slow_pass(conn: sa.Connection) -> VerifyReport:
    checker = _setup(conn)
    legs_by_tx: dict[int, list[tuple[int, str, int, int]]] = defaultdict(list)
    for tx_id, account_id, currency, amount, balance_after in conn.exec_driver_sql(_SQL_POSTINGS):
        legs_by_tx[tx_id].append((account_id, currency, amount, balance_after))
    unsealed = list(conn.exec_driver_sql(_SQL_UNSEALED))
    for tx_id, key, kind, eff, reverses_id, seq, prev_hash, stored_hash in conn.exec_driver_sql(_SQL_HEADERS_BY_SEQ):
        try:
            checker.sealed(tx_id, key, kind, eff, reverses_id, seq, _b(prev_hash), bytes(stored_hash),
                           legs_by_tx.get(tx_id, []))
        except _OutOfOrder:  # duplicate seq cannot happen (primary key); be explicit anyway
            checker.problem(seq, "seq_order", f"seq {seq} out of order")
    for tx_id, key in unsealed:
        checker.problem(checker.expected_seq, "unsealed", f"transaction #{tx_id} ({key}) has no seal")
    return checker.finish()


try:  # optional C extension (setup.py); without it every verify runs the Python pass
    from fundcircle.ledger import _native_verify
except ImportError:  # pragma: no cover - built on this project's machines
    _native_verify = None

#: the compiled pass runs only above this many seals: below it, opening a second connection and
#: the write-lock probe cost more than they save (tests lower it to 0)
NATIVE_ABOVE_SEALS = 50_000
#: how long the write-lock probe waits for another process's write transaction to finish
_PROBE_TIMEOUT_S = 0.1


def _sqlite_file(conn: sa.Connection) -> str | None:
    """The main database file of the session's SQLite connection; None for :memory: / temp."""
    for _seq, name, file in conn.exec_driver_sql("PRAGMA database_list"):
        if name == "main":
            return file or None
    return None  # pragma: no cover - SQLite always lists main


def _no_pending_writes(path: str) -> bool:
    """True if no connection holds the write lock, so the session has no uncommitted writes that a
    new connection would not see. A session that wrote holds the lock until it commits (also when
    its transaction began DEFERRED, which SQLITE_WRITE_LOCKED does not mark); BEGIN IMMEDIATE on a
    second connection then fails after the short timeout. Another process writing at that moment
    makes this False too: the Python pass runs, which is only slower."""
    import sqlite3
    from pathlib import Path

    try:  # as_uri() percent-encodes '?', '#' and '%' in the path
        probe = sqlite3.connect(f"{Path(path).as_uri()}?mode=rw", uri=True, timeout=_PROBE_TIMEOUT_S,
                                isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.Error:
        return False
    finally:
        probe.close()


def _native_pass(session: Session, conn: sa.Connection) -> VerifyReport | None:
    """The compiled pass's report when it confirms the whole ledger clean, else None.

    Used only for SQLite files above ``NATIVE_ABOVE_SEALS`` seals, and only when the session has
    no uncommitted writes: the compiled pass reads the file on its own connection (the last
    committed state; the Python pass would read the session's snapshot). It reads the same rows
    (``NATIVE_SQL``) and returns a result only if every check of ``_Checker`` passes; on any
    anomaly it returns None and the Python pass writes the report. See README.md.
    """
    if _native_verify is None or conn.dialect.name != "sqlite":
        return None
    if session.new or session.dirty or session.deleted or conn.connection.info.get(SQLITE_WRITE_LOCKED):
        return None
    if (conn.exec_driver_sql(_SQL_MAX_SEQ).scalar() or 0) <= NATIVE_ABOVE_SEALS:
        return None
    path = _sqlite_file(conn)
    if path is None or not _no_pending_writes(path):
        return None
    result = _native_verify.verify(path, *NATIVE_SQL)
    if result is None:
        return None
    transactions, postings, head_seq, head_hash = result
    return VerifyReport(transactions=transactions, postings=postings, head=Head(head_seq, head_hash.hex()))


#: what the compiled pass reads: _SQL_HEADERS's join as two scans that it merges (transactions by
#: id, seals by seq; it accepts only one seal per transaction in the same order), then postings
NATIVE_SQL = (
    _SQL_ACCOUNTS, _SQL_REVERSED,
    "SELECT id, idempotency_key, kind, effective_on, reverses_id FROM ledger_transaction ORDER BY id",
    "SELECT seq, transaction_id, prev_hash, hash FROM ledger_seal ORDER BY seq",
    _SQL_POSTINGS,
)

def verify(session: Session) -> VerifyReport:
    """Recompute the chain from seq 1 and re-check every ledger invariant (module docstring).

    Reads only; sees the session's own uncommitted writes. Returns a ``VerifyReport`` (``ok``,
    ``first_bad_seq``, ``problems``, ``head``, counts); never raises for a damaged ledger.
    On big SQLite ledgers a compiled pass confirms a clean ledger first (``_native_pass``).
    """
    conn = session.connection()
    native = _native_pass(session, conn)
    if native is not None:
        native.checked_by = "native"
        return native
    try:
        return _fast_pass(conn)
    except _OutOfOrder:
        return _slow_pass(conn)


def head(session: Session, circle_id: int | None = None) -> Head:
    """The latest seal ``(seq, hash_hex)``; with ``circle_id``, the latest seal of a transaction of
    that circle (its hash commits to every earlier transaction of every circle). ``(0, "")`` if none."""
    s = LedgerSeal.__table__
    q = sa.select(s.c.seq, s.c.hash).order_by(s.c.seq.desc()).limit(1)
    if circle_id is not None:
        t = LedgerTransaction.__table__
        q = q.join(t, t.c.id == s.c.transaction_id).where(t.c.circle_id == circle_id)
    row = session.execute(q).first()
    return Head(0, "") if row is None else Head(int(row.seq), bytes(row.hash).hex())


# -- balances --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AccountBalance:
    """An account's balance over sealed postings. ``balance`` is on the natural side (a pot holding
    money is positive); ``debit_balance_minor`` is the raw debit-positive sum."""

    key: str
    kind: str
    circle_id: int | None
    balance: Money
    debit_balance_minor: int


#: each account with the running balance of its latest *sealed* posting
_SQL_LATEST_BALANCES = (
    "SELECT a.key, a.kind, a.circle_id, a.currency, a.normal_side, COALESCE((SELECT p.balance_after_minor "
    "FROM ledger_posting p WHERE p.account_id = a.id AND EXISTS (SELECT 1 FROM ledger_seal s "
    "WHERE s.transaction_id = p.transaction_id) ORDER BY p.id DESC LIMIT 1), 0) AS total FROM ledger_account a ")
_BALANCES_ALL = sa.text(_SQL_LATEST_BALANCES + "ORDER BY a.circle_id, a.key")
_BALANCES_OF_CIRCLE = sa.text(_SQL_LATEST_BALANCES + "WHERE a.circle_id = :circle_id ORDER BY a.key")
_BALANCE_OF_KEY = sa.text(_SQL_LATEST_BALANCES + "WHERE a.key = :key")


def _sealed_sums(session: Session, statement: Any, params: dict[str, Any]) -> Iterable[Any]:
    """Each account with its balance: the running balance of its latest *sealed* posting.

    O(log n) per account through ``ix_ledger_posting_account_id_id`` (instead of summing the
    account's whole history): ``post()`` writes ``balance_after_minor`` under the writer lock,
    the posting trigger checks that it continues the account, and ``verify`` recomputes every one
    from the amounts. Postings of an unsealed transaction (possible only in a damaged SQLite
    database; PostgreSQL refuses to commit them) are skipped. The statements are built once:
    building a SQLAlchemy select per call cost more than running it.
    """
    return session.execute(statement, params)


def _to_balance(row: Any) -> AccountBalance:
    total = int(row.total)
    natural = total if row.normal_side == "debit" else -total
    return AccountBalance(row.key, row.kind, row.circle_id, Money(natural, row.currency), total)


def balance(session: Session, account_key: str) -> Money:
    """The natural-side balance of one account over sealed postings. Raises NotFound."""
    from fundcircle.errors import NotFound

    rows = list(_sealed_sums(session, _BALANCE_OF_KEY, {"key": account_key}))
    if not rows:
        raise NotFound(f"ledger account {account_key} does not exist")
    return _to_balance(rows[0]).balance


def account_balances(session: Session, circle_id: int | None = None) -> list[AccountBalance]:
    """Every account (of one circle, or all), sorted by circle and key."""
    if circle_id is None:
        return [_to_balance(r) for r in _sealed_sums(session, _BALANCES_ALL, {})]
    return [_to_balance(r) for r in _sealed_sums(session, _BALANCES_OF_CIRCLE, {"circle_id": circle_id})]


@dataclass(frozen=True)
class CircleBalances:
    """What a treasurer and the transparency page show for one circle (natural-side amounts)."""

    circle_id: int
    currency: str
    pot_available_minor: int
    earmarked_minor: int
    paid_out_minor: int
    fees_minor: int
    suspense_minor: int
    stripe_clearing_minor: int
    oc_host_minor: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def circle_balances(session: Session, circle_id: int, currency: str) -> CircleBalances:
    """Pot available, total earmarked (awarded, unpaid), paid out (payouts net of their reversals),
    fees, suspense, Stripe clearing and Open Collective host balances of one circle."""
    by_key = {b.key: b.balance.amount_minor for b in account_balances(session, circle_id)}
    earmarked = sum(v for k, v in by_key.items() if chart.is_earmark_key(k))
    t, p, a, s = (LedgerTransaction.__table__, LedgerPosting.__table__, LedgerAccount.__table__,
                  LedgerSeal.__table__)
    orig = t.alias("orig")
    # debits to earmarks by payouts, minus credits back by reversals of payouts
    paid = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(p.c.amount_minor), 0))
        .select_from(p.join(t, t.c.id == p.c.transaction_id).join(s, s.c.transaction_id == t.c.id)
                     .join(a, a.c.id == p.c.account_id).outerjoin(orig, orig.c.id == t.c.reverses_id))
        .where(a.c.circle_id == circle_id, a.c.key.like(f"{circle_id}:pot:%:earmarked:%"),
               sa.or_(t.c.kind == "payout", sa.and_(t.c.kind == "reversal", orig.c.kind == "payout")))
    ).scalar_one()
    return CircleBalances(
        circle_id=circle_id, currency=currency,
        pot_available_minor=by_key.get(chart.pot_available(circle_id).key, 0),
        earmarked_minor=earmarked,
        paid_out_minor=int(paid),
        fees_minor=by_key.get(chart.fees_stripe(circle_id).key, 0) + by_key.get(chart.fees_oc(circle_id).key, 0),
        suspense_minor=by_key.get(chart.suspense(circle_id).key, 0),
        stripe_clearing_minor=by_key.get(chart.stripe_clearing(circle_id).key, 0),
        oc_host_minor=by_key.get(chart.oc_host(circle_id).key, 0),
    )
