"""ballots: ballots, ballot items, conflicts of interest, round results, awards; freeze and recusal triggers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

Everything is written inline (no imports from the app) so this migration stays a frozen snapshot.

Triggers (both databases; reference/ledger-and-reliability.md §2.2, §2.4):
* freeze: INSERT/UPDATE/DELETE of ``ballots`` and ``ballot_items`` is refused once the round has a
  row in ``round_results`` (the close writes it under the round's exclusive lock). On PostgreSQL
  TRUNCATE of those tables is refused while any result exists. SQLSTATE FC003.
* item check: a ``ballot_items`` row for a proposal the voter is recused from, or for a proposal
  of another round, is refused. SQLSTATE FC004.
* ``round_results`` is append-only (a stored digest never changes). SQLSTATE FC001.

The freeze keys on the stored result rather than on the clock: the application's ``now`` decides
the phase (and tests pin it with freezegun), a database clock would disagree with it; the window
between the close time and the tally is guarded by the operation under the round lock.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _create_tables() -> None:
    op.create_table(
        "ballots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("voter_id", sa.Integer(), nullable=False),
        sa.Column("ballot_kind", sa.String(length=12), nullable=False),
        sa.Column("receipt_hash", sa.String(length=64), nullable=False),
        sa.Column("cast_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times_cast", sa.Integer(), nullable=False),
        sa.CheckConstraint("ballot_kind IN ('approval', 'points', 'scores', 'ranking', 'consent', 'allocation')",
                           name=op.f("ck_ballots_kind_known")),
        sa.CheckConstraint("times_cast >= 1", name=op.f("ck_ballots_times_cast_positive")),
        sa.ForeignKeyConstraint(["round_id"], ["rounds.id"], name=op.f("fk_ballots_round_id_rounds"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["voter_id"], ["users.id"], name=op.f("fk_ballots_voter_id_users"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ballots")),
        sa.UniqueConstraint("receipt_hash", name=op.f("uq_ballots_receipt_hash")),
        # one ballot per member per round: the conflict target of the cast upsert
        sa.UniqueConstraint("round_id", "voter_id", name=op.f("uq_ballots_round_id_voter_id")),
    )
    op.create_index(op.f("ix_ballots_voter_id"), "ballots", ["voter_id"], unique=False)

    op.create_table(
        "ballot_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ballot_id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=True),
        sa.Column("response", sa.String(length=10), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint("response IS NULL OR response IN ('consent', 'concern', 'objection')",
                           name=op.f("ck_ballot_items_response_known")),
        sa.CheckConstraint("value IS NOT NULL OR response IS NOT NULL", name=op.f("ck_ballot_items_has_value")),
        sa.ForeignKeyConstraint(["ballot_id"], ["ballots.id"], name=op.f("fk_ballot_items_ballot_id_ballots"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"], name=op.f("fk_ballot_items_proposal_id_proposals"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ballot_items")),
        sa.UniqueConstraint("ballot_id", "proposal_id", name=op.f("uq_ballot_items_ballot_id_proposal_id")),
    )
    op.create_index(op.f("ix_ballot_items_proposal_id"), "ballot_items", ["proposal_id"], unique=False)

    op.create_table(
        "conflicts_of_interest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("reason_category", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("is_automatic", sa.Boolean(), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("level IN ('disclose', 'recuse')", name=op.f("ck_conflicts_of_interest_level_known")),
        sa.CheckConstraint(
            "reason_category IN ('applicant', 'payee', 'co_applicant', 'family', 'financial', "
            "'organisation', 'other')", name=op.f("ck_conflicts_of_interest_category_known")),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"],
                                name=op.f("fk_conflicts_of_interest_proposal_id_proposals"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_conflicts_of_interest_user_id_users"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conflicts_of_interest")),
        sa.UniqueConstraint("user_id", "proposal_id", name=op.f("uq_conflicts_of_interest_user_id_proposal_id")),
    )
    op.create_index(op.f("ix_conflicts_of_interest_proposal_id"), "conflicts_of_interest", ["proposal_id"],
                    unique=False)

    op.create_table(
        "round_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(length=60), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("ballot_digest", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.String(length=200), nullable=False),
        sa.Column("ballot_count", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.Column("trace", sa.JSON(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("recusal_log", sa.JSON(), nullable=False),
        sa.Column("tallied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tallied_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("ballot_count >= 0", name=op.f("ck_round_results_ballot_count_nonneg")),
        sa.CheckConstraint("member_count >= 0", name=op.f("ck_round_results_member_count_nonneg")),
        sa.ForeignKeyConstraint(["round_id"], ["rounds.id"], name=op.f("fk_round_results_round_id_rounds"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["tallied_by_id"], ["users.id"], name=op.f("fk_round_results_tallied_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_results")),
        sa.UniqueConstraint("round_id", name=op.f("uq_round_results_round_id")),
    )

    op.create_table(
        "awards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("earmarked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("earmark_problem", sa.Text(), nullable=False),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_awards_amount_nonneg")),
        sa.CheckConstraint("position >= 1", name=op.f("ck_awards_position_positive")),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"], name=op.f("fk_awards_proposal_id_proposals"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["round_id"], ["round_results.round_id"],
                                name=op.f("fk_awards_round_id_round_results"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_awards")),
        sa.UniqueConstraint("round_id", "proposal_id", name=op.f("uq_awards_round_id_proposal_id")),
    )


# -- PostgreSQL ------------------------------------------------------------------------------------

PG_FUNCTIONS = [
    # freeze: a ballot (or item) of a round that has a stored result cannot be added, changed or removed
    """
    CREATE OR REPLACE FUNCTION fc_ballot_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        frozen_round integer;
    BEGIN
        IF TG_TABLE_NAME = 'ballots' THEN
            IF TG_OP <> 'INSERT' THEN
                SELECT r.round_id INTO frozen_round FROM round_results r WHERE r.round_id = OLD.round_id;
            END IF;
            IF frozen_round IS NULL AND TG_OP <> 'DELETE' THEN
                SELECT r.round_id INTO frozen_round FROM round_results r WHERE r.round_id = NEW.round_id;
            END IF;
        ELSE
            IF TG_OP <> 'INSERT' THEN
                SELECT r.round_id INTO frozen_round FROM ballots b JOIN round_results r ON r.round_id = b.round_id
                    WHERE b.id = OLD.ballot_id;
            END IF;
            IF frozen_round IS NULL AND TG_OP <> 'DELETE' THEN
                SELECT r.round_id INTO frozen_round FROM ballots b JOIN round_results r ON r.round_id = b.round_id
                    WHERE b.id = NEW.ballot_id;
            END IF;
        END IF;
        IF frozen_round IS NOT NULL THEN
            RAISE EXCEPTION '% of round % are frozen: voting is closed and tallied (% refused)',
                TG_TABLE_NAME, frozen_round, TG_OP USING ERRCODE = 'FC003';
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION fc_ballot_frozen_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM round_results) THEN
            RAISE EXCEPTION '% holds frozen ballots of tallied rounds (TRUNCATE refused)', TG_TABLE_NAME
                USING ERRCODE = 'FC003';
        END IF;
        RETURN NULL;
    END $$""",
    # an item names a proposal of the ballot's round that the voter is not recused from
    """
    CREATE OR REPLACE FUNCTION fc_ballot_item_check() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM ballots b JOIN conflicts_of_interest c ON c.user_id = b.voter_id
                   WHERE b.id = NEW.ballot_id AND c.proposal_id = NEW.proposal_id AND c.level = 'recuse') THEN
            RAISE EXCEPTION 'ballot_items: the voter is recused from proposal %', NEW.proposal_id
                USING ERRCODE = 'FC004';
        END IF;
        IF (SELECT round_id FROM proposals WHERE id = NEW.proposal_id)
           IS DISTINCT FROM (SELECT round_id FROM ballots WHERE id = NEW.ballot_id) THEN
            RAISE EXCEPTION 'ballot_items: proposal % is not in the ballot''s round', NEW.proposal_id
                USING ERRCODE = 'FC004';
        END IF;
        RETURN NEW;
    END $$""",
    # round_results is append-only (same body as 0001's fc_refuse_change, kept separate so this
    # migration does not depend on another migration's function)
    """
    CREATE OR REPLACE FUNCTION fc_result_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'FC001';
    END $$""",
]


def _pg_upgrade() -> None:
    for sql in PG_FUNCTIONS:
        op.execute(sql)
    for table in ("ballots", "ballot_items"):
        op.execute(f"CREATE TRIGGER {table}_frozen BEFORE INSERT OR UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION fc_ballot_frozen()")
        op.execute(f"CREATE TRIGGER {table}_frozen_truncate BEFORE TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION fc_ballot_frozen_truncate()")
    op.execute("CREATE TRIGGER ballot_items_check BEFORE INSERT OR UPDATE ON ballot_items "
               "FOR EACH ROW EXECUTE FUNCTION fc_ballot_item_check()")
    op.execute("CREATE TRIGGER round_results_no_change BEFORE UPDATE OR DELETE ON round_results "
               "FOR EACH ROW EXECUTE FUNCTION fc_result_refuse_change()")
    op.execute("CREATE TRIGGER round_results_no_truncate BEFORE TRUNCATE ON round_results "
               "FOR EACH STATEMENT EXECUTE FUNCTION fc_result_refuse_change()")


# -- SQLite ----------------------------------------------------------------------------------------

def _sqlite_frozen(table: str, op_name: str, round_expr_by_row: dict[str, str]) -> str:
    conditions = " OR ".join(
        f"EXISTS (SELECT 1 FROM round_results WHERE round_id = {expr})" for expr in round_expr_by_row.values())
    return (f"CREATE TRIGGER {table}_frozen_{op_name.lower()} BEFORE {op_name} ON {table} "
            f"WHEN {conditions} BEGIN "
            f"SELECT RAISE(ABORT, '{table} of this round are frozen: voting is closed and tallied "
            f"({op_name} refused)'); END")


SQLITE_ITEM_CHECK = """
    CREATE TRIGGER ballot_items_check_{op} BEFORE {OP} ON ballot_items BEGIN
        SELECT RAISE(ABORT, 'ballot_items: the voter is recused from this proposal')
            WHERE EXISTS (SELECT 1 FROM ballots b JOIN conflicts_of_interest c ON c.user_id = b.voter_id
                          WHERE b.id = NEW.ballot_id AND c.proposal_id = NEW.proposal_id AND c.level = 'recuse');
        SELECT RAISE(ABORT, 'ballot_items: the proposal is not in the ballot''s round')
            WHERE (SELECT round_id FROM proposals WHERE id = NEW.proposal_id)
                  IS NOT (SELECT round_id FROM ballots WHERE id = NEW.ballot_id);
    END"""


def _sqlite_upgrade() -> None:
    op.execute(_sqlite_frozen("ballots", "INSERT", {"new": "NEW.round_id"}))
    op.execute(_sqlite_frozen("ballots", "UPDATE", {"old": "OLD.round_id", "new": "NEW.round_id"}))
    op.execute(_sqlite_frozen("ballots", "DELETE", {"old": "OLD.round_id"}))
    item_round = "(SELECT round_id FROM ballots WHERE id = {row}.ballot_id)"
    op.execute(_sqlite_frozen("ballot_items", "INSERT", {"new": item_round.format(row="NEW")}))
    op.execute(_sqlite_frozen("ballot_items", "UPDATE", {"old": item_round.format(row="OLD"),
                                                         "new": item_round.format(row="NEW")}))
    op.execute(_sqlite_frozen("ballot_items", "DELETE", {"old": item_round.format(row="OLD")}))
    op.execute(SQLITE_ITEM_CHECK.format(op="insert", OP="INSERT"))
    op.execute(SQLITE_ITEM_CHECK.format(op="update", OP="UPDATE"))
    op.execute("CREATE TRIGGER round_results_no_update BEFORE UPDATE ON round_results "
               "BEGIN SELECT RAISE(ABORT, 'round_results is append-only (UPDATE refused)'); END")
    op.execute("CREATE TRIGGER round_results_no_delete BEFORE DELETE ON round_results "
               "BEGIN SELECT RAISE(ABORT, 'round_results is append-only (DELETE refused)'); END")


SQLITE_TRIGGERS = (
    "ballots_frozen_insert", "ballots_frozen_update", "ballots_frozen_delete",
    "ballot_items_frozen_insert", "ballot_items_frozen_update", "ballot_items_frozen_delete",
    "ballot_items_check_insert", "ballot_items_check_update", "round_results_no_update", "round_results_no_delete",
)


def upgrade() -> None:
    _create_tables()
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in ("ballots", "ballot_items"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_frozen ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_frozen_truncate ON {table}")
        op.execute("DROP TRIGGER IF EXISTS ballot_items_check ON ballot_items")
        op.execute("DROP TRIGGER IF EXISTS round_results_no_change ON round_results")
        op.execute("DROP TRIGGER IF EXISTS round_results_no_truncate ON round_results")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("awards")
    op.drop_table("round_results")
    op.drop_index(op.f("ix_conflicts_of_interest_proposal_id"), table_name="conflicts_of_interest")
    op.drop_table("conflicts_of_interest")
    op.drop_index(op.f("ix_ballot_items_proposal_id"), table_name="ballot_items")
    op.drop_table("ballot_items")
    op.drop_index(op.f("ix_ballots_voter_id"), table_name="ballots")
    op.drop_table("ballots")
    if bind.dialect.name == "postgresql":
        for fn in ("fc_result_refuse_change", "fc_ballot_item_check", "fc_ballot_frozen_truncate",
                   "fc_ballot_frozen"):
            op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
