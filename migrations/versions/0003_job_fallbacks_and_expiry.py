"""jobs: fallback hops and result expiry

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 01:44:49.460507
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.guard import Drops, refuse_data_loss

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPS = Drops(columns=(("jobs", "fallbacks"), ("jobs", "result_expired_at")))


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fallbacks", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("result_expired_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    refuse_data_loss(revision, DROPS)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("result_expired_at")
        batch_op.drop_column("fallbacks")
