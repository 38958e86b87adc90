"""One real deployment (Postgres, Redis, every Airflow 3 component as its own process, Celery)
for the whole module, running the example DAGs and the deployment cases against the sandbox."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_provider_imkit.sandbox import ImkitSandbox
from tests.conftest import API_KEY, EXAMPLE_DAGS, ROOT, not_the_primary_pass
from tests.deployment.harness.chat import COMMAND_DAG, TARGET_DAG, Command, chat_round, open_for_commands
from tests.deployment.harness.deployment import Deployment
from tests.deployment.harness.servers import servers_available, wait_for

HERE = Path(__file__).parent
LOGICAL_DATE = "2026-01-02T06:00:00+00:00"
ROOMS = ["deploy-retry", "deploy-load", "deploy-deadline", "deploy-hitl", "ops-alerts"]
HITL_DAG = "deploy_hitl_in_room"
#: The simple auth manager's user (all admins): an assigned user of the HITL request.
AIRFLOW_USER = "Anonymous"
ALERTS = "example_imkit_deployment_alerts"
#: A DAG file with a syntax error (it names airflow and DAG, so Airflow's safe mode parses it).
BROKEN_DAG = "from airflow.sdk import DAG\n\nwith DAG('broken_dag'  # missing parenthesis\n"


@dataclass
class Deployed:
    deployment: Deployment
    sandbox: ImkitSandbox
    plan: dict[str, str]
    states: dict[str, str]
    runs: dict[str, str]
    #: The recovery run of the alerts DAG (its failing run is in ``runs``).
    recovery_run: str
    #: demo.json's chat commands typed in the inbox page, then one typed while the triggerer
    #: was down (killed, then started again).
    chat: list[Command]


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the deployment test cannot run under CI: {reason}")
    pytest.skip(reason)


def skip_unless_deployable() -> None:
    """Skip (or, under CI, fail) where the deployment cannot or need not run."""
    import airflow

    if not airflow.__version__.startswith("3."):
        pytest.skip("the deployment test runs on Airflow 3 (api-server, dag-processor, triggerer)")
    elsewhere = not_the_primary_pass()
    if elsewhere is not None:
        # Minutes of Postgres, Redis and Celery: CI proves it once, on the newest version.
        pytest.skip(f"the deployment test is {elsewhere}")
    missing = servers_available()
    if missing:
        _skip_or_fail(missing)


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    skip_unless_deployable()
    plan = json.loads((EXAMPLE_DAGS / "demo.json").read_text())
    with (
        ImkitSandbox(
            api_key=API_KEY, rooms=[*plan["rooms"], *ROOMS], users=[*plan["users"], AIRFLOW_USER]
        ) as sandbox,
        Deployment(
            root=ROOT / ".artifacts" / "deployment-test",
            dag_sources=[EXAMPLE_DAGS, HERE / "dags"],
            imkit_conn={"host": sandbox.url, "password": API_KEY},
            pools={"imkit": 2},
            # Deployment-wide alerts: only these two settings, no notifier in the alerts DAG.
            extra_env={
                "AIRFLOW__IMKIT__ALERTS_ROOM": "ops-alerts",
                "AIRFLOW__IMKIT__ALERTS_SENDER": "airflow-bot",
            },
        ) as deployment,
    ):
        for answer in plan.get("answers", []):
            sandbox.auto_reply(**answer)  # the approver of example_imkit_approval, per run
        dag_ids = [
            *plan["dags"],
            "deploy_retry_after_drop",
            "deploy_mapped_sends",
            "deploy_deadline_alert",
            HITL_DAG,
        ]
        deployment.wait_for_dags([*dag_ids, COMMAND_DAG, TARGET_DAG])
        open_for_commands(deployment)  # the watcher starts while the other DAGs run
        # The fault-arming DAG runs alone: its faults are for its own send.
        runs = {"deploy_retry_after_drop": deployment.trigger("deploy_retry_after_drop", LOGICAL_DATE)}
        states = deployment.wait(runs, timeout=240)
        later = {
            dag_id: deployment.trigger(dag_id, LOGICAL_DATE, {"fail": True} if dag_id == ALERTS else None)
            for dag_id in dag_ids
            if dag_id != "deploy_retry_after_drop"
        }
        second = {
            f"{dag_id}@{date[:10]}": (dag_id, deployment.trigger(dag_id, date))
            for dag_id, date in plan.get("second_runs", {}).items()
        }
        # The HITL request reaches the room from the worker; answer it where Airflow takes answers.
        wait_for(lambda: sandbox.received("deploy-hitl"), "the HITL request in the room", 240)
        hitl = f"/api/v2/dags/{HITL_DAG}/dagRuns/{later[HITL_DAG]}/taskInstances/backfill_gate/-1/hitlDetails"
        deployment.api("PATCH", hitl, {"chosen_options": ["Approve"], "params_input": {}})
        states.update(deployment.wait(later, timeout=420))
        runs.update(later)
        for name, (dag_id, run_id) in second.items():
            states[name] = deployment.wait({dag_id: run_id}, timeout=240)[dag_id]
            runs[name] = run_id
        # The next run of the alerts DAG succeeds: "recovered".
        recovery = deployment.trigger(ALERTS, "2026-01-03T06:00:00+00:00", {"fail": False})
        states[f"{ALERTS} (recovery)"] = deployment.wait({ALERTS: recovery}, timeout=240)[ALERTS]
        # A DAG file with a syntax error dropped into the DAGs folder: one import-error alert.
        (deployment.dags_folder / "broken_dag.py").write_text(BROKEN_DAG)
        wait_for(
            lambda: any("broken_dag.py" in m["message"] for m in sandbox.received("ops-alerts")),
            "import alert",
            120,
        )
        sandbox.flush_batches()
        chat = chat_round(deployment, sandbox, plan["commands"], restart_triggerer=True)
        yield Deployed(deployment, sandbox, plan["dags"], states, runs, recovery, chat)
