"""Property tests: no response body breaks the parser; validation never lets through what
the server would reject for its type."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_imkit.client.envelope import parse_response
from airflow_provider_imkit.exceptions import ImkitApiError, ImkitValidationError
from airflow_provider_imkit.hooks.imkit import ImkitHook
from airflow_provider_imkit.sandbox.app import SandboxApp
from tests.conftest import API_KEY

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
envelope_like = st.fixed_dictionaries(
    {},
    optional={
        "RC": json_values,
        "RM": json_values,
        "result": json_values,
        "error": json_values
        | st.fixed_dictionaries({}, optional={"code": json_values, "message": json_values}),
        "message": json_values,
        "retryAfter": json_values,
    },
)
bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | envelope_like.map(lambda v: json.dumps(v).encode())
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Retry-After": st.text(max_size=40),
        "Content-Type": st.sampled_from(["application/json", "text/html", ""]),
    },
)


@settings(max_examples=400, deadline=None)
@given(status=st.integers(min_value=100, max_value=599), content=bodies, response_headers=headers)
def test_any_response_is_a_result_or_an_imkit_api_error(
    status: int, content: bytes, response_headers: dict[str, str]
) -> None:
    try:
        result = parse_response(
            method="POST", path="/messages", status_code=status, headers=response_headers, content=content
        )
    except ImkitApiError as error:
        assert error.status_code == status  # noqa: PT017 (either outcome is valid here)
        str(error)  # always printable
    else:
        assert 200 <= status <= 299
        assert json.loads(content)["result"] == result


fields = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
    st.lists(st.one_of(st.text(max_size=6), st.integers(), st.none()), max_size=3),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
)  # fmt: skip


@pytest.fixture
def captured_body(conn_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch) -> Any:
    conn_env(host="http://127.0.0.1:9", password=API_KEY)
    hook = ImkitHook()
    bodies: list[dict[str, Any]] = []

    def fake_request(method: str, path: str, **kwargs: Any) -> tuple[Any, int]:
        bodies.append(kwargs["json_body"])
        return {"_id": "x"}, 1

    monkeypatch.setattr(hook, "request", fake_request)
    return hook, bodies


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    room=fields, sender=fields, message=fields, message_type=fields, push=fields, skip=fields, mentions=fields
)
def test_validation_never_accepts_what_the_server_rejects_for_type(
    captured_body: Any,
    room: Any,
    sender: Any,
    message: Any,
    message_type: Any,
    push: Any,
    skip: Any,
    mentions: Any,
) -> None:
    hook, sent = captured_body
    sent.clear()
    try:
        hook.send_message(
            room=room, sender=sender, message=message, message_type=message_type,
            push=push, skip_total_badge=skip, mentions=mentions,
        )  # fmt: skip
    except ImkitValidationError:
        return
    (body,) = sent
    server = SandboxApp([API_KEY], auto_create=True)
    answer = server.handle("POST", "/messages", json.dumps(body).encode())
    assert answer.status == 200, (body, answer.body)
