from __future__ import annotations

import logging

import pytest

from airflow_provider_imkit.client import settings
from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.exceptions import ImkitConfigurationError


@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        ("https://app.imkit.io", None, None, "https://app.imkit.io"),
        ("https://app.imkit.io/", None, None, "https://app.imkit.io"),
        ("https://app.imkit.io///", None, None, "https://app.imkit.io"),
        ("http://127.0.0.1:8099", None, None, "http://127.0.0.1:8099"),
        ("https://chat.example.com/imkit/api/", None, None, "https://chat.example.com/imkit/api"),
        ("HTTPS://App.imkit.io", None, None, "https://App.imkit.io"),
        ("app.imkit.io", None, None, "https://app.imkit.io"),
        ("app.imkit.io", "", None, "https://app.imkit.io"),
        ("127.0.0.1", "http", 8099, "http://127.0.0.1:8099"),
        ("localhost", "HTTP", 8099, "http://localhost:8099"),
        ("app.imkit.io", "https", 8443, "https://app.imkit.io:8443"),
        ("http://127.0.0.1", None, 8099, "http://127.0.0.1:8099"),
        ("http://127.0.0.1:9000", None, 8099, "http://127.0.0.1:9000"),
        ("chat.example.com/prefix/", "https", None, "https://chat.example.com/prefix"),
        ("  https://app.imkit.io  ", None, None, "https://app.imkit.io"),
        ("http://[::1]:8099", None, None, "http://[::1]:8099"),
    ],
)
def test_base_url(host: str, schema: str | None, port: int | None, expected: str) -> None:
    assert settings.base_url_from("c", host, schema, port) == expected


@pytest.mark.parametrize(
    ("host", "schema", "problem"),
    [
        (None, None, "no host"),
        ("", None, "no host"),
        ("ftp://files.example.com", None, "unsupported URL scheme 'ftp'"),
        ("app.imkit.io", "ws", "unsupported URL scheme 'ws'"),
        ("https://app.imkit.io?x=1", None, "query string"),
        ("https://user:pw@app.imkit.io", None, "credentials"),
        ("https://app.imkit.io:99999", None, "invalid port"),
        ("https://", None, "no host name"),
    ],
)
def test_base_url_errors_name_the_connection(host: str | None, schema: str | None, problem: str) -> None:
    with pytest.raises(ImkitConfigurationError, match=problem) as info:
        settings.base_url_from("my_imkit", host, schema, None)
    assert "'my_imkit'" in str(info.value)


def test_plain_http_to_remote_host_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_provider_imkit.client.settings"):
        settings.base_url_from("c", "http://chat.example.com", None, None)
        settings.base_url_from("c", "http://chat.example.com", None, None)
        settings.base_url_from("c", "http://127.0.0.1:1", None, None)
        settings.base_url_from("c", "http://localhost:1", None, None)
    warnings = [r for r in caplog.records if "plain http" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize("key", ["abc def", "abc\n", "\tabc", "abc\x00", "ключ-ключ"])
def test_bad_api_key_rejected_without_echo(key: str) -> None:
    with pytest.raises(ImkitConfigurationError) as info:
        settings.api_key_from("c", key)
    assert key.strip() not in str(info.value)
    assert "not shown" in str(info.value)


def test_missing_api_key() -> None:
    with pytest.raises(ImkitConfigurationError, match="'c': no API key"):
        settings.api_key_from("c", None)


def test_timeouts() -> None:
    assert settings.timeout_from("c", {}) == (10.0, 30.0)
    assert settings.timeout_from("c", {"timeout": 5}) == (5.0, 5.0)
    assert settings.timeout_from("c", {"timeout": "5", "read_timeout": 60}) == (5.0, 60.0)
    assert settings.timeout_from("c", {"extra__imkit__timeout": "7"}) == (7.0, 7.0)
    assert settings.timeout_from("c", {"timeout": 5}, override=(1, 2)) == (1.0, 2.0)
    assert settings.timeout_from("c", {}, override=3) == (3.0, 3.0)
    for bad in ({"timeout": "soon"}, {"timeout": 0}, {"timeout": -1}, {"read_timeout": float("inf")}):
        with pytest.raises(ImkitConfigurationError, match="positive number|number of seconds"):
            settings.timeout_from("c", bad)


def test_verify(caplog: pytest.LogCaptureFixture) -> None:
    assert settings.verify_from("c", {}) is True
    assert settings.verify_from("c", {"verify": "/etc/ssl/ca.pem"}) == "/etc/ssl/ca.pem"
    assert settings.verify_from("c", {"verify": True}) is True
    with caplog.at_level(logging.WARNING):
        assert settings.verify_from("c", {"verify": "false"}) is False
    assert "verification is OFF" in caplog.text


def test_retry_extras() -> None:
    policy = settings.retry_from(
        "c", {"max_attempts": "5", "backoff": "0.5", "retry_on_ambiguous": "true"}, RetryPolicy()
    )
    assert (policy.max_attempts, policy.backoff, policy.on_ambiguous) == (5, 0.5, "resend")
    assert settings.retry_from("c", {"on_ambiguous": "fail"}).on_ambiguous == "fail"
    assert settings.retry_from("c", {"retry_on_ambiguous": False}).on_ambiguous == "reconcile"
    with pytest.raises(ImkitConfigurationError, match="'c'.*on_ambiguous.*reconcile, fail, resend"):
        settings.retry_from("c", {"on_ambiguous": "twice"})
    with pytest.raises(ImkitConfigurationError, match="'c'.*max_attempts"):
        settings.retry_from("c", {"max_attempts": "many"}, RetryPolicy())
    with pytest.raises(ImkitConfigurationError, match="'c'.*max_attempts"):
        settings.retry_from("c", {"max_attempts": 0}, RetryPolicy())
    with pytest.raises(ImkitConfigurationError, match="retry_on_ambiguous"):
        settings.retry_from("c", {"retry_on_ambiguous": "perhaps"}, RetryPolicy())


def test_read_back_settle_extra() -> None:
    assert RetryPolicy().settle == 10.0
    assert settings.retry_from("c", {"read_back_settle": "2.5"}).settle == 2.5
    assert settings.retry_from("c", {"read_back_settle": 0}).settle == 0.0  # trust the first read
    with pytest.raises(ImkitConfigurationError) as info:
        settings.retry_from("c", {"read_back_settle": -1})
    # Named once: the field, the connection, what it must be.
    assert (
        str(info.value) == "IMKIT connection 'c': extra 'read_back_settle' must be 0 or more seconds, got -1"
    )
    with pytest.raises(ImkitConfigurationError, match="'c'.*settle"):
        settings.retry_from("c", {"read_back_settle": 7200})  # over an hour: out of range


def test_unknown_extras() -> None:
    assert settings.unknown_extras({"timeout": 1, "timout": 2, "headers": {}}) == ["headers", "timout"]


def test_settings_repr_hides_key() -> None:
    s = settings.ImkitSettings("c", "https://x", "SECRET-KEY", (1, 2), 120.0, True, None, RetryPolicy())
    assert "SECRET-KEY" not in repr(s) and "SECRET-KEY" not in str(s)


def test_proxy() -> None:
    assert settings.proxy_from({}) is None
    assert settings.proxy_from({"proxy": ""}) is None
    assert settings.proxy_from({"proxy": "http://p:3128"}) == "http://p:3128"
    assert settings.proxy_from({"extra__imkit__proxy": "http://p:3128"}) == "http://p:3128"


@pytest.mark.parametrize(
    ("host", "schema", "conn_type", "expected", "assumed"),
    [
        ("127.0.0.1", None, "http", "http://127.0.0.1:8099", False),
        ("127.0.0.1", "", "https", "https://127.0.0.1:8099", False),
        ("127.0.0.1", None, "imkit", "https://127.0.0.1:8099", True),
        ("127.0.0.1", "http", "imkit", "http://127.0.0.1:8099", False),
        ("http://127.0.0.1", None, "imkit", "http://127.0.0.1:8099", False),
        ("https://127.0.0.1", None, "http", "https://127.0.0.1:8099", False),
        ("127.0.0.1", "imkit/api", "http", "http://127.0.0.1:8099/imkit/api", False),
        ("127.0.0.1", "https", "http", "https://127.0.0.1:8099", False),
    ],
)
def test_connection_type_gives_the_scheme(
    host: str, schema: str | None, conn_type: str, expected: str, assumed: bool
) -> None:
    """A URI ``http://:KEY@host:port`` is a connection of type http: plain http, not https."""
    found = settings.settings_from(
        "c", host=host, password="k" * 20, schema=schema, port=8099, conn_type=conn_type
    )
    assert (found.base_url, found.scheme_assumed) == (expected, assumed)


def test_every_extra_comes_from_one_table() -> None:
    from airflow_provider_imkit.get_provider_info import CONN_FIELDS, EXTRAS

    assert set(settings.KNOWN_EXTRAS) == set(EXTRAS)
    assert set(CONN_FIELDS) <= set(EXTRAS)
    assert settings.unknown_extras({"timout": 3, "max_attemps": 2, "timeout": 1}) == ["max_attemps", "timout"]


def test_ca_bundle_extra_names_the_bundle_and_verify_false_still_wins() -> None:
    def verify(**extras: object) -> object:
        return settings.verify_from("c", extras)

    assert verify(ca_bundle="/etc/ssl/imkit.pem") == "/etc/ssl/imkit.pem"
    assert verify(ca_bundle="/etc/ssl/imkit.pem", verify=True) == "/etc/ssl/imkit.pem"
    assert verify(ca_bundle="/etc/ssl/imkit.pem", verify=False) is False
    assert verify(ca_bundle="") is True  # the form saves an empty field as ""
    assert verify(verify="/opt/ca.pem") == "/opt/ca.pem"  # the older spelling still works
