from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from airflow_provider_imkit.client.envelope import parse_response, retry_after_from_header
from airflow_provider_imkit.exceptions import (
    ImkitApiError,
    ImkitAuthenticationError,
    ImkitBadRequestError,
    ImkitNotFoundError,
    ImkitRateLimitError,
    ImkitServerError,
)


def parse(status: int, body: object, headers: dict[str, str] | None = None) -> object:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_response(
        method="POST", path="/messages", status_code=status, headers=headers or {}, content=content
    )


def test_success_returns_result() -> None:
    result = {"_id": "a" * 24, "message": "hi", "sender": {"_id": "bot", "nickname": "Bot"}}
    assert parse(200, {"RC": 0, "RM": "OK", "result": result}) == result


def test_success_result_may_be_any_json() -> None:
    assert parse(200, {"RC": 0, "RM": "OK", "result": {"message": ["a", 1]}}) == {"message": ["a", 1]}
    assert parse(200, {"RC": "0", "result": 5}) == 5


def test_nested_error_shape() -> None:
    body = {"RC": 401, "RM": "Unauthorized", "error": {"code": "INVALID_API_KEY", "message": "Invalid key"}}
    with pytest.raises(ImkitAuthenticationError) as info:
        parse(401, body)
    error = info.value
    assert (error.status_code, error.rc, error.rm, error.code, error.message) == (
        401,
        401,
        "Unauthorized",
        "INVALID_API_KEY",
        "Invalid key",
    )
    assert (error.method, error.path) == ("POST", "/messages")
    assert str(error) == "IMKIT POST /messages failed: HTTP 401 INVALID_API_KEY: Invalid key"


def test_flat_error_shape_with_retry_after() -> None:
    body = {"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests", "retryAfter": 60}
    with pytest.raises(ImkitRateLimitError) as info:
        parse(429, body)
    assert info.value.code == "RATE_LIMIT_EXCEEDED"
    assert info.value.retry_after == 60
    assert str(info.value) == (
        "IMKIT POST /messages failed: HTTP 429 RATE_LIMIT_EXCEEDED: Too many requests (retry after 60 s)"
    )


def test_retry_after_takes_larger_of_header_and_body() -> None:
    body = {"error": "RATE_LIMIT_EXCEEDED", "retryAfter": 3}
    with pytest.raises(ImkitRateLimitError) as info:
        parse(429, body, {"Retry-After": "7"})
    assert info.value.retry_after == 7
    with pytest.raises(ImkitRateLimitError) as info:
        parse(429, body, {"Retry-After": "1"})
    assert info.value.retry_after == 3


def test_retry_after_header_only_and_http_date() -> None:
    with pytest.raises(ImkitRateLimitError) as info:
        parse(429, b"slow down", {"Retry-After": "12"})
    assert info.value.retry_after == 12
    now = datetime(2026, 1, 1, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_from_header(date, now=lambda: now.timestamp()) == pytest.approx(30)
    assert retry_after_from_header("soon") is None
    assert retry_after_from_header("-5") is None


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ImkitBadRequestError),
        (401, ImkitAuthenticationError),
        (403, ImkitAuthenticationError),
        (404, ImkitNotFoundError),
        (413, ImkitBadRequestError),
        (422, ImkitBadRequestError),
        (429, ImkitRateLimitError),
        (500, ImkitServerError),
        (502, ImkitServerError),
        (503, ImkitServerError),
        (504, ImkitServerError),
        (418, ImkitApiError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[ImkitApiError]) -> None:
    with pytest.raises(ImkitApiError) as info:
        parse(status, {"RC": status, "RM": "x"})
    assert type(info.value) is cls


def test_not_found_code_tells_room_or_client() -> None:
    body = {"RC": 404, "RM": "Not Found", "error": {"code": "CLIENT_NOT_FOUND", "message": "no such client"}}
    with pytest.raises(ImkitNotFoundError) as info:
        parse(404, body)
    assert info.value.code == "CLIENT_NOT_FOUND"


def test_html_error_page_is_summarised() -> None:
    page = (
        b"<html><head><title>502 Bad Gateway</title><style>b{}</style></head>"
        b"<body><h1>Bad &amp; Gateway</h1></body></html>"
    )
    with pytest.raises(ImkitServerError) as info:
        parse(502, page, {"Content-Type": "text/html"})
    message = info.value.message or ""
    assert "text/html" in message and "Bad & Gateway" in message
    assert "<h1>" not in message and "b{}" not in message


@pytest.mark.parametrize("content", [b"", b"   ", b'{"RC": 0, "result": {', b"\xff\xfe", b"[1, 2]", b"null"])
def test_2xx_that_is_not_an_envelope_is_an_error(content: bytes) -> None:
    with pytest.raises(ImkitApiError) as info:
        parse(200, content)
    assert type(info.value) is ImkitApiError
    assert info.value.status_code == 200


def test_2xx_with_rc_not_zero_is_an_error() -> None:
    with pytest.raises(ImkitServerError) as info:
        parse(200, {"RC": 500, "RM": "Internal error", "error": {"code": "INTERNAL", "message": "boom"}})
    assert info.value.status_code == 200 and info.value.rc == 500
    assert str(info.value) == "IMKIT POST /messages failed: HTTP 200 RC 500 INTERNAL: boom"
    with pytest.raises(ImkitApiError) as plain:
        parse(200, {"RC": 7, "RM": "Odd"})
    assert type(plain.value) is ImkitApiError and plain.value.message == "Odd"


def test_2xx_without_result_is_an_error() -> None:
    with pytest.raises(ImkitApiError, match="no 'result'"):
        parse(200, {"RC": 0, "RM": "OK"})


def test_long_server_text_is_truncated_and_redacted() -> None:
    body = {
        "RC": 400,
        "RM": "Bad",
        "error": {"code": "INVALID_REQUEST", "message": "key=SECRET " + "x" * 1000},
    }
    with pytest.raises(ImkitBadRequestError) as info:
        parse_response(
            method="POST",
            path="/messages",
            status_code=400,
            headers={},
            content=json.dumps(body).encode(),
            redact=lambda text: text.replace("SECRET", "***"),
        )
    assert "SECRET" not in str(info.value)
    assert len(info.value.message or "") <= 300


def test_errors_pickle_round_trip() -> None:
    import pickle

    with pytest.raises(ImkitRateLimitError) as info:
        parse(429, {"error": "RATE_LIMIT_EXCEEDED", "retryAfter": 5})
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is ImkitRateLimitError
    assert (copy.retry_after, copy.status_code, str(copy)) == (5, 429, str(info.value))
