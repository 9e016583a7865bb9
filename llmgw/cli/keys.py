"""`llmgw keys`: create, list and revoke client API keys."""

from __future__ import annotations

import sys

import click

from llmgw.cli.context import DataGroup, container


@click.group(cls=DataGroup)
def keys() -> None:
    """Client API keys (stored as SHA-256 digests; a secret is shown only when created)."""


@keys.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="may manage the catalogue, keys and all jobs")
@click.pass_context
def keys_create(ctx: click.Context, name: str, admin: bool) -> None:
    """Create a key called NAME and print its secret once."""
    from storage.apikeys import create_api_key

    with container(ctx).sessions() as session:
        key, plaintext = create_api_key(session, name, is_admin=admin)
        session.commit()
        click.echo(f"id      {key.id}\nname    {key.name}\nadmin   {key.is_admin}")
        click.echo(f"key     {plaintext}\n(store it now: it cannot be shown again)")


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
