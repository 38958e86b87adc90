#!/usr/bin/env bash
# Refresh the pinned test environments: one constraints file per tested Airflow version,
# resolved by uv from pyproject.toml (with the test and lint extras) for Python 3.11.
#   scripts/constraints.sh [AIRFLOW_VERSION...]     (default: every version in constraints/)
# scripts/setup-venv.sh installs with these files, so CI and every machine get the same set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
uv="$(scripts/uv.sh)"
# Each Airflow version resolved as of about a week after its release (its own dependencies
# then worked with it; newer pydantic/fastapi break 3.0.6 and 3.2.2), letting through the
# provider's own dependency that must be newer than that: common-compat.
declare -A resolved_as_of=([3.0.6]=2025-09-05 [3.1.8]=2026-03-18 [3.2.2]=2026-06-05)
let_through=(apache-airflow-providers-common-compat)
versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
    for file in constraints/airflow-*.txt; do
        name="${file##*/airflow-}"
        versions+=("${name%.txt}")
    done
fi
for version in "${versions[@]}"; do
    echo "==> constraints/airflow-$version.txt" >&2
    extras=(--extra test)
    # Lint and the deployment test (Celery, Postgres, Redis) run on the newest Airflow only.
    [ "$version" = "$(scripts/airflow-versions.sh newest)" ] && extras+=(--extra lint --extra deploy)
    dated=()
    if [ -n "${resolved_as_of[$version]:-}" ]; then
        dated=(--exclude-newer "${resolved_as_of[$version]}")
        for package in "${let_through[@]}"; do dated+=(--exclude-newer-package "$package=2100-01-01"); done
    fi
    echo "apache-airflow==$version" | "$uv" pip compile --quiet --python-version 3.11 \
        "${extras[@]}" "${dated[@]}" pyproject.toml - \
        --custom-compile-command "scripts/constraints.sh $version" \
        -o "constraints/airflow-$version.txt"
done
