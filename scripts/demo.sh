#!/usr/bin/env bash
# The README's first command: set everything up, run the example DAGs in real Airflow
# against the local IMKIT sandbox, and print what each room received.
#   scripts/demo.sh [--serve] [--port N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-venv.sh .venv "${AIRFLOW_VERSION:-3.3.2}"
exec .venv/bin/python scripts/demo.py "$@"
