"""Tools for testing DAGs that talk to IMKIT: a local server and helpers that run DAGs.

The public API for your own tests (only the standard library is imported here)::

    from airflow_provider_imkit.testing import (
        ImkitSandbox, Fault, DagRunOutcome, airflow_env, migrate, run_dag,
    )

- :class:`ImkitSandbox`: a local IMKIT-compatible server (see :mod:`airflow_provider_imkit.sandbox`).
  ``sandbox.check()`` re-raises a bug the sandbox met while answering (it answered 500).
- :class:`Fault`: scripted failures for ``sandbox.inject(path, fault, times)``.
- :func:`airflow_env`, :func:`migrate`, :func:`run_dag` and :class:`DagRunOutcome`: run a DAG
  for real with ``airflow dags test`` in a child process that reaches the sandbox through
  ``AIRFLOW_CONN_IMKIT_DEFAULT``.
- :func:`arm_faults` (:mod:`.control`): script the sandbox's faults from inside a running DAG.
- The pytest fixture ``imkit_sandbox`` (:mod:`.pytest_plugin`, registered as a ``pytest11``
  plugin, so it is available as soon as this package is installed): a running sandbox with
  ``AIRFLOW_CONN_IMKIT_DEFAULT`` pointing at it; a sandbox bug fails the test at teardown.

Example::

    def test_my_dag(imkit_sandbox, tmp_path):
        imkit_sandbox.add_room("ops")
        imkit_sandbox.add_user("airflow-bot")
        env = airflow_env(tmp_path, "dags/", {"AIRFLOW_CONN_IMKIT_DEFAULT": imkit_sandbox.connection_json()})
        migrate(env)
        outcome = run_dag("my_dag", env)
        assert outcome.succeeded, outcome.output
        assert imkit_sandbox.received("ops")[-1]["message"].startswith("Done")
"""

from __future__ import annotations

from airflow_provider_imkit.sandbox import DEFAULT_API_KEY, Fault, ImkitSandbox
from airflow_provider_imkit.testing.control import arm_faults
from airflow_provider_imkit.testing.dagrun import DagRunOutcome, airflow_bin, airflow_env, migrate, run_dag

__all__ = [
    "DEFAULT_API_KEY",
    "DagRunOutcome",
    "Fault",
    "ImkitSandbox",
    "airflow_bin",
    "airflow_env",
    "arm_faults",
    "migrate",
    "run_dag",
]
