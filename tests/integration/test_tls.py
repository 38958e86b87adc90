"""TLS: verification is on by default; a CA bundle or verify=false (with a warning) work."""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_imkit.exceptions import ImkitConnectionError
from airflow_provider_imkit.hooks.imkit import ImkitHook
from airflow_provider_imkit.sandbox import ImkitSandbox
from tests.conftest import API_KEY

# With pytest-xdist: the module's certificates and server are made once, in one worker.
pytestmark = pytest.mark.xdist_group("tls")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imkit-sandbox-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_sandbox(certificate: tuple[Path, Path]) -> Iterator[ImkitSandbox]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with ImkitSandbox(api_key=API_KEY, rooms=["ops"], users=["bot"], ssl_context=context) as sandbox:
        yield sandbox


def use(monkeypatch: pytest.MonkeyPatch, sandbox: ImkitSandbox, **extra: object) -> None:
    conn = {"conn_type": "imkit", "host": sandbox.url, "password": API_KEY, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_IMKIT_DEFAULT", json.dumps(conn))


def test_untrusted_certificate_is_refused_by_default(
    tls_sandbox: ImkitSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, tls_sandbox)
    sleeps: list[float] = []
    with (
        pytest.raises(ImkitConnectionError, match="TLS error") as info,
        ImkitHook(sleep=sleeps.append) as hook,
    ):
        hook.send_message(room="ops", sender="bot", message="over TLS")
    assert info.value.maybe_delivered is False
    assert sleeps == []  # a certificate problem is not retried
    assert tls_sandbox.received("ops") == []
    ok, text = ImkitHook().test_connection()
    assert not ok and "set the extra 'ca_bundle' to the CA bundle's path" in text


def test_ca_bundle_in_verify(
    tls_sandbox: ImkitSandbox, monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]
) -> None:
    use(monkeypatch, tls_sandbox, verify=str(certificate[0]))
    with ImkitHook() as hook:
        hook.send_message(room="ops", sender="bot", message="over TLS ✅")
    assert tls_sandbox.received("ops")[0]["message"] == "over TLS ✅"


def test_verify_false_works_and_warns(
    tls_sandbox: ImkitSandbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use(monkeypatch, tls_sandbox, verify=False)
    with caplog.at_level(logging.WARNING), ImkitHook() as hook:
        hook.send_message(room="ops", sender="bot", message="unverified")
    captured = capsys.readouterr()
    assert "TLS certificate verification is OFF" in caplog.text + captured.out + captured.err
    assert len(tls_sandbox.received("ops")) == 1
