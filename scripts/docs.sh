#!/usr/bin/env bash
# Build the docs site (Sphinx, MyST Markdown, furo) into docs/_build/html, offline, with
# warnings as errors (-W) and every cross-reference checked (-n).
#   scripts/docs.sh
# Sets up .venv (the newest supported Airflow, as scripts/setup-venv.sh does for the tests),
# installs the `docs` dependency group only when Sphinx, MyST or furo is missing, and prints
# the absolute path of the built index.html as its last line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

scripts/setup-venv.sh .venv "$(scripts/airflow-versions.sh newest)"
if ! .venv/bin/python -c 'import sphinx, myst_parser, furo' >/dev/null 2>&1; then
    echo "==> installing the docs dependency group into .venv" >&2
    "$(scripts/uv.sh)" pip install --quiet --compile-bytecode --python .venv/bin/python --group docs
fi

# autodoc imports Airflow: give it a throwaway home, never the user's.
export AIRFLOW_HOME="$root/docs/_build/airflow-home"
mkdir -p "$AIRFLOW_HOME"
# --keep-going: report every warning of the build, then fail (with -W) if there was one.
.venv/bin/python -m sphinx -W --keep-going -n -b html docs docs/_build/html >&2
echo "$root/docs/_build/html/index.html"
