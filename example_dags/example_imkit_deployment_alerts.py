"""
A DAG with no IMKIT code at all: deployment-wide alerts cover it.

Set ``AIRFLOW__IMKIT__ALERTS_ROOM`` (and ``AIRFLOW__IMKIT__ALERTS_SENDER``) on every
component and the ``imkit_alerts`` plugin posts ONE grouped message when a run fails (here:
four mapped tasks failing when the run's conf says ``{"fail": true}``), "recovered" when
the next run succeeds, and a message when a DAG file cannot be imported.
``scripts/demo.sh --celery`` shows all three.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

with DAG(
    dag_id="example_imkit_deployment_alerts",
    description="Mapped loads that fail on demand; alerted by the deployment-wide plugin",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    tags=["example", "imkit"],
) as dag:

    @task
    def load_partition(partition: int, **context: object) -> int:
        """Load one partition; fails when the run was triggered with {"fail": true}."""
        dag_run = context["dag_run"]
        if (getattr(dag_run, "conf", None) or {}).get("fail"):
            raise RuntimeError(f"partition {partition} rejected by the warehouse")
        return partition

    load_partition.expand(partition=[0, 1, 2, 3])
