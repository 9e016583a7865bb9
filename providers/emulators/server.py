"""Run an emulator app: blocking in the foreground (CLI) or in a background thread (tests).

Both modes cancel a handler when its client disconnects, so a request hung by a ``timeout``
fault frees its concurrency slot as soon as the client gives up, and accept a deep listen
backlog so that a thousand clients connecting at once are not refused.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from aiohttp import web

BACKLOG = 4096
SHUTDOWN_TIMEOUT = 2.0


def serve(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down cleanly (HTTPS with ``ssl_context``)."""
    scheme = "https" if ssl_context else "http"
    web.run_app(
        app,
        host=host,
        port=port,
        ssl_context=ssl_context,
        backlog=BACKLOG,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        handler_cancellation=True,
        access_log=None,
        print=lambda *_: print(f"emulator listening on {scheme}://{host}:{port}", flush=True),
    )


@dataclass
class RunningServer:
    url: str
    _loop: asyncio.AbstractEventLoop
    _runner: web.AppRunner
    _thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        future.result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)


def start_in_thread(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> RunningServer:
    """Start serving on a daemon thread with its own event loop; port 0 picks a free port.
    With ``ssl_context`` the server speaks HTTPS and ``url`` starts with ``https://``."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(
        app, handler_cancellation=True, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
    )
    ready: Future[None] = Future()
    thread = threading.Thread(
        target=_run, args=(loop, runner, (host, port, ssl_context), ready), daemon=True
    )
    thread.start()
    ready.result()  # re-raises a failure to bind
    bound_host, bound_port = runner.addresses[0][:2]
    scheme = "https" if ssl_context else "http"
    return RunningServer(f"{scheme}://{bound_host}:{bound_port}", loop, runner, thread)


def _run(loop, runner: web.AppRunner, where: tuple, ready: Future[None]) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_start_site(runner, *where))
    except BaseException as error:  # handed to the starting thread
        ready.set_exception(error)
        loop.close()
        return
    ready.set_result(None)
    loop.run_forever()
    loop.close()


async def _start_site(runner: web.AppRunner, host: str, port: int, ssl_context) -> None:
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=BACKLOG, ssl_context=ssl_context)
    await site.start()
