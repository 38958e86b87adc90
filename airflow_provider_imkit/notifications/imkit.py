"""ImkitNotifier: post failure, retry and success alerts to an IMKIT room from callbacks."""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.notifier import BaseNotifier
from airflow.providers.common.compat.sdk import redact

from airflow_provider_imkit import DEFAULT_CONN_ID
from airflow_provider_imkit.exceptions import ImkitError
from airflow_provider_imkit.notifications.default_message import default_message
from airflow_provider_imkit.notifications.hitl_message import hitl_request
from airflow_provider_imkit.version_compat import AIRFLOW_V_3_1_PLUS

if TYPE_CHECKING:
    from collections.abc import Generator, Sequence

    import jinja2
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_imkit.client.retry import RetryPolicy


class ImkitNotifier(BaseNotifier):
    """
    Send an alert to an IMKIT room from an Airflow callback.

    Use it wherever Airflow takes a callback: ``on_failure_callback``,
    ``on_retry_callback``, ``on_success_callback`` of a task (also through
    ``default_args``) or of a DAG, alone or in a list with other callbacks; on Airflow 3.1+
    it can also be awaited (Deadline Alerts).

    Without ``message`` it writes one from the context: on failure the DAG id, task id, run
    id, logical date, try number, the exception's first line and the log URL; on retry and
    success a matching short text. Lines whose data the context lacks are left out (DAG-level
    callbacks run with no task instance, for instance). In ``notifiers=[...]`` of Airflow's
    human-in-the-loop operators (3.1+) it posts the request instead: subject, body, options,
    the assigned users mentioned (their ids taken as IMKIT user ids) and the link to the
    task's required-actions page.

    Templates never crash the callback: a template that refers to a missing value is
    rendered again with missing values empty, and a warning is logged. Each call renders
    from the original templates into a copy, so one notifier (in ``default_args``, or a
    DAG's callback run by the DAG processor for many runs) may be called any number of
    times, from several threads at once. Under ``render_template_as_native_obj`` a message
    that renders to a number, date or the like is sent as its text, a dict or list as JSON;
    one that renders to nothing falls back to the default text.

    Delivery: a send that may have been stored without an answer is read back from the room
    and never posted twice (``reconcile``, the default policy). If IMKIT still cannot be
    reached, one ERROR line with the facts is logged and the task's own state and exception
    are left untouched.

    :param room: id of the room to alert.
    :param sender: id of an existing IMKIT user who sends the alert.
    :param message: the text (templated); None for the default text described above.
    :param message_type: ``text`` (default), ``announcement`` or an app-defined type.
    :param push: push-notify room members; None leaves the server's default (true).
    :param skip_total_badge: keep the alert out of badge totals; None = server default.
    :param mentions: user ids to notify as mentioned (e.g. the on-call): a list, one id,
        ``"a,b"``, or a template rendering to a list.
    :param imkit_conn_id: the Airflow connection of type ``imkit``.
    :param retry: a :class:`~airflow_provider_imkit.client.retry.RetryPolicy`, or an int (HTTP
        attempts); default from the connection (3 attempts, ``reconcile``).
    :param timeout: seconds (or ``(connect, read)``) per HTTP attempt; default from the
        connection.
    """

    template_fields: Sequence[str] = (
        "room",
        "sender",
        "message",
        "message_type",
        "mentions",
        "imkit_conn_id",
    )

    def __init__(
        self,
        *,
        room: str,
        sender: str,
        message: str | None = None,
        message_type: str = "text",
        push: bool | None = None,
        skip_total_badge: bool | None = None,
        mentions: str | list[str] | None = None,
        imkit_conn_id: str = DEFAULT_CONN_ID,
        retry: RetryPolicy | int | None = None,
        timeout: float | tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if AIRFLOW_V_3_1_PLUS:
            # From 3.1 BaseNotifier takes the context for async use (Deadline Alerts).
            super().__init__(**kwargs)
        else:
            super().__init__()
        self.room = room
        self.sender = sender
        self.message = message
        self.message_type = message_type
        self.push = push
        self.skip_total_badge = skip_total_badge
        self.mentions = mentions
        self.imkit_conn_id = imkit_conn_id
        self.retry = retry
        self.timeout = timeout
        #: The message object of the last alert sent, or None.
        self.result: dict[str, Any] | None = None

    # -- rendering into a copy, never into self ---------------------------------------------

    def _template_env(self, dag: Any) -> jinja2.Environment:
        """
        The DAG's template environment, or a plain one when the DAG cannot give one.

        Airflow 3.3's ``dags test`` hands DAG-level callbacks a serialized DAG without
        ``get_template_env`` (apache/airflow#64649); other notifiers then fail to send.
        """
        if dag is not None and callable(getattr(dag, "get_template_env", None)):
            try:
                return self.get_template_env(dag=dag)
            except Exception as exc:
                self.log.warning("IMKIT notifier: the DAG's template environment failed (%s)", exc)
        return self.get_template_env(dag=None)

    def _render_value(self, value: Any, context: Context, env: jinja2.Environment) -> Any:
        if isinstance(value, str):
            template = env.from_string(value)
            # As Airflow renders: a shared context (no copy of it); native or text by the env.
            return env.concat(
                template.root_render_func(template.new_context(cast("dict[str, Any]", context), shared=True))
            )
        if isinstance(value, list | tuple):
            return [self._render_value(item, context, env) for item in value]
        return value

    def rendered(self, context: Context) -> ImkitNotifier:
        """A copy with every templated field rendered for ``context``; self is left as it is.

        A template that fails (a missing value under StrictUndefined) is rendered again
        with missing values empty, and a warning is logged.
        """
        import jinja2

        copied = copy.copy(self)
        env = self._template_env(context.get("dag"))
        for field in self.template_fields:
            value = getattr(self, field)
            try:
                result = self._render_value(value, context, env)
            except Exception as exc:
                try:
                    result = self._render_value(
                        value, context, env.overlay(undefined=jinja2.ChainableUndefined)
                    )
                except Exception as again:
                    self.log.warning(
                        "IMKIT notifier: cannot render %r (%s); sending it unrendered", field, again
                    )
                    result = value
                else:
                    self.log.warning(
                        "IMKIT notifier: %r refers to a missing value (%s); rendered as empty", field, exc
                    )
            setattr(copied, field, result)
        return copied

    # -- sending -------------------------------------------------------------------------------

    def _send(self, context: Context) -> dict[str, Any] | None:
        """Send this (rendered) notifier's alert; log one ERROR line instead of raising."""
        # Imported when an alert is sent: DAG files import this module, and parses must stay cheap.
        from airflow_provider_imkit.client import validation
        from airflow_provider_imkit.operators.delivery import deliver

        mentions = self.mentions
        text = validation.rendered_text(self.message)
        if text is None:
            request = hitl_request(context)
            if request is not None:
                text, mentions = request.text, mentions or request.mentions
        text = text or default_message(context)
        # Alerts quote errors and templates: never let a registered secret reach the chat room.
        text = str(redact(text))
        try:
            return deliver(
                imkit_conn_id=str(self.imkit_conn_id),
                retry=self.retry,
                timeout=self.timeout,
                message=validation.message_params(self, message=text, mentions=mentions),
            )
        except ImkitError as exc:
            # One clear line; the task's own state and exception stay as they are.
            self.log.error("IMKIT notification to room %r was not sent: %s", self.room, exc)
            return None

    def notify(self, context: Context) -> None:
        """Render into a copy and send the alert (sync): task and DAG callbacks."""
        self.result = self.rendered(context)._send(context)

    async def async_notify(self, context: Context) -> None:
        """Render into a copy and send (async, Airflow 3.1+ triggerer); the blocking send runs
        in a worker thread so the triggerer's event loop is never blocked."""
        self.result = await asyncio.to_thread(self.rendered(context)._send, context)

    def __call__(self, *args: Any) -> None:
        """Airflow's callback entry point: ``notifier(context)``, or the five arguments of an
        Airflow 2 ``sla_miss_callback`` (dag, task_list, blocking_task_list, slas, blocking_tis)."""
        if len(args) == 1:
            context: Any = args[0]
        else:
            names = ("dag", "task_list", "blocking_task_list", "slas", "blocking_tis")
            context = dict(zip(names, args, strict=False))
        self._update_context(context)
        self.notify(context)

    def __await__(self) -> Generator[Any, None, None]:
        """Deadline Alerts (AsyncCallback) await the notifier built with ``context=``."""
        self._update_context(self.context)
        return self.async_notify(self.context).__await__()


#: Function-style alias, as Airflow's own notifiers provide (``send_slack_notification``...).
send_imkit_notification = ImkitNotifier
