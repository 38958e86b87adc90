"""log_masking: message objects in log events show no secret, whatever logger already exists."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest

# Importing Airflow configures its logging (structlog included): do it before the fixture does.
from airflow.providers.common.compat.sdk import mask_secret
from pydantic import BaseModel

from airflow_provider_imkit.hooks import log_masking

# Airflow 2 logs through the standard library only (log_masking is for Airflow 3's task SDK).
structlog = pytest.importorskip("structlog", reason="Airflow 3's task SDK logs through structlog")

SECRET = "s3cr3t-value-for-the-masker-42"


class MaskSecret(BaseModel):  # the shape of the task SDK's message
    value: str
    name: str | None = None


class Plain(BaseModel):
    room: str


@pytest.fixture
def captured() -> Iterator[list[dict[str, object]]]:
    events: list[dict[str, object]] = []

    def capture(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
        events.append(dict(event_dict))
        return repr(event_dict)

    before = structlog.get_config()
    structlog.configure(
        processors=[capture],
        logger_factory=structlog.ReturnLoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(0),  # DEBUG and up
    )
    try:
        yield events
    finally:
        structlog.configure(**before)


def test_a_logger_bound_before_install_is_covered(captured: list[dict[str, object]]) -> None:
    log = structlog.get_logger()
    log.debug("first")  # bound (and its processor list taken) before install
    log_masking.install()
    log_masking.install()  # once only
    log.debug("Sending request", msg=MaskSecret(value=SECRET))
    assert structlog.get_config()["processors"].count(log_masking.redact_models) == 1
    rendered = str(captured[-1]["msg"])
    assert SECRET not in rendered and "value='***'" in rendered


def test_a_model_holding_a_masked_value_is_redacted_and_others_untouched(
    captured: list[dict[str, object]],
) -> None:
    class Result(BaseModel):
        conn_id: str
        password: str

    mask_secret(SECRET)
    log_masking.install()
    log = structlog.get_logger()
    log.debug("got", msg=Result(conn_id="imkit_default", password=SECRET), other=Plain(room="ops"))
    assert SECRET not in str(captured[-1]["msg"]) and "imkit_default" in str(captured[-1]["msg"])
    assert captured[-1]["other"] == Plain(room="ops")
