"""Callback URLs: http(s) only, no credentials, and no private, loopback, link-local,
multicast or reserved target (IPv4 and IPv6, embedded IPv4 too) unless allowed."""

from __future__ import annotations

import ipaddress

import pytest

from jobs.callback_url import InvalidCallbackUrl, UrlPolicy, check_callback_url, parse_networks

STRICT = UrlPolicy()


def resolver(*addresses: str):
    def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


def refused(url: str, policy: UrlPolicy = STRICT, *addresses: str) -> str:
    resolve = resolver(*addresses) if addresses else None
    with pytest.raises(InvalidCallbackUrl) as caught:
        if resolve is None:
            check_callback_url(url, policy)
        else:
            check_callback_url(url, policy, resolve)
    assert caught.value.code == "invalid_callback_url"
    return caught.value.message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://93.184.216.34/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("http:///path", "no host"),
        ("https://user:pw@93.184.216.34/x", "credentials"),
        ("http://93.184.216.34:99999/x", "not a valid URL"),
        ("https://93.184.216.34/" + "a" * 2100, "longer than 2048"),
    ],
)
def test_malformed_or_non_http_urls_are_refused(url, why):
    assert why in refused(url)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("100.64.0.1", "non-global"),  # shared address space (CGNAT)
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "reserved"),  # documentation range
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
        ("2001:db8::1", "reserved"),  # documentation range
    ],
)
def test_non_public_addresses_are_refused_with_the_reason(address, kind):
    message = refused("https://hooks.example.com/cb", STRICT, address)
    assert str(ipaddress.ip_address(address)) in message and kind in message


def test_ip_literals_are_judged_without_a_resolver():
    assert "loopback" in refused("http://127.0.0.1:8080/hook")
    assert "private" in refused("http://[fd00::5]/hook")
    assert "loopback" in refused("http://localhost:9/hook")


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_accepted(address):
    found = check_callback_url("https://hooks.example.com/cb", STRICT, resolver(address))
    assert [str(a) for a in found] == [address]


def test_one_private_address_among_public_ones_is_enough_to_refuse():
    message = refused("https://hooks.example.com/cb", STRICT, "93.184.216.34", "10.0.0.7")
    assert "10.0.0.7" in message


def test_a_host_that_does_not_resolve_is_refused():
    def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(InvalidCallbackUrl, match="does not resolve"):
        check_callback_url("https://nowhere.invalid/cb", STRICT, fails)
    with pytest.raises(InvalidCallbackUrl, match="does not resolve"):
        check_callback_url("https://nowhere.invalid/cb", STRICT, resolver())


def test_allow_private_opens_every_address():
    policy = UrlPolicy(allow_private=True)
    for address in ("127.0.0.1", "10.0.0.1", "fe80::1"):
        check_callback_url("http://svc.internal/cb", policy, resolver(address))


def test_allowed_cidrs_open_only_those_networks():
    policy = UrlPolicy(allowed_networks=parse_networks("10.20.0.0/16, fd00::/8"))
    check_callback_url("http://svc.internal/cb", policy, resolver("10.20.3.4"))
    check_callback_url("http://svc.internal/cb", policy, resolver("fd00::9"))
    assert "10.21.0.1" in refused("http://svc.internal/cb", policy, "10.21.0.1")
    assert "127.0.0.1" in refused("http://svc.internal/cb", policy, "127.0.0.1")


def test_parse_networks_refuses_garbage():
    assert parse_networks("") == ()
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/8,not-a-network")
