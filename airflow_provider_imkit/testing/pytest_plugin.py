"""pytest plugin (entry point ``pytest11``): the ``imkit_sandbox`` fixture.

In your own DAG tests::

    def test_my_dag_alerts(imkit_sandbox):
        imkit_sandbox.add_room("ops")
        imkit_sandbox.add_user("airflow-bot")
        ...run the task or dag.test()...
        assert imkit_sandbox.received("ops")[-1]["message"].startswith("Done")

The server listens on a free loopback port, ``AIRFLOW_CONN_IMKIT_DEFAULT`` points at it for
the duration of the test, and everything is shut down afterwards. An exception inside the
sandbox (a bug in it, answered with HTTP 500) is re-raised at teardown, so that it fails
the test instead of passing for a network fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_imkit.sandbox import ImkitSandbox

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def imkit_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[ImkitSandbox]:
    """A running IMKIT sandbox, with ``AIRFLOW_CONN_IMKIT_DEFAULT`` set to reach it."""
    with ImkitSandbox() as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_IMKIT_DEFAULT", sandbox.connection_json())
        yield sandbox
    sandbox.check()
