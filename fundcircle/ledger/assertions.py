"""Balance assertions: the books compared with an outside statement (reference §1.5, §1.6, §1.12).

Beancount's idea: "on this date this account held X" is written down and checked against the
books. Here the statement comes from outside — a Stripe balance report for ``stripe:clearing``,
the Open Collective host balance for ``oc:host``, a bank statement line — and the result is kept
as an insert-only ``ledger_balance_assertion`` row, whether it matched or not:

- ``assert_balance`` computes the books' balance of the account over the transactions sealed at
  or before ``as_of_seq`` (default: the chain tip) and, when ``as_of_date`` is given, effective on
  or before that date (a statement "as of 31 March" must not count an entry dated 1 April), and
  records the comparison. A mismatch is recorded, not raised: it is a finding for the treasurer
  (reconciliation decides whether to park the difference in suspense or post a correction, then
  asserts again), and the row is the audit trail of when the books and the world disagreed.
- The key is ``(source, reference, account)``: re-importing the same statement replays the first
  result; the same statement with another amount or date is an ``IdempotencyConflict``.
- ``recheck_balance_assertions`` recomputes every stored assertion from the sealed postings:
  history is append-only, so the books' balance as of a sealed seq can never change. A difference
  means rows were altered, or the chain was cut below the seq an assertion saw (the published
  head catches the same thing from outside).

Amounts are natural-side, as ``balance()`` returns them (a funded pot is positive).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fundcircle.errors import IdempotencyConflict, NotFound, ValidationError
from fundcircle.ledger.checks import Problem
from fundcircle.ledger.models import LedgerAccount, LedgerBalanceAssertion, LedgerSeal
from fundcircle.ledger.money import CurrencyMismatch, Money, format_money
from fundcircle.ledger.posting import acquire_writer_lock

MAX_REFERENCE_LENGTH = 255
MAX_SOURCE_LENGTH = 40

_assertion = LedgerBalanceAssertion.__table__
_account = LedgerAccount.__table__
_seal = LedgerSeal.__table__


@dataclass(frozen=True)
class BalanceCheck:
    """One stored assertion. ``difference`` is expected − ledger (positive: the outside statement
    shows more than the books)."""

    id: int
    account_key: str
    source: str
    reference: str
    as_of_seq: int
    as_of_date: dt.date | None
    expected: Money
    ledger: Money
    matched: bool
    asserted_at: dt.datetime
    note: str
    replayed: bool = False

    @property
    def difference(self) -> Money:
        return self.expected - self.ledger


#: the books' debit-positive balance of one account over sealed transactions up to a seq (and,
#: optionally, an effective date); an independent SUM, not the running balance
_SQL_BALANCE_AT = ("SELECT COALESCE(SUM(p.amount_minor), 0) FROM ledger_posting p "
                   "JOIN ledger_seal s ON s.transaction_id = p.transaction_id "
                   "JOIN ledger_transaction t ON t.id = p.transaction_id "
                   "WHERE p.account_id = :account_id AND s.seq <= :as_of_seq")
_BALANCE_AT = sa.text(_SQL_BALANCE_AT)
_BALANCE_AT_DATE = sa.text(_SQL_BALANCE_AT + " AND t.effective_on <= :as_of_date").bindparams(
    sa.bindparam("as_of_date", type_=sa.Date()))


def _tip_seq(session: Session) -> int:
    return int(session.execute(sa.select(sa.func.coalesce(sa.func.max(_seal.c.seq), 0))).scalar_one())


def _account_row(session: Session, account_key: str) -> sa.Row:  # type: ignore[type-arg]
    row = session.execute(sa.select(_account.c.id, _account.c.key, _account.c.currency, _account.c.normal_side)
                          .where(_account.c.key == account_key)).first()
    if row is None:
        raise NotFound(f"ledger account {account_key} does not exist")
    return row


def _natural(debit_balance_minor: int, normal_side: str) -> int:
    return debit_balance_minor if normal_side == "debit" else -debit_balance_minor


def _balance_at(session: Session, account_id: int, normal_side: str, as_of_seq: int,
                as_of_date: dt.date | None) -> int:
    params: dict[str, object] = {"account_id": account_id, "as_of_seq": as_of_seq}
    if as_of_date is None:
        debit = session.execute(_BALANCE_AT, params).scalar_one()
    else:
        debit = session.execute(_BALANCE_AT_DATE, {**params, "as_of_date": as_of_date}).scalar_one()
    return _natural(int(debit), normal_side)


def balance_at(session: Session, account_key: str, *, as_of_seq: int | None = None,
               as_of_date: dt.date | None = None) -> Money:
    """The natural-side balance of an account over the transactions sealed at or before
    ``as_of_seq`` (default: the tip) and effective on or before ``as_of_date`` (default: any).
    Raises NotFound (account), ValidationError (a seq beyond the tip or negative)."""
    acct = _account_row(session, account_key)
    tip = _tip_seq(session)
    seq = _check_seq(as_of_seq, tip)
    return Money(_balance_at(session, acct.id, acct.normal_side, seq, as_of_date), acct.currency)


def _check_seq(as_of_seq: int | None, tip: int) -> int:
    if as_of_seq is None:
        return tip
    if isinstance(as_of_seq, bool) or not isinstance(as_of_seq, int) or as_of_seq < 0:
        raise ValidationError("as_of_seq must be a sequence number (0 or more)")
    if as_of_seq > tip:
        raise ValidationError(f"as_of_seq {as_of_seq} is beyond the chain head (seq {tip})")
    return as_of_seq


def _to_check(row: sa.Row, account_key: str, *, replayed: bool = False) -> BalanceCheck:  # type: ignore[type-arg]
    return BalanceCheck(
        id=row.id, account_key=account_key, source=row.source, reference=row.reference,
        as_of_seq=int(row.as_of_seq), as_of_date=row.as_of_date, expected=Money(int(row.expected_minor), row.currency),
        ledger=Money(int(row.ledger_minor), row.currency), matched=bool(row.matched), asserted_at=row.asserted_at,
        note=row.note, replayed=replayed)


def assert_balance(session: Session, account_key: str, expected: Money, *, source: str, reference: str,
                   now: dt.datetime, as_of_seq: int | None = None, as_of_date: dt.date | None = None,
                   actor_id: int | None = None, note: str = "") -> BalanceCheck:
    """Compare an outside statement's balance of ``account_key`` with the books and record it.

    Args:
        expected: the statement's balance, natural-side, in the account's currency.
        source: who stated it (``stripe``, ``opencollective``, ``bank``, ``treasurer``…).
        reference: the statement's own id (a Stripe balance report or balance transaction id, an
            OC host snapshot id, a statement line); with ``source`` and the account, the key that
            makes a re-import replay.
        as_of_seq: the chain position to compare at (default: the head, read under the writer lock).
        as_of_date: count only transactions effective on or before this date.

    Returns the stored ``BalanceCheck`` (``matched`` tells the outcome; ``replayed`` when this
    statement was already recorded with the same amount and dates). Raises NotFound (account),
    CurrencyMismatch, ValidationError (empty or long source/reference, seq beyond the head,
    naive ``now``), IdempotencyConflict (same statement, other amount or dates). Flushes, never
    commits.
    """
    if now.tzinfo is None:
        raise ValidationError("now must be timezone-aware")
    if not isinstance(expected, Money):
        raise ValidationError("expected must be Money")
    if not source or len(source) > MAX_SOURCE_LENGTH:
        raise ValidationError(f"source must be 1–{MAX_SOURCE_LENGTH} characters")
    if not reference or len(reference) > MAX_REFERENCE_LENGTH:
        raise ValidationError(f"reference must be 1–{MAX_REFERENCE_LENGTH} characters")
    acquire_writer_lock(session)  # the head and the sum below see one state of the books
    acct = _account_row(session, account_key)
    if expected.currency != acct.currency:
        raise CurrencyMismatch(f"account {account_key} is in {acct.currency}, the statement in {expected.currency}")
    existing = session.execute(sa.select(_assertion).where(
        _assertion.c.source == source, _assertion.c.reference == reference,
        _assertion.c.account_id == acct.id)).first()
    if existing is not None:
        same = (int(existing.expected_minor) == expected.amount_minor and existing.as_of_date == as_of_date
                and (as_of_seq is None or int(existing.as_of_seq) == as_of_seq))
        if not same:
            raise IdempotencyConflict(
                f"statement {source}:{reference} was already recorded for {account_key} with "
                f"{format_money(int(existing.expected_minor), existing.currency)} as of seq {existing.as_of_seq}"
                f"{'' if existing.as_of_date is None else ' / ' + existing.as_of_date.isoformat()}")
        return _to_check(existing, account_key, replayed=True)
    seq = _check_seq(as_of_seq, _tip_seq(session))
    ledger_minor = _balance_at(session, acct.id, acct.normal_side, seq, as_of_date)
    new_id = session.execute(sa.insert(_assertion).values(
        account_id=acct.id, currency=acct.currency, source=source, reference=reference, as_of_seq=seq,
        as_of_date=as_of_date, expected_minor=expected.amount_minor, ledger_minor=ledger_minor,
        matched=ledger_minor == expected.amount_minor, note=note, asserted_at=now, actor_id=actor_id,
    ).returning(_assertion.c.id)).scalar_one()
    row = session.execute(sa.select(_assertion).where(_assertion.c.id == new_id)).one()
    return _to_check(row, account_key)


def balance_assertions(session: Session, *, circle_id: int | None = None, account_key: str | None = None,
                       mismatched_only: bool = False) -> list[BalanceCheck]:
    """Stored assertions, oldest first; filtered by circle, account, or to mismatches only."""
    q = (sa.select(_assertion, _account.c.key.label("account_key"))
         .join(_account, _account.c.id == _assertion.c.account_id).order_by(_assertion.c.id))
    if circle_id is not None:
        q = q.where(_account.c.circle_id == circle_id)
    if account_key is not None:
        q = q.where(_account.c.key == account_key)
    if mismatched_only:
        q = q.where(_assertion.c.matched.is_(False))
    return [_to_check(row, row.account_key) for row in session.execute(q)]


def recheck_balance_assertions(session: Session) -> list[Problem]:
    """Recompute every stored assertion's books balance from the sealed postings; a Problem per
    assertion whose balance changed since it was recorded, or whose seq is beyond the head."""
    tip = _tip_seq(session)
    problems = []
    rows = session.execute(sa.select(_assertion, _account.c.key.label("account_key"), _account.c.normal_side)
                           .join(_account, _account.c.id == _assertion.c.account_id).order_by(_assertion.c.id))
    for row in rows:
        label = f"balance assertion #{row.id} ({row.source}:{row.reference} on {row.account_key})"
        if row.as_of_seq > tip:
            problems.append(Problem(tip + 1, "assertion_beyond_head",
                                    f"{label} saw seq {row.as_of_seq}, the chain ends at {tip}"))
            continue
        now_minor = _balance_at(session, row.account_id, row.normal_side, int(row.as_of_seq), row.as_of_date)
        if now_minor != row.ledger_minor:
            problems.append(Problem(int(row.as_of_seq) or None, "assertion_changed",
                                    f"{label}: the books held {format_money(int(row.ledger_minor), row.currency)} "
                                    f"as of seq {row.as_of_seq}, now {format_money(now_minor, row.currency)}"))
    return problems
