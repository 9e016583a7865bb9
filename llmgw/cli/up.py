"""`llmgw up`: the whole stack in the foreground (the supervisor is `llmgw.stack`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from llmgw.settings import load_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--api-port", default=8000, show_default=True)
@click.option("--flower-port", default=5555, show_default=True)
@click.option("--var-dir", default="var", show_default=True, type=click.Path(path_type=Path))
def up(host: str, api_port: int, flower_port: int, var_dir: Path) -> None:
    """Run the whole stack in the foreground until Ctrl-C."""
    from llmgw.stack import run_stack

    load_settings()  # fail fast on a malformed environment, before any child starts
    sys.exit(run_stack(host, api_port, flower_port, var_dir))
