"""completion callbacks: their deliveries, and each key's signing-secret version

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:00:00

Downgrade drops both tables: pending callbacks are never delivered and the secret versions
reset to 0 (every key's signing secret goes back to its first one); jobs and batches stay.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "callback_deliveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("batch_id", sa.String(length=32), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_callback_deliveries_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_callback_deliveries_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_deliveries")),
        sa.UniqueConstraint("batch_id", name=op.f("uq_callback_deliveries_batch_id")),
        sa.UniqueConstraint("job_id", name=op.f("uq_callback_deliveries_job_id")),
    )
    op.create_index(
        "ix_callback_deliveries_status_next",
        "callback_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_table(
        "callback_secrets",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rotated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_callback_secrets")),
    )


def downgrade() -> None:
    op.drop_table("callback_secrets")
    op.drop_index("ix_callback_deliveries_status_next", table_name="callback_deliveries")
    op.drop_table("callback_deliveries")
