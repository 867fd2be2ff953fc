"""Append-only, double-entry, hash-chained ledger (reference/ledger-and-reliability.md §1).

Public API — nothing else in the app reads internals or writes ledger tables:

Writing (take the session and explicit ``now``/actor, flush, never commit):
    post(session, *, circle_id, kind, idempotency_key, legs, now, ...) -> Posted
    reverse(session, transaction_id, *, now, ...) -> Posted
    record_contribution(session, circle, *, gross_minor, now, fee_minor=0,
                        payment_intent_id=None | manual_reference=None, ...) -> Posted
    award(session, round_, proposal, amount_minor, *, now, ...) -> Posted
    record_payout(session, round_, proposal, *, expense_id, amount_minor, now, fee_minor=0, ...) -> Posted
    cancel_award(session, round_, proposal, *, now, ...) -> Posted
    move_to_host(session, circle, *, amount_minor, reference, now) -> Posted
    ensure_circle_accounts(session, circle, *, now) -> None
    run_with_retry(make_session, work) -> result   (commit boundary that retries lost writer races)

Balance assertions (the books against an outside statement; insert-only rows):
    assert_balance(session, account_key, expected, *, source, reference, now, as_of_seq=None,
                   as_of_date=None, actor_id=None, note="") -> BalanceCheck   (flushes, never commits)
    balance_at(session, account_key, *, as_of_seq=None, as_of_date=None) -> Money
    balance_assertions(session, *, circle_id=None, account_key=None, mismatched_only=False) -> list[BalanceCheck]
    recheck_balance_assertions(session) -> list[Problem]

Reading:
    verify(session) -> VerifyReport       (ok, first_bad_seq, problems, head)
    head(session, circle_id=None) -> Head (seq, hash_hex)
    balance(session, account_key) -> Money            (natural side: a funded pot is positive)
    account_balances(session, circle_id=None) -> list[AccountBalance]
    circle_balances(session, circle_id, currency) -> CircleBalances

Values: Leg(account_key, Money), Posted, Money; errors: InsufficientFunds (a RuleViolation),
LedgerImmutable, LedgerIntegrityError, plus fundcircle.errors.IdempotencyConflict / NotFound /
ValidationError and money.CurrencyMismatch.
"""

from fundcircle.ledger.assertions import (
    BalanceCheck,
    assert_balance,
    balance_assertions,
    balance_at,
    recheck_balance_assertions,
)
from fundcircle.ledger.checks import (
    AccountBalance,
    CircleBalances,
    Head,
    Problem,
    VerifyReport,
    account_balances,
    balance,
    circle_balances,
    head,
    verify,
)
from fundcircle.ledger.models import LedgerImmutable
from fundcircle.ledger.money import CurrencyMismatch, Money
from fundcircle.ledger.operations import (
    award,
    award_key,
    cancel_award,
    ensure_circle_accounts,
    move_to_host,
    record_contribution,
    record_payout,
)
from fundcircle.ledger.posting import (
    InsufficientFunds,
    Leg,
    LedgerIntegrityError,
    Posted,
    post,
    reverse,
    run_with_retry,
)

__all__ = [
    "AccountBalance", "BalanceCheck", "CircleBalances", "CurrencyMismatch", "Head", "InsufficientFunds", "Leg",
    "LedgerImmutable", "LedgerIntegrityError", "Money", "Posted", "Problem", "VerifyReport",
    "account_balances", "assert_balance", "award", "award_key", "balance", "balance_assertions", "balance_at",
    "cancel_award", "circle_balances",
    "ensure_circle_accounts", "head", "move_to_host", "post", "recheck_balance_assertions", "record_contribution",
    "record_payout", "reverse", "run_with_retry", "verify",
]
