"""api keys: expiry, allowed models and limits; gateway-wide limits per model or version

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 11:00:00

Downgrade drops the new columns and table: the limits and scopes are lost, the keys stay.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.guard import Drops, refuse_data_loss

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPS = Drops(
    tables=("gateway_limits",),
    columns=(("api_keys", "limits"), ("api_keys", "allowed_models"), ("api_keys", "expires_at")),
)


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("allowed_models", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("limits", sa.JSON(), nullable=True))
    op.create_table(
        "gateway_limits",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("limit", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_gateway_limits")),
    )


def downgrade() -> None:
    refuse_data_loss(revision, DROPS)
    op.drop_table("gateway_limits")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("limits")
        batch_op.drop_column("allowed_models")
        batch_op.drop_column("expires_at")
