"""Writing the ledger: ``post()`` and ``reverse()``, the only code that inserts ledger rows.

One call = one ledger transaction, written in this order under the writer lock:
header, postings, seal. The seal is the point where the whole transaction is visible; its trigger
re-checks what ``post()`` checked (two or more legs, zero sum per currency, floors, seq = tip + 1,
prev_hash links). Everything a caller can get wrong is checked in Python *before* the first insert,
so a refused call (``ValidationError``, ``RuleViolation``, ``IdempotencyConflict``, ``NotFound``)
leaves nothing behind in the caller's transaction. ``post()`` flushes, never commits.

Writers are serialized: PostgreSQL takes ``pg_advisory_xact_lock(LEDGER_LOCK_ID)``; SQLite holds
the database write lock (BEGIN IMMEDIATE when ``post()`` starts the transaction, otherwise a no-op
write that takes the lock). The gapless ``ledger_seal.seq`` primary key is the backstop: a writer
that raced anyway gets an IntegrityError and its caller retries the whole unit of work
(``run_with_retry``).

Hot path (measured in ``bench/ledger.py``): fixed statements on the session's own DBAPI cursor
(one cursor per DBAPI connection, kept in its pool record), no ORM unit of work, and two
per-session caches:

- accounts (insert-only, so a cached row can only go stale when the transaction that created it
  rolls back; the cache is dropped on rollback);
- running balances, valid for one chain tip: the tip ``(seq, hash)`` is read under the writer lock
  on every post, and the hash commits to every posting ever sealed, so an unchanged tip means
  unchanged balances. Any other writer, a rollback, or a failed write changes or drops it.

A post is then: the tip read, the header insert (``ON CONFLICT (idempotency_key) DO NOTHING``:
a replay or conflict is detected by the insert itself, not by a read before it), the postings
(one multi-row INSERT) and the seal. Checks that fail before the header is written fall back to a
key lookup first, so a replay or conflict still wins over any other error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring as _encode_str  # C; what chain.canonical_bytes's json.dumps uses
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from fundcircle.db import SQLITE_WRITE_LOCKED, sqlite_write_connection
from fundcircle.errors import FundcircleError, IdempotencyConflict, NotFound, RuleViolation, ValidationError
from fundcircle.ledger.accounts import AccountSpec
from fundcircle.ledger.chain import (
    ENCODING_VERSION,
    canonical_bytes_fast,
    request_digest_fast,
    sorted_posting_json,
)
from fundcircle.ledger.models import (
    NORMAL_SIDE_OF_KIND,
    TRANSACTION_KINDS,
    LedgerAccount,
    LedgerPosting,
    LedgerSeal,
    LedgerTransaction,
)
from fundcircle.ledger.money import CurrencyMismatch, Money, format_money

_sha256 = hashlib.sha256

#: pg_advisory_xact_lock key of the single ledger writer: b"fcledger" as a big-endian int64
LEDGER_LOCK_ID = int.from_bytes(b"fcledger", "big")
MAX_KEY_LENGTH = 255
_BIGINT_MAX = 2**63 - 1
_KINDS = frozenset(TRANSACTION_KINDS)

_tx = LedgerTransaction.__table__
_posting = LedgerPosting.__table__
_seal = LedgerSeal.__table__
_account = LedgerAccount.__table__


@dataclass(frozen=True)
class Leg:
    """One leg of a transaction: ``amount`` is debit-positive (credits are negative)."""

    account_key: str
    amount: Money


@dataclass(frozen=True)
class Posted:
    """The outcome of ``post()``: the sealed transaction, and whether this call was a replay."""

    transaction_id: int
    seq: int
    hash_hex: str
    idempotency_key: str
    replayed: bool


@dataclass(frozen=True)
class AccountInfo:
    id: int
    key: str
    circle_id: int | None
    currency: str
    normal_side: str
    floor_zero: bool


class InsufficientFunds(RuleViolation):
    """A floor account (pot, earmark) cannot cover what a transaction takes from it."""

    def __init__(self, message: str, *, account_key: str, currency: str, available_minor: int,
                 requested_minor: int) -> None:
        super().__init__(message)
        self.account_key = account_key
        self.currency = currency
        self.available_minor = available_minor
        self.requested_minor = requested_minor
        self.shortfall_minor = requested_minor - available_minor


class LedgerIntegrityError(RuleViolation):
    """A ledger trigger refused a write that ``post()`` should have refused first (a bug or a race)."""


# -- account cache ---------------------------------------------------------------------------------

_CACHE = "fundcircle.ledger.accounts"


def _cache(session: Session) -> dict[str, AccountInfo]:
    return session.info.setdefault(_CACHE, {})


_TIP_STATE = "fundcircle.ledger.tip_state"


class _TipState:
    """Running balances (``balance_after_minor`` of each account's latest posting) known to be
    current while the chain tip is ``(seq, hash)``."""

    __slots__ = ("seq", "hash", "balances")

    def __init__(self, seq: int, hash_: bytes | None) -> None:
        self.seq = seq
        self.hash = hash_
        self.balances: dict[int, int] = {}


@event.listens_for(Session, "after_soft_rollback")
def _drop_account_cache(session: Session, _previous: Any) -> None:
    # an account inserted by the rolled-back transaction no longer exists; the tip state would be
    # caught by the tip comparison anyway, but there is no reason to keep it
    session.info.pop(_CACHE, None)
    session.info.pop(_TIP_STATE, None)


def _row_info(row: Any) -> AccountInfo:
    return AccountInfo(id=row.id, key=row.key, circle_id=row.circle_id, currency=row.currency,
                       normal_side=row.normal_side, floor_zero=bool(row.floor_zero))


_SELECT_ACCOUNTS = sa.select(_account.c.id, _account.c.key, _account.c.circle_id, _account.c.currency,
                             _account.c.normal_side, _account.c.floor_zero).where(
    _account.c.key.in_(sa.bindparam("keys", expanding=True)))


def load_accounts(session: Session, keys: Sequence[str]) -> dict[str, AccountInfo]:
    """The accounts with these keys that exist (missing keys are absent from the result)."""
    cache = _cache(session)
    missing = [k for k in keys if k not in cache]
    if missing:
        for row in session.execute(_SELECT_ACCOUNTS, {"keys": missing}):
            cache[row.key] = _row_info(row)
    return {k: cache[k] for k in keys if k in cache}


def ensure_account(session: Session, spec: AccountSpec, *, circle_id: int | None, currency: str,
                   now: dt.datetime) -> AccountInfo:
    """The account ``spec.key``, inserting it (flushed, not committed) if it does not exist yet.

    Raises CurrencyMismatch when it exists with another currency, ValidationError when it exists
    with another kind or circle (a key names one account forever).
    """
    return ensure_accounts(session, [spec], circle_id=circle_id, currency=currency, now=now)[0]


def ensure_accounts(session: Session, specs: Sequence[AccountSpec], *, circle_id: int | None, currency: str,
                    now: dt.datetime) -> list[AccountInfo]:
    """``ensure_account`` for several accounts: one lookup for all of them, and the writer lock
    plus a second lookup only when some are missing (another writer may have created them)."""
    keys = [spec.key for spec in specs]
    found = load_accounts(session, keys)
    if len(found) < len(set(keys)):
        acquire_writer_lock(session)  # account creation and posting share one writer
        found = load_accounts(session, keys)
    result = []
    for spec in specs:
        info = found.get(spec.key)
        if info is None:
            normal_side = NORMAL_SIDE_OF_KIND[spec.kind]
            new_id = session.execute(
                sa.insert(_account).values(circle_id=circle_id, key=spec.key, kind=spec.kind,
                                           normal_side=normal_side, currency=currency,
                                           floor_zero=spec.floor_zero, created_at=now).returning(_account.c.id)
            ).scalar_one()
            info = found[spec.key] = _cache(session)[spec.key] = AccountInfo(
                new_id, spec.key, circle_id, currency, normal_side, spec.floor_zero)
        elif info.currency != currency:
            raise CurrencyMismatch(f"account {spec.key} is in {info.currency}, not {currency}")
        elif info.circle_id != circle_id or info.floor_zero != spec.floor_zero or \
                info.normal_side != NORMAL_SIDE_OF_KIND[spec.kind]:
            raise ValidationError(f"account {spec.key} already exists with other properties")
        result.append(info)
    return result


# -- the writer lock -------------------------------------------------------------------------------

_SQLITE_TAKE_WRITE_LOCK = "INSERT INTO currency (code, exponent) SELECT code, exponent FROM currency WHERE 0"


class _Binds:
    """The columns' own bind processors for a dialect (so stored text is what the ORM would write),
    with a one-entry memo: the operations of one request pass the same ``now`` to every post."""

    __slots__ = ("_date", "_ts", "_last_date", "_last_ts")

    def __init__(self, dialect: sa.Dialect) -> None:
        self._date = _processor(_tx.c.effective_on.type, dialect)
        self._ts = _processor(_tx.c.recorded_at.type, dialect)
        self._last_date: tuple[Any, Any] = (None, None)
        self._last_ts: tuple[Any, Any] = (None, None)

    def date(self, value: dt.date) -> Any:
        last = self._last_date
        if last[0] is not None and last[0] == value and type(last[0]) is type(value):
            return last[1]
        bound = self._date(value)
        self._last_date = (value, bound)
        return bound

    def ts(self, value: dt.datetime) -> Any:
        # equal aware datetimes are the same instant, hence the same UTC value once bound
        last = self._last_ts
        if last[0] is not None and last[0] == value:
            return last[1]
        bound = self._ts(value)
        self._last_ts = (value, bound)
        return bound


_BINDS: dict[str, _Binds] = {}
_PG_SQL: dict[str, str] = {}


class _Raw:
    """The session's own DBAPI connection, for the hot path of ``post()``.

    SQLAlchemy's per-statement overhead (~100 µs) was most of a post's cost; these few fixed
    statements run on the same connection and inside the same transaction as the session.
    """

    __slots__ = ("driver", "cursor", "pg", "binds", "_client")

    def __init__(self, conn: sa.Connection, driver: Any) -> None:
        dialect = conn.dialect
        self.pg = dialect.name == "postgresql"
        self.driver = driver
        self.cursor = driver.cursor()
        self._client: Any = None
        binds = _BINDS.get(dialect.name)
        if binds is None:
            binds = _BINDS[dialect.name] = _Binds(dialect)
        self.binds = binds

    def sql(self, text: str) -> str:
        if not self.pg:
            return text
        found = _PG_SQL.get(text)
        if found is None:
            found = _PG_SQL[text] = text.replace("?", "%s")
        return found

    def one(self, text: str, params: Sequence[Any] = ()) -> Any:
        cursor = self.cursor
        cursor.execute(self.sql(text), params)
        return cursor.fetchone()

    def run(self, text: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(self.sql(text), params)

    def many(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        self.cursor.executemany(self.sql(text), rows)

    def client(self) -> Any:
        """PostgreSQL: a client-side-binding cursor, so several statements travel in one message."""
        if self._client is None:
            import psycopg

            self._client = psycopg.ClientCursor(self.driver)
        return self._client


_RAW = "fundcircle.ledger.raw"


def _raw(conn: sa.Connection) -> _Raw:
    """The ``_Raw`` of this connection's DBAPI connection, kept in the pool record's ``info`` (which
    lives exactly as long as that DBAPI connection): one cursor per connection, not one per post."""
    pooled = conn.connection
    info = pooled.info
    driver = pooled.driver_connection
    raw = info.get(_RAW)
    if raw is None or raw.driver is not driver:
        raw = info[_RAW] = _Raw(conn, driver)
    return raw


_PROCESSORS: dict[tuple[int, str], Callable[[Any], Any]] = {}


def _processor(type_: Any, dialect: sa.Dialect) -> Callable[[Any], Any]:
    key = (id(type_), dialect.name)
    found = _PROCESSORS.get(key)
    if found is None:
        proc = type_.dialect_impl(dialect).bind_processor(dialect)
        found = proc if proc is not None else (lambda v: v)
        _PROCESSORS[key] = found
    return found


def _dialect_name(session: Session) -> str:
    bind = session.bind
    return (bind if bind is not None else session.get_bind()).dialect.name


def acquire_writer_lock(session: Session) -> sa.Connection:
    """Serialize ledger writers until the end of the caller's database transaction.

    PostgreSQL: transaction-scoped advisory lock (re-entrant). SQLite: if the session has no
    transaction yet, BEGIN IMMEDIATE; if it already started one deferred, a write that inserts
    nothing takes the write lock now. On SQLite that can fail with ``database is locked`` when
    another writer committed since this transaction first read: the caller retries the unit of work.
    Returns the session's connection.
    """
    if _dialect_name(session) == "sqlite":
        conn = sqlite_write_connection(session)
        info = conn.connection.info
        if not info.get(SQLITE_WRITE_LOCKED):
            conn.exec_driver_sql(_SQLITE_TAKE_WRITE_LOCK)
            info[SQLITE_WRITE_LOCKED] = True  # until the next BEGIN on this connection
        return conn
    conn = session.connection()
    if conn.dialect.name == "postgresql" and not _lock_held(session):
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)" % LEDGER_LOCK_ID)
        session.info[_LOCK_HELD] = session.get_nested_transaction() or session.get_transaction()
    return conn


_LOCK_HELD = "fundcircle.ledger.lock_held"


def _lock_held(session: Session) -> bool:
    """Whether this session's current transaction already took the advisory lock: it is held to
    the end of the transaction (or of the savepoint it was taken in, if that rolls back), and one
    round trip per ``post()`` is worth saving when an operation posts several times."""
    held = session.info.get(_LOCK_HELD)
    if held is None:
        return False
    current = session.get_nested_transaction() or session.get_transaction()
    while current is not None:
        if current is held:
            return held.is_active
        current = current.parent
    return False


# -- post ------------------------------------------------------------------------------------------

_SQL_BY_KEY = ("SELECT t.id, t.request_digest, s.seq, s.hash FROM ledger_transaction t "
               "LEFT OUTER JOIN ledger_seal s ON s.transaction_id = t.id WHERE t.idempotency_key = ?")
_SQL_TIP = "SELECT seq, hash FROM ledger_seal ORDER BY seq DESC LIMIT 1"
#: O(log n) per account through ix_ledger_posting_account_id_id
_SQL_BALANCE_OF = "(SELECT balance_after_minor FROM ledger_posting WHERE account_id = ? ORDER BY id DESC LIMIT 1)"
_SQL_INSERT_TX = (
    "INSERT INTO ledger_transaction (circle_id, idempotency_key, request_digest, kind, effective_on, recorded_at, "
    "memo, reverses_id, external_source, external_id, actor_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id")
_SQL_INSERT_POSTING = ("INSERT INTO ledger_posting (transaction_id, account_id, currency, amount_minor, "
                       "balance_after_minor) VALUES (?, ?, ?, ?, ?)")
_SQL_INSERT_SEAL = ("INSERT INTO ledger_seal (seq, transaction_id, prev_hash, hash, encoding_version, sealed_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)")


def _natural(balance_minor: int, normal_side: str) -> int:
    return balance_minor if normal_side == "debit" else -balance_minor


def _flush_pending(session: Session) -> None:
    """Flush pending ORM changes (a circle added just before its first post) so the raw statements
    below see them; ``_is_clean`` skips building the dirty set, the costly part of the check."""
    is_clean = getattr(session, "_is_clean", None)
    if is_clean is not None:
        if not is_clean():
            session.flush()
    elif session.new or session.dirty or session.deleted:
        session.flush()


def post(
    session: Session,
    *,
    circle_id: int | None,
    kind: str,
    idempotency_key: str,
    legs: Sequence[Leg],
    now: dt.datetime,
    effective_on: dt.date | None = None,
    memo: str = "",
    actor_id: int | None = None,
    reverses_id: int | None = None,
    external_source: str | None = None,
    external_id: str | None = None,
) -> Posted:
    """Post one balanced transaction and seal it into the chain.

    Args:
        circle_id: the circle whose books this is; every leg's account must belong to it.
        kind: one of ``TRANSACTION_KINDS``.
        idempotency_key: names the real-world object (``stripe:payment_intent:<id>``,
            ``award:<round>:<proposal>``, ``oc:expense:<id>:paid``, ``reversal:<tx id>``…).
        legs: two or more legs on distinct, existing accounts; debit-positive, non-zero, summing
            to zero per currency; each leg's currency is its account's.
        now: the recording time (timezone-aware); ``effective_on`` defaults to its UTC date.
        reverses_id: for kind ``reversal``: the transaction whose legs these exactly negate.

    Returns:
        ``Posted``; ``replayed=True`` when a transaction with this key and the same request
        (kind, effective date, circle, reversed transaction, legs) already exists: nothing new is
        written and the original is returned.

    Raises:
        ValidationError / CurrencyMismatch: malformed legs (unbalanced, mixed with the account's
            currency, zero, duplicated account, bad key or kind).
        NotFound: an account key or the reversed transaction does not exist.
        IdempotencyConflict: the key exists with a different request.
        RuleViolation: a floor account (pot, earmark) would go below zero — the message names the
            account and the shortfall — or the transaction is already reversed.
        sqlalchemy OperationalError / IntegrityError: lost a race on SQLite or the seq backstop;
            roll back and retry the unit of work (``run_with_retry``).

    Flushes (writes header, postings, seal in the caller's transaction); never commits.
    """
    return _post(session, circle_id, kind, idempotency_key, legs, now, effective_on, memo, actor_id, reverses_id,
                 external_source, external_id, None)


def _post(session: Session, circle_id: int | None, kind: str, idempotency_key: str, legs: Sequence[Leg],
          now: dt.datetime, effective_on: dt.date | None, memo: str, actor_id: int | None, reverses_id: int | None,
          external_source: str | None, external_id: str | None, checked_reversal_seq: int | None) -> Posted:
    """``post()``; ``checked_reversal_seq`` is the seq of ``reverses_id`` when ``reverse()`` already
    checked, under the writer lock, that it is sealed, not reversed, and negated by ``legs``."""
    if now.tzinfo is None:
        raise ValidationError("now must be timezone-aware")
    if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
        raise ValidationError(f"idempotency key must be 1–{MAX_KEY_LENGTH} characters")
    if kind not in _KINDS:
        raise ValidationError(f"unknown transaction kind {kind!r}")
    if (kind == "reversal") != (reverses_id is not None):
        raise ValidationError("a reversal (and only a reversal) names the transaction it reverses")
    if len(legs) < 2:
        raise ValidationError("a transaction needs at least two legs")
    effective_on = effective_on or now.astimezone(dt.timezone.utc).date()
    keys = [leg.account_key for leg in legs]
    if len(set(keys)) != len(keys):
        raise ValidationError("each account may appear once per transaction: combine the legs")
    triples = []
    sums: dict[str, int] = {}
    for leg in legs:
        amount = leg.amount
        if amount.__class__ is not Money and not isinstance(amount, Money):
            raise ValidationError("leg amounts must be Money")
        minor = amount.amount_minor
        if minor == 0:
            raise ValidationError(f"zero leg on {leg.account_key}")
        if minor > _BIGINT_MAX or minor < -_BIGINT_MAX:
            raise ValidationError(f"leg on {leg.account_key} is out of range")
        currency = amount.currency
        sums[currency] = sums.get(currency, 0) + minor
        triples.append((leg.account_key, currency, minor))
    if any(sums.values()):
        unbalanced = {c: s for c, s in sums.items() if s != 0}
        text = ", ".join(f"{format_money(s, c)}" for c, s in sorted(unbalanced.items()))
        raise ValidationError(f"legs do not sum to zero per currency (off by {text})")

    posting_json = sorted_posting_json(triples)
    effective_iso = effective_on.isoformat()
    digest = request_digest_fast(kind=kind, effective_on_iso=effective_iso, posting_json=posting_json,
                                 circle_id=circle_id, reverses_id=reverses_id)

    _flush_pending(session)
    if _dialect_name(session) == "postgresql":
        # the advisory lock, when not held yet, travels with the first read (one round trip less)
        raw = _raw(session.connection())
        lock_with_read = not _lock_held(session)
    else:
        raw = _raw(acquire_writer_lock(session))
        lock_with_read = False
    binds = raw.binds
    header = (circle_id, idempotency_key, digest, kind, binds.date(effective_on), binds.ts(now), memo, reverses_id,
              external_source, external_id, actor_id)
    if raw.pg:
        return _post_locked_pg(session, raw, header=header, legs=legs, keys=keys, triples=triples,
                               posting_json=posting_json, effective_iso=effective_iso,
                               checked_reversal_seq=checked_reversal_seq, lock_with_read=lock_with_read)
    return _post_locked(session, raw, header, legs, keys, triples, posting_json, effective_iso, checked_reversal_seq)


def _replay(found: Any, idempotency_key: str, digest: bytes) -> Posted:
    """The Posted of the transaction already stored under this key (a ``_SQL_BY_KEY`` row), or
    IdempotencyConflict when the key was used for a different request."""
    existing_id, existing_digest, existing_seq, existing_hash = found
    if bytes(existing_digest) != digest:
        raise IdempotencyConflict(
            f"idempotency key {idempotency_key!r} was already used for a different transaction "
            f"(#{existing_id}); a correction must be a reversal plus a new entry under a new key")
    if existing_seq is None:  # only possible in a damaged database (SQLite, bypassed post())
        raise LedgerIntegrityError(f"transaction #{existing_id} ({idempotency_key}) was never sealed")
    return Posted(existing_id, existing_seq, bytes(existing_hash).hex(), idempotency_key, replayed=True)


def _existing(raw: _Raw, idempotency_key: str, digest: bytes) -> Posted | None:
    """The transaction already posted under this key (a replay), or None; IdempotencyConflict when
    the key was used for a different request."""
    found = raw.one(_SQL_BY_KEY, (idempotency_key,))
    return None if found is None else _replay(found, idempotency_key, digest)


def _balances_sql(account_ids: list[int]) -> str:
    """One statement returning ``(account_id, latest balance_after_minor or NULL)`` per account,
    O(log n) each; the ids are also passed as parameters, in order."""
    return " UNION ALL ".join(f"SELECT {int(a)}, {_SQL_BALANCE_OF}" for a in account_ids)


def _load_balances(raw: _Raw, state: _TipState, account_ids: list[int]) -> None:
    """Fill ``state.balances`` for accounts not cached yet: one statement."""
    missing = [a for a in account_ids if a not in state.balances]
    if not missing:
        return
    raw.cursor.execute(raw.sql(_balances_sql(missing)), missing)
    for account_id, balance_minor in raw.cursor.fetchall():
        state.balances[int(account_id)] = 0 if balance_minor is None else balance_minor


def _check_accounts(accounts: dict[str, AccountInfo], legs: Sequence[Leg], circle_id: int | None) -> None:
    for leg in legs:
        acct = accounts.get(leg.account_key)
        if acct is None:
            raise NotFound(f"ledger account {leg.account_key} does not exist")
        if acct.currency != leg.amount.currency:
            raise CurrencyMismatch(f"leg on {acct.key} is in {leg.amount.currency}; "
                                   f"the account is in {acct.currency}")
        if acct.circle_id != circle_id:
            raise ValidationError(f"account {acct.key} belongs to another circle")


def _posting_params(accounts: dict[str, AccountInfo], legs: Sequence[Leg], balances: dict[int, int],
                    kind: str) -> list[Any]:
    """``None, account_id, currency, amount, balance_after`` per leg, flat (the parameters of one
    multi-row INSERT, transaction id to fill in); InsufficientFunds when a floor account would go
    below zero."""
    params: list[Any] = []
    for leg in legs:
        acct = accounts[leg.account_key]
        amount = leg.amount.amount_minor
        before = balances.get(acct.id, 0)
        after = before + amount
        if acct.floor_zero and _natural(after, acct.normal_side) < 0:
            available = _natural(before, acct.normal_side)
            taken = -_natural(amount, acct.normal_side)
            cur = acct.currency
            raise InsufficientFunds(
                f"{acct.key} cannot go below zero: it holds {format_money(available, cur)}, this "
                f"{kind} takes {format_money(taken, cur)}, short by {format_money(taken - available, cur)}",
                account_key=acct.key, currency=cur, available_minor=available, requested_minor=taken)
        params += (None, acct.id, acct.currency, amount, after)
    return params


def _post_locked(session: Session, raw: _Raw, header: tuple[Any, ...], legs: Sequence[Leg], keys: list[str],
                 triples: list[tuple[str, str, int]], posting_json: list[str], effective_iso: str,
                 checked_reversal_seq: int | None) -> Posted:
    """The part of ``post()`` that runs under the writer lock (SQLite: every statement is an
    in-process call, so the fewest Python steps rather than the fewest statements)."""
    cursor = raw.cursor
    info = session.info
    tip = cursor.execute(_SQL_TIP).fetchone()
    tip_seq, tip_hash = (0, None) if tip is None else tip
    state = info.get(_TIP_STATE)
    if state is None or state.seq != tip_seq or state.hash != tip_hash:
        state = info[_TIP_STATE] = _TipState(tip_seq, tip_hash)
    circle_id, idempotency_key, digest, kind = header[0], header[1], header[2], header[3]
    reverses_id = header[7]
    try:
        accounts = info.get(_CACHE)
        if accounts is None or not accounts.keys() >= set(keys):  # all known: the cache itself, no copy
            accounts = load_accounts(session, keys)
        _check_accounts(accounts, legs, circle_id)
        reverses_seq = checked_reversal_seq
        if reverses_id is not None and reverses_seq is None:
            reverses_seq = _check_reversal(session, reverses_id, triples)
        # Floors, against the running balances of the current tip (under the lock).
        balances = state.balances
        for key in keys:
            if accounts[key].id not in balances:
                _load_balances(raw, state, [accounts[k].id for k in keys])
                break
        params = _posting_params(accounts, legs, balances, kind)
    except FundcircleError:
        # A replay (or a conflicting reuse of the key) is answered as such whatever else changed
        # since: e.g. a replayed award whose pot is empty now must return the original.
        replay = _existing(raw, idempotency_key, digest)
        if replay is not None:
            return replay
        raise

    seq = tip_seq + 1
    try:
        cursor.execute(_SQL_INSERT_TX_SQLITE, header)
        if not cursor.rowcount:  # the key exists: nothing was written
            replay = _existing(raw, idempotency_key, digest)
            if replay is None:  # pragma: no cover - the conflict target is the key's unique index
                raise LedgerIntegrityError(f"idempotency key {idempotency_key!r} conflicted but was not found")
            return replay
        tx_id = cursor.lastrowid
        params[::5] = [tx_id] * len(legs)
        cursor.execute(_INSERT_POSTINGS.get(len(legs)) or _insert_postings_sql(len(legs)), params)
        digest_hash = _sha256((tip_hash or b"") + canonical_bytes_fast(
            seq, _encode_str(idempotency_key), _encode_str(kind), effective_iso, reverses_seq, posting_json)).digest()
        cursor.execute(_SQL_INSERT_SEAL, (seq, tx_id, tip_hash, digest_hash, ENCODING_VERSION, header[5]))
    except BaseException:
        # what the database holds now is unknown until the caller rolls back
        info.pop(_TIP_STATE, None)
        raise
    for i in range(1, len(params), 5):
        balances[params[i]] = params[i + 3]
    state.seq = seq
    state.hash = digest_hash
    return Posted(tx_id, seq, digest_hash.hex(), idempotency_key, replayed=False)


#: SQLite: no RETURNING (its result row costs more than ``rowcount`` and ``lastrowid``)
_SQL_INSERT_TX_SQLITE = _SQL_INSERT_TX.removesuffix(" RETURNING id")
_INSERT_POSTINGS: dict[int, str] = {}


def _insert_postings_sql(n: int) -> str:
    """One INSERT of ``n`` posting rows (one statement instead of an executemany of ``n``)."""
    found = _INSERT_POSTINGS.get(n)
    if found is None:
        found = _INSERT_POSTINGS[n] = (
            "INSERT INTO ledger_posting (transaction_id, account_id, currency, amount_minor, balance_after_minor) "
            "VALUES " + ", ".join(["(?, ?, ?, ?, ?)"] * n))
    return found


_PG_CURRENT_TX = "currval(pg_get_serial_sequence('ledger_transaction', 'id'))"
_SQL_INSERT_SEAL_PG = (f"INSERT INTO ledger_seal (seq, transaction_id, prev_hash, hash, encoding_version, sealed_at) "
                       f"VALUES (%s, {_PG_CURRENT_TX}, %s, %s, %s, %s)")
#: tip, the key's transaction and each account's running balance, in one row
_SQL_READ_PG = (
    "SELECT tip.seq, tip.hash, t.id, t.request_digest, s.seq, s.hash{balances} FROM (SELECT 1) AS one "
    "LEFT OUTER JOIN (SELECT seq, hash FROM ledger_seal ORDER BY seq DESC LIMIT 1) AS tip ON true "
    "LEFT OUTER JOIN ledger_transaction t ON t.idempotency_key = %s "
    "LEFT OUTER JOIN ledger_seal s ON s.transaction_id = t.id")


def _post_locked_pg(session: Session, raw: _Raw, *, header: tuple[Any, ...], legs: Sequence[Leg], keys: list[str],
                    triples: list[tuple[str, str, int]], posting_json: list[str], effective_iso: str,
                    checked_reversal_seq: int | None, lock_with_read: bool) -> Posted:
    """PostgreSQL: two network round trips under the writer lock instead of five.

    One statement reads the tip, the key's transaction and the running balances (preceded, in the
    same message, by the advisory lock when ``lock_with_read``: in READ COMMITTED each statement
    reads from its own snapshot, taken once the lock is held); one multi-statement query
    (client-side binding, so several statements travel in one message) writes header, postings and
    seal, the postings and seal naming the header through ``currval`` of its id sequence (this
    session's own last id, so no other writer can interfere).
    """
    circle_id, idempotency_key, digest, kind = header[0], header[1], header[2], header[3]
    reverses_id = header[7]
    accounts = load_accounts(session, keys)
    known = [accounts[k].id for k in keys if k in accounts]
    balance_cols = "".join(f", {_SQL_BALANCE_OF.replace('?', '%s')}" for _ in known)
    read = _SQL_READ_PG.format(balances=balance_cols)
    if lock_with_read:
        client = raw.client()
        client.execute(f"SELECT pg_advisory_xact_lock({LEDGER_LOCK_ID}); {read}", (*known, idempotency_key))
        client.nextset()  # past the lock's result
        row = client.fetchone()
        session.info[_LOCK_HELD] = session.get_nested_transaction() or session.get_transaction()
    else:
        raw.cursor.execute(read, (*known, idempotency_key))
        row = raw.cursor.fetchone()
    tip_seq, tip_hash, found = row[0], row[1], row[2:6]
    if found[0] is not None:  # replay or conflict first, whatever else changed since
        return _replay(found, idempotency_key, digest)
    balances = {a: b for a, b in zip(known, row[6:]) if b is not None}
    _check_accounts(accounts, legs, circle_id)
    reverses_seq = checked_reversal_seq
    if reverses_id is not None and reverses_seq is None:
        reverses_seq = _check_reversal(session, reverses_id, triples)
    rows = _posting_params(accounts, legs, balances, kind)

    seq, prev_hash = (1, None) if tip_seq is None else (tip_seq + 1, bytes(tip_hash))
    digest_hash = _sha256((prev_hash or b"") + canonical_bytes_fast(
        seq, _encode_str(idempotency_key), _encode_str(kind), effective_iso, reverses_seq, posting_json)).digest()
    values = ", ".join(f"({_PG_CURRENT_TX}, %s, %s, %s, %s)" for _ in legs)
    sql = (f"{raw.sql(_SQL_INSERT_TX)}; INSERT INTO ledger_posting (transaction_id, account_id, currency, "
           f"amount_minor, balance_after_minor) VALUES {values}; {_SQL_INSERT_SEAL_PG}")
    params = [*header]
    for i in range(0, len(rows), 5):
        params += rows[i + 1:i + 5]
    params.extend((seq, prev_hash, digest_hash, ENCODING_VERSION, header[5]))
    writer = raw.client()
    writer.execute(sql, params)
    inserted = writer.fetchone()  # the first statement's result: the header's id
    if inserted is None:  # pragma: no cover - the key was looked up under the lock
        raise LedgerIntegrityError(f"idempotency key {idempotency_key!r} appeared under the writer lock")
    return Posted(inserted[0], seq, digest_hash.hex(), idempotency_key, replayed=False)


def _read_many(raw: _Raw, statements: list[tuple[str, tuple[Any, ...]]]) -> list[list[Any]]:
    """The rows of each statement; on PostgreSQL all in one round trip (a multi-statement query)."""
    if not raw.pg:
        results = []
        for sql, params in statements:
            raw.cursor.execute(sql, params)
            results.append(raw.cursor.fetchall())
        return results
    cursor = raw.client()
    cursor.execute("; ".join(raw.sql(sql) for sql, _ in statements), [p for _, ps in statements for p in ps])
    results = [cursor.fetchall()]
    while cursor.nextset():
        results.append(cursor.fetchall())
    return results


def _check_reversal(session: Session, reverses_id: int, triples: list[tuple[str, str, int]]) -> int:
    """Raises unless ``reverses_id`` is sealed, not yet reversed, and exactly negated by ``triples``;
    returns its seq."""
    row = session.execute(
        sa.select(_seal.c.seq).where(_seal.c.transaction_id == reverses_id)
    ).first()
    if row is None:
        if session.get(LedgerTransaction, reverses_id) is None:
            raise NotFound(f"ledger transaction #{reverses_id} does not exist")
        raise RuleViolation(f"ledger transaction #{reverses_id} is not sealed")
    already = session.execute(sa.select(_tx.c.id).where(_tx.c.reverses_id == reverses_id)).scalar()
    if already is not None:
        raise RuleViolation(f"ledger transaction #{reverses_id} was already reversed by #{already}")
    original = {(k, c, -a) for k, c, a in _postings_of(session, reverses_id)}
    if original != set(triples):
        raise ValidationError(f"a reversal must exactly negate transaction #{reverses_id}")
    return int(row.seq)


def _postings_of(session: Session, transaction_id: int) -> list[tuple[str, str, int]]:
    return [
        (r.key, r.currency, r.amount_minor)
        for r in session.execute(
            sa.select(_account.c.key, _posting.c.currency, _posting.c.amount_minor)
            .join(_account, _account.c.id == _posting.c.account_id)
            .where(_posting.c.transaction_id == transaction_id)
            .order_by(_posting.c.id)
        )
    ]


def reverse(session: Session, transaction_id: int, *, now: dt.datetime, actor_id: int | None = None,
            memo: str = "", effective_on: dt.date | None = None) -> Posted:
    """Reverse a sealed transaction: a new ``reversal`` whose legs exactly negate it, keyed
    ``reversal:<transaction_id>``.

    Idempotent: if the transaction was already reversed, that reversal is returned as a replay
    (whatever ``effective_on``), so a retried cancel never fails. Raises NotFound (no such
    transaction), RuleViolation (unsealed original; or a floor account would go below zero, e.g.
    cancelling an award whose earmark was already paid out). Flushes, never commits.
    """
    _flush_pending(session)
    conn = acquire_writer_lock(session)
    raw = _raw(conn)
    # under the lock: the original, its seal, a reversal of it if there is one, its postings
    targets, postings = _read_many(raw, [(_SQL_REVERSAL_TARGET, (transaction_id,)),
                                         (_SQL_POSTINGS_OF, (transaction_id,))])
    found = targets[0] if targets else None
    if found is None:
        raise NotFound(f"ledger transaction #{transaction_id} does not exist")
    circle_id, original_seq, prior_id, prior_key, prior_seq, prior_hash = found
    if prior_id is not None:
        if prior_seq is None:  # only possible in a damaged database (SQLite, bypassed post())
            raise LedgerIntegrityError(f"reversal #{prior_id} of #{transaction_id} was never sealed")
        return Posted(prior_id, prior_seq, bytes(prior_hash).hex(), prior_key, replayed=True)
    if original_seq is None:
        raise RuleViolation(f"ledger transaction #{transaction_id} is not sealed")
    legs = [Leg(k, Money(-a, c)) for k, c, a in postings]
    return _post(session, circle_id, "reversal", f"reversal:{transaction_id}", legs, now, effective_on,
                 memo or f"reversal of #{transaction_id}", actor_id, transaction_id, None, None, int(original_seq))


_SQL_REVERSAL_TARGET = (
    "SELECT t.circle_id, s.seq, r.id, r.idempotency_key, rs.seq, rs.hash FROM ledger_transaction t "
    "LEFT OUTER JOIN ledger_seal s ON s.transaction_id = t.id "
    "LEFT OUTER JOIN ledger_transaction r ON r.reverses_id = t.id "
    "LEFT OUTER JOIN ledger_seal rs ON rs.transaction_id = r.id WHERE t.id = ?")
_SQL_POSTINGS_OF = ("SELECT a.key, p.currency, p.amount_minor FROM ledger_posting p "
                    "JOIN ledger_account a ON a.id = p.account_id WHERE p.transaction_id = ? ORDER BY p.id")


# -- retries at the unit-of-work boundary ----------------------------------------------------------

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    """Lost a writer race: SQLite busy/locked, PostgreSQL serialization/deadlock, or the seq backstop."""
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        return "locked" in text or "busy" in text or getattr(exc.orig, "sqlstate", "") in ("40001", "40P01")
    if isinstance(exc, IntegrityError):
        text = str(exc.orig).lower()
        return "ledger_seal" in text and ("seq" in text or "pk_ledger_seal" in text)
    return False


def run_with_retry(make_session: Callable[[], Session], work: Callable[[Session], T], *, attempts: int = 5) -> T:
    """Run ``work(session)`` in a fresh session and commit; on a lost writer race roll back and
    run it again (up to ``attempts`` times). Idempotency keys make re-running safe: a unit of work
    that did commit before its caller heard back replays instead of posting twice."""
    for attempt in range(1, attempts + 1):
        session = make_session()
        try:
            acquire_writer_lock(session)
            result = work(session)
            session.commit()
            return result
        except DBAPIError as exc:
            session.rollback()
            if attempt == attempts or not is_retryable(exc):
                raise
        finally:
            session.close()
    raise AssertionError("unreachable")  # pragma: no cover
