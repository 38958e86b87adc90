#!/usr/bin/env bash
# Create (or refresh) a virtualenv with one Airflow version and this project installed
# editable with its test and lint extras, pinned by constraints/airflow-<version>.txt
# (refresh those with scripts/constraints.sh).
#   usage: scripts/setup-venv.sh VENV_DIR AIRFLOW_VERSION [EXTRAS]
# EXTRAS defaults to test, plus lint and deploy (Postgres, Redis, Celery) on the newest Airflow.
# uv is taken from PATH, else installed from PyPI into .tools/ (nothing else is needed
# on the machine but Python 3.11). Every install uses --compile-bytecode: this machine
# sets PYTHONDONTWRITEBYTECODE=1, which otherwise makes each `import airflow` ~2.5x slower.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:?usage: setup-venv.sh VENV_DIR AIRFLOW_VERSION}"
airflow_version="${2:?usage: setup-venv.sh VENV_DIR AIRFLOW_VERSION}"
default_extras="test"
[ "$airflow_version" = "$("$here/scripts/airflow-versions.sh" newest)" ] && default_extras="test,lint,deploy"
extras="${3:-$default_extras}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
uv="$("$here/scripts/uv.sh")"

constraints="$here/constraints/airflow-$airflow_version.txt"
pin=()
if [ -f "$constraints" ]; then
    pin=(--constraint "$constraints")
else
    echo "==> no constraints/airflow-$airflow_version.txt: resolving freely (scripts/constraints.sh $airflow_version pins it)" >&2
fi
stamp="$venv/.imkit-stamp"
want="airflow=$airflow_version extras=$extras $(cat "$here/pyproject.toml" "$constraints" 2>/dev/null | cksum)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "==> preparing $venv (Airflow $airflow_version)" >&2
[ -x "$venv/bin/python" ] || "$uv" venv --quiet --python "$python" "$venv"
"$uv" pip install --quiet --compile-bytecode --python "$venv/bin/python" "${pin[@]}" \
    "apache-airflow==$airflow_version" -e "$here[$extras]"
# The project is installed editable: compile its bytecode too, or every DAG parse and
# test run would recompile it (PYTHONDONTWRITEBYTECODE=1 keeps Python from caching it).
"$venv/bin/python" -m compileall -q "$here/airflow_provider_imkit" "$here/example_dags"
echo "$want" > "$stamp"
