#!/usr/bin/env bash
# Refresh the pinned test environments: one constraints file per tested Airflow version,
# resolved by uv from pyproject.toml (with the test and lint extras) for Python 3.11.
#   scripts/constraints.sh [AIRFLOW_VERSION...]     (default: every version in constraints/)
# scripts/setup-venv.sh installs with these files, so CI and every machine get the same set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
uv="$(scripts/uv.sh)"
versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
    for file in constraints/airflow-*.txt; do
        name="${file##*/airflow-}"
        versions+=("${name%.txt}")
    done
fi
for version in "${versions[@]}"; do
    echo "==> constraints/airflow-$version.txt" >&2
    extras=(--extra test --extra lint)
    # The deployment test (Celery, Postgres, Redis) runs on Airflow 3 only.
    [ "${version%%.*}" -ge 3 ] && extras+=(--extra deploy)
    echo "apache-airflow==$version" | "$uv" pip compile --quiet --python-version 3.11 \
        "${extras[@]}" pyproject.toml - \
        --custom-compile-command "scripts/constraints.sh $version" \
        -o "constraints/airflow-$version.txt"
done
