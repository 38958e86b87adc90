"""Sphinx configuration of the airflow-provider-imkit docs (built by scripts/docs.sh).

The build is offline: no intersphinx, no remote images. It runs with -W (warnings are
errors) and -n (nitpicky: every cross-reference must resolve).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project is installed editable in .venv; this also lets a bare `sphinx-build` find it.
sys.path.insert(0, str(ROOT))
# autodoc imports the Airflow-facing modules, hence Airflow: keep it off the user's
# AIRFLOW_HOME (scripts/docs.sh sets its own under docs/_build/).
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="imkit-docs-airflow-"))

from airflow_provider_imkit import __version__  # noqa: E402

project = "airflow-provider-imkit"
author = "airflow-provider-imkit developers"
copyright = "airflow-provider-imkit developers; Apache-2.0"
release = __version__
version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# MyST: GitHub-style anchors for headings down to ###, so that `page.md#a-heading` links
# work both here and on GitHub.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# autodoc: the docstrings use Airflow's reST fields (:param x:), so no napoleon.
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"

# Nitpicky mode without intersphinx: references to other projects' objects (the standard
# library, Airflow, requests, urllib3, pendulum, jinja2...) cannot resolve offline, so they
# are ignored by target. References to this package's own public objects must resolve.
nitpick_ignore_regex = [
    # Any dotted name outside this package (type hints, "Bases:" lines).
    (r"py:.*", r"(?!airflow_provider_imkit\b)[A-Za-z_][\w]*\..*"),
    # Private helpers of this package (bases such as exceptions._FailFast in "Bases:").
    (r"py:.*", r"airflow_provider_imkit\..*\b_\w+"),
    # Members of internal modules that the reference leaves out on purpose (docs/api.md
    # documents the public modules only), when a public docstring mentions them.
    (
        r"py:.*",
        r"airflow_provider_imkit\.(version_compat|decisions|plugins|operators\.(base|delivery)"
        r"|hooks\.(connection_form|log_masking)|notifications\.(default_message|hitl_message)"
        r"|sandbox\.(faults|server|app|store|pipeline|answers|inbox|replies)"
        r"|client\.(base|imkit|validation|envelope|transport|read_back))(\..*)?",
    ),
]
nitpick_ignore = [
    # External names that the docstrings and type hints spell bare (imported under
    # TYPE_CHECKING in the code, so autodoc cannot qualify them).
    ("py:class", "Context"),
    ("py:class", "TriggerEvent"),
    ("py:class", "PokeReturnValue"),
    ("py:class", "timedelta"),
    ("py:class", "datetime"),
    # autodoc quirk: RetryPolicy's dataclass field `random` defaults to random.random, whose
    # own docstring ("random() -> x in the interval [0, 1).") autodoc reads as a signature.
    ("py:class", "x in the interval [0, 1)."),
    # Internal names that public docstrings spell bare: operators.delivery.EarlierTry, and
    # the re-exports of airflow_provider_imkit.testing that the reference documents under
    # airflow_provider_imkit.sandbox (documenting them twice would be a duplicate object).
    ("py:class", "EarlierTry"),
    ("py:class", "ImkitSandbox"),
    ("py:class", "Fault"),
    ("py:data", "FAULT_KINDS"),  # sandbox.faults.FAULT_KINDS (its autodata would show dict's docstring)
    # Relative references (:mod:`.base`) of package docstrings to internal modules.
    ("py:mod", "base"),
    ("py:mod", "validation"),
    ("py:mod", "envelope"),
    ("py:mod", "transport"),
    ("py:mod", "control"),
]

# No warning type is suppressed (suppress_warnings is left empty).
suppress_warnings: list[str] = []

html_theme = "furo"
html_title = f"airflow-provider-imkit {__version__}"
html_static_path: list[str] = []
html_show_sourcelink = False
