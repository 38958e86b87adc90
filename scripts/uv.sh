#!/usr/bin/env bash
# Print the path of uv: from PATH, else installed from PyPI into .tools/ on first use
# (nothing but Python 3.11 is needed on the machine).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
uv="$(command -v uv || true)"
if [ -z "$uv" ]; then
    uv="$here/.tools/bin/uv"
    if [ ! -x "$uv" ]; then
        python="${PYTHON:-python3.11}"
        command -v "$python" >/dev/null 2>&1 || python=python3
        echo "==> installing uv into .tools/" >&2
        "$python" -m venv "$here/.tools"
        "$here/.tools/bin/python" -m pip install --quiet --disable-pip-version-check uv >&2
    fi
fi
echo "$uv"
