"""What differs between the Airflow versions this provider supports, as module constants.

Every Airflow-version check of the provider reads one of these; nothing else compares
versions. Importing this module imports Airflow (common-compat's version helper).
"""

from __future__ import annotations

from airflow.providers.common.compat.version_compat import get_base_airflow_version_tuple

from airflow_provider_imkit.exceptions import use_airflow_exceptions

# Every Airflow-facing module imports this one: from here on the provider's errors are
# AirflowExceptions (and the permanent ones AirflowFailExceptions).
use_airflow_exceptions()

AIRFLOW_VERSION: tuple[int, int, int] = get_base_airflow_version_tuple()

#: Airflow 3: the task SDK masks a connection's password and extra when a task fetches it,
#: and its ``mask_secret`` sends the value to the supervisor (logged at debug level on 3.0),
#: so the provider must not call it again.
SDK_MASKS_CONNECTION_SECRETS: bool = AIRFLOW_VERSION >= (3, 0, 0)

#: Airflow 3: the task SDK (``ti.log_url`` from 3.1, ``SkipMixin.skip(ti, tasks)``) and the
#: ``[api] base_url`` setting, where Airflow 2 has ``[webserver] base_url``.
AIRFLOW_V_3_0_PLUS: bool = AIRFLOW_VERSION >= (3, 0, 0)

#: Airflow 3.1+: ``BaseNotifier.__init__`` takes the context (Deadline Alerts' AsyncCallback
#: builds the notifier with ``context=``), and human-in-the-loop operators exist.
AIRFLOW_V_3_1_PLUS: bool = AIRFLOW_VERSION >= (3, 1, 0)
