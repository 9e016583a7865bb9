"""The HTTP client of callback deliveries: every connection goes to an address that passed
the URL policy at that moment (`jobs.callback_url.check_host`).

`requests` would resolve the host again when it connects, leaving a window between our check
and the connect in which a rebinding DNS server could answer with an internal address. So
the connection classes of this client resolve the host themselves, check every address and
connect to a checked one; TLS still verifies the certificate against the host name (SNI and
hostname checks use the URL's host, not the address). Redirects are never followed (the
deliverer passes `allow_redirects=False`) and environment proxies are ignored.

This overrides urllib3's `HTTPConnection._new_conn` (stable across urllib3 2.x; the pin
in pyproject.toml keeps us on it), reproducing its error mapping.
"""

from __future__ import annotations

import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection

from jobs.callback_url import Resolve, UrlPolicy, check_host

USER_AGENT = "llmgw-callbacks/1"


def checked(base: type[HTTPConnection], policy: UrlPolicy, resolve: Resolve) -> type[Any]:
    class CheckedConnection(base):  # type: ignore[valid-type,misc]
        def _new_conn(self) -> socket.socket:
            addresses = check_host(self.host, self.port, policy, resolve)  # InvalidCallbackUrl
            failure: OSError | None = None
            for address in addresses:
                try:
                    return connection.create_connection(
                        (str(address), self.port),
                        self.timeout,
                        source_address=self.source_address,
                        socket_options=self.socket_options,
                    )
                except TimeoutError as exc:
                    message = f"Connection to {self.host} timed out."
                    raise ConnectTimeoutError(self, message) from exc
                except OSError as exc:
                    failure = exc
            raise NewConnectionError(self, f"Failed to establish a new connection: {failure}")

    return CheckedConnection


class CheckedAdapter(HTTPAdapter):
    def __init__(self, policy: UrlPolicy, resolve: Resolve) -> None:
        self.policy, self.resolve = policy, resolve
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http = checked(HTTPConnection, self.policy, self.resolve)
        https = checked(HTTPSConnection, self.policy, self.resolve)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("CheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("CheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }


def callback_session(policy: UrlPolicy, resolve: Resolve) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no environment proxies: the check must see the target
    session.headers["User-Agent"] = USER_AGENT
    adapter = CheckedAdapter(policy, resolve)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
