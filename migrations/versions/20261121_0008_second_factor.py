"""second factor: TOTP enrolment for treasurers and facilitators

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21

Written inline (no app imports). ``totp_credentials`` holds one encrypted authenticator secret per
user plus the replay guard (last accepted time step) and the attempt counter;
``second_factor_passes`` marks a signed-in session that passed the challenge.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "totp_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_encrypted", sa.String(length=255), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("confirmed_at", _TS, nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", _TS, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_totp_credentials_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_totp_credentials")),
        sa.UniqueConstraint("user_id", name=op.f("uq_totp_credentials_user_id")),
    )
    op.create_table(
        "second_factor_passes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("auth_session_id", sa.Integer(), nullable=False),
        sa.Column("passed_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["auth_session_id"], ["auth_sessions.id"],
                                name=op.f("fk_second_factor_passes_auth_session_id_auth_sessions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_second_factor_passes")),
        sa.UniqueConstraint("auth_session_id", name=op.f("uq_second_factor_passes_auth_session_id")),
    )


def downgrade() -> None:
    op.drop_table("second_factor_passes")
    op.drop_table("totp_credentials")
