"""The connection form for Airflow 2.11 to 3.1, and the advice of a failed connection test.

Airflow 3.2+ builds the form from ``conn-fields`` in get_provider_info; older versions ask
the hook for widgets. Both come from the one table of extras, ``EXTRAS``.
"""

from __future__ import annotations

import copy
from typing import Any

from airflow_provider_imkit.exceptions import (
    ImkitApiError,
    ImkitAuthenticationError,
    ImkitConnectionError,
    ImkitError,
    ImkitTlsError,
)
from airflow_provider_imkit.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR


def ui_field_behaviour() -> dict[str, Any]:
    """The form's layout as the hook method spells it: underscores, where provider info has hyphens."""
    return {key.replace("-", "_"): copy.deepcopy(value) for key, value in UI_FIELD_BEHAVIOUR.items()}


def connection_form_widgets() -> dict[str, Any]:
    """WTForms fields for the form's extras: a checkbox for booleans, a text box otherwise.

    Only wtforms is needed (a dependency of this provider). Airflow 3.0 and 3.1 install neither
    Flask-AppBuilder nor Flask-Babel: their ProvidersManager imports wtforms before asking the hook,
    and the API server substitutes its own field classes for wtforms' (HookMetaService). The
    FAB text widget and translated labels are used where FAB is installed (Airflow 2's UI).
    """
    from wtforms import BooleanField, StringField

    try:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget as text_widget
    except ImportError:
        from wtforms.widgets import TextInput as text_widget
    try:
        from flask_babel import lazy_gettext as gettext
    except ImportError:
        gettext = str

    widgets: dict[str, Any] = {}
    for name, field in CONN_FIELDS.items():
        label, description = gettext(str(field["label"])), str(field["description"])
        schema: Any = field["schema"]
        # A checkbox only for a boolean that defaults to off: Airflow 2's form does not fill a
        # stored false into a field, so a checkbox that defaults to on would show a stored
        # `verify: false` checked, and the next save would turn TLS checks back on. Such a
        # field stays text ("true", "false") on 2.11 to 3.1; 3.2+ shows conn-fields' checkbox.
        if "boolean" in schema["type"] and "string" not in schema["type"] and not schema.get("default"):
            widgets[name] = BooleanField(label, default=False, description=description)
        else:
            widgets[name] = StringField(label, widget=text_widget(), description=description)
    return widgets


def connection_test_advice(conn_id: str, exc: ImkitError, base_url: str | None = None) -> str:
    """Say what to fix for a failed connection test (``base_url``: where it went, when known)."""
    if isinstance(exc, ImkitAuthenticationError):
        what = exc.code or exc.status_code
        return f"IMKIT rejected the API key ({what}): check the password of connection {conn_id!r}. {exc}"
    if isinstance(exc, ImkitTlsError) and "plain HTTP" in exc.reason:
        return f"{exc.reason}."
    if isinstance(exc, ImkitTlsError):
        return (
            f"{exc.reason}. For a self-hosted server with its own certificate authority, set the "
            "extra 'ca_bundle' to the CA bundle's path."
        )
    if isinstance(exc, ImkitConnectionError):
        where = f" at {base_url}" if base_url else ""
        return f"Cannot reach IMKIT{where}: {exc.reason}. Check the Base URL, proxy and network."
    if isinstance(exc, ImkitApiError) and (
        exc.status_code in (404, 405) or (exc.rc is None and exc.code is None)
    ):
        return f"The Base URL answered, but not as IMKIT's Platform API: check the Base URL. ({exc})"
    return str(exc)
