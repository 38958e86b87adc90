"""ImkitNotifier: post failure, retry and success alerts to an IMKIT room from callbacks."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.notifier import BaseNotifier
from airflow.providers.common.compat.sdk import redact

from airflow_provider_imkit import DEFAULT_CONN_ID
from airflow_provider_imkit.exceptions import ImkitError
from airflow_provider_imkit.notifications.default_message import default_message

if TYPE_CHECKING:
    from collections.abc import Sequence

    import jinja2
    from airflow.providers.common.compat.sdk import Context


def _airflow_3_1_plus() -> bool:
    from airflow.providers.common.compat.version_compat import get_base_airflow_version_tuple

    return get_base_airflow_version_tuple() >= (3, 1, 0)


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
    callbacks run with no task instance, for instance).

    Templates never crash the callback: a template that refers to a missing value is
    rendered again with missing values empty, and a warning is logged.

    Delivery prefers at-least-once: unlike the operator, the notifier also retries failures
    after which the alert may already be stored (``retry_on_ambiguous=True``), so an alert
    can arrive twice but is rarely lost. If IMKIT still cannot be reached, one ERROR line
    with the facts is logged and the task's own state and exception are left untouched.

    :param room: id of the room to alert.
    :param sender: id of an existing IMKIT user who sends the alert.
    :param message: the text (templated); None for the default text described above.
    :param message_type: ``text`` (default), ``announcement`` or an app-defined type.
    :param push: push-notify room members; None leaves the server's default (true).
    :param skip_total_badge: keep the alert out of badge totals; None = server default.
    :param mentions: a user id or list of ids to notify as mentioned (e.g. the on-call).
    :param imkit_conn_id: the Airflow connection of type ``imkit``.
    :param retry_on_ambiguous: also retry failures after which the alert may already be
        stored (default True: at-least-once).
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
        retry_on_ambiguous: bool = True,
        timeout: float | tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if _airflow_3_1_plus():
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
        self.retry_on_ambiguous = retry_on_ambiguous
        self.timeout = timeout
        #: The message object of the last alert sent, or None.
        self.result: dict[str, Any] | None = None

    # -- templating that never breaks a callback ---------------------------------------------

    def get_template_env(self, dag: Any = None) -> jinja2.Environment:
        """
        The DAG's template environment, or a plain one when the DAG cannot give one.

        Airflow 3.3's ``dags test`` hands DAG-level callbacks a serialized DAG without
        ``get_template_env`` (apache/airflow#64649); other notifiers then fail to send.
        """
        if dag is not None and callable(getattr(dag, "get_template_env", None)):
            try:
                return super().get_template_env(dag=dag)
            except Exception as exc:
                self.log.warning("IMKIT notifier: the DAG's template environment failed (%s)", exc)
        return super().get_template_env(dag=None)

    def _render(self, template: Any, context: Any, dag: Any = None) -> Any:
        # BaseNotifier._render reads context["dag"] (a KeyError on Airflow 2 when absent) and
        # hands it to Templater, which reads dag.render_template_as_native_obj: skip a DAG
        # object that lacks it (a serialized DAG, see get_template_env) and render as text.
        dag = dag or context.get("dag")
        if dag is not None and not hasattr(dag, "render_template_as_native_obj"):
            dag = None
        return super(BaseNotifier, self)._render(template, context, dag)

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Render each field; a failing template is rendered again with missing values empty."""
        import jinja2

        env = jinja_env or self.get_template_env(dag=context.get("dag"))
        for field in self.template_fields:
            value = getattr(self, field)
            try:
                rendered = self.render_template(value, context, env, set())
            except Exception as exc:
                lenient = env.overlay(undefined=jinja2.ChainableUndefined)
                try:
                    rendered = self.render_template(value, context, lenient, set())
                except Exception as again:
                    self.log.warning(
                        "IMKIT notifier: cannot render %r (%s); sending it unrendered", field, again
                    )
                    rendered = value
                else:
                    self.log.warning(
                        "IMKIT notifier: %r refers to a missing value (%s); rendered as empty", field, exc
                    )
            setattr(self, field, rendered)

    # -- sending -------------------------------------------------------------------------------

    def _send(self, context: Context) -> dict[str, Any] | None:
        text: Any = self.message if self.message not in (None, "") else default_message(context)
        # Alerts quote errors and templates: never let a registered secret reach the chat room.
        text = redact(text) if isinstance(text, str) else text
        from airflow_provider_imkit.hooks.imkit import ImkitHook  # requests is only needed to send

        hook = ImkitHook(self.imkit_conn_id, timeout=self.timeout, retry_on_ambiguous=self.retry_on_ambiguous)
        try:
            with hook:
                self.result = hook.send_message(
                    room=self.room,
                    sender=self.sender,
                    message=text,
                    message_type=self.message_type,
                    push=self.push,
                    skip_total_badge=self.skip_total_badge,
                    mentions=self.mentions,
                )
        except ImkitError as exc:
            # One clear line; the task's own state and exception stay as they are.
            self.log.error("IMKIT notification to room %r was not sent: %s", self.room, exc)
            return None
        return self.result

    def notify(self, context: Context) -> None:
        """Send the alert (sync): task and DAG callbacks."""
        self._send(context)

    async def async_notify(self, context: Context) -> None:
        """Send the alert (async, Airflow 3.1+ triggerer): the blocking send runs in a worker thread."""
        await asyncio.to_thread(self._send, context)


#: Function-style alias, as Airflow's own notifiers provide (``send_slack_notification``...).
send_imkit_notification = ImkitNotifier
