#!/usr/bin/env bash
# Refresh the pinned test environments: one constraints file per tested Airflow version,
# resolved by uv from pyproject.toml (with the test group; lint, deploy and docs on the newest)
# for Python 3.11, and for 3.12 and 3.13 on the newest Airflow (airflow-<version>-py3.NN.txt).
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
        name="${name%.txt}"
        [[ "$name" == *-py* ]] || versions+=("$name")
    done
fi
for version in "${versions[@]}"; do
    pythons=(3.11)
    # Lint, docs and the deployment test (Celery, Postgres, Redis) run on the newest Airflow
    # only, which CI also runs under Python 3.12 and 3.13 (the test group: pgserver, the
    # deployment's Postgres, has no 3.13 wheels).
    [ "$version" = "$(scripts/airflow-versions.sh newest)" ] && pythons+=(3.12 3.13)
    dated=()
    if [ -n "${resolved_as_of[$version]:-}" ]; then
        dated=(--exclude-newer "${resolved_as_of[$version]}")
        for package in "${let_through[@]}"; do dated+=(--exclude-newer-package "$package=2100-01-01"); done
    fi
    for python in "${pythons[@]}"; do
        groups=(--group pyproject.toml:test)
        if [ "$python" = "3.11" ] && [ "$version" = "$(scripts/airflow-versions.sh newest)" ]; then
            groups+=(--group pyproject.toml:lint --group pyproject.toml:deploy --group pyproject.toml:docs)
        fi
        out="constraints/airflow-$version.txt"
        [ "$python" = "3.11" ] || out="constraints/airflow-$version-py$python.txt"
        echo "==> $out" >&2
        # uv keeps the pins of an existing output file: a new Python's file starts from 3.11's.
        [ -f "$out" ] || cp "constraints/airflow-$version.txt" "$out"
        echo "apache-airflow==$version" | "$uv" pip compile --quiet --python-version "$python" \
            "${groups[@]}" "${dated[@]}" pyproject.toml - \
            --custom-compile-command "scripts/constraints.sh $version" \
            -o "$out"
    done
done
