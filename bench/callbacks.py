"""Callback delivery rate, and that concurrent delivery runs never send a row twice.

`--jobs` ended jobs with a callback to a receiver on 127.0.0.1, in a fresh SQLite database;
then `--runs` threads call `Deliverer.deliver_due` at once, in a loop, until every row is
delivered (as many workers kicked together would). Prints JSON: deliveries per second, the
requests the receiver got (== jobs when no row was sent twice), and attempts recorded.

    .venv/bin/python -m bench.callbacks --jobs 500 --runs 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select

from api.callbacks import callback_body
from jobs import callbacks, lifecycle
from jobs.callback_url import UrlPolicy, parse_networks
from jobs.callbacks import CallbackConfig, Deliverer
from jobs.spec import JobSpec
from routing.service import resolve
from storage.db import make_engine, make_session_factory
from storage.models import CallbackDelivery
from tests.callback_receiver import CallbackReceiver
from tests.helpers import reset_database, seed

MAX_SECONDS = 300.0


def add_ended_jobs(sessions, url: str, count: int) -> None:
    with sessions() as session:
        route = resolve(session, "yandexgpt-lite:latest")
        spec = JobSpec(
            model="yandexgpt-lite:latest",
            messages=[{"role": "user", "content": "Привет"}],
            has_callback=True,
        )
        for i in range(count):
            job_id = f"bench{i:027d}"
            lifecycle.create(session, job_id, "bench", route, spec, "interactive")
            callbacks.register(session, "bench", url, job_id=job_id)
            lifecycle.cancel(session, job_id)
        session.commit()


def run(database_url: str, jobs: int, runs: int) -> dict[str, object]:
    sessions = make_session_factory(make_engine(database_url))
    config = CallbackConfig(
        signing_secret=SecretStr("bench-callback-signing-secret-0123456789"),
        url_policy=UrlPolicy(allowed_networks=parse_networks("127.0.0.0/8")),
        per_run=50,
    )
    with CallbackReceiver() as receiver:
        add_ended_jobs(sessions, receiver.url, jobs)
        deliverer = Deliverer(sessions, config, render=callback_body)
        deadline = time.monotonic() + MAX_SECONDS

        def loop() -> None:  # until nothing is due (rows another run holds are not)
            while time.monotonic() < deadline and deliverer.due():
                deliverer.deliver_due()

        threads = [threading.Thread(target=loop) for _ in range(runs)]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - t0
        received = len(receiver.received)
    with sessions() as session:
        delivered = session.scalar(
            select(func.count()).where(CallbackDelivery.status == callbacks.DELIVERED)
        )
        attempts = session.scalar(select(func.sum(CallbackDelivery.attempts)))
    return {
        "jobs": jobs,
        "concurrent_runs": runs,
        "seconds": round(seconds, 2),
        "deliveries_per_second": round(int(delivered or 0) / seconds, 1),
        "delivered": delivered,
        "received_by_receiver": received,
        "attempts_recorded": attempts,
        "sent_twice": received - int(delivered or 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        reset_database(database_url)
        seed(database_url)
        print(json.dumps(run(database_url, args.jobs, args.runs), indent=2))


if __name__ == "__main__":
    main()
