#!/usr/bin/env bash
# Create (or refresh) a virtualenv with one Airflow version and this project installed
# editable with its development dependency groups (PEP 735, pyproject.toml), pinned by
# constraints/airflow-<version>[-py3.NN].txt (refresh those with scripts/constraints.sh).
#   usage: scripts/setup-venv.sh VENV_DIR AIRFLOW_VERSION [GROUPS]
# GROUPS (comma-separated) defaults to test, plus lint, deploy (Postgres, Redis, Celery) and
# docs on the newest Airflow. PYTHON picks the interpreter (default python3.11); a Python
# other than 3.11 takes constraints/airflow-<version>-py3.NN.txt.
# uv is taken from PATH, else installed from PyPI into .tools/ (nothing else is needed
# on the machine but Python 3.11). Every install uses --compile-bytecode: this machine
# sets PYTHONDONTWRITEBYTECODE=1, which otherwise makes each `import airflow` ~2.5x slower.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:?usage: setup-venv.sh VENV_DIR AIRFLOW_VERSION}"
airflow_version="${2:?usage: setup-venv.sh VENV_DIR AIRFLOW_VERSION}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
uv="$("$here/scripts/uv.sh")"
py_version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
# Lint, docs and the deployment are pinned (and run) on the newest Airflow under 3.11 only.
default_groups="test"
if [ "$airflow_version" = "$("$here/scripts/airflow-versions.sh" newest)" ] && [ "$py_version" = "3.11" ]; then
    default_groups="test,lint,deploy,docs"
fi
groups="${3:-$default_groups}"
constraints="$here/constraints/airflow-$airflow_version.txt"
[ "$py_version" = "3.11" ] || constraints="$here/constraints/airflow-$airflow_version-py$py_version.txt"
pin=()
if [ -f "$constraints" ]; then
    pin=(--constraint "$constraints")
else
    echo "==> no ${constraints#"$here/"}: resolving freely (scripts/constraints.sh $airflow_version pins it)" >&2
fi
stamp="$venv/.imkit-stamp"
group_args=()
IFS=, read -ra group_names <<< "$groups"
for group in "${group_names[@]}"; do group_args+=(--group "$here/pyproject.toml:$group"); done
want="airflow=$airflow_version python=$py_version groups=$groups $(cat "$here/pyproject.toml" "$constraints" 2>/dev/null | cksum)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "==> preparing $venv (Airflow $airflow_version)" >&2
[ -x "$venv/bin/python" ] || "$uv" venv --quiet --python "$python" "$venv"
"$uv" pip install --quiet --compile-bytecode --python "$venv/bin/python" "${pin[@]}" \
    "apache-airflow==$airflow_version" -e "$here" "${group_args[@]}"
# The project is installed editable: compile its bytecode too, or every DAG parse and
# test run would recompile it (PYTHONDONTWRITEBYTECODE=1 keeps Python from caching it).
"$venv/bin/python" -m compileall -q "$here/airflow_provider_imkit" "$here/example_dags"
echo "$want" > "$stamp"
