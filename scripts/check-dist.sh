#!/usr/bin/env bash
# Build the wheel and the sdist (uv build) and check what they ship: the wheel holds the
# provider alone (no tests, no deployment harness) with its entry points and py.typed; the
# sdist holds the tests, docs and changelog, and its unit tests pass when run from it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
uv="$(scripts/uv.sh)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$uv" build --quiet --out-dir "$out" >&2
.venv/bin/python - "$out" <<'PY'
import pathlib, sys, tarfile, zipfile

out = pathlib.Path(sys.argv[1])
(wheel,) = out.glob("*.whl")
(sdist,) = out.glob("*.tar.gz")
names = zipfile.ZipFile(wheel).namelist()
code = [n for n in names if not n.startswith("airflow_provider_imkit-")]  # not .dist-info
bad = [n for n in code if not n.startswith("airflow_provider_imkit/")]
bad += [n for n in code if any(part in n for part in ("tests/", "harness", "deployment.py", "conftest"))]
assert not bad, f"the wheel ships more than the provider: {bad}"
assert "airflow_provider_imkit/py.typed" in names, "no py.typed in the wheel"
info = next(n for n in names if n.endswith(".dist-info/METADATA"))
metadata = zipfile.ZipFile(wheel).read(info).decode()
for needed in ("Project-URL: Documentation", "Project-URL: Changelog", "Classifier: Programming Language :: Python :: 3.13"):
    assert needed in metadata, f"METADATA lacks {needed!r}"
assert "Provides-Extra" not in metadata, "development tools must be dependency groups, not extras"
entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
points = zipfile.ZipFile(wheel).read(entry).decode()
assert "apache_airflow_provider" in points and "airflow.plugins" in points, points
members = tarfile.open(sdist).getnames()
root = members[0].split("/")[0]
for needed in ("tests/unit", "docs/index.md", "CHANGELOG.md", "pyproject.toml", "example_dags"):
    assert any(m.startswith(f"{root}/{needed}") for m in members), f"the sdist lacks {needed}"
print(f"wheel: {len(code)} files, provider only; sdist: {len(members)} files")
PY
# The sdist's own unit tests, run from the unpacked sdist against its own code.
tar -xzf "$out"/*.tar.gz -C "$out"
src="$(find "$out" -maxdepth 1 -mindepth 1 -type d | head -1)"
(cd "$src" && PYTHONPATH="$src" "$here/.venv/bin/python" -m pytest -q -p no:cacheprovider -p no:xdist tests/unit >&2)
echo "sdist: unit tests pass from $(basename "$src")" >&2
