"""ledger: currency, accounts, transactions, postings, seals; append-only and seal triggers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Everything is written inline (no imports from the app) so this migration stays a frozen snapshot.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: Tables whose rows are never changed or deleted once written.
LEDGER_TABLES = ("currency", "ledger_account", "ledger_transaction", "ledger_posting", "ledger_seal")

#: ISO 4217 exponents at the time of this migration (a snapshot of money.CURRENCY_EXPONENTS;
#: later currencies are added by later migrations, existing ones never change).
CURRENCIES = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "SEK": 2, "NOK": 2,
    "DKK": 2, "PLN": 2, "CZK": 2, "HUF": 2, "MXN": 2, "BRL": 2, "INR": 2, "ZAR": 2, "SGD": 2,
    "HKD": 2, "JPY": 0, "KRW": 0, "ISK": 0, "KWD": 3, "BHD": 3, "TND": 3,
}

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _create_tables() -> None:
    currency = op.create_table(
        "currency",
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("exponent", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint("exponent BETWEEN 0 AND 4", name=op.f("ck_currency_exponent_range")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_currency")),
    )
    op.bulk_insert(currency, [{"code": c, "exponent": e} for c, e in sorted(CURRENCIES.items())])

    op.create_table(
        "ledger_account",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("circle_id", sa.Integer(), nullable=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("normal_side", sa.String(length=6), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("floor_zero", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('asset', 'liability', 'expense', 'income', 'equity')",
                           name=op.f("ck_ledger_account_kind_known")),
        sa.CheckConstraint("normal_side IN ('debit', 'credit')", name=op.f("ck_ledger_account_normal_side_known")),
        sa.CheckConstraint("key <> ''", name=op.f("ck_ledger_account_key_not_empty")),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"], name=op.f("fk_ledger_account_circle_id_circles"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["currency"], ["currency.code"], name=op.f("fk_ledger_account_currency_currency"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_account")),
        sa.UniqueConstraint("key", name=op.f("uq_ledger_account_key")),
    )
    op.create_index(op.f("ix_ledger_account_circle_id"), "ledger_account", ["circle_id"], unique=False)

    op.create_table(
        "ledger_transaction",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("circle_id", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("memo", sa.Text(), nullable=False),
        sa.Column("reverses_id", BigId, nullable=True),
        sa.Column("external_source", sa.String(length=40), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("idempotency_key <> ''", name=op.f("ck_ledger_transaction_key_not_empty")),
        sa.CheckConstraint("reverses_id IS NULL OR kind = 'reversal'", name=op.f("ck_ledger_transaction_reversal_kind")),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_ledger_transaction_actor_id_users"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"], name=op.f("fk_ledger_transaction_circle_id_circles"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["reverses_id"], ["ledger_transaction.id"],
                                name=op.f("fk_ledger_transaction_reverses_id_ledger_transaction"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transaction")),
        sa.UniqueConstraint("external_source", "external_id", name=op.f("uq_ledger_transaction_external_source_external_id")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_transaction_idempotency_key")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_ledger_transaction_reverses_id")),
    )
    op.create_index(op.f("ix_ledger_transaction_circle_id"), "ledger_transaction", ["circle_id"], unique=False)

    op.create_table(
        "ledger_posting",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("transaction_id", BigId, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_minor", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_minor <> 0", name=op.f("ck_ledger_posting_amount_nonzero")),
        sa.ForeignKeyConstraint(["account_id"], ["ledger_account.id"],
                                name=op.f("fk_ledger_posting_account_id_ledger_account"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["currency"], ["currency.code"], name=op.f("fk_ledger_posting_currency_currency"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["transaction_id"], ["ledger_transaction.id"],
                                name=op.f("fk_ledger_posting_transaction_id_ledger_transaction"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_posting")),
        # one leg per account per transaction: also the index for "postings of transaction t"
        sa.UniqueConstraint("transaction_id", "account_id", name=op.f("uq_ledger_posting_transaction_id_account_id")),
    )
    op.create_index("ix_ledger_posting_account_id_id", "ledger_posting", ["account_id", "id"], unique=False)

    op.create_table(
        "ledger_seal",
        sa.Column("seq", BigId, autoincrement=False, nullable=False),
        sa.Column("transaction_id", BigId, nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("encoding_version", sa.SmallInteger(), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("(seq = 1) = (prev_hash IS NULL)", name=op.f("ck_ledger_seal_prev_hash_only_first")),
        sa.ForeignKeyConstraint(["transaction_id"], ["ledger_transaction.id"],
                                name=op.f("fk_ledger_seal_transaction_id_ledger_transaction"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_seal")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_ledger_seal_transaction_id")),
    )


# -- PostgreSQL ------------------------------------------------------------------------------------

PG_FUNCTIONS = [
    # append-only: every ledger table, UPDATE/DELETE per row, TRUNCATE per statement
    """
    CREATE OR REPLACE FUNCTION fc_ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'FC001';
    END $$""",
    # a posting: currency is the account's, the transaction is not sealed yet, and the running
    # balance continues the account's previous posting (writers are serialized by the lock)
    """
    CREATE OR REPLACE FUNCTION fc_ledger_posting_check() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        acct_currency text;
        prev_balance bigint;
    BEGIN
        SELECT currency INTO acct_currency FROM ledger_account WHERE id = NEW.account_id;
        IF acct_currency IS DISTINCT FROM NEW.currency THEN
            RAISE EXCEPTION 'ledger_posting: currency % differs from account % currency %',
                NEW.currency, NEW.account_id, acct_currency USING ERRCODE = 'FC002';
        END IF;
        IF EXISTS (SELECT 1 FROM ledger_seal WHERE transaction_id = NEW.transaction_id) THEN
            RAISE EXCEPTION 'ledger_posting: transaction % is already sealed', NEW.transaction_id
                USING ERRCODE = 'FC002';
        END IF;
        SELECT balance_after_minor INTO prev_balance FROM ledger_posting
            WHERE account_id = NEW.account_id ORDER BY id DESC LIMIT 1;
        IF NEW.balance_after_minor IS DISTINCT FROM COALESCE(prev_balance, 0) + NEW.amount_minor THEN
            RAISE EXCEPTION 'ledger_posting: balance_after_minor % does not continue account % balance %',
                NEW.balance_after_minor, NEW.account_id, COALESCE(prev_balance, 0) USING ERRCODE = 'FC002';
        END IF;
        RETURN NEW;
    END $$""",
    # the seal: the one point where the whole transaction is visible
    """
    CREATE OR REPLACE FUNCTION fc_ledger_seal_check() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        tip_seq bigint;
        tip_hash bytea;
        orig_id bigint;
    BEGIN
        SELECT seq, hash INTO tip_seq, tip_hash FROM ledger_seal ORDER BY seq DESC LIMIT 1;
        IF NEW.seq IS DISTINCT FROM COALESCE(tip_seq, 0) + 1 THEN
            RAISE EXCEPTION 'ledger_seal: seq % is not tip + 1 (tip %)', NEW.seq, COALESCE(tip_seq, 0)
                USING ERRCODE = 'FC002';
        END IF;
        IF NEW.prev_hash IS DISTINCT FROM tip_hash THEN
            RAISE EXCEPTION 'ledger_seal: prev_hash of seq % does not link to the tip', NEW.seq
                USING ERRCODE = 'FC002';
        END IF;
        IF octet_length(NEW.hash) <> 32 THEN
            RAISE EXCEPTION 'ledger_seal: hash of seq % is not 32 bytes', NEW.seq USING ERRCODE = 'FC002';
        END IF;
        IF (SELECT count(*) FROM ledger_posting WHERE transaction_id = NEW.transaction_id) < 2 THEN
            RAISE EXCEPTION 'ledger_seal: transaction % has fewer than two postings', NEW.transaction_id
                USING ERRCODE = 'FC002';
        END IF;
        IF EXISTS (SELECT 1 FROM ledger_posting WHERE transaction_id = NEW.transaction_id
                   GROUP BY currency HAVING sum(amount_minor) <> 0) THEN
            RAISE EXCEPTION 'ledger_seal: transaction % does not sum to zero per currency', NEW.transaction_id
                USING ERRCODE = 'FC002';
        END IF;
        IF EXISTS (SELECT 1 FROM ledger_posting p JOIN ledger_account a ON a.id = p.account_id
                   WHERE p.transaction_id = NEW.transaction_id AND a.floor_zero
                     AND ((a.normal_side = 'credit' AND p.balance_after_minor > 0)
                       OR (a.normal_side = 'debit' AND p.balance_after_minor < 0))) THEN
            RAISE EXCEPTION 'ledger_seal: transaction % takes a floor account below zero', NEW.transaction_id
                USING ERRCODE = 'FC002';
        END IF;
        SELECT reverses_id INTO orig_id FROM ledger_transaction WHERE id = NEW.transaction_id;
        IF orig_id IS NOT NULL THEN
            IF NOT EXISTS (SELECT 1 FROM ledger_seal WHERE transaction_id = orig_id) THEN
                RAISE EXCEPTION 'ledger_seal: reversal of unsealed transaction %', orig_id USING ERRCODE = 'FC002';
            END IF;
            IF EXISTS ((SELECT account_id, currency, amount_minor FROM ledger_posting
                        WHERE transaction_id = NEW.transaction_id
                        EXCEPT ALL
                        SELECT account_id, currency, -amount_minor FROM ledger_posting WHERE transaction_id = orig_id)
                       UNION ALL
                       (SELECT account_id, currency, -amount_minor FROM ledger_posting WHERE transaction_id = orig_id
                        EXCEPT ALL
                        SELECT account_id, currency, amount_minor FROM ledger_posting
                        WHERE transaction_id = NEW.transaction_id)) THEN
                RAISE EXCEPTION 'ledger_seal: reversal % does not exactly negate transaction %',
                    NEW.transaction_id, orig_id USING ERRCODE = 'FC002';
            END IF;
        END IF;
        RETURN NEW;
    END $$""",
    # at COMMIT: every header inserted in this transaction has been sealed
    """
    CREATE OR REPLACE FUNCTION fc_ledger_require_seal() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM ledger_seal WHERE transaction_id = NEW.id) THEN
            RAISE EXCEPTION 'ledger_transaction % (%) was never sealed', NEW.id, NEW.idempotency_key
                USING ERRCODE = 'FC002';
        END IF;
        RETURN NULL;
    END $$""",
]


def _pg_upgrade() -> None:
    for sql in PG_FUNCTIONS:
        op.execute(sql)
    for table in LEDGER_TABLES:
        op.execute(f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION fc_ledger_refuse_change()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION fc_ledger_refuse_change()")
    op.execute("CREATE TRIGGER ledger_posting_check BEFORE INSERT ON ledger_posting "
               "FOR EACH ROW EXECUTE FUNCTION fc_ledger_posting_check()")
    op.execute("CREATE TRIGGER ledger_seal_check BEFORE INSERT ON ledger_seal "
               "FOR EACH ROW EXECUTE FUNCTION fc_ledger_seal_check()")
    op.execute("CREATE CONSTRAINT TRIGGER ledger_transaction_sealed AFTER INSERT ON ledger_transaction "
               "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fc_ledger_require_seal()")


# -- SQLite ----------------------------------------------------------------------------------------
# Row-level triggers only, no TRUNCATE statement (DELETE without WHERE still fires the trigger),
# no deferred triggers: "every header sealed" is re-checked by verify().

SQLITE_CHECKS = [
    """
    CREATE TRIGGER ledger_posting_check BEFORE INSERT ON ledger_posting BEGIN
        SELECT RAISE(ABORT, 'ledger_posting: currency differs from the account currency')
            WHERE NEW.currency IS NOT (SELECT currency FROM ledger_account WHERE id = NEW.account_id);
        SELECT RAISE(ABORT, 'ledger_posting: transaction is already sealed')
            WHERE EXISTS (SELECT 1 FROM ledger_seal WHERE transaction_id = NEW.transaction_id);
        SELECT RAISE(ABORT, 'ledger_posting: balance_after_minor does not continue the account balance')
            WHERE NEW.balance_after_minor IS NOT COALESCE((SELECT balance_after_minor FROM ledger_posting
                WHERE account_id = NEW.account_id ORDER BY id DESC LIMIT 1), 0) + NEW.amount_minor;
    END""",
    """
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
    END""",
]


def _sqlite_upgrade() -> None:
    for table in LEDGER_TABLES:
        op.execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, '{table} is append-only (UPDATE refused)'); END")
        op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, '{table} is append-only (DELETE refused)'); END")
    for sql in SQLITE_CHECKS:
        op.execute(sql)


def upgrade() -> None:
    _create_tables()
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_transaction_sealed ON ledger_transaction")
        op.execute("DROP TRIGGER IF EXISTS ledger_seal_check ON ledger_seal")
        op.execute("DROP TRIGGER IF EXISTS ledger_posting_check ON ledger_posting")
        for table in LEDGER_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    else:
        op.execute("DROP TRIGGER IF EXISTS ledger_seal_check")
        op.execute("DROP TRIGGER IF EXISTS ledger_posting_check")
        for table in LEDGER_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    op.drop_table("ledger_seal")
    op.drop_index("ix_ledger_posting_account_id_id", table_name="ledger_posting")
    op.drop_table("ledger_posting")
    op.drop_index(op.f("ix_ledger_transaction_circle_id"), table_name="ledger_transaction")
    op.drop_table("ledger_transaction")
    op.drop_index(op.f("ix_ledger_account_circle_id"), table_name="ledger_account")
    op.drop_table("ledger_account")
    op.drop_table("currency")
    if bind.dialect.name == "postgresql":
        for fn in ("fc_ledger_require_seal", "fc_ledger_seal_check", "fc_ledger_posting_check",
                   "fc_ledger_refuse_change"):
            op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
