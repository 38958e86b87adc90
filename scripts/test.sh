#!/usr/bin/env bash
# The README's test command: set everything up, then lint, type-check and run the whole
# test suite on Airflow 3.3.2, and the suite again on Airflow 2.11.2.
#   scripts/test.sh [pytest args...]
# Environment:
#   IMKIT_SKIP_AIRFLOW2=1     skip the Airflow 2.11.2 pass (faster local runs)
#   IMKIT_REQUIRE_BROWSER=1   fail (instead of skip) when headless Chromium is missing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup-venv.sh .venv 3.3.2
echo "==> ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy" >&2
.venv/bin/mypy
echo "==> pytest on Airflow 3.3.2" >&2
.venv/bin/python -m pytest "$@"

if [ "${IMKIT_SKIP_AIRFLOW2:-0}" != "1" ]; then
    scripts/setup-venv.sh .venv-airflow2 2.11.2
    echo "==> pytest on Airflow 2.11.2" >&2
    .venv-airflow2/bin/python -m pytest "$@"
fi
