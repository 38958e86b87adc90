from __future__ import annotations

import pytest

from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.exceptions import (
    ImkitApiError,
    ImkitConfigurationError,
    ImkitConnectionError,
    ImkitNotFoundError,
    ImkitRateLimitError,
    ImkitServerError,
    ImkitTlsError,
)


def api(cls: type[ImkitApiError], status: int, retry_after: float | None = None) -> ImkitApiError:
    return cls(method="POST", path="/messages", status_code=status, retry_after=retry_after)


def conn(maybe_delivered: bool) -> ImkitConnectionError:
    return ImkitConnectionError("POST", "/messages", "x", maybe_delivered=maybe_delivered)


@pytest.mark.parametrize(
    ("error", "default", "ambiguous_on"),
    [
        (conn(False), True, True),
        (conn(True), False, True),
        (api(ImkitRateLimitError, 429, 5), True, True),
        (api(ImkitRateLimitError, 429), True, True),
        (api(ImkitServerError, 503), True, True),
        (api(ImkitServerError, 500), False, True),
        (api(ImkitServerError, 502), False, True),
        (api(ImkitServerError, 504), False, True),
        (api(ImkitNotFoundError, 404), False, False),
        (api(ImkitApiError, 200), False, False),
        (ValueError("x"), False, False),
    ],
)
def test_what_is_retried(error: BaseException, default: bool, ambiguous_on: bool) -> None:
    assert RetryPolicy().is_retryable(error) is default
    assert RetryPolicy(on_ambiguous="resend").is_retryable(error) is ambiguous_on
    assert RetryPolicy(on_ambiguous="fail").is_retryable(error) is default


def test_429_longer_than_cap_is_not_retried() -> None:
    policy = RetryPolicy(max_retry_after=30)
    assert policy.is_retryable(api(ImkitRateLimitError, 429, 30))
    assert not policy.is_retryable(api(ImkitRateLimitError, 429, 31))


def test_429_waits_what_the_server_asked() -> None:
    assert RetryPolicy().wait_before(1, api(ImkitRateLimitError, 429, 7.5)) == 7.5


def test_backoff_is_exponential_capped_and_jittered() -> None:
    low = RetryPolicy(backoff=1, max_backoff=5, jitter=0.5, random=lambda: 0.0)
    high = RetryPolicy(backoff=1, max_backoff=5, jitter=0.5, random=lambda: 1.0)
    error = conn(False)
    assert [low.wait_before(n, error) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.5]
    assert [high.wait_before(n, error) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    exact = RetryPolicy(backoff=2, jitter=0)
    assert exact.wait_before(2, error) == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": "3"},
        {"backoff": -1},
        {"jitter": 2},
        {"on_ambiguous": "yes"},
    ],
)
def test_invalid_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ImkitConfigurationError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_with_overrides_ignores_none() -> None:
    policy = RetryPolicy().with_overrides(max_attempts=5, on_ambiguous=None)
    assert policy.max_attempts == 5 and policy.on_ambiguous == "reconcile"


def test_from_int_and_coerce() -> None:
    assert RetryPolicy.from_int(2) == RetryPolicy(max_attempts=2)
    assert RetryPolicy.coerce(2) == RetryPolicy(max_attempts=2)
    assert RetryPolicy.coerce(None) is None
    policy = RetryPolicy(backoff=0)
    assert RetryPolicy.coerce(policy) is policy
    with pytest.raises(ImkitConfigurationError, match="RetryPolicy, an int or None"):
        RetryPolicy.coerce(True)


def test_tls_errors_are_never_retried() -> None:
    tls = ImkitTlsError("POST", "/messages", "TLS error: x")
    assert not RetryPolicy().is_retryable(tls)
    assert not RetryPolicy(on_ambiguous="resend").is_retryable(tls)
