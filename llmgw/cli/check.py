"""`llmgw check`: a post-deploy smoke test of the configured providers and the catalogue.

With the credentials this process is configured with (the same `LLMGW_*` settings as the
workers), it asks each provider for its model list — which proves the credential (GigaChat's
OAuth exchange, YandexGPT's key or IAM token) — and then makes one completion of at most one
token on every live channel of every catalogue model (the database's catalogue, as the
gateway routes it), and prints one row per check:

    PROVIDER   CHECK                  UPSTREAM               RESULT  DETAIL

Any failed row makes the exit code 1 (2 for a configuration error, as every command).

Decisions:
- The calls go straight to the provider adapters, not through the queue: the question is
  "do the credentials and the catalogue's upstream ids work", which must not depend on a
  worker being up, and a smoke test must not create jobs, spend quota or open circuits.
- One call at a time: GigaChat's individual scope allows one concurrent call, and a smoke test
  that trips a concurrency limit would report a failure that is not one.
- A channel whose upstream id the provider does not list is reported in the detail, not failed:
  providers list fewer ids than they serve (YandexGPT's list omits some branches).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import click

from llmgw.cli.context import ConfigError, container

PING = "Reply with one word: ok"


@dataclass(frozen=True)
class CheckRow:
    provider: str
    check: str
    upstream: str
    ok: bool
    detail: str


@click.command("check")
@click.option(
    "--provider",
    "providers",
    multiple=True,
    help="check only this provider (repeatable); default: every provider the catalogue uses",
)
@click.option("--json", "as_json", is_flag=True, help="print the rows as JSON")
@click.pass_context
def check(ctx: click.Context, providers: tuple[str, ...], as_json: bool) -> None:
    """Verify each provider's credentials and that every catalogue version answers."""
    from sqlalchemy.exc import OperationalError

    from providers.registry import build_provider
    from routing.snapshot import load_catalogue

    resources = container(ctx)
    try:
        with resources.sessions() as session:
            catalogue = load_catalogue(session)
    except OperationalError as exc:
        raise ConfigError(
            f"database not reachable or not migrated ({exc.orig}); `llmgw db upgrade`"
        ) from None
    models = [m for m in catalogue.models.values() if not providers or m.provider in providers]
    configs = resources.provider_configs
    rows: list[CheckRow] = []
    for name in sorted({m.provider for m in models}):
        adapter = build_provider(name, configs[name])
        rows += check_provider(name, adapter, [m for m in models if m.provider == name])
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows], ensure_ascii=False, indent=2))
    else:
        click.echo(render(rows))
    failed = sum(not row.ok for row in rows)
    click.echo(f"{len(rows) - failed} passed, {failed} failed", err=True)
    ctx.exit(1 if failed or not rows else 0)


def check_provider(name: str, adapter: Any, models: Iterable[Any]) -> list[CheckRow]:
    """The credential row (the model list), then one row per live channel."""
    listed, row = list_models(name, adapter)
    rows = [row]
    for model in sorted(models, key=lambda m: m.name.lower()):
        for version in model.versions:
            if version.status == "retired":
                continue
            check_name = f"{model.name}:{version.channel}"
            rows.append(ping(name, adapter, check_name, version.upstream_id, listed))
    return rows


def list_models(name: str, adapter: Any) -> tuple[set[str] | None, CheckRow]:
    found, detail = timed(adapter.list_models)
    if isinstance(found, Exception):
        return None, CheckRow(name, "auth + models list", "-", False, detail)
    return set(found), CheckRow(
        name, "auth + models list", "-", True, f"{len(found)} models; {detail}"
    )


def ping(name: str, adapter: Any, check_name: str, upstream: str, listed: set[str] | None):
    from providers.base import CompletionRequest, Message

    request = CompletionRequest(
        upstream_model=upstream, messages=(Message("user", PING),), max_tokens=1
    )
    result, detail = timed(lambda: adapter.complete(request))
    if isinstance(result, Exception):
        return CheckRow(name, check_name, upstream, False, detail)
    note = "" if listed is None or upstream in listed else "; not in the provider's model list"
    detail = f"version {result.model_version}, {result.usage.total_tokens} tokens; {detail}{note}"
    return CheckRow(name, check_name, upstream, True, detail)


def timed(call: Callable[[], Any]) -> tuple[Any, str]:
    """The call's result (or the exception it raised) and a detail: its latency, or why."""
    from providers.errors import ProviderError

    started = time.monotonic()
    try:
        result = call()
    except ProviderError as exc:
        return exc, f"{exc.reason}: {exc.message}"[:300]
    except Exception as exc:  # a smoke test reports every failure as a row
        return exc, f"{type(exc).__name__}: {exc}"[:300]
    return result, f"{(time.monotonic() - started) * 1000:.0f} ms"


def render(rows: list[CheckRow]) -> str:
    table = [("PROVIDER", "CHECK", "UPSTREAM", "RESULT", "DETAIL")]
    table += [(r.provider, r.check, r.upstream, "ok" if r.ok else "FAIL", r.detail) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:4], widths, strict=True))
        + "  "
        + line[4]
        for line in table
    )
