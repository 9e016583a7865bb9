"""One release number everywhere: pyproject.toml, `llmgw --version`, the installed
package (what /healthz and the OpenAPI document show) and the changelog's latest release."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from llmgw import __version__

ROOT = Path(__file__).resolve().parents[3]


def test_the_version_is_the_same_everywhere():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert declared == __version__ == version("llmgw") == "1.1.0"


def test_the_changelog_latest_release_is_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", changelog, re.M)
    assert releases and releases[0][0] == __version__
    assert f"[{__version__}]: " in changelog  # its link
