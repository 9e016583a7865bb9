"""A throwaway root CA and a server certificate for 127.0.0.1, for HTTPS tests."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

EXTENSIONS = (
    "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
    "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
)


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def make_test_ca(directory: Path) -> Path:
    """Write ca.pem/ca.key and server.pem/server.key (for IP 127.0.0.1) into `directory`."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test CA")
    (directory / "ext.cnf").write_text(EXTENSIONS)
    key = ("-newkey", "rsa:2048", "-nodes")
    _openssl(
        directory,
        "req",
        "-x509",
        *key,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=llmgw test root CA",
    )
    _openssl(
        directory,
        "req",
        *key,
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    _openssl(
        directory,
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    )
    return directory


def server_context(ca_dir: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(ca_dir / "server.pem", ca_dir / "server.key")
    return context
