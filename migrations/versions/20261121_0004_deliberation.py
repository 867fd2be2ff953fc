"""deliberation: comments, questions and answers, moderation (owned by the deliberation work)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21

Everything is written inline (no imports from the app) so this migration stays a frozen snapshot.

Triggers (both databases):
* ``comments`` are never deleted (TRUNCATE refused too on PostgreSQL), and the only update allowed
  is hiding a visible comment once: content, author, thread position and time never change, and
  a hidden comment is never un-hidden. Messages say "append-only" (SQLSTATE FC001 on PostgreSQL),
  which ``fundcircle.db.translate_db_error`` maps to a domain error.
* a reply must belong to its parent's proposal, and an answer must reply to a question
  (SQLSTATE FC041). The operations check both first; the triggers are the backstop.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MAX_BODY_CHARS = 5000
MAX_HIDE_REASON_CHARS = 500


def _create_tables() -> None:
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("submission_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hidden_by_id", sa.Integer(), nullable=True),
        sa.Column("hidden_reason", sa.Text(), nullable=False),
        sa.CheckConstraint("kind IN ('comment', 'question', 'answer')", name=op.f("ck_comments_kind_known")),
        sa.CheckConstraint("kind <> 'answer' OR parent_id IS NOT NULL", name=op.f("ck_comments_answer_has_question")),
        sa.CheckConstraint(f"length(body) BETWEEN 1 AND {MAX_BODY_CHARS}", name=op.f("ck_comments_body_length")),
        sa.CheckConstraint(
            "(hidden_at IS NULL AND hidden_by_id IS NULL AND hidden_reason = '') OR "
            f"(hidden_at IS NOT NULL AND length(hidden_reason) BETWEEN 1 AND {MAX_HIDE_REASON_CHARS})",
            name=op.f("ck_comments_hidden_with_reason")),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"], name=op.f("fk_comments_proposal_id_proposals"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["parent_id"], ["comments.id"], name=op.f("fk_comments_parent_id_comments"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_comments_author_id_users"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["hidden_by_id"], ["users.id"], name=op.f("fk_comments_hidden_by_id_users"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
        sa.UniqueConstraint("author_id", "submission_key", name=op.f("uq_comments_author_id_submission_key")),
    )
    op.create_index(op.f("ix_comments_proposal_id"), "comments", ["proposal_id"], unique=False)
    op.create_index(op.f("ix_comments_parent_id"), "comments", ["parent_id"], unique=False)
    op.create_index(op.f("ix_comments_author_id"), "comments", ["author_id"], unique=False)
    # one visible answer per question; a hidden answer frees the place for a new one
    op.create_index("uq_comments_answer_parent_id", "comments", ["parent_id"], unique=True,
                    sqlite_where=sa.text("kind = 'answer' AND hidden_at IS NULL"),
                    postgresql_where=sa.text("kind = 'answer' AND hidden_at IS NULL"))


# Columns whose value is fixed at insert (everything but the three hiding columns).
FIXED_COLUMNS = ("id", "proposal_id", "parent_id", "author_id", "kind", "body", "submission_key", "created_at")

PG_FUNCTIONS = [
    """
    CREATE OR REPLACE FUNCTION fc_comments_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'comments are append-only (DELETE refused)' USING ERRCODE = 'FC001';
        END IF;
        IF OLD.hidden_at IS NOT NULL OR NEW.hidden_at IS NULL OR """
    + " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FIXED_COLUMNS) + """ THEN
            RAISE EXCEPTION 'comments are append-only: a visible comment may only be hidden, once (UPDATE refused)'
                USING ERRCODE = 'FC001';
        END IF;
        RETURN NEW;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION fc_comments_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'comments are append-only (TRUNCATE refused)' USING ERRCODE = 'FC001';
    END $$""",
    """
    CREATE OR REPLACE FUNCTION fc_comments_parent_check() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        parent_proposal integer;
        parent_kind text;
    BEGIN
        IF NEW.parent_id IS NULL THEN
            RETURN NEW;
        END IF;
        SELECT c.proposal_id, c.kind INTO parent_proposal, parent_kind FROM comments c WHERE c.id = NEW.parent_id;
        IF parent_proposal IS DISTINCT FROM NEW.proposal_id THEN
            RAISE EXCEPTION 'comments: a reply must belong to the same proposal as its parent'
                USING ERRCODE = 'FC041';
        END IF;
        IF NEW.kind = 'answer' AND parent_kind IS DISTINCT FROM 'question' THEN
            RAISE EXCEPTION 'comments: an answer must reply to a question' USING ERRCODE = 'FC041';
        END IF;
        RETURN NEW;
    END $$""",
]


def _pg_upgrade() -> None:
    for function in PG_FUNCTIONS:
        op.execute(function)
    op.execute("CREATE TRIGGER comments_no_change BEFORE UPDATE OR DELETE ON comments "
               "FOR EACH ROW EXECUTE FUNCTION fc_comments_guard()")
    op.execute("CREATE TRIGGER comments_no_truncate BEFORE TRUNCATE ON comments "
               "FOR EACH STATEMENT EXECUTE FUNCTION fc_comments_refuse_truncate()")
    op.execute("CREATE TRIGGER comments_parent_check BEFORE INSERT ON comments "
               "FOR EACH ROW EXECUTE FUNCTION fc_comments_parent_check()")


SQLITE_STATEMENTS = [
    "CREATE TRIGGER comments_no_delete BEFORE DELETE ON comments "
    "BEGIN SELECT RAISE(ABORT, 'comments are append-only (DELETE refused)'); END",
    "CREATE TRIGGER comments_no_update BEFORE UPDATE ON comments "
    "WHEN OLD.hidden_at IS NOT NULL OR NEW.hidden_at IS NULL OR "
    + " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FIXED_COLUMNS)
    + " BEGIN SELECT RAISE(ABORT, 'comments are append-only: a visible comment may only be hidden, once "
      "(UPDATE refused)'); END",
    """CREATE TRIGGER comments_parent_check BEFORE INSERT ON comments WHEN NEW.parent_id IS NOT NULL BEGIN
        SELECT RAISE(ABORT, 'comments: a reply must belong to the same proposal as its parent')
            WHERE (SELECT proposal_id FROM comments WHERE id = NEW.parent_id) IS NOT NEW.proposal_id;
        SELECT RAISE(ABORT, 'comments: an answer must reply to a question')
            WHERE NEW.kind = 'answer' AND (SELECT kind FROM comments WHERE id = NEW.parent_id) IS NOT 'question';
    END""",
]
SQLITE_TRIGGERS = ("comments_no_delete", "comments_no_update", "comments_parent_check")


def upgrade() -> None:
    _create_tables()
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        for statement in SQLITE_STATEMENTS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("comments_no_change", "comments_no_truncate", "comments_parent_check"):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON comments")
        for function in ("fc_comments_guard", "fc_comments_refuse_truncate", "fc_comments_parent_check"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("comments")
