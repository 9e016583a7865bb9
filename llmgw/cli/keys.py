"""`llmgw keys`: create, list, show, update and revoke client API keys; `llmgw usage`."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click

from llmgw.cli.context import DataGroup, container


@click.group(cls=DataGroup)
def keys() -> None:
    """Client API keys (stored as SHA-256 digests; a secret is shown only when created)."""


ALLOW = click.option(
    "--allow", "allowed", multiple=True, help="an allowed model or model:channel (repeatable)"
)
EXPIRES = click.option("--expires", help="expiry, ISO 8601 UTC (e.g. 2027-01-01T00:00:00)")
LIMIT = click.option(
    "--limit",
    "limits",
    multiple=True,
    help="a limit object as JSON, e.g. '{\"requests_per_minute\": 60}' (repeatable)",
)


def key_settings(allowed: tuple[str, ...], expires: str | None, limits: tuple[str, ...]):
    """The `storage.apikeys.KEY_SETTINGS` given on the command line (docs/limits.md)."""
    from storage.limits import Limit

    out: dict[str, Any] = {}
    if allowed:
        out["allowed_models"] = list(allowed)
    if expires:
        out["expires_at"] = datetime.fromisoformat(expires).replace(tzinfo=None)
    if limits:
        try:
            parsed = [Limit.model_validate(json.loads(x)) for x in limits]
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--limit") from None
        out["limits"] = [x.model_dump(exclude_none=True) for x in parsed]
    return out


def show(key: Any) -> None:
    click.echo(f"id      {key.id}\nname    {key.name}\nadmin   {key.is_admin}")
    click.echo(f"expires {key.expires_at or 'never'}")
    click.echo(f"models  {', '.join(key.allowed_models) if key.allowed_models else 'all'}")
    for limit in key.limits or ():
        click.echo(f"limit   {json.dumps(limit)}")


@keys.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="may manage the catalogue, keys and all jobs")
@ALLOW
@EXPIRES
@LIMIT
@click.pass_context
def keys_create(
    ctx: click.Context,
    name: str,
    admin: bool,
    allowed: tuple[str, ...],
    expires: str | None,
    limits: tuple[str, ...],
) -> None:
    """Create a key called NAME and print its secret once."""
    from storage.apikeys import create_api_key

    settings = key_settings(allowed, expires, limits)
    with container(ctx).sessions() as session:
        key, plaintext = create_api_key(session, name, is_admin=admin, **settings)
        session.commit()
        show(key)
        click.echo(f"key     {plaintext}\n(store it now: it cannot be shown again)")


@keys.command("update")
@click.argument("key_id")
@ALLOW
@click.option("--all-models", is_flag=True, help="allow every model again")
@EXPIRES
@click.option("--no-expiry", is_flag=True, help="the key never expires")
@LIMIT
@click.option("--no-limits", is_flag=True, help="remove the key's limits")
@click.pass_context
def keys_update(ctx: click.Context, key_id: str, **options: Any) -> None:
    """Change KEY_ID's allowed models, expiry or limits (what is given replaces what was)."""
    from storage.apikeys import update_api_key
    from storage.models import ApiKey

    changes = key_settings(options["allowed"], options["expires"], options["limits"])
    cleared = {"all_models": "allowed_models", "no_expiry": "expires_at", "no_limits": "limits"}
    changes |= {name: None for flag, name in cleared.items() if options[flag]}
    with container(ctx).sessions() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            click.echo(f"no API key with id {key_id!r}", err=True)
            sys.exit(1)
        update_api_key(session, key, **changes)
        session.commit()
        show(key)


@keys.command("show")
@click.argument("key_id")
@click.pass_context
def keys_show(ctx: click.Context, key_id: str) -> None:
    """Show KEY_ID: name, admin, expiry, allowed models, limits (never its secret)."""
    from storage.models import ApiKey

    with container(ctx).sessions() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            click.echo(f"no API key with id {key_id!r}", err=True)
            sys.exit(1)
        show(key)


@keys.command("list")
@click.pass_context
def keys_list(ctx: click.Context) -> None:
    """List keys: id, name, admin, created, revoked."""
    from storage.apikeys import list_api_keys

    with container(ctx).sessions() as session:
        for key in list_api_keys(session):
            revoked = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            admin = "admin" if key.is_admin else "client"
            click.echo(f"{key.id}\t{key.name}\t{admin}\t{key.created_at:%Y-%m-%d}\t{revoked}")


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke KEY_ID at once."""
    from storage.apikeys import revoke_api_key

    with container(ctx).sessions() as session:
        key = revoke_api_key(session, key_id)
        if key is None:
            click.echo(f"no API key with id {key_id!r}", err=True)
            sys.exit(1)
        session.commit()
    click.echo(f"revoked {key_id}")


@click.command()
@click.option("--key", "key_id", help="one key's usage (default: every key, per key)")
@click.option("--from", "since", help="finished at or after (ISO 8601 UTC)")
@click.option("--to", "until", help="finished before (ISO 8601 UTC)")
@click.pass_context
def usage(ctx: click.Context, key_id: str | None, since: str | None, until: str | None) -> None:
    """Requests and tokens per key, model and channel, from finished jobs."""
    from jobs.usage import usage as usage_rows

    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value).replace(tzinfo=None) if value else None

    with container(ctx).sessions() as session:
        rows = usage_rows(session, owner=key_id, since=when(since), until=when(until), by_key=True)
    click.echo(
        f"{'key':<18} {'model':<22} {'channel':<11} {'requests':>9} "
        f"{'prompt':>10} {'completion':>11} {'total':>10}"
    )
    for r in rows:
        click.echo(
            f"{r.key_id or '':<18} {r.model:<22} {r.channel:<11} {r.requests:>9} "
            f"{r.prompt_tokens:>10} {r.completion_tokens:>11} {r.total_tokens:>10}"
        )
