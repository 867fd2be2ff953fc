"""Ledger tables: currency, ledger_account, ledger_transaction, ledger_posting, ledger_seal,
ledger_balance_assertion.

Every table here is insert-only. The database refuses UPDATE and DELETE (and TRUNCATE on
PostgreSQL) through triggers created in migration 0002; the ``before_flush`` guard below refuses
dirty or deleted ledger objects before they reach the database. Only ``fundcircle.ledger``
writes these tables (through ``post()``).

Sign convention: postings are debit-positive. An account's *natural* balance is the debit-positive
balance for debit-normal accounts (assets, expenses) and its negation for credit-normal accounts
(liabilities, income, equity); a floor account's natural balance may never go below zero.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from fundcircle.db import Base, UTCDateTime
from fundcircle.errors import RuleViolation

#: 64-bit ids on PostgreSQL; on SQLite plain INTEGER so the column aliases the rowid (fast).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

ACCOUNT_KINDS = ("asset", "liability", "expense", "income", "equity")
NORMAL_SIDES = ("debit", "credit")
#: the normal side follows from the kind (a fixed chart, so no per-account override)
NORMAL_SIDE_OF_KIND = {"asset": "debit", "expense": "debit", "liability": "credit", "income": "credit",
                       "equity": "credit"}

#: transaction kinds ``post()`` accepts
TRANSACTION_KINDS = ("contribution", "transfer", "award", "payout", "reversal", "refund", "fee",
                     "adjustment", "opening")


class Currency(Base):
    """An ISO 4217 code with its exponent, fixed forever (changing it would rescale history)."""

    __tablename__ = "currency"

    code: Mapped[str] = mapped_column(sa.String(3), primary_key=True)
    exponent: Mapped[int] = mapped_column(sa.SmallInteger)

    __table_args__ = (sa.CheckConstraint("exponent BETWEEN 0 AND 4", name="exponent_range"),)


class LedgerAccount(Base):
    """One account of one circle's books; identified by its stable ``key`` (see accounts.py)."""

    __tablename__ = "ledger_account"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    circle_id: Mapped[int | None] = mapped_column(sa.ForeignKey("circles.id", ondelete="RESTRICT"), index=True)
    key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(12))
    normal_side: Mapped[str] = mapped_column(sa.String(6))
    currency: Mapped[str] = mapped_column(sa.ForeignKey("currency.code", ondelete="RESTRICT"))
    #: the natural balance may never go below zero (pot and earmarks)
    floor_zero: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("kind IN ('asset', 'liability', 'expense', 'income', 'equity')", name="kind_known"),
        sa.CheckConstraint("normal_side IN ('debit', 'credit')", name="normal_side_known"),
        sa.CheckConstraint("key <> ''", name="key_not_empty"),
    )


class LedgerTransaction(Base):
    """A transaction header. It counts only once sealed (a ``LedgerSeal`` row points at it)."""

    __tablename__ = "ledger_transaction"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    circle_id: Mapped[int | None] = mapped_column(sa.ForeignKey("circles.id", ondelete="RESTRICT"), index=True)
    #: names the real-world object (``stripe:payment_intent:pi_…``, ``award:<round>:<proposal>`` …)
    idempotency_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    #: SHA-256 of the canonical request (kind, effective date, sorted postings)
    request_digest: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    kind: Mapped[str] = mapped_column(sa.String(20))
    effective_on: Mapped[dt.date] = mapped_column(sa.Date)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    memo: Mapped[str] = mapped_column(sa.Text, default="")
    reverses_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ledger_transaction.id", ondelete="RESTRICT"),
                                                    unique=True)
    external_source: Mapped[str | None] = mapped_column(sa.String(40))
    external_id: Mapped[str | None] = mapped_column(sa.String(255))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))

    __table_args__ = (
        sa.UniqueConstraint("external_source", "external_id"),
        sa.CheckConstraint("idempotency_key <> ''", name="key_not_empty"),
        sa.CheckConstraint("reverses_id IS NULL OR kind = 'reversal'", name="reversal_kind"),
    )


class LedgerPosting(Base):
    """One signed leg (debit-positive) of a transaction on one account.

    ``balance_after_minor`` is the account's debit-positive balance after this posting (postings of
    an account are written in seal order under the writer lock), so floors are checked with one
    index lookup; the posting trigger checks it continues the previous balance, ``verify`` recomputes it.
    """

    __tablename__ = "ledger_posting"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_transaction.id", ondelete="RESTRICT"))
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_account.id", ondelete="RESTRICT"))
    currency: Mapped[str] = mapped_column(sa.ForeignKey("currency.code", ondelete="RESTRICT"))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    balance_after_minor: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.CheckConstraint("amount_minor <> 0", name="amount_nonzero"),
        # one leg per account per transaction (also the index for a transaction's postings)
        sa.UniqueConstraint("transaction_id", "account_id"),
        sa.Index("ix_ledger_posting_account_id_id", "account_id", "id"),
    )


class LedgerSeal(Base):
    """Seals one transaction into the hash chain: ``hash = SHA-256(prev_hash ‖ canonical v1)``."""

    __tablename__ = "ledger_seal"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    transaction_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_transaction.id", ondelete="RESTRICT"),
                                                unique=True)
    #: NULL only at seq 1
    prev_hash: Mapped[bytes | None] = mapped_column(sa.LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    encoding_version: Mapped[int] = mapped_column(sa.SmallInteger, default=1)
    sealed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.CheckConstraint("(seq = 1) = (prev_hash IS NULL)", name="prev_hash_only_first"),)


class LedgerBalanceAssertion(Base):
    """An outside statement's balance of one account (a Stripe balance report, the Open Collective
    host balance, a bank statement line) compared with the books, Beancount-style.

    Amounts are natural-side (what ``balance()`` returns). ``ledger_minor`` is the books' balance
    over the transactions sealed at or before ``as_of_seq`` (and, when ``as_of_date`` is set,
    effective on or before that date); ``matched`` records whether it equalled ``expected_minor``.
    A mismatch is a fact to resolve (a correcting entry, then a new assertion), never an edit.
    """

    __tablename__ = "ledger_balance_assertion"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("ledger_account.id", ondelete="RESTRICT"))
    currency: Mapped[str] = mapped_column(sa.ForeignKey("currency.code", ondelete="RESTRICT"))
    #: who stated the balance (``stripe``, ``opencollective``, ``bank``, ``treasurer``)
    source: Mapped[str] = mapped_column(sa.String(40))
    #: the outside statement (a Stripe balance report id, an OC host snapshot, a statement line)
    reference: Mapped[str] = mapped_column(sa.String(255))
    as_of_seq: Mapped[int] = mapped_column(BigId)
    as_of_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    expected_minor: Mapped[int] = mapped_column(sa.BigInteger)
    ledger_minor: Mapped[int] = mapped_column(sa.BigInteger)
    matched: Mapped[bool] = mapped_column()
    note: Mapped[str] = mapped_column(sa.Text, default="")
    asserted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))

    __table_args__ = (
        sa.CheckConstraint("matched = (expected_minor = ledger_minor)", name="matched_is_equality"),
        sa.CheckConstraint("as_of_seq >= 0", name="as_of_seq_not_negative"),
        sa.CheckConstraint("source <> '' AND reference <> ''", name="source_and_reference"),
        sa.UniqueConstraint("source", "reference", "account_id"),
        sa.Index("ix_ledger_balance_assertion_account_id_id", "account_id", "id"),
    )


#: the insert-only ledger tables (the migration's trigger list must match; a test checks)
LEDGER_TABLES = ("currency", "ledger_account", "ledger_transaction", "ledger_posting", "ledger_seal",
                 "ledger_balance_assertion")
_LEDGER_CLASSES: tuple[type[Any], ...] = (Currency, LedgerAccount, LedgerTransaction, LedgerPosting, LedgerSeal,
                                          LedgerBalanceAssertion)


class LedgerImmutable(RuleViolation):
    """Application code tried to change or delete a ledger row (corrections are reversals)."""


@event.listens_for(Session, "before_flush")
def _refuse_ledger_changes(session: Session, _flush_context: Any, _instances: Any) -> None:
    """Python half of the append-only guard: a dirty (really changed) or deleted ledger object
    never reaches the database. Raises LedgerImmutable."""
    for obj in session.deleted:
        if isinstance(obj, _LEDGER_CLASSES):
            raise LedgerImmutable(f"{type(obj).__tablename__} rows are append-only: delete refused; "
                                  f"post a reversal instead")
    for obj in session.dirty:
        if isinstance(obj, _LEDGER_CLASSES) and session.is_modified(obj, include_collections=False):
            raise LedgerImmutable(f"{type(obj).__tablename__} rows are append-only: update refused; "
                                  f"post a reversal instead")
