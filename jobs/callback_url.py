"""Which callback URLs llmgw will call: http(s) only, and never a private network by default.

A callback makes llmgw send a request wherever a client says, from inside the operator's
network, so a URL whose host resolves to a loopback, private, link-local, shared (CGNAT),
multicast, reserved or otherwise non-global address is refused (server-side request
forgery). The operator opens private targets with `LLMGW_CALLBACK_ALLOW_PRIVATE=true`, or
only some networks with `LLMGW_CALLBACK_ALLOWED_CIDRS` (e.g. `10.20.0.0/16,fd00::/8`).

Every address the host resolves to must pass. The check runs when the job or batch is
submitted (a 400 `invalid_callback_url` that says why) and again for each delivery, on the
very addresses the connection then goes to (`jobs.callback_http` resolves once, checks, and
connects to the checked address), so a name that later resolves to an internal address (DNS
rebinding, even between a check and the connect) is not called.

IPv6 addresses that embed an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002::/16`,
Teredo) are judged by the embedded address too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from jobs.errors import JobError

MAX_URL_LENGTH = 2048
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int], list[str]]


class InvalidCallbackUrl(JobError):
    code = "invalid_callback_url"


@dataclass(frozen=True)
class UrlPolicy:
    allow_private: bool = False
    allowed_networks: tuple[IpNetwork, ...] = ()


def parse_networks(text: str) -> tuple[IpNetwork, ...]:
    """`10.0.0.0/8, fd00::/8` → networks; a malformed entry raises ValueError."""
    return tuple(ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip())


def resolve_host(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def check_callback_url(
    url: str, policy: UrlPolicy, resolve: Resolve = resolve_host
) -> list[IpAddress]:
    """The addresses the URL's host resolves to, or `InvalidCallbackUrl` saying why not."""
    host, port = url_host(url)
    return check_host(host, port, policy, resolve)


def check_host(host: str, port: int, policy: UrlPolicy, resolve: Resolve) -> list[IpAddress]:
    """Every address `host` resolves to, if each may be called; else `InvalidCallbackUrl`."""
    try:
        found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(host, port)]
    except (OSError, UnicodeError, ValueError):
        raise InvalidCallbackUrl(f"The callback URL's host {host!r} does not resolve.") from None
    if not found:
        raise InvalidCallbackUrl(f"The callback URL's host {host!r} does not resolve.")
    for address in found:
        problem = refusal(address, policy)
        if problem is not None:
            raise InvalidCallbackUrl(
                f"The callback URL's host {host!r} resolves to {address}, {problem}; llmgw "
                "only calls public addresses unless the operator allows private networks."
            )
    return found


def url_host(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL without credentials, or `InvalidCallbackUrl`."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidCallbackUrl(f"The callback URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidCallbackUrl("The callback URL is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidCallbackUrl("The callback URL must be an http:// or https:// URL.")
    if not parts.hostname:
        raise InvalidCallbackUrl("The callback URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise InvalidCallbackUrl(
            "The callback URL must not carry credentials (user:password@); verify the "
            "signature instead."
        )
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def refusal(address: IpAddress, policy: UrlPolicy) -> str | None:
    """Why llmgw will not call this address (None: it may)."""
    if policy.allow_private or any(address in net for net in policy.allowed_networks):
        return None
    for inner in embedded_ipv4(address):
        problem = refusal(inner, policy)
        if problem is not None:
            return problem
    return kind_of(address)


def kind_of(address: IpAddress) -> str | None:
    """The class of a non-public address; None for a public unicast one."""
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_private:
        return "a private or reserved address"
    if address.is_reserved or not address.is_global:
        return "a reserved (non-global) address"
    return None


def embedded_ipv4(address: IpAddress) -> Iterable[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return ()
    inner = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    return [a for a in inner if a is not None]
