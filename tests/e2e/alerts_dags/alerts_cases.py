"""DAGs for the deployment-wide alerts tests: no notifier anywhere, only [imkit] settings."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

START = pendulum.datetime(2026, 1, 1, tz="UTC")

# Several mapped tasks fail when the run's conf says so: ONE grouped alert per failed run.
with DAG("alerts_etl", start_date=START, schedule=None, catchup=False, tags=["etl"]):

    @task
    def load(part: int, **context: object) -> int:
        dag_run = context["dag_run"]
        if getattr(dag_run, "conf", {}).get("fail"):
            raise RuntimeError(f"partition {part} rejected by the warehouse")
        return part

    load.expand(part=[0, 1, 2, 3])

# A tagged DAG, routed to its own room by alerts_routes.
with DAG("alerts_finance", start_date=START, schedule=None, catchup=False, tags=["finance"]):

    @task
    def close_books() -> None:
        raise RuntimeError("ledger out of balance")

    close_books()
