"""The message operators: send to a room, send to many (a batch), recall a sent message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_imkit import DEFAULT_CONN_ID
from airflow_provider_imkit.operators.base import ImkitBaseOperator

if TYPE_CHECKING:
    from collections.abc import Sequence

    import jinja2
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_imkit.client.retry import RetryPolicy


#: A ``message`` ending in one of these (and without whitespace) names a template file.
MESSAGE_TEMPLATE_EXTENSIONS = (".md", ".txt", ".j2", ".jinja2")


class ImkitSendMessageOperator(ImkitBaseOperator):
    """
    Send a message to an IMKIT room; the stored message object is the task's XCom.

    ``room``, ``sender``, ``message``, ``message_type``, ``mentions`` and ``imkit_conn_id``
    are templated. A ``message`` that ends in ``.md``, ``.txt``, ``.j2`` or ``.jinja2`` and
    contains no whitespace is read as a template file from the DAG's template search path.

    Errors that retrying cannot fix (invalid arguments, bad API key, unknown room or sender,
    rejected request) fail the task at once, without Airflow retries. Transient errors left
    after the hook's own retries (network, 429, 5xx) let Airflow's task retries apply.

    :param room: id of the room to post to.
    :param sender: id of an existing IMKIT user who sends the message.
    :param message: the message text (or a template file name, see above).
    :param message_type: ``text`` (default), ``announcement``, ``image`` or an app-defined type.
    :param push: push-notify room members; None (default) leaves the server's default (true).
    :param skip_total_badge: leave the message out of badge totals; None leaves the server's
        default (false).
    :param mentions: a user id or a list of user ids to notify as mentioned.
    :param imkit_conn_id: the Airflow connection of type ``imkit`` (default ``imkit_default``).
    :param timeout: seconds (or ``(connect, read)``) for each HTTP attempt; default from the
        connection (10 s connect, 30 s read).
    :param retry: a :class:`~airflow_provider_imkit.client.retry.RetryPolicy`, or an int (HTTP
        attempts per send); default from the connection (3 attempts, ``on_ambiguous``
        ``reconcile``: a send that may have been stored is read back, never posted twice).
    :param ensure_sender: create or update the ``sender`` user first (``POST /admin/clients``),
        so a bot sender need not exist beforehand.
    :param sender_nickname: the sender's display name, with ``ensure_sender``.
    :param sender_avatar_url: the sender's avatar URL, with ``ensure_sender``.
    """

    template_fields: Sequence[str] = (
        "room",
        "sender",
        "message",
        "message_type",
        "mentions",
        "imkit_conn_id",
    )
    template_ext: Sequence[str] = MESSAGE_TEMPLATE_EXTENSIONS
    template_fields_renderers = {"message": "md"}

    def __init__(
        self,
        *,
        room: str,
        sender: str,
        message: str,
        message_type: str = "text",
        push: bool | None = None,
        skip_total_badge: bool | None = None,
        mentions: str | list[str] | None = None,
        imkit_conn_id: str = DEFAULT_CONN_ID,
        timeout: float | tuple[float, float] | None = None,
        retry: RetryPolicy | int | None = None,
        ensure_sender: bool = False,
        sender_nickname: str | None = None,
        sender_avatar_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            imkit_conn_id=imkit_conn_id,
            timeout=timeout,
            retry=retry,
            **kwargs,
        )
        self.ensure_sender = ensure_sender
        self.sender_nickname = sender_nickname
        self.sender_avatar_url = sender_avatar_url
        self.room = room
        self.sender = sender
        self.message = message
        self.message_type = message_type
        self.push = push
        self.skip_total_badge = skip_total_badge
        self.mentions = mentions

    def _names_template_file(self, content: Any) -> bool:
        """A ``.md``/``.txt``/``.j2``... name with no whitespace; text that merely ends so is not."""
        return (
            isinstance(content, str)
            and content.endswith(tuple(self.template_ext))
            and not any(ch.isspace() for ch in content)
        )

    def render_template(
        self,
        content: Any,
        context: Any,
        jinja_env: jinja2.Environment | None = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        """Render like Airflow, except that text with whitespace is never taken for a file name."""
        if isinstance(content, str) and content.endswith(tuple(self.template_ext)):
            env = jinja_env or self.get_template_env()
            template = (
                env.get_template(content) if self._names_template_file(content) else env.from_string(content)
            )
            return self._render(template, context)
        return super().render_template(content, context, jinja_env, seen_oids)

    def resolve_template_files(self) -> None:
        """Read template files named in the templated fields (at DAG parse time)."""
        for field in self.template_fields:
            content = getattr(self, field, None)
            if self._names_template_file(content):
                env = self.get_template_env()
                try:
                    setattr(self, field, env.loader.get_source(env, str(content))[0])  # type: ignore[union-attr]
                except Exception:
                    self.log.exception("Failed to read the template file %r of field %r", content, field)
        self.prepare_template()

    def execute(self, context: Context) -> dict[str, Any]:
        # Imported when a task runs: DAG files import this module, and parses must stay cheap.
        from airflow_provider_imkit.client import validation
        from airflow_provider_imkit.operators.delivery import earlier_try

        message = validation.rendered_message("message", self.message)
        return self.deliver_message(
            validation.message_params(self, message=message),
            ensure_sender=self.ensure_sender,
            sender_nickname=self.sender_nickname,
            sender_avatar_url=self.sender_avatar_url,
            earlier=earlier_try(context),
        )


class ImkitBatchSendMessageOperator(ImkitBaseOperator):
    """
    Send one message to many rooms and/or users in one request; the batch result is the XCom.

    IMKIT queues the batch and delivers it shortly after: the result ``{"batchID", "count"}``
    says it was accepted. ``push`` defaults to **false** on this endpoint.

    :param message: the text; ``$name$`` placeholders are replaced per recipient (templated).
    :param rooms: room ids (templated).
    :param receivers: user ids to message directly (templated).
    :param values: per-recipient placeholder values keyed by room or user id, e.g.
        ``{"team-a": {"$team$": "Analytics"}}`` (templated).
    :param sender: id of the sending user; None lets the server choose (templated).
    :param message_type: ``text`` (default) or another type (templated).
    :param push: push-notify recipients; None = server default (false on this endpoint).
    :param skip_total_badge: keep the message out of badge totals; None = server default.
    :param imkit_conn_id: the Airflow connection of type ``imkit`` (templated).
    :param timeout: seconds (or ``(connect, read)``) per HTTP attempt.
    :param retry: a :class:`~airflow_provider_imkit.client.retry.RetryPolicy`, or an int (HTTP
        attempts). A batch cannot be read back: after an ambiguous failure it is only sent
        again with ``on_ambiguous="resend"``.
    """

    template_fields: Sequence[str] = (
        "message",
        "rooms",
        "receivers",
        "values",
        "sender",
        "message_type",
        "imkit_conn_id",
    )
    template_fields_renderers = {"message": "md", "values": "json"}

    def __init__(
        self,
        *,
        message: str,
        rooms: str | list[str] | None = None,
        receivers: str | list[str] | None = None,
        values: dict[str, dict[str, Any]] | str | None = None,
        sender: str | None = None,
        message_type: str = "text",
        push: bool | None = None,
        skip_total_badge: bool | None = None,
        imkit_conn_id: str = DEFAULT_CONN_ID,
        timeout: float | tuple[float, float] | None = None,
        retry: RetryPolicy | int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            imkit_conn_id=imkit_conn_id,
            timeout=timeout,
            retry=retry,
            **kwargs,
        )
        self.message = message
        self.rooms = rooms
        self.receivers = receivers
        self.values = values
        self.sender = sender
        self.message_type = message_type
        self.push = push
        self.skip_total_badge = skip_total_badge

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_imkit.client import validation

        message = validation.rendered_message("message", self.message)
        with self.get_hook() as hook:
            return hook.send_batch(
                message=message,
                rooms=validation.rendered_ids(self.rooms),
                receivers=validation.rendered_ids(self.receivers),
                values=validation.rendered_mapping(self.values),
                sender=validation.rendered_id(self.sender),
                message_type=validation.rendered_id(self.message_type),
                push=self.push,
                skip_total_badge=self.skip_total_badge,
            )


class ImkitRecallMessageOperator(ImkitBaseOperator):
    """
    Recall (retract) a sent message; the recalled message object is the XCom.

    :param room: id of the room the message was sent to (templated).
    :param message_id: the message's ``_id`` (templated), e.g.
        ``"{{ ti.xcom_pull(task_ids='announce')['_id'] }}"``.
    :param imkit_conn_id: the Airflow connection of type ``imkit`` (templated).
    :param timeout: seconds (or ``(connect, read)``) per HTTP attempt.
    :param retry: a :class:`~airflow_provider_imkit.client.retry.RetryPolicy`, or an int (HTTP
        attempts). A recall is idempotent: ``RetryPolicy(on_ambiguous="resend")`` is safe.
    """

    template_fields: Sequence[str] = ("room", "message_id", "imkit_conn_id")

    def __init__(
        self,
        *,
        room: str,
        message_id: str,
        imkit_conn_id: str = DEFAULT_CONN_ID,
        timeout: float | tuple[float, float] | None = None,
        retry: RetryPolicy | int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            imkit_conn_id=imkit_conn_id,
            timeout=timeout,
            retry=retry,
            **kwargs,
        )
        self.room = room
        self.message_id = message_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_imkit.client import validation

        with self.get_hook() as hook:
            return hook.recall_message(
                validation.rendered_id(self.room), validation.rendered_id(self.message_id)
            )


# The approval operator lives in its own module; importable from here like the others.
from airflow_provider_imkit.operators.approval import ImkitApprovalOperator  # noqa: E402

__all__ = [
    "ImkitApprovalOperator",
    "ImkitBaseOperator",
    "ImkitBatchSendMessageOperator",
    "ImkitRecallMessageOperator",
    "ImkitSendMessageOperator",
]
