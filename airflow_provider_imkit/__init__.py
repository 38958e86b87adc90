"""Apache Airflow provider for the IMKIT chat platform.

The package's layers are its folders: :mod:`.client` (IMKIT's API, no Airflow), :mod:`.decisions`
(the approval logic, no Airflow), and the Airflow glue (:mod:`.hooks`, :mod:`.operators`,
:mod:`.notifications`, :mod:`.triggers`, :mod:`.plugins`), with :mod:`.sandbox` and :mod:`.testing`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.2.0"

#: The connection id the hook, operators and notifier use by default.
DEFAULT_CONN_ID = "imkit_default"

#: Modules that moved into the layer folders after 0.2.0, by their old names: the old names stay
#: importable (``from airflow_provider_imkit.retry import RetryPolicy``), resolved on first use.
MOVED_MODULES = {
    "retry": "client.retry",
    "settings": "client.settings",
    "validation": "client.validation",
    "read_back": "client.read_back",
    "approval": "decisions",
    "delivery": "operators.delivery",
    "log_masking": "hooks.log_masking",
    "connection_form": "hooks.connection_form",
}


class _MovedModule(types.ModuleType):
    """An old module name: every attribute is the moved module's (imported on first use)."""

    def __init__(self, name: str, target: str) -> None:
        super().__init__(name, f"Moved to :mod:`{target}`; this name stays importable.")
        self.__moved_to__ = target

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(self.__moved_to__), name)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__moved_to__))


for _old, _new in MOVED_MODULES.items():
    _module = sys.modules.setdefault(
        f"{__name__}.{_old}", _MovedModule(f"{__name__}.{_old}", f"{__name__}.{_new}")
    )
    globals()[_old] = _module
del _old, _new, _module
