#!/usr/bin/env bash
# Print the path of a CPython 3.N interpreter (the newest patch release pyenv has), or fail.
# uv's own discovery trips over pyenv's shims, so the interpreter itself is given to it.
#   scripts/find-python.sh 3.13
set -euo pipefail
minor="${1:?usage: find-python.sh 3.N}"
if command -v pyenv >/dev/null 2>&1; then
    version="$(pyenv versions --bare 2>/dev/null | grep -E "^${minor//./\\.}\.[0-9]+$" | sort -V | tail -1 || true)"
    if [ -n "$version" ]; then
        candidate="$(pyenv prefix "$version")/bin/python$minor"
        [ -x "$candidate" ] && { echo "$candidate"; exit 0; }
    fi
fi
candidate="$(command -v "python$minor" || true)"
# A pyenv shim is not an interpreter: ask it for its real path.
[ -n "$candidate" ] && "$candidate" -c 'import sys; print(sys.executable)' 2>/dev/null && exit 0
exit 1
