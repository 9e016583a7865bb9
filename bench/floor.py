"""The floor: bare Celery on the same Redis with the same pool, each task one `requests` call
to the same emulator, and nothing else (Celery's defaults; no database, no bookkeeping beyond
one INCR so the benchmark sees the task end).

Run by `bench.throughput` as `celery -A bench.floor worker -P threads -c N -Q bench.floor`,
configured through `LLMGW_BENCH_FLOOR_*` environment variables (read at import: this module
is a worker's entry point, not a library).
"""

from __future__ import annotations

import os

import redis
import requests
from celery import Celery

QUEUE = "bench.floor"
TASK = "bench.floor.call"
DONE_KEY = "bench:floor:done"

app = Celery("floor", broker=os.environ.get("LLMGW_BENCH_FLOOR_BROKER"), set_as_current=False)
app.conf.update(task_ignore_result=True, task_default_queue=QUEUE, worker_hijack_root_logger=False)

_session = requests.Session()
_session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=2000))
_redis = redis.Redis.from_url(os.environ.get("LLMGW_BENCH_FLOOR_BROKER") or "redis://")


@app.task(name=TASK)
def call(n: int) -> None:
    response = _session.post(
        os.environ["LLMGW_BENCH_FLOOR_URL"],
        json={"model": "GigaChat", "messages": [{"role": "user", "content": f"ping {n}"}]},
        headers={"Authorization": f"Bearer {os.environ['LLMGW_BENCH_FLOOR_TOKEN']}"},
        timeout=(5, 60),
    )
    response.raise_for_status()
    _redis.incr(DONE_KEY)
