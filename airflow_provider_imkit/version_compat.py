"""What differs between the Airflow versions this provider supports, as module constants.

Every Airflow-version check of the provider reads one of these; nothing else compares
versions. Importing this module imports Airflow (common-compat's version helper).
"""

from __future__ import annotations

import contextlib
import importlib

from airflow.providers.common.compat.version_compat import get_base_airflow_version_tuple

from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.exceptions import use_airflow_exceptions

# Every Airflow-facing module imports this one: from here on the provider's errors are
# AirflowExceptions (and the permanent ones AirflowFailExceptions).
use_airflow_exceptions()

#: Where Airflow's serde lives: airflow.sdk.serde from 3.2, airflow.serialization.serde before.
_SERDE_MODULES = ("airflow.sdk.serde", "airflow.serialization.serde")


def allow_in_serde(*classes: type, aliases: tuple[str, ...] = ()) -> None:
    """
    Let Airflow's serde turn these provider classes back into objects, as naming them in
    ``[core] allowed_deserialization_classes`` would, in this process: a notifier's
    ``retry=RetryPolicy(...)`` in a Deadline Alert's ``kwargs`` is decoded by the scheduler.
    Every Airflow component loads the provider's plugin (which imports this module), so each
    one allows them. serde keeps no public hook for it before 3.3 (``allow_class``): its
    process-wide allow set is added to; where neither exists nothing changes.
    """
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in classes} | set(aliases)
    for name in _SERDE_MODULES:  # the first that exists (the later one is a deprecated alias)
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        with contextlib.suppress(Exception):
            allowed = getattr(module, "_extra_allowed", None)
            if isinstance(allowed, set):
                allowed.update(names)
        return


# Payloads stored before the move (Deadline Alerts' notifier kwargs) name the old module.
allow_in_serde(RetryPolicy, aliases=("airflow_provider_imkit.retry.RetryPolicy",))

AIRFLOW_VERSION: tuple[int, int, int] = get_base_airflow_version_tuple()

#: Airflow 3: the task SDK masks a connection's password and extra when a task fetches it,
#: and its ``mask_secret`` sends the value to the supervisor (logged at debug level on 3.0),
#: so the provider must not call it again.
SDK_MASKS_CONNECTION_SECRETS: bool = AIRFLOW_VERSION >= (3, 0, 0)

#: Airflow 3: the task SDK (``ti.log_url`` from 3.1, ``SkipMixin.skip(ti, tasks)``) and the
#: ``[api] base_url`` setting, where Airflow 2 has ``[webserver] base_url``.
AIRFLOW_V_3_0_PLUS: bool = AIRFLOW_VERSION >= (3, 0, 0)

#: Airflow 3.3: the asset state store, where an asset watcher's trigger keeps its cursor.
AIRFLOW_V_3_3_PLUS: bool = AIRFLOW_VERSION >= (3, 3, 0)

#: Airflow 3.1+: ``BaseNotifier.__init__`` takes the context (Deadline Alerts' AsyncCallback
#: builds the notifier with ``context=``), and human-in-the-loop operators exist.
AIRFLOW_V_3_1_PLUS: bool = AIRFLOW_VERSION >= (3, 1, 0)
