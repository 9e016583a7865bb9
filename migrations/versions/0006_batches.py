"""batches and their lines; the job listing's index

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:00:00

Downgrade drops both tables: the batches and their lines are lost, their jobs stay.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.guard import Drops, refuse_data_loss

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPS = Drops(tables=("batches", "batch_lines"))


def upgrade() -> None:
    op.create_index("ix_jobs_owner_created_at", "jobs", ["owner", "created_at"])
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("completion_window", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("invalid_lines", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("in_progress_at", sa.DateTime(), nullable=True),
        sa.Column("finalizing_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("expired_at", sa.DateTime(), nullable=True),
        sa.Column("cancelling_at", sa.DateTime(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    op.create_index("ix_batches_owner_created_at", "batches", ["owner", "created_at"])
    op.create_index(op.f("ix_batches_status"), "batches", ["status"])
    op.create_table(
        "batch_lines",
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("custom_id", sa.String(length=64), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_batch_lines_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "line", name=op.f("pk_batch_lines")),
    )
    op.create_index("ix_batch_lines_batch_id_job_id", "batch_lines", ["batch_id", "job_id"])
    op.create_index(op.f("ix_batch_lines_job_id"), "batch_lines", ["job_id"])


def downgrade() -> None:
    refuse_data_loss(revision, DROPS)
    op.drop_index(op.f("ix_batch_lines_job_id"), table_name="batch_lines")
    op.drop_index("ix_batch_lines_batch_id_job_id", table_name="batch_lines")
    op.drop_table("batch_lines")
    op.drop_index(op.f("ix_batches_status"), table_name="batches")
    op.drop_index("ix_batches_owner_created_at", table_name="batches")
    op.drop_table("batches")
    op.drop_index("ix_jobs_owner_created_at", table_name="jobs")
