"""One real deployment (Postgres, Redis, every Airflow 3 component as its own process, Celery)
for the whole module, running the example DAGs and the deployment cases against the sandbox."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_provider_imkit.sandbox import ImkitSandbox
from airflow_provider_imkit.testing.deployment import Deployment
from airflow_provider_imkit.testing.servers import servers_available
from tests.conftest import API_KEY, EXAMPLE_DAGS, ROOT

HERE = Path(__file__).parent
LOGICAL_DATE = "2026-01-02T06:00:00+00:00"
ROOMS = ["deploy-retry", "deploy-load", "deploy-deadline"]


@dataclass
class Deployed:
    deployment: Deployment
    sandbox: ImkitSandbox
    plan: dict[str, str]
    states: dict[str, str]
    runs: dict[str, str]


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the deployment test cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    import airflow

    if not airflow.__version__.startswith("3."):
        pytest.skip("the deployment test runs on Airflow 3 (api-server, dag-processor, triggerer)")
    missing = servers_available()
    if missing:
        _skip_or_fail(missing)
    plan = json.loads((EXAMPLE_DAGS / "demo.json").read_text())
    root = ROOT / ".artifacts" / "deployment-test"
    dags = root.parent / "deployment-test-dags"
    shutil.rmtree(dags, ignore_errors=True)
    dags.mkdir(parents=True)
    for source in [*EXAMPLE_DAGS.glob("*.py"), *(HERE / "dags").glob("*.py")]:
        shutil.copy(source, dags / source.name)
    with (
        ImkitSandbox(api_key=API_KEY, rooms=[*plan["rooms"], *ROOMS], users=plan["users"]) as sandbox,
        Deployment(
            root=root,
            dags_folder=dags,
            imkit_conn={"host": sandbox.url, "password": API_KEY},
            pools={"imkit": 2},
        ) as deployment,
    ):
        dag_ids = [*plan["dags"], "deploy_retry_after_drop", "deploy_mapped_sends", "deploy_deadline_alert"]
        deployment.wait_for_dags(dag_ids)
        # The fault-arming DAG runs alone: its faults are for its own send.
        runs = {"deploy_retry_after_drop": deployment.trigger("deploy_retry_after_drop", LOGICAL_DATE)}
        states = deployment.wait(runs, timeout=240)
        later = {dag_id: deployment.trigger(dag_id, LOGICAL_DATE) for dag_id in dag_ids[:-3] + dag_ids[-2:]}
        states.update(deployment.wait(later, timeout=420))
        runs.update(later)
        sandbox.flush_batches()
        yield Deployed(deployment, sandbox, plan["dags"], states, runs)
