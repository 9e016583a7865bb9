"""What a command needs, built in one place, and configuration errors as one line.

`container(ctx)` is the only place the CLI builds the process's shared resources (today
`llmgw.container.Container`); commands use only its `.sessions`, `.redis` and `.settings`. Tests
pass their own as `obj`. When `LLMGW_REDIS_URL` is unset, the Redis of a running `llmgw up`
(recorded in `var/llmgw-up.json` of the working directory, see `llmgw.stack`) is used, so a
second terminal reaches the same stack.

A malformed or missing setting, and for the data groups (`db`, `models`, `keys`) an
unreachable database or Redis, end the command with one line on stderr and exit code 2
instead of a traceback: these are the operator's to fix, not bugs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import redis
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from llmgw.settings import Settings, load_settings

if TYPE_CHECKING:
    from llmgw.container import Container


VAR_DIR = Path("var")  # `llmgw up --var-dir`'s default, relative to the working directory


class ConfigError(click.ClickException):
    exit_code = 2


def cli_settings(var_dir: Path = VAR_DIR) -> Settings:
    """The environment's settings; an unset Redis URL falls back to a running `llmgw up`'s."""
    from llmgw.stack import recorded_stack

    settings = load_settings()
    if settings.redis_url is None:
        recorded = recorded_stack(var_dir)
        if recorded and recorded.get("redis_url"):
            return load_settings(redis_url=recorded["redis_url"])
    return settings


def container(ctx: click.Context) -> Container:
    """The shared resources of this invocation, built once (tests pass theirs as `obj`)."""
    root = ctx.find_root()
    if root.obj is None:
        from llmgw.container import Container

        root.obj = Container(cli_settings())
    return root.obj


def redis_or_none(resources: Container) -> redis.Redis | None:
    """The Redis client, or None when no Redis is configured nor recorded by `llmgw up`."""
    return resources.redis if resources.settings.redis_url else None


def settings_error_line(exc: ValidationError) -> str:
    """`configuration error: LLMGW_REDIS_URL: must be …` for each bad field, on one line."""
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = f"LLMGW_{field.upper()}" if field else "settings"
        message = error["msg"].removeprefix("Value error, ").replace("\n", " ")
        problems.append(f"{name}: {message}")
    return "configuration error: " + "; ".join(problems)


class ConfigGroup(click.Group):
    """A group whose commands end with one line and exit 2 on a bad or missing setting."""

    def invoke(self, ctx: click.Context) -> Any:
        from llmgw.container import ConfigurationError

        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            if exc.title != Settings.__name__:
                raise
            raise ConfigError(settings_error_line(exc)) from None
        except ConfigurationError as exc:
            raise ConfigError(f"configuration error: {exc}") from None


class DataGroup(ConfigGroup):
    """A `ConfigGroup` whose commands also need the database (and some, Redis)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
            raise ConfigError(
                f"database {_database_name(ctx)}: {reason} (is it reachable and migrated? "
                "`llmgw db upgrade`)"
            ) from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ConfigError(f"Redis {_redis_name(ctx)} not reachable: {exc}") from None


def _database_name(ctx: click.Context) -> str:
    from sqlalchemy.engine import make_url

    url = _settings_of(ctx).database_url
    return make_url(url).render_as_string(hide_password=True)


def _redis_name(ctx: click.Context) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(_settings_of(ctx).redis_url or "")
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def _settings_of(ctx: click.Context) -> Settings:
    resources = ctx.find_root().obj
    return resources.settings if resources is not None else cli_settings()
