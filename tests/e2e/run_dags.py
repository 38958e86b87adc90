"""Run DAGs with ``dag.test()`` in ONE process (the first run pays the imports, the rest are
fast) and print one ``@@RESULT {json}`` line per DAG: its id and final state.

    python -m tests.e2e.run_dags DAG_ID[=JSON_CONF] [DAG_ID[=JSON_CONF]...]

The environment (AIRFLOW_HOME, DAGS_FOLDER, connections) comes from the caller.
"""

from __future__ import annotations

import json
import sys


def main(dag_ids: list[str]) -> int:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    from airflow.configuration import conf

    bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    if bag.import_errors:
        print(f"@@IMPORT_ERRORS {json.dumps(bag.import_errors)}", flush=True)
        return 2
    for spec in dag_ids:
        dag_id, _, run_conf = spec.partition("=")
        print(f"@@START {dag_id}", flush=True)
        run = bag.get_dag(dag_id).test(run_conf=json.loads(run_conf) if run_conf else None)
        state = str(getattr(run.state, "value", run.state))
        print(f"@@RESULT {json.dumps({'dag_id': dag_id, 'run_id': run.run_id, 'state': state})}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
