#!/usr/bin/env bash
# The Airflow versions CI proves, oldest first (one constraints file each in constraints/).
#   scripts/airflow-versions.sh          all of them
#   scripts/airflow-versions.sh newest   the newest (the default venv, lint, the deployment test)
# The README's supported-versions table says what CI proves on each.
set -euo pipefail
versions=(2.11.2 3.0.6 3.1.8 3.2.2 3.3.2)
if [ "${1:-}" = "newest" ]; then
    echo "${versions[-1]}"
else
    echo "${versions[@]}"
fi
