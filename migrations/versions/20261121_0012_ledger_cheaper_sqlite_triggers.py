"""ledger: one cheaper SQLite seal trigger (same checks, same messages, same order)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-21

0002's ``ledger_seal_check`` runs eight statements per seal: three scan the transaction's postings
(count; GROUP BY currency, which opens a sorter; a join to the accounts for the floors) and two look
up ``reverses_id`` even when it is NULL. This one runs one aggregate over the postings joined to
their accounts (index ``uq_ledger_posting_transaction_id_account_id``, then account rowids) and
checks its results in a CASE, which stops at the first WHEN that holds, so the checks fire in
0002's order:

- zero sum: with one currency (min = max, the usual case) the aggregate's sum must be 0; with
  several, 0002's GROUP BY per currency runs;
- floors: 0002's predicate, written as a CASE on ``normal_side`` (cheaper to evaluate);
- reversal checks: one lookup of ``reverses_id`` skips them when it is NULL.

The LEFT JOIN keeps count(*) the number of postings, as in 0002, even for a posting whose account
row is missing. One difference: sum() raises "integer overflow" when a running sum leaves 64 bits,
and here the sum runs across currencies, so a multi-currency transaction with amounts near 2**62
(post() allows at most 10**13 per leg) is refused by that error where 0002 would have gone on to
its checks. Nothing 0002 refuses is accepted.

``ledger_posting_check`` is left as it is: rewritten as one CASE statement it measured the same
(about half of its cost is firing a row trigger at all, the rest its three index lookups).
PostgreSQL's plpgsql functions are unchanged. Written inline so this migration stays a frozen
snapshot; downgrade() restores 0002's trigger text exactly.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: The trigger 0002 created (verbatim, for downgrade).
SEAL_CHECK_0002 = """
    CREATE TRIGGER ledger_seal_check BEFORE INSERT ON ledger_seal BEGIN
        SELECT RAISE(ABORT, 'ledger_seal: seq is not tip + 1')
            WHERE NEW.seq IS NOT COALESCE((SELECT max(seq) FROM ledger_seal), 0) + 1;
        SELECT RAISE(ABORT, 'ledger_seal: prev_hash does not link to the tip')
            WHERE NEW.prev_hash IS NOT (SELECT hash FROM ledger_seal WHERE seq = NEW.seq - 1);
        SELECT RAISE(ABORT, 'ledger_seal: hash is not 32 bytes') WHERE length(NEW.hash) IS NOT 32;
        SELECT RAISE(ABORT, 'ledger_seal: transaction has fewer than two postings')
            WHERE (SELECT count(*) FROM ledger_posting WHERE transaction_id = NEW.transaction_id) < 2;
        SELECT RAISE(ABORT, 'ledger_seal: transaction does not sum to zero per currency')
            WHERE EXISTS (SELECT 1 FROM ledger_posting WHERE transaction_id = NEW.transaction_id
                          GROUP BY currency HAVING sum(amount_minor) <> 0);
        SELECT RAISE(ABORT, 'ledger_seal: transaction takes a floor account below zero')
            WHERE EXISTS (SELECT 1 FROM ledger_posting p JOIN ledger_account a ON a.id = p.account_id
                          WHERE p.transaction_id = NEW.transaction_id AND a.floor_zero
                            AND ((a.normal_side = 'credit' AND p.balance_after_minor > 0)
                              OR (a.normal_side = 'debit' AND p.balance_after_minor < 0)));
        SELECT RAISE(ABORT, 'ledger_seal: reversal of an unsealed transaction')
            WHERE (SELECT reverses_id FROM ledger_transaction WHERE id = NEW.transaction_id) IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM ledger_seal WHERE transaction_id =
                              (SELECT reverses_id FROM ledger_transaction WHERE id = NEW.transaction_id));
        SELECT RAISE(ABORT, 'ledger_seal: reversal does not exactly negate the original')
            WHERE (SELECT reverses_id FROM ledger_transaction WHERE id = NEW.transaction_id) IS NOT NULL
              AND (EXISTS (SELECT account_id, currency, amount_minor FROM ledger_posting
                           WHERE transaction_id = NEW.transaction_id
                           EXCEPT
                           SELECT account_id, currency, -amount_minor FROM ledger_posting
                           WHERE transaction_id = (SELECT reverses_id FROM ledger_transaction
                                                   WHERE id = NEW.transaction_id))
                OR (SELECT count(*) FROM ledger_posting WHERE transaction_id = NEW.transaction_id)
                   IS NOT (SELECT count(*) FROM ledger_posting WHERE transaction_id =
                           (SELECT reverses_id FROM ledger_transaction WHERE id = NEW.transaction_id)));
    END"""

#: Same checks and messages; one pass over the postings.
SEAL_CHECK = """
    CREATE TRIGGER ledger_seal_check BEFORE INSERT ON ledger_seal BEGIN
        SELECT CASE
            WHEN NEW.seq IS NOT COALESCE((SELECT max(seq) FROM ledger_seal), 0) + 1
                THEN RAISE(ABORT, 'ledger_seal: seq is not tip + 1')
            WHEN NEW.prev_hash IS NOT (SELECT hash FROM ledger_seal WHERE seq = NEW.seq - 1)
                THEN RAISE(ABORT, 'ledger_seal: prev_hash does not link to the tip')
            WHEN length(NEW.hash) IS NOT 32
                THEN RAISE(ABORT, 'ledger_seal: hash is not 32 bytes')
            WHEN count(*) < 2
                THEN RAISE(ABORT, 'ledger_seal: transaction has fewer than two postings')
            WHEN CASE WHEN min(p.currency) = max(p.currency) THEN sum(p.amount_minor) <> 0
                      ELSE EXISTS (SELECT 1 FROM ledger_posting WHERE transaction_id = NEW.transaction_id
                                   GROUP BY currency HAVING sum(amount_minor) <> 0) END
                THEN RAISE(ABORT, 'ledger_seal: transaction does not sum to zero per currency')
            WHEN max(a.floor_zero AND CASE a.normal_side WHEN 'credit' THEN p.balance_after_minor > 0
                                                         WHEN 'debit' THEN p.balance_after_minor < 0 END)
                THEN RAISE(ABORT, 'ledger_seal: transaction takes a floor account below zero')
            WHEN (SELECT reverses_id FROM ledger_transaction WHERE id = NEW.transaction_id) IS NULL THEN NULL
            WHEN NOT EXISTS (SELECT 1 FROM ledger_seal WHERE transaction_id =
                             (SELECT reverses_id FROM ledger_transaction WHERE id = NEW.transaction_id))
                THEN RAISE(ABORT, 'ledger_seal: reversal of an unsealed transaction')
            WHEN EXISTS (SELECT account_id, currency, amount_minor FROM ledger_posting
                         WHERE transaction_id = NEW.transaction_id
                         EXCEPT
                         SELECT account_id, currency, -amount_minor FROM ledger_posting
                         WHERE transaction_id = (SELECT reverses_id FROM ledger_transaction
                                                 WHERE id = NEW.transaction_id))
                 OR count(*) IS NOT (SELECT count(*) FROM ledger_posting WHERE transaction_id =
                                     (SELECT reverses_id FROM ledger_transaction WHERE id = NEW.transaction_id))
                THEN RAISE(ABORT, 'ledger_seal: reversal does not exactly negate the original')
        END
        FROM ledger_posting p LEFT JOIN ledger_account a ON a.id = p.account_id
        WHERE p.transaction_id = NEW.transaction_id;
    END"""


def _replace_seal_check(sql: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL checks in fc_ledger_seal_check(), which this migration leaves alone
    op.execute("DROP TRIGGER IF EXISTS ledger_seal_check")
    op.execute(sql)


def upgrade() -> None:
    _replace_seal_check(SEAL_CHECK)


def downgrade() -> None:
    _replace_seal_check(SEAL_CHECK_0002)
