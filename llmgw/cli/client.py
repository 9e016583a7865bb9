"""The client commands: `submit`, `batch ...`, `jobs ...` talk HTTP to a running gateway.

They use only the public API (the same a curl user has), with `--url`/`--key` or
`LLMGW_URL`/`LLMGW_API_KEY`; nothing here reads the database or Redis. An API error is one
line on stderr (`code: message`) and exit code 1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
import requests

TERMINAL_JOB = {"succeeded", "incomplete", "failed", "cancelled"}
TERMINAL_BATCH = {"completed", "failed", "expired", "cancelled"}


class Client:
    def __init__(self, url: str, key: str | None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"
        self.timeout = timeout

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise click.ClickException(api_error(response))
        return response

    def json(self, method: str, path: str, **kw: Any) -> Any:
        return self.call(method, path, **kw).json()


def api_error(response: requests.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
    lines = [f"{error.get('code')}: {error.get('message')}"]
    lines += [f"  line {p['line']}: {p['problem']}" for p in error.get("lines") or []]
    return "\n".join(lines)


connection = [
    click.option("--url", envvar="LLMGW_URL", default="http://127.0.0.1:8000", show_default=True),
    click.option("--key", envvar="LLMGW_API_KEY", default=None, help="API key (LLMGW_API_KEY)"),
]


def with_client(command: Any) -> Any:
    for option in reversed(connection):
        command = option(command)
    return command


def show(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


# -- submit ----------------------------------------------------------------------------------


@click.command()
@click.option("--model", "-m", required=True, help="model id, e.g. yandexgpt-lite:latest")
@click.option("--no-wait", is_flag=True, help="print the job id and return")
@click.option("--timeout", default=300.0, show_default=True, help="seconds to wait for it")
@click.option("--callback-url", default=None, help="POST the final JSON, signed, here when it ends")
@click.argument("prompt", required=False)
@with_client
def submit(
    url: str,
    key: str | None,
    model: str,
    no_wait: bool,
    timeout: float,
    callback_url: str | None,
    prompt: str | None,
) -> None:
    """Submit one completion job (PROMPT, or stdin) and print the answer."""
    text = prompt if prompt is not None else sys.stdin.read()
    client = Client(url, key)
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if callback_url is not None:
        body["callback_url"] = callback_url
    job = client.json("POST", "/v1/jobs", json=body)
    if no_wait:
        click.echo(job["id"])
        return
    job = wait_for_job(client, job, timeout)
    if job["status"] not in ("succeeded", "incomplete"):
        error = job.get("error") or {}
        raise click.ClickException(f"job {job['id']} {job['status']}: {error.get('message')}")
    click.echo(job["result"]["content"])


def wait_for_job(client: Client, job: dict[str, Any], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while job["status"] not in TERMINAL_JOB:
        if time.monotonic() > deadline:
            raise click.ClickException(f"job {job['id']} still {job['status']} after {timeout}s")
        job = client.json("GET", f"/v1/jobs/{job['id']}", params={"wait": 25})
    return job


# -- jobs ------------------------------------------------------------------------------------


@click.group()
def jobs() -> None:
    """List, show and cancel jobs (over HTTP)."""


@jobs.command("list")
@click.option("--status", default=None)
@click.option("--model", default=None)
@click.option("--batch-id", default=None)
@click.option("--limit", default=20, show_default=True)
@click.option("--after", default=None, help="the cursor printed by the previous page")
@with_client
def jobs_list(url: str, key: str | None, **filters: Any) -> None:
    params = {k: v for k, v in filters.items() if v is not None}
    page = Client(url, key).json("GET", "/v1/jobs", params=params)
    for job in page["data"]:
        click.echo(f"{job['id']}  {job['status']:<10}  {job['model']:<24}  {job['created_at']}")
    if page["has_more"]:
        click.echo(f"more: --after {page['next_cursor']}", err=True)


@jobs.command("show")
@click.argument("job_id")
@with_client
def jobs_show(url: str, key: str | None, job_id: str) -> None:
    show(Client(url, key).json("GET", f"/v1/jobs/{job_id}"))


@jobs.command("cancel")
@click.argument("job_id")
@with_client
def jobs_cancel(url: str, key: str | None, job_id: str) -> None:
    job = Client(url, key).json("DELETE", f"/v1/jobs/{job_id}")
    click.echo(f"{job['id']} {job['status']}")


# -- batch -----------------------------------------------------------------------------------


@click.group()
def batch() -> None:
    """Submit a JSONL batch, follow it, fetch its results (over HTTP)."""


@batch.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-invalid", is_flag=True, help="run the valid lines, report the others")
@click.option("--wait", is_flag=True, help="follow it to the end with a progress line")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--interval", default=2.0, show_default=True, help="seconds between polls")
@click.option("--callback-url", default=None, help="POST the final JSON, signed, here when it ends")
@with_client
def batch_submit(
    url: str,
    key: str | None,
    file: Path,
    skip_invalid: bool,
    wait: bool,
    output: Path | None,
    interval: float,
    callback_url: str | None,
) -> None:
    """Create a batch from FILE (one request a line, OpenAI's batch input format)."""
    client = Client(url, key)
    params = {"on_invalid": "skip" if skip_invalid else "reject"}
    if callback_url is not None:
        params["callback_url"] = callback_url
    headers = {"Content-Type": "application/jsonl"}
    created = client.json(
        "POST", "/v1/batches", data=file.read_bytes(), headers=headers, params=params
    )
    for problem in created.get("invalid_lines") or []:
        click.echo(f"skipped line {problem['line']}: {problem['problem']}", err=True)
    click.echo(created["id"])
    if wait or output:
        final = follow(client, created, interval)
        if output:
            save_results(client, final["id"], output)
        if final["status"] != "completed":
            raise click.ClickException(f"batch {final['id']} ended {final['status']}")


def follow(client: Client, batch_: dict[str, Any], interval: float) -> dict[str, Any]:
    """Poll until the batch ends, with a progress line on stderr."""
    started = time.monotonic()
    while batch_["status"] not in TERMINAL_BATCH:
        time.sleep(interval)
        batch_ = client.json("GET", f"/v1/batches/{batch_['id']}")
        click.echo("\r" + progress(batch_, time.monotonic() - started), nl=False, err=True)
    click.echo("", err=True)
    return batch_


def progress(batch_: dict[str, Any], elapsed: float) -> str:
    counts = batch_["request_counts"]
    ended = counts["completed"] + counts["failed"]
    rate = ended / elapsed if elapsed > 0 else 0.0
    left = counts["total"] - ended
    eta = f"{left / rate:.0f}s" if rate > 0 else "?"
    return (
        f"{batch_['status']}: {counts['completed']} done, {counts['failed']} failed, "
        f"{counts['total']} total, {rate:.1f}/s, ETA {eta}  "
    )


def save_results(client: Client, batch_id: str, output: Path) -> None:
    """The output file; the errors go beside it (`<name>.errors.jsonl`) when there are any."""
    output.write_bytes(client.call("GET", f"/v1/batches/{batch_id}/output").content)
    errors = client.call("GET", f"/v1/batches/{batch_id}/errors").content
    if errors:
        errors_path = output.with_suffix(".errors.jsonl")
        errors_path.write_bytes(errors)
        click.echo(f"errors written to {errors_path}", err=True)


@batch.command("status")
@click.argument("batch_id")
@with_client
def batch_status(url: str, key: str | None, batch_id: str) -> None:
    show(Client(url, key).json("GET", f"/v1/batches/{batch_id}"))


@batch.command("results")
@click.argument("batch_id")
@click.option("--errors", is_flag=True, help="the errors instead of the answers")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@with_client
def batch_results(
    url: str, key: str | None, batch_id: str, errors: bool, output: Path | None
) -> None:
    """The batch's output (or errors) JSONL, so far; to stdout or --output."""
    kind = "errors" if errors else "output"
    content = Client(url, key).call("GET", f"/v1/batches/{batch_id}/{kind}").content
    if output:
        output.write_bytes(content)
    else:
        click.echo(content.decode(), nl=False)


@batch.command("cancel")
@click.argument("batch_id")
@with_client
def batch_cancel(url: str, key: str | None, batch_id: str) -> None:
    found = Client(url, key).json("POST", f"/v1/batches/{batch_id}/cancel")
    click.echo(f"{found['id']} {found['status']}")


@batch.command("list")
@click.option("--limit", default=20, show_default=True)
@click.option("--after", default=None)
@with_client
def batch_list(url: str, key: str | None, limit: int, after: str | None) -> None:
    params = {"limit": limit, **({"after": after} if after else {})}
    page = Client(url, key).json("GET", "/v1/batches", params=params)
    for found in page["data"]:
        c = found["request_counts"]
        click.echo(
            f"{found['id']}  {found['status']:<11}  "
            f"{c['completed']}/{c['failed']}/{c['total']}  {found['created_at']}"
        )
    if page["has_more"]:
        click.echo(f"more: --after {page['next_cursor']}", err=True)
