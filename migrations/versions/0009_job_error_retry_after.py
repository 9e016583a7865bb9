"""jobs.error_retry_after: the provider's Retry-After of a job that failed rate-limited

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 13:10:00

The API passes it on as `Retry-After` with the 429 of a synchronous completion. Downgrade drops
the column: failed jobs lose the value, nothing else.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_retry_after", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("error_retry_after")
