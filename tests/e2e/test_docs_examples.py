"""Every `# example:` block of docs/api.md runs against the live stack and exits 0, and so
does every Python block written for the `openai` SDK at its placeholder address and key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import MASTER_KEY

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BLOCKS = re.findall(r"```sh\n# example: ([\w-]+)\n(.*?)```", DOC.read_text("utf-8"), re.S)
# The doc's Python snippets show the SDK as a user writes it: this address and key.
PLACEHOLDER_URL, PLACEHOLDER_KEY = '"http://127.0.0.1:8000/v1"', '"<key>"'
SDK_BLOCKS = [
    block
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.S)
    if PLACEHOLDER_URL in block
]


def test_the_doc_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize(("name", "script"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_example_runs(stack, name, script):
    # `python3` in an example is this interpreter (its venv has the SDKs the examples import).
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {"LLMGW": stack["url"], "KEY": MASTER_KEY, "PATH": path}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{name}:\n{done.stdout}\n{done.stderr}"


def test_the_doc_has_sdk_snippets():
    assert len(SDK_BLOCKS) >= 3  # chat, stream, tools and JSON schema


@pytest.mark.parametrize("script", SDK_BLOCKS, ids=[f"python-{i}" for i in range(len(SDK_BLOCKS))])
def test_sdk_snippet_runs(stack, script):
    script = script.replace(PLACEHOLDER_URL, repr(stack["url"] + "/v1"))
    script = script.replace(PLACEHOLDER_KEY, repr(MASTER_KEY))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
