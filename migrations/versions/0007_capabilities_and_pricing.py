"""model version capabilities and model pricing

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 13:00:00

Adds `model_versions.capabilities` (JSON list, routing/capabilities.py) and `models.pricing`
(JSON: currency and price per 1,000 prompt and completion tokens), and fills both from the
built-in catalogue for the models and channels it knows; rows it does not know keep NULL
(chat and stream, no price). Downgrade drops both columns: the values are lost, and a later
upgrade fills them again from the built-in catalogue (an operator's own values are not kept).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from routing.capabilities import normalize
from routing.catalogue import load_seed

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

models = sa.table("models", sa.column("id"), sa.column("name"), sa.column("pricing", sa.JSON))
versions = sa.table(
    "model_versions",
    sa.column("model_id"),
    sa.column("channel"),
    sa.column("capabilities", sa.JSON),
)


def upgrade() -> None:
    op.add_column("models", sa.Column("pricing", sa.JSON(), nullable=True))
    op.add_column("model_versions", sa.Column("capabilities", sa.JSON(), nullable=True))
    bind = op.get_bind()
    ids = dict(bind.execute(sa.select(models.c.name, models.c.id)).all())
    for spec in load_seed()["models"]:
        model_id = ids.get(spec["name"])
        if model_id is None:
            continue
        if spec.get("pricing"):
            bind.execute(
                models.update().where(models.c.id == model_id).values(pricing=spec["pricing"])
            )
        for version in spec["versions"]:
            names = list(normalize(version.get("capabilities", spec.get("capabilities"))))
            bind.execute(
                versions.update()
                .where(versions.c.model_id == model_id, versions.c.channel == version["channel"])
                .values(capabilities=names)
            )


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("capabilities")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("pricing")
