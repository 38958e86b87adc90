#!/usr/bin/env bash
# The README's test command: set everything up, then lint, type-check and run the whole
# test suite on the newest supported Airflow (3.3.2, with the deployment test), and the
# suite again on every other version CI proves (scripts/airflow-versions.sh).
#   scripts/test.sh [pytest args...]
# Environment:
#   IMKIT_SKIP_AIRFLOW2=1     only the newest Airflow (faster local runs)
#   IMKIT_PYTEST_WORKERS=N    pytest-xdist workers (default 2; 0 runs in one process)
#   IMKIT_REQUIRE_BROWSER=1   fail (instead of skip) when headless Chromium is missing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

newest="$(scripts/airflow-versions.sh newest)"
# Two workers on two cores: a worker mostly waits on Airflow child processes or the
# deployment's servers, so the end-to-end groups overlap with the rest of the suite.
# --dist loadgroup keeps each group (one module's or the session's DAG runs) in one worker.
xdist=(-n "${IMKIT_PYTEST_WORKERS:-2}" --dist loadgroup)
scripts/setup-venv.sh .venv "$newest"
echo "==> ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy" >&2
.venv/bin/mypy
echo "==> pytest on Airflow $newest" >&2
.venv/bin/python -m pytest "${xdist[@]}" "$@"

if [ "${IMKIT_SKIP_AIRFLOW2:-0}" != "1" ]; then
    for version in $(scripts/airflow-versions.sh); do
        [ "$version" = "$newest" ] && continue
        scripts/setup-venv.sh ".venv-airflow-$version" "$version"
        echo "==> pytest on Airflow $version" >&2
        ".venv-airflow-$version/bin/python" -m pytest "${xdist[@]}" "$@"
    done
fi
