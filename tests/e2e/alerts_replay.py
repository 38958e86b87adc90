"""Airflow repeating itself, after the alerts DAGs ran: every finished run handed to the
alerts plugin's listener again, twice (as a second scheduler, or a restarted one, would be),
then a scheduler's sweep. Run in the test's Airflow environment (its metadata database):

    python -m tests.e2e.alerts_replay

Prints ``@@REPLAYED <runs>``; whatever the plugin posts goes to the sandbox, where the test
checks that nothing new arrived.
"""

from __future__ import annotations

import sys


def main() -> int:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_imkit.plugins.alerts import listener

    config = listener.config
    if config is None:
        print("@@NO_CONFIG", flush=True)
        return 2
    with create_session() as session:
        runs = list(session.scalars(select(DagRun).where(DagRun.end_date.is_not(None))))
        session.expunge_all()
    for _ in range(2):
        for run in runs:
            state = str(getattr(run.state, "value", run.state))
            if state == "failed":
                listener.on_dag_run_failed(run, "task_failure")
            elif state == "success":
                listener.on_dag_run_success(run, "success")
    listener.sender.flush(60)
    listener.sweep(config)
    print(f"@@REPLAYED {len(runs)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
