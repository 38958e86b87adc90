#!/usr/bin/env bash
# The README's test command: set everything up, then lint, type-check and run the whole
# test suite on the newest supported Airflow (3.3.2, with the deployment test), and the
# suite again on every other version CI proves (scripts/airflow-versions.sh: 2.11.2).
#   scripts/test.sh [pytest args...]
# Environment:
#   IMKIT_SKIP_AIRFLOW2=1     only the newest Airflow (faster local runs)
#   IMKIT_REQUIRE_BROWSER=1   fail (instead of skip) when headless Chromium is missing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

newest="$(scripts/airflow-versions.sh newest)"
scripts/setup-venv.sh .venv "$newest"
echo "==> ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy" >&2
.venv/bin/mypy
echo "==> pytest on Airflow $newest" >&2
.venv/bin/python -m pytest "$@"

if [ "${IMKIT_SKIP_AIRFLOW2:-0}" != "1" ]; then
    for version in $(scripts/airflow-versions.sh); do
        [ "$version" = "$newest" ] && continue
        scripts/setup-venv.sh ".venv-airflow-$version" "$version"
        echo "==> pytest on Airflow $version" >&2
        ".venv-airflow-$version/bin/python" -m pytest "$@"
    done
fi
