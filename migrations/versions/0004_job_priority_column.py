"""jobs: priority as a column (it was a key of the request JSON)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:05:00

Upgrade backfills the column from `request.priority`; downgrade writes it back there, so no
job loses its priority either way.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.guard import Drops, refuse_data_loss

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPS = Drops()  # jobs.priority goes back into jobs.request first: nothing is lost

jobs = sa.table(
    "jobs", sa.column("id", sa.String), sa.column("request", sa.JSON), sa.column("priority")
)


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("priority", sa.String(16), nullable=False, server_default="interactive")
        )
    bind = op.get_bind()
    for job_id, request in bind.execute(sa.select(jobs.c.id, jobs.c.request)).all():
        priority = (request or {}).get("priority")
        if priority and priority != "interactive":
            bind.execute(jobs.update().where(jobs.c.id == job_id).values(priority=priority))


def downgrade() -> None:
    refuse_data_loss(revision, DROPS)
    bind = op.get_bind()
    rows = bind.execute(sa.select(jobs.c.id, jobs.c.request, jobs.c.priority)).all()
    for job_id, request, priority in rows:
        restored = {**(request or {}), "priority": priority}
        bind.execute(jobs.update().where(jobs.c.id == job_id).values(request=restored))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("priority")
