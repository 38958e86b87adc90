"""Packaging: provider metadata, its schema, discovery by Airflow, and cheap imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest

from airflow_provider_imkit import __version__
from airflow_provider_imkit.get_provider_info import get_provider_info
from tests.conftest import EXAMPLE_DAGS


def test_provider_info_validates_against_airflow_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info: Any = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-provider-imkit"
    (conn_type,) = info["connection-types"]
    assert conn_type["connection-type"] == "imkit" and conn_type["hook-name"] == "IMKIT"
    assert conn_type["ui-field-behaviour"]["relabeling"] == {"host": "Base URL", "password": "API key"}
    assert {"login", "schema", "port"} <= set(conn_type["ui-field-behaviour"]["hidden-fields"])
    assert info["versions"] == [__version__]


def test_every_listed_class_and_module_imports() -> None:
    import importlib

    info: Any = get_provider_info()
    for section in ("hooks", "operators"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for conn_type in info["connection-types"]:
        module, _, name = conn_type["hook-class-name"].rpartition(".")
        assert getattr(importlib.import_module(module), name).conn_type == conn_type["connection-type"]
    for path in info.get("notifications", []):
        module, _, name = path.rpartition(".")
        getattr(importlib.import_module(module), name)


def test_airflow_discovers_the_provider_and_its_form(tmp_path: Path) -> None:
    """ProvidersManager in a fresh process and AIRFLOW_HOME: provider, hook, form fields."""
    code = (
        "import json, warnings\n"
        "from airflow.providers_manager import ProvidersManager as P\n"
        "pm = P()\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    widgets = sorted(k for k in pm.connection_form_widgets if 'imkit' in k)\n"
        "    behaviour = pm.field_behaviours.get('imkit')\n"
        "info = pm.providers['airflow-provider-imkit']\n"
        "hook = pm.hooks['imkit']\n"
        "print(json.dumps({'version': info.version, 'hook': hook.hook_class_name, 'name': hook.hook_name,\n"
        "                  'widgets': widgets, 'behaviour': behaviour,\n"
        "                  'warnings': [str(w.message) for w in caught\n"
        "                               if 'imkit' in str(w.message).lower()]}))\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert (found["version"], found["hook"], found["name"]) == (
        __version__,
        "airflow_provider_imkit.hooks.imkit.ImkitHook",
        "IMKIT",
    )
    names = {
        "timeout",
        "max_attempts",
        "on_ambiguous",
        "read_back_settle",
        "ca_bundle",
        "proxy",
        "verify",
    }
    assert {w.removeprefix("extra__imkit__") for w in found["widgets"]} == names
    assert found["behaviour"]["relabeling"] == {"host": "Base URL", "password": "API key"}
    assert set(found["behaviour"]["hidden_fields"]) == {"login", "schema", "port"}
    assert found["warnings"] == [], "no deprecation warning about the connection form"


def test_provider_info_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, airflow_provider_imkit.get_provider_info as m; m.get_provider_info();"
        "print(sorted(n for n in ('airflow', 'requests', 'tenacity', 'urllib3') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_example_dags_import_without_errors() -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    plan = json.loads((EXAMPLE_DAGS / "demo.json").read_text())
    expected = set(plan["dags"]) | set(plan["event_dags"])
    if airflow.__version__.startswith("2."):
        expected.discard("example_imkit_chat_command")  # asset watchers are Airflow 3's
    assert set(bag.dag_ids) == expected, "demo.json must list every example DAG"
    for dag in bag.dags.values():
        assert dag.tasks


def test_the_form_offers_no_null_choice_and_real_config_types() -> None:
    from airflow_provider_imkit.get_provider_info import CONN_FIELDS, get_provider_info

    on_ambiguous: Any = CONN_FIELDS["on_ambiguous"]["schema"]
    # No default either: an empty choice saves null, which keeps an older retry_on_ambiguous.
    assert None not in on_ambiguous["enum"] and "default" not in on_ambiguous
    verify: Any = CONN_FIELDS["verify"]["schema"]
    assert verify["type"] == ["boolean", "null"] and verify["default"] is True  # a checkbox, not JSON
    assert "retry_on_ambiguous" not in CONN_FIELDS  # one field sets what happens on ambiguous failures
    # On 2.11-3.1 (widgets) a checkbox that defaults to on would show a stored false checked
    # (Airflow 2 does not fill falsy values) and turn TLS checks back on at the next save.
    from wtforms import BooleanField

    from airflow_provider_imkit.hooks.connection_form import connection_form_widgets

    assert not isinstance(connection_form_widgets()["verify"], BooleanField)
    info: Any = get_provider_info()
    options = info["config"]["imkit"]["options"]
    assert options["alerts_repeat_interval"]["type"] == "integer"
    assert options["alerts_flush_timeout"]["type"] == "float"
    assert all(option["example"] for option in options.values())
    assert info["plugins"] == [
        {"name": "imkit_alerts", "plugin-class": "airflow_provider_imkit.plugins.alerts.ImkitAlertsPlugin"}
    ]


@pytest.mark.parametrize("lazy", ["True", "False"])
def test_the_alerts_plugin_is_registered_exactly_once(lazy: str, tmp_path: Any) -> None:
    """Default (lazy) discovery loads entry points only; with it off Airflow also reads the
    provider info's plugins. Either way the plugin is there once, and no import error says
    it was registered twice (Airflow 3.3 records one for a duplicate)."""
    code = (
        "import json\n"
        "from airflow import plugins_manager as pm\n"
        "if hasattr(pm, '_get_plugins'):\n"
        "    plugins, errors = pm._get_plugins()\n"
        "else:\n"
        "    pm.ensure_plugins_loaded()\n"
        "    plugins, errors = pm.plugins, pm.import_errors\n"
        "names = [p.name for p in plugins]\n"
        "print(json.dumps({'names': names, 'errors': [str(e) for e in errors.values()]}))\n"
    )
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS": lazy,
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(tmp_path / "plugins"),
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["names"].count("imkit_alerts") == 1, found
    assert not [e for e in found["errors"] if "imkit" in e], found
