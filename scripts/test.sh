#!/usr/bin/env bash
# The README's test command: set everything up, then lint, type-check and run the whole
# test suite on the newest supported Airflow (3.3.2, with the deployment test), and the
# suite again on every other version CI proves (scripts/airflow-versions.sh), and on the newest
# Airflow under Python 3.12 and 3.13 when pyenv has them (needed by nothing else: skipped with a
# note when missing, a failure with IMKIT_REQUIRE_PYTHONS=1, as in CI). Also builds the docs
# site (scripts/docs.sh, warnings as errors) and checks what the wheel and sdist ship.
#   scripts/test.sh [pytest args...]
# Environment:
#   IMKIT_SKIP_AIRFLOW2=1     only the newest Airflow (faster local runs)
#   IMKIT_PYTEST_WORKERS=N    pytest-xdist workers (default 2; 0 runs in one process)
#   IMKIT_REQUIRE_BROWSER=1   fail (instead of skip) when headless Chromium is missing
#   IMKIT_REQUIRE_PYTHONS=1   fail (instead of skip) when Python 3.12 or 3.13 is missing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

newest="$(scripts/airflow-versions.sh newest)"
# Two workers on two cores: a worker mostly waits on Airflow child processes or the
# deployment's servers, so the end-to-end groups overlap with the rest of the suite.
# --dist loadgroup keeps each group (one module's or the session's DAG runs) in one worker.
xdist=(-n "${IMKIT_PYTEST_WORKERS:-2}" --dist loadgroup)
failures=()
run_pytest() {  # run_pytest VERSION PYTHON [pytest args...]: record a failure, go on
    local version="$1" python="$2"
    shift 2
    echo "==> pytest on Airflow $version" >&2
    "$python" -m pytest "${xdist[@]}" "$@" || failures+=("pytest on Airflow $version (exit $?)")
}

scripts/setup-venv.sh .venv "$newest"
echo "==> ruff" >&2
.venv/bin/ruff check . || failures+=("ruff check")
.venv/bin/ruff format --check . || failures+=("ruff format")
echo "==> mypy" >&2
.venv/bin/mypy || failures+=("mypy")
echo "==> docs" >&2
scripts/docs.sh >/dev/null || failures+=("docs (scripts/docs.sh)")
echo "==> what ships" >&2
scripts/check-dist.sh || failures+=("wheel and sdist (scripts/check-dist.sh)")
run_pytest "$newest" .venv/bin/python "$@"

for minor in 3.12 3.13; do
    interpreter="$(scripts/find-python.sh "$minor" || true)"
    if [ -z "$interpreter" ]; then
        if [ "${IMKIT_REQUIRE_PYTHONS:-0}" = "1" ]; then
            failures+=("Python $minor not found (pyenv versions)")
        else
            echo "==> skipping Python $minor: not installed (pyenv versions)" >&2
        fi
        continue
    fi
    venv=".venv-py$minor"
    if PYTHON="$interpreter" scripts/setup-venv.sh "$venv" "$newest" test; then
        run_pytest "$newest under Python $minor" "$venv/bin/python" "$@"
    else
        failures+=("setting up Airflow $newest under Python $minor")
    fi
done

if [ "${IMKIT_SKIP_AIRFLOW2:-0}" != "1" ]; then
    for version in $(scripts/airflow-versions.sh); do
        [ "$version" = "$newest" ] && continue
        if scripts/setup-venv.sh ".venv-airflow-$version" "$version"; then
            run_pytest "$version" ".venv-airflow-$version/bin/python" "$@"
        else
            failures+=("setting up Airflow $version")
        fi
    done
fi

# Every pass runs even after one fails; the failures are listed together at the end.
if [ "${#failures[@]}" -gt 0 ]; then
    echo "==> FAILED:" >&2
    printf '    %s\n' "${failures[@]}" >&2
    exit 1
fi
echo "==> all passes green" >&2
