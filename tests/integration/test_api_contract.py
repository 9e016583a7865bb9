"""schemathesis against a live API (real Redis, worker and emulators): every operation of
`/openapi.json`, with all checks, finds no 5xx and no answer that breaks the document."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import MASTER_KEY

pytestmark = pytest.mark.integration

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.mark.timeout(400)
def test_live_api_conforms_to_its_document(worker, live_api, tmp_path):
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            f"--config-file={Path(__file__).with_name('schemathesis.toml')}",
            "run",
            f"{live_api}/openapi.json",
            "--checks=all",
            # "schema-valid request rejected" flags every 400 for a value the schema allows;
            # ours are semantic (a model id the grammar or the catalogue refuses, a prompt
            # longer than every context window) and declared 400s, not contract breaks.
            # "use after free" expects a DELETEd resource to be gone; DELETE /v1/jobs/<id>
            # cancels the job, which stays readable with its status and attempt log.
            "--exclude-checks=positive_data_acceptance,use_after_free",
            "--max-examples=60",
            "--max-time=150",
            "--request-timeout=30",
            "--seed=1",
            "--generation-deterministic",
            "--no-color",
            f"--header=Authorization: Bearer {MASTER_KEY}",
            f"--report-dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=380,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
    print(run.stdout[-2500:])  # the totals, for the record (`pytest -s`)
