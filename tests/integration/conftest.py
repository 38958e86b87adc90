from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_imkit.sandbox import ImkitSandbox
from tests.conftest import API_KEY


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[ImkitSandbox]:
    """A sandbox with room ``ops``, users ``bot``/``alice``/``bob``, and imkit_default pointing at it."""
    with ImkitSandbox(api_key=API_KEY, rooms=["ops"], users=["bot", "alice", "bob"]) as server:
        monkeypatch.setenv("AIRFLOW_CONN_IMKIT_DEFAULT", server.connection_json())
        yield server
    server.check()  # a bug inside the sandbox (answered 500) fails the test
