"""Downgrades that would lose data refuse unless forced.

Every revision declares, at module level, what its downgrade drops, and its `downgrade()`
calls `refuse_data_loss` before it drops anything:

    from migrations.guard import Drops, refuse_data_loss

    DROPS = Drops(tables=("batches",), columns=(("jobs", "fallbacks"),))

    def downgrade() -> None:
        refuse_data_loss(revision, DROPS)
        ...  # the drops

`tables` are dropped whole (any row is data); `columns` are (table, column) pairs dropped
from a table that stays (a row whose value is neither SQL NULL nor JSON `null` is data).
Leave out what the downgrade moves somewhere else first (revision 0004 puts `jobs.priority`
back into `jobs.request`) and indexes (they hold nothing of their own).

Forcing: `llmgw db downgrade REV --force` (`storage.migrate.downgrade(..., force=True)` sets
the config attribute `force_data_loss`), or plain Alembic with `-x force=1`.

Why declared data and not a check inside each `downgrade()` only: `storage.migrate.downgrade`
reads `DROPS` of every revision between the current one and the target and refuses before
the first step runs, so the message lists everything at once and nothing is half done. On
SQLite DDL is not transactional: a refusal raised in the middle of a multi-step plain
`alembic downgrade` would leave the steps before it applied. The check inside `downgrade()`
stays for that plain-Alembic path.

Not chosen: copying the data aside (a shadow table) before dropping it. A backup
(`llmgw db backup`, taken before every upgrade) already keeps it, and shadow tables would
outlive the schema that explains them.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

FORCE_ATTRIBUTE = "force_data_loss"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Drops:
    """What one revision's downgrade removes together with its contents."""

    tables: tuple[str, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()


class DataLossRefused(RuntimeError):
    """A downgrade would drop data; `losses` says what, one human line each."""

    def __init__(self, losses: list[str]) -> None:
        self.losses = losses
        super().__init__(
            "downgrade refused, it would drop data: "
            + "; ".join(losses)
            + " (back up first, then force: `llmgw db downgrade REV --force` or -x force=1)"
        )


def losses(connection: Connection, revision: str, drops: Drops) -> list[str]:
    """One line per table or column of `drops` that holds data on this database."""
    existing = set(sa.inspect(connection).get_table_names())
    found = []
    for table in drops.tables:
        if table in existing and (count := _count(connection, table)):
            found.append(f"{revision}: table {table} ({count} rows)")
    for table, column in drops.columns:
        if table in existing and (count := _count(connection, table, column)):
            found.append(f"{revision}: column {table}.{column} ({count} rows with a value)")
    return found


def refuse_data_loss(revision: str, drops: Drops) -> None:
    """Call first in a revision's `downgrade()`: raise `DataLossRefused` unless forced or
    nothing that `drops` names holds data."""
    from alembic import context, op

    if forced(context.config.attributes, context.get_x_argument(as_dictionary=True)):
        return
    found = losses(op.get_bind(), revision, drops)
    if found:
        raise DataLossRefused(found)


def forced(attributes: dict, x_arguments: dict[str, str]) -> bool:
    return bool(attributes.get(FORCE_ATTRIBUTE)) or (x_arguments.get("force", "").lower() in _TRUE)


def _count(connection: Connection, table: str, column: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(sa.table(table))
    if column is not None:
        value: sa.ColumnClause[object] = sa.column(column)
        text = sa.cast(value, sa.Text)
        query = query.where(value.is_not(None), text != "null")
    return int(connection.execute(query).scalar_one())
