"""`llmgw`: the one entry point for people (stack, API, worker, emulators, database, catalogue).

One module per command group: `up` (the whole stack), `services` (one process each: api,
worker, beat, flower, emulator), `db`, `models`, `keys` (and `usage`); `client` (`submit`,
`batch`, `jobs`: HTTP to a running gateway); `check` (a post-deploy smoke test of the
providers' credentials and every catalogue version). `context` builds the shared resources a command
uses and turns configuration errors into one line and exit code 2.
"""

from __future__ import annotations

import click

from llmgw import __version__
from llmgw.cli.check import check
from llmgw.cli.client import batch, jobs, submit
from llmgw.cli.context import ConfigGroup
from llmgw.cli.db import db
from llmgw.cli.keys import keys, usage
from llmgw.cli.models import models
from llmgw.cli.services import api, beat, emulator, flower, worker
from llmgw.cli.up import up


@click.group(cls=ConfigGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llmgw")
def main() -> None:
    """llmgw: an LLM gateway for YandexGPT and GigaChat."""


for command in (
    *(up, api, worker, beat, flower, emulator, db, models, keys, usage),
    *(submit, batch, jobs, check),
):
    main.add_command(command)
